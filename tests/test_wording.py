"""Reminders say what is due and what to do next, to whoever must act in the state (issue #10)."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import unquote

HEADERS = "序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"
ROWS = [
    "1,党的建设,组织建设,支部“三会一课”记录不全,补齐记录,张副局长,机关党支部,2026-12-31,待整改",
    "2,业务工作,资金管理,科技项目资金拨付滞后,建立台账,王局长,财务室,2026-12-10,整改中",
]
PEOPLE = ["张副局长", "机关党支部", "王局长", "财务室", "巡察整改办公室", "第一责任人", "派驻纪检监察组", "admin", "分管领导"]


def town(project, cli, tmp_path, *, public_url: str | None = None, actor: str | None = None):
    shutil.rmtree(project / "workflows" / "duties")
    if actor is not None:
        wf = project / "workflows" / "inspection-rectification.yaml"
        text = wf.read_text(encoding="utf-8")
        wf.write_text(text.replace("  - name: in_progress\n    label: 整改中\n",
                                   f"  - name: in_progress\n    label: 整改中\n    actor: {actor}\n"), encoding="utf-8")
    out = tmp_path / "sent.jsonl"
    config = project / "config.toml"
    lines = [config.read_text(encoding="utf-8"), "[channels.out]", 'kind = "file"', f"path = {json.dumps(str(out))}"]
    for person in PEOPLE:
        lines += [f'[recipients."{person}"]', f'out = "{person}"']
    if public_url:
        lines += ["[board]", f'public_url = "{public_url}"']
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = tmp_path / "区科技局-2026.csv"
    path.write_text("\n".join([HEADERS, *ROWS]) + "\n", encoding="utf-8")
    assert cli("init", "--at", "2026-11-02T10:00").code == 0
    result = cli("ledger", "import", path, "--feedback-date", "2026-11-02", "--at", "2026-11-02T10:00")
    assert result.code == 0, result.err
    return out


def sent(out) -> list[dict]:
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []


def test_items_name_their_own_deadline_and_the_next_steps_not_a_command(project, cli, tmp_path):
    out = town(project, cli, tmp_path, public_url="https://duban.example.gov.cn")
    # the plan is due 15 working days after feedback (2026-11-23); the sweep the day after it
    assert cli("sweep", "--at", "2026-11-24T09:30").code == 0
    texts = {m["recipient"]: m["text"] for m in sent(out)}
    one = texts["张副局长"]
    assert ("【区科技局-2026 第1项】支部“三会一课”记录不全——制定整改方案时限2026年11月23日，已逾期1个工作日；"
            "下一步：制定整改方案") in one
    assert "整改时限2026年11月23日" not in one  # 2026-11-23 is the plan's deadline; the 整改时限 is 12-31
    # a file is read by others (the signed link is for e-mail and app notices, tests/test_group_links.py):
    # the item's page behind the login
    links = re.findall(r"https://duban\.example\.gov\.cn(/ws/issues/\S+)", one)
    assert [unquote(n) for n in links] == ["/ws/issues/区科技局-2026/1"]
    assert "去处理：https://duban.example.gov.cn/ws/login" in one and "/w/" not in one
    assert all("duban " not in m["text"] and "--by" not in m["text"] for m in sent(out))


def test_the_milestone_reads_in_chinese(project, cli, tmp_path):
    out = town(project, cli, tmp_path)
    assert cli("sweep", "--at", "2027-01-04T09:30").code == 0
    [report] = [m for m in sent(out) if "报送整改情况报告" in m["text"]]
    assert "once" not in report["text"] and "（once）" not in report["subject"]


def test_reminders_of_a_state_go_to_its_actor_and_routing_can_match_the_state(project, cli, tmp_path):
    out = town(project, cli, tmp_path, actor="[department, 巡察整改办公室]")
    routing = project / "workflows" / "routing" / "routing.yaml"
    routing.write_text(routing.read_text(encoding="utf-8") + (
        "\n  - name: in-progress-to-the-leader\n    match:\n      state: in_progress\n"
        "    add: [分管领导]\n"), encoding="utf-8")
    rows = cli("remind", "preview", "--at", "2026-12-01T10:00", "--until", "2026-12-14T23:00", "--json").json
    two = [r for r in rows if r["subject"] == "区科技局-2026/2"]
    assert two and all(r["recipients"][:2] == ["财务室", "巡察整改办公室"] for r in two)
    assert all("王局长" not in r["recipients"] for r in two)  # the leader is not this state's actor
    one = [r for r in rows if r["subject"] == "区科技局-2026/1"]
    assert one and all(r["recipients"][:2] == ["张副局长", "机关党支部"] for r in one)  # default: leader, department
    assert cli("sweep", "--at", "2026-12-11T09:30").code == 0
    [routed] = [m["text"] for m in sent(out) if m["recipient"] == "分管领导"]
    assert "科技项目资金拨付滞后" in routed and "三会一课" not in routed  # only the in_progress item
