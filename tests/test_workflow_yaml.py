"""Workflow YAML: the shipped workflow, and every kind of error with its FILE:LINE:COL."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.errors import WorkflowError
from engine.workflow.loader import load_workflow, load_workflow_text
from engine.workflow.machine import AttachedIssue, WorkflowMachine

from .conftest import WORKFLOWS, run_cli

GOOD = textwrap.dedent("""\
    name: demo
    title: 演示
    initial: a
    states:
      - name: a
        label: 甲
      - name: b
        label: 乙
    transitions:
      - trigger: go
        source: a
        dest: b
    """)


def errors_of(text: str) -> list[str]:
    with pytest.raises(WorkflowError) as info:
        load_workflow_text(text, "wf.yaml")
    return info.value.details


def test_shipped_workflow_matches_the_design():
    wf = load_workflow(WORKFLOWS / "inspection-rectification.yaml").definition
    assert [s.name for s in wf.states] == ["identified", "planned", "in_progress", "awaiting_review", "completed",
                                           "long_term_sustained"]
    assert [wf.label(s.name) for s in wf.states] == ["待整改", "已制定方案", "整改中", "待审核销号", "已完成", "长期坚持"]
    moves = {(t.trigger, src, t.dest) for t in wf.transitions for src in t.source}
    assert moves == {
        ("plan", "identified", "planned"), ("start", "planned", "in_progress"),
        ("submit", "in_progress", "awaiting_review"), ("approve", "awaiting_review", "completed"),
        ("approve_long_term", "awaiting_review", "long_term_sustained"), ("return", "awaiting_review", "in_progress"),
        ("sustain", "completed", "long_term_sustained"),
        ("reopen", "completed", "in_progress"), ("reopen", "long_term_sustained", "in_progress"),
    }
    words = wf.word_to_state()
    assert [words[w] for w in ("待整改", "已制定方案", "整改中", "已完成", "长期坚持")] == [
        "identified", "planned", "in_progress", "completed", "long_term_sustained"]


def test_syntax_error_has_line_and_column():
    assert errors_of("name: demo\nstates: [a, b\n") == [
        "wf.yaml:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>'"]


def test_unknown_dest_state_is_located():
    text = GOOD.replace("dest: b", "dest: c")
    errs = errors_of(text)
    assert errs[0].startswith("wf.yaml:12:11: unknown dest state 'c' (states: a, b)")
    assert errs[1] == "wf.yaml:7:11: state 'b' cannot be reached from 'a'"


def test_unreachable_state():
    text = GOOD + "  - trigger: back\n    source: b\n    dest: a\n"
    text = text.replace("  - name: b\n    label: 乙\n", "  - name: b\n    label: 乙\n  - name: z\n    label: 孤\n")
    assert errors_of(text) == ["wf.yaml:9:11: state 'z' cannot be reached from 'a'"]


def test_duplicate_trigger_from_the_same_state():
    text = GOOD + "  - trigger: go\n    source: [a]\n    dest: a\n"
    (err,) = errors_of(text)
    assert err == "wf.yaml:13:14: duplicate trigger 'go' from state 'a' (first defined at line 10)"


def test_missing_field_and_unknown_key():
    text = GOOD.replace("initial: a\n", "").replace("title: 演示", "titel: 演示")
    errs = errors_of(text)
    assert "wf.yaml:1:1: missing required key 'initial'" in errs
    assert "wf.yaml:2:1: unknown key 'titel'" in errs


def test_duplicate_mapping_key_is_an_error_not_an_overwrite():
    (err,) = errors_of(GOOD.replace("title: 演示", "title: 演示\nname: other"))
    assert err == "wf.yaml:3:1: duplicate key 'name' (first at line 1)"


def test_guard_naming_python_code_is_refused():
    (err,) = errors_of(GOOD.replace("dest: b", "dest: b\n    conditions: [os.system]"))
    assert err.startswith("wf.yaml:13:18: unknown guard 'os.system' (allowed: has_deadline")
    (err,) = errors_of(GOOD.replace("dest: b", "dest: b\n    after: os.system"))
    assert err == "wf.yaml:13:5: unknown key 'after'"
    (err,) = errors_of(GOOD.replace("dest: b", "dest: b\n    unless: [subprocess.call]"))
    assert "unknown guard 'subprocess.call'" in err


def test_python_tags_are_not_constructed():
    errs = errors_of(GOOD.replace("title: 演示", "title: !!python/object/apply:os.system ['true']"))
    assert errs == ["wf.yaml:2:8: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"]
    errs = errors_of(GOOD.replace("title: 演示", "title: !!python/name:os.system ''"))
    assert errs[0].startswith("wf.yaml:2:8: YAML error: could not determine a constructor")


def test_status_word_meaning_two_states_and_unknown_column():
    text = GOOD + "status_words:\n  a: [进行]\n  b: [进行]\ncolumns:\n  ref: 序号\n  title: 问题\n  colour: 颜色\n"
    errs = errors_of(text)
    assert "wf.yaml:15:7: status word '进行' already means 'a'" in errs
    assert any(e.startswith("wf.yaml:19:3: unknown ledger field 'colour'") for e in errs)


def test_reserved_trigger_names():
    (err,) = errors_of(GOOD.replace("trigger: go", "trigger: to_b"))
    assert "trigger name 'to_b' is reserved" in err


def test_content_hash_ignores_comments_but_not_meaning():
    a = load_workflow_text(GOOD, "a.yaml")
    b = load_workflow_text("# a comment\n" + GOOD, "b.yaml")
    c = load_workflow_text(GOOD.replace("label: 乙", "label: 丙"), "c.yaml")
    assert a.content_hash == b.content_hash != c.content_hash


def test_machine_has_no_auto_transitions_and_is_shared():
    wf = load_workflow_text(GOOD, "wf.yaml").definition
    machine = WorkflowMachine(wf)
    assert machine.machine.auto_transitions is False
    assert "to_b" not in machine.machine.events
    subject = AttachedIssue(ref="x", state="a")
    assert machine.fire(subject, "go", by="me") == "b"
    assert machine.machine.models == []  # detached after the step


def test_cli_validate_reports_every_file(tmp_path: Path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD, encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("dest: b", "dest: c"), encoding="utf-8")
    result = run_cli("workflow", "validate", good, bad)
    assert result.code == 2
    assert "good.yaml: ok (demo@" in result.out
    assert f"{bad}:12:11: unknown dest state 'c'" in result.err
    assert f"{bad}:7:11: state 'b' cannot be reached from 'a'" in result.err
    assert "Traceback" not in result.err


def test_show_draws_a_file_not_yet_registered_with_chinese_edges(cli, project, tmp_path, monkeypatch):
    draft = tmp_path / "draft.yaml"
    text = (project / "workflows" / "inspection-rectification.yaml").read_text(encoding="utf-8")
    draft.write_text(text.replace("name: inspection-rectification", "name: draft-rectification")
                     .replace("    label_en: Start\n    roles: [leader, department, unit_admin]\n",
                              "    label_en: Start\n    roles: [department]\n"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = cli("workflow", "show", draft, "--graph")  # no database, no `duban init`: a draft
    assert result.code == 0, result.err
    svg = (tmp_path / "draft-rectification.svg").read_text(encoding="utf-8")
    for edge in ("开始整改（责任科室）", "提交销号申请（责任领导、责任科室） [有本轮佐证材料]",
                 "审核通过，予以销号（审核人） [非提交人]",
                 "退回，二次整改（审核人） [写明理由 &amp; 有新的整改时限 &amp; 非提交人]",
                 "问题反弹，重新整改（审核人、责任领导） [写明理由]"):
        assert edge in svg, edge


def test_validate_refuses_an_actor_no_recipient_reaches(cli, project, monkeypatch):
    wf = project / "workflows" / "inspection-rectification.yaml"
    state = "  - name: in_progress\n    label: 整改中\n"
    wf.write_text(wf.read_text(encoding="utf-8").replace(state, state + "    actor: [department, 巡察整改办公室]\n"),
                  encoding="utf-8")
    monkeypatch.setenv("DUBAN_CONFIG", str(project / "config.toml"))
    result = cli("workflow", "validate", wf)
    assert result.code == 2
    line = next(n for n, text in enumerate(wf.read_text(encoding="utf-8").splitlines(), 1) if "actor:" in text)
    assert f"{wf}:{line}:25: actor '巡察整改办公室' of state in_progress is reached by no recipient" in result.err
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + '[channels.console]\nkind = "console"\n'
                      '[recipients."巡察整改办公室"]\nconsole = "整改办"\n', encoding="utf-8")
    assert cli("workflow", "validate", wf).code == 0
