"""Moving issues: guards, roles, refusals that change nothing, references, pinned versions."""

from __future__ import annotations

from pathlib import Path

from .conftest import SEED_CSV, add_reviewer


def history_len(cli, ref: str) -> int:
    """The steps taken since the import (which writes the first entry)."""
    return len([h for h in cli("issue", "show", ref, "--json").json["history"] if h["trigger"] != "import"])


def test_full_path_through_the_workflow_with_guards(seeded, tmp_path: Path):
    cli = seeded
    rows = SEED_CSV.read_text(encoding="utf-8").splitlines()
    new = tmp_path / "new.csv"
    new.write_text("\n".join([rows[0], "1,方面,类别,新问题,措施,党组书记,办公室,,待整改"]) + "\n", encoding="utf-8")
    assert cli("ledger", "import", new).code == 0
    ref = "new/1"

    refused = cli("issue", "transition", ref, "plan", "--by", "党组书记")
    assert refused.code == 1
    assert "'plan' refused in state identified (待整改)" in refused.err
    assert "a deadline is required (整改时限)" in refused.err
    assert history_len(cli, ref) == 0

    ok = cli("issue", "transition", ref, "plan", "--by", "党组书记", "--deadline", "2026-12-31", "--at", "2026-11-20T10:00")
    assert ok.code == 0 and "identified -> planned" in ok.out
    assert cli("issue", "transition", ref, "start", "--by", "办公室").code == 0

    assert cli("issue", "transition", ref, "submit", "--by", "办公室").code == 1
    proof = tmp_path / "会议记录.pdf"
    proof.write_bytes(b"%PDF-1.4 minutes")
    assert cli("issue", "transition", ref, "submit", "--by", "办公室", "--evidence", proof).code == 0
    # the department may not sign off its own submission; the reviewer does
    assert cli("issue", "transition", ref, "approve", "--by", "办公室").code == 1
    add_reviewer(cli, "巡察办")
    assert cli("issue", "transition", ref, "approve", "--by", "巡察办").code == 0
    assert cli("issue", "transition", ref, "sustain", "--by", "党组书记").code == 0
    assert cli("issue", "transition", ref, "reopen", "--by", "党组书记").code == 1
    assert cli("issue", "transition", ref, "reopen", "--by", "党组书记", "--note", "问题反弹").code == 0

    shown = cli("issue", "show", ref, "--json").json
    assert shown["state"] == "in_progress" and shown["deadline"] == "2026-12-31"
    steps = [h for h in shown["history"] if h["trigger"] != "import"]
    assert [(h["trigger"], h["from"], h["to"], h["by"]) for h in steps] == [
        ("plan", "identified", "planned", "党组书记"), ("start", "planned", "in_progress", "办公室"),
        ("submit", "in_progress", "awaiting_review", "办公室"), ("approve", "awaiting_review", "completed", "巡察办"),
        ("sustain", "completed", "long_term_sustained", "党组书记"),
        ("reopen", "long_term_sustained", "in_progress", "党组书记")]
    assert steps[0]["at"] == "2026-11-20T10:00:00+08:00"  # in the configured zone, with its offset
    assert shown["history"][-1]["note"] == "问题反弹"
    assert shown["evidence"][0]["file_name"] == "会议记录.pdf"
    assert shown["evidence"][0]["size"] == 16


def test_refused_transition_names_state_and_allowed_triggers(seeded):
    result = seeded("issue", "transition", "bishan-keji-2022/4", "plan", "--by", "admin")
    assert result.code == 1
    assert "cannot 'plan' from state completed (已完成)" in result.err
    assert "triggers allowed from completed: sustain, reopen" in result.err
    assert seeded("issue", "show", "4", "--json").json["state"] == "completed"
    unknown = seeded("issue", "transition", "4", "fly", "--by", "admin")
    assert unknown.code == 1 and "'fly' is not a trigger of this workflow" in unknown.err


def test_refused_step_writes_no_evidence(seeded, tmp_path):
    f = tmp_path / "e.txt"
    f.write_text("x")
    assert seeded("issue", "transition", "4", "start", "--by", "admin", "--evidence", f).code == 1
    assert seeded("issue", "show", "4", "--json").json["evidence"] == []


