"""Four eyes that hold (issue #18): whoever submitted a round never signs it off or returns it.

The submitter is read from the submit step itself (``history.round``), so a progress note, an
upload or an edit written afterwards by someone else changes nothing; administrators are bound
too unless ``[workspace] admins_sign_own`` says otherwise.
"""

from __future__ import annotations

import re

import httpx
import pytest

from .conftest import ROOT, serving, site_for

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
EVIDENCE = ROOT / "examples" / "evidence" / "整改会议纪要.txt"
UNIT = "区审计局"
ITEM = "2026-区审计局/7"  # 办公室, 整改中
AT = "2026-12-10T10:00"


@pytest.fixture
def unit(project, cli):
    assert cli("init").code == 0
    assert cli("ledger", "import", EXAMPLE, "--unit", UNIT, "--at", "2026-12-01T09:00").code == 0
    # one person who is both the department and a reviewer over the unit
    both = cli("user", "add", "张科长", "--unit", UNIT, "--role", "department:办公室", "--role", "reviewer")
    assert both.code == 0, both.err
    assert cli("user", "add", "巡察办", "--role", "reviewer").code == 0
    return project


def _token(cli, name: str) -> str:
    found = re.search(r"dbn_[\w\-]+", cli("user", "token", name).out)
    assert found
    return found.group(0)


def test_the_submitter_cannot_approve_or_return_after_someone_elses_note(unit, cli):
    assert cli("issue", "transition", ITEM, "submit", "--by", "张科长", "--evidence", EVIDENCE, "--at", AT).code == 0
    from engine.app.http.app import create_app

    with serving(create_app(site_for(unit / "config.toml", at=AT))) as base, httpx.Client(base_url=base) as http:
        leader = {"Authorization": f"Bearer {_token(cli, f'{UNIT}/办公室')}"}
        # someone else writes the last history entry after the submit: the old check looked only at that
        note = http.post(f"/api/v1/issues/{ITEM}/progress", headers=leader, json={"note": "补充说明"})
        assert note.status_code == 201, note.text
        mine = {"Authorization": f"Bearer {_token(cli, '张科长')}"}
        approve = http.post(f"/api/v1/issues/{ITEM}/actions", headers=mine, json={"trigger": "approve"})
        assert approve.status_code in (403, 409) and "提交人" in approve.json()["detail"], approve.text
        back = http.post(f"/api/v1/issues/{ITEM}/actions", headers=mine,
                         json={"trigger": "return", "note": "材料不足", "deadline": "2027-01-15"})
        assert back.status_code in (403, 409) and "提交人" in back.json()["detail"], back.text
        steps = {s["trigger"]: s for s in http.get(f"/api/v1/issues/{ITEM}", headers=mine).json()["steps"]}
        assert steps["approve"]["blocked"] and steps["return"]["blocked"]  # the page says so before a click
    refused = cli("issue", "transition", ITEM, "approve", "--by", "张科长", "--at", AT)
    assert refused.code == 1 and "提交人不能审核销号" in refused.err
    assert cli("issue", "show", ITEM, "--json").json["state"] == "awaiting_review"
    # another reviewer returns it; in the second round the first submitter may sign off someone else's submission
    assert cli("issue", "transition", ITEM, "return", "--by", "巡察办", "--note", "材料不足", "--deadline", "2027-01-15",
               "--at", AT).code == 0
    assert cli("issue", "transition", ITEM, "submit", "--by", f"{UNIT}/办公室", "--evidence", EVIDENCE,
               "--at", "2026-12-11T10:00").code == 0
    assert cli("issue", "transition", ITEM, "approve", "--by", "张科长", "--at", "2026-12-11T11:00").code == 0


def test_co_submitters_of_a_round_are_all_bound(project, cli):
    """A workflow that lets the department withdraw a submission: two people submit in one round;
    neither may sign it off, whoever wrote last."""
    wf = project / "workflows" / "inspection-rectification.yaml"
    withdraw = """  - trigger: withdraw
    source: awaiting_review
    dest: in_progress
    label: 撤回
    roles: [leader, department]
"""
    text = wf.read_text(encoding="utf-8")
    wf.write_text(text.replace("  - trigger: sustain\n", withdraw + "  - trigger: sustain\n"), encoding="utf-8")
    assert cli("init").code == 0
    assert cli("ledger", "import", EXAMPLE, "--unit", UNIT, "--at", "2026-12-01T09:00").code == 0
    for name in ("张科长", "李科员"):
        assert cli("user", "add", name, "--unit", UNIT, "--role", "department:办公室", "--role", "reviewer").code == 0
    assert cli("issue", "transition", ITEM, "submit", "--by", "张科长", "--evidence", EVIDENCE, "--at", AT).code == 0
    assert cli("issue", "transition", ITEM, "withdraw", "--by", "张科长", "--at", AT).code == 0
    assert cli("issue", "transition", ITEM, "submit", "--by", "李科员", "--at", AT).code == 0
    for name in ("张科长", "李科员"):
        refused = cli("issue", "transition", ITEM, "approve", "--by", name, "--at", AT)
        assert refused.code == 1 and "提交人不能审核销号" in refused.err, (name, refused.err)
    assert cli("user", "add", "巡察办", "--role", "reviewer").code == 0
    assert cli("issue", "transition", ITEM, "approve", "--by", "巡察办", "--at", AT).code == 0


@pytest.mark.parametrize("exempt", [False, True])
def test_administrators_are_bound_unless_the_setting_exempts_them(unit, cli, exempt):
    config = unit / "config.toml"
    if exempt:
        config.write_text(config.read_text(encoding="utf-8") + "\n[workspace]\nadmins_sign_own = true\n",
                          encoding="utf-8")
    assert cli("issue", "transition", ITEM, "submit", "--by", "admin", "--evidence", EVIDENCE, "--at", AT).code == 0
    approved = cli("issue", "transition", ITEM, "approve", "--by", "admin", "--at", AT)
    if exempt:
        assert approved.code == 0, approved.err
    else:
        assert approved.code == 1 and "提交人不能审核销号" in approved.err
