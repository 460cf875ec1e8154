"""Every reader asks the one reminder core, so they agree: the three disagreements once found.

The shipped example imported on 2026-12-01: 9 long-term items, each with a half-yearly look-back
(``long-term-look-back``, due ten working days after 2026-12-31). Issue 1 is reopened on
2026-12-02 and signed back into 长期坚持 on 2026-12-03.
"""

from __future__ import annotations

import json

from icalendar import Calendar

from .conftest import SEED_CSV

LOOKBACK = "long-term-look-back"
START = "2026-12-01T08:00"
UNTIL = "2027-02-26T18:00"


def _lookbacks(rows: list[dict], ref: str) -> list[dict]:
    """Rows of ``remind preview`` / ``remind list`` that are issue ``ref``'s look-back."""
    return [r for r in rows if r["subject"] == LOOKBACK
            and r["occurrence"].split("@")[0].endswith(f" bishan-keji-2022/{ref}")]


def _ics_lookbacks(cli, at: str, ref: str) -> list:
    result = cli("calendar", "export", "--at", at)
    assert result.code == 0, result.err
    return [e for e in Calendar.from_ical(result.out).walk("VEVENT")
            if "回头看" in str(e["SUMMARY"]) and f"整改事项：bishan-keji-2022/{ref}\n" in str(e["DESCRIPTION"]) + "\n"]


def _seeded(cli):
    assert cli("init", "--at", START).code == 0
    result = cli("ledger", "import", SEED_CSV, "--feedback-date", "2026-11-01", "--at", START)
    assert result.code == 0, result.err


def test_preview_names_the_recipients_the_sweep_writes(cli):
    _seeded(cli)
    predicted = _lookbacks(cli("remind", "preview", "--at", START, "--until", UNTIL, "--json").json, "1")
    assert predicted and all(r["recipients"] == ["党组书记", "办公室"] for r in predicted)
    for row in predicted:  # sweep at each predicted instant, as a daemon running all along would
        assert cli("sweep", "--at", row["at"]).code == 0
    written = _lookbacks(cli("remind", "list", "--json").json, "1")
    assert [(r["at"], r["rule"], r["recipients"]) for r in written] == \
        [(r["at"], r["rule"], r["recipients"]) for r in predicted]


def test_a_reopened_item_has_no_look_back_anywhere(cli, project):
    _seeded(cli)
    assert _ics_lookbacks(cli, START, "1")
    assert cli("issue", "transition", "bishan-keji-2022/1", "reopen", "--by", "党组书记", "--note", "问题反弹",
               "--at", "2026-12-02T10:00").code == 0
    at = "2026-12-02T10:01"
    assert _lookbacks(cli("remind", "preview", "--at", at, "--until", UNTIL, "--json").json, "1") == []
    assert _ics_lookbacks(cli, at, "1") == []
    assert _lookbacks(cli("remind", "preview", "--at", at, "--until", UNTIL, "--json").json, "2")  # others stay
    for day in ("2027-01-12T10:00", "2027-01-14T10:00", "2027-01-15T10:00", "2027-02-01T10:00"):
        assert cli("sweep", "--at", day).code == 0
    assert _lookbacks(cli("remind", "list", "--json").json, "1") == []


def test_a_look_back_is_rearmed_when_its_item_comes_back(cli, project):
    _seeded(cli)
    before = len(_ics_lookbacks(cli, START, "1"))
    steps = [("reopen", "党组书记", "--note", "问题反弹", "2026-12-02T10:00"),
             ("submit", "党组书记", "--evidence", str(project / "记录.pdf"), "2026-12-03T09:00"),
             ("approve", "admin", "--note", "予以销号", "2026-12-03T09:30"),
             ("sustain", "党组书记", "--note", "转入长期坚持", "2026-12-03T10:00")]
    (project / "记录.pdf").write_bytes(b"%PDF-1.4 minutes")
    for trigger, by, flag, value, at in steps:
        result = cli("issue", "transition", "bishan-keji-2022/1", trigger, "--by", by, flag, value, "--at", at)
        assert result.code == 0, result.err
    at = "2026-12-03T10:01"
    predicted = _lookbacks(cli("remind", "preview", "--at", at, "--until", UNTIL, "--json").json, "1")
    assert predicted, "the look-back follows the item again"
    assert len(_ics_lookbacks(cli, at, "1")) == before > 0
    for row in predicted:
        assert cli("sweep", "--at", row["at"]).code == 0
    assert [r["at"] for r in _lookbacks(cli("remind", "list", "--json").json, "1")] == [r["at"] for r in predicted]
    assert json.dumps(predicted, ensure_ascii=False).count("党组书记") == len(predicted)