def test_roles_restrict_who_may_act(project, cli):
    wf = project / "workflows" / "inspection-rectification.yaml"
    reopen = "    conditions: [has_note]\n    roles: "
    wf.write_text(wf.read_text(encoding="utf-8").replace(reopen + "[reviewer, leader]", reopen + "[leader, admin]"),
                  encoding="utf-8")
    cli("init")
    cli("ledger", "import", SEED_CSV)
    refused = cli("issue", "transition", "7", "reopen", "--by", "科技管理科", "--note", "反弹")
    assert refused.code == 1 and "/科技管理科' may not do this: allowed roles are leader, admin" in refused.err
    assert cli("issue", "transition", "7", "reopen", "--by", "分管副局长", "--note", "反弹").code == 0
    assert cli("issue", "transition", "8", "reopen", "--by", "admin", "--note", "反弹").code == 0


def test_bare_ref_must_be_unambiguous(seeded):
    assert seeded("ledger", "import", SEED_CSV, "--ledger", "second").code == 0
    result = seeded("issue", "show", "7")
    assert result.code == 2
    assert "issue '7' is ambiguous: it exists in 2 ledgers" in result.err
    assert "bishan-keji-2022/7" in result.err
    assert seeded("issue", "show", "second/7", "--json").json["ledger"] == "second"
    missing = seeded("issue", "show", "second/99")
    assert missing.code == 2 and "no issue 'second/99'" in missing.err


def test_issue_stays_on_its_workflow_version(project, seeded):
    cli = seeded
    before = cli("issue", "show", "1", "--json").json["workflow"]
    wf = project / "workflows" / "inspection-rectification.yaml"
    wf.write_text(wf.read_text(encoding="utf-8").replace("label: 整改中", "label: 正在整改"), encoding="utf-8")
    assert cli("workflow", "sync").code == 0
    versions = cli("workflow", "list", "--json").json
    assert len(versions) == 2 and [v["issues"] for v in versions] == [26, 0]
    assert cli("issue", "show", "1", "--json").json["workflow"] == before
    assert cli("ledger", "import", SEED_CSV, "--ledger", "later").code == 0
    assert cli("issue", "show", "later/1", "--json").json["workflow"] != before
    # the old issue still moves by its own version
    assert cli("issue", "transition", "bishan-keji-2022/7", "sustain", "--by", "admin").code == 0


def test_deleting_a_state_with_live_issues_leaves_them_on_their_version(project, seeded):
    wf = project / "workflows" / "inspection-rectification.yaml"
    text = wf.read_text(encoding="utf-8")
    text = text.replace("""  - name: long_term_sustained
    label: 长期坚持
    label_en: Sustained long-term
    description: 已整改，措施需长期坚持并定期回头看
""", "")
    text = text.replace("""  - trigger: sustain
    source: completed
    dest: long_term_sustained
    label: 转入长期坚持
    label_en: Sustain
    roles: [reviewer, leader]
""", "").replace("""  - trigger: approve_long_term
    source: awaiting_review
    dest: long_term_sustained
    label: 销号，转入长期坚持
    label_en: Sign off, keep up long-term
    conditions: [not_submitter]
    roles: [reviewer]
""", "").replace("source: [completed, long_term_sustained]", "source: [completed]")
    text = text.replace("  long_term_sustained: [长期坚持, 持续整改, 长期整改]\n", "")
    text = text[:text.index("checkins:")] + text[text.index("milestones:"):]
    wf.write_text(text, encoding="utf-8")
    result = seeded("workflow", "sync")
    assert result.code == 0, result.err
    versions = seeded("workflow", "list", "--json").json
    assert [v["issues"] for v in versions] == [26, 0]  # registered; the ledger moves only when migrated
    assert (f"ledger bishan-keji-2022: 9 issue(s) in long_term_sustained, a state @{versions[1]['version']} does "
            f"not have; to move the ledger to it: duban workflow migrate bishan-keji-2022") in result.err
    assert seeded("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "admin", "--note", "反弹").code == 0
