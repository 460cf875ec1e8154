"""Who may do what, as a matrix generated from the policy's own table (issue #18).

Every role × every issue action × {own, another department/ledger of the same unit, another unit},
through the doors people use (the API and the pages; the CLI for what only it offers). The expected
answer is read from ``engine.accounts.policy.ISSUE_RULES``, and ``DOORS`` must name a door for every
``Action``: a new action cannot be added without a row here.

Each call is made so that it cannot change anything the next one sees (a step that does not exist,
a date that is not later, a hand-over to nobody): a permitted actor gets past the policy and is
refused by the workflow or the input (400/409, exit 1 or 2 with its own words), a forbidden one is
refused by the policy (403, "无权"), except that the web and the API answer another unit's issue
as a missing one (404, word for word): a refusal would tell which refs exist there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from engine.accounts.policy import ISSUE_RULES, Action

from .conftest import serving, site_for

UNIT_A, UNIT_B = "区民政局", "区卫健委"
LEDGER, OTHER_LEDGER, B_LEDGER = "民政-2026", "民政-专项", "卫健-2026"
CSV = """序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态
1,主体责任方面,主体责任,专题研究全面从严治党不够,每季度专题研究,党组书记,办公室,2026-12-31,整改中
2,财务管理方面,资金管理,专项资金拨付不及时,建立拨付台账,分管副局长,财务科,2026-12-31,整改中
"""
NOW = "2026-12-10T10:00"
PASSWORD = "matrix-pass-2026"

# role -> scope -> (login, unit, grant): "own" reaches issue 1 of LEDGER (党组书记, 办公室, unit A);
# "near" is the same unit but another leader/department/ledger; "far" is the other unit.
ACTORS: dict[str, dict[str, tuple[str, str, str]]] = {
    "leader": {"own": (f"{UNIT_A}/党组书记", UNIT_A, "leader:党组书记"),
               "near": (f"{UNIT_A}/分管副局长", UNIT_A, "leader:分管副局长"),
               "far": (f"{UNIT_B}/党组书记", UNIT_B, "leader:党组书记")},
    "department": {"own": (f"{UNIT_A}/办公室", UNIT_A, "department:办公室"),
                   "near": (f"{UNIT_A}/财务科", UNIT_A, "department:财务科"),
                   "far": (f"{UNIT_B}/办公室", UNIT_B, "department:办公室")},
    **{role: {"own": (f"a-{role}", UNIT_A, role),
              "near": (f"near-{role}", "", f"{role}:ledger:{OTHER_LEDGER}"),
              "far": (f"b-{role}", UNIT_B, role)} for role in ("reviewer", "unit_admin", "observer")},
}


@dataclass
class Call:
    status: int  # HTTP status, or the CLI's exit code
    text: str


def _allowed(role: str, scope: str, action: Action) -> bool:
    return role == "admin" or (scope == "own" and role in ISSUE_RULES[action])


class Doors:
    """One signed-in actor's doors: an API token, a web session, the CLI's --by."""

    def __init__(self, base: str, cli: Callable[..., object], login: str):
        self.cli, self.login = cli, login
        token = re.search(r"dbn_[\w\-]+", cli("user", "token", login).out)  # type: ignore[attr-defined]
        assert token, login
        self.api = httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {token.group(0)}"})
        self.web = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
        form = self.web.get("/ws/login")
        signed = self.web.post("/ws/login", data={"name": login, "password": PASSWORD, "csrf": _csrf(form.text),
                                                  "next": "/ws/"}, params={"csrf": _csrf(form.text)})
        assert signed.status_code == 200 and "我的待办" in signed.text, (login, signed.status_code, signed.text[:300])

    def page_post(self, path: str, data: dict[str, str], files: dict | None = None) -> Call:
        page = self.web.get(f"/ws/issues/{LEDGER}/1")
        csrf = _csrf(page.text) if page.status_code == 200 else _csrf(self.web.get("/ws/").text)
        answer = self.web.post(f"/ws/issues/{LEDGER}/1/{path}", data={**data, "csrf": csrf}, files=files,
                               params={"csrf": csrf}, follow_redirects=False)
        return Call(answer.status_code, answer.text)

    def run(self, *args: str) -> Call:
        result = self.cli(*args, "--by", self.login, "--at", NOW)
        return Call(result.code, result.err)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.api.close()
        self.web.close()


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def _http_forbidden(call: Call, scope: str) -> bool:
    return call.status == (404 if scope == "far" else 403)


def _cli_forbidden(call: Call, scope: str) -> bool:
    return call.status == 1 and "无权" in call.text


ISSUE = f"{LEDGER}/1"
DOORS: dict[Action, list[tuple[str, Callable[[Doors], Call], Callable[[Call, str], bool]]]] = {
    Action.VIEW: [
        ("api", lambda d: Call(d.api.get(f"/api/v1/issues/{ISSUE}").status_code, ""), _http_forbidden),
        ("page", lambda d: Call(d.web.get(f"/ws/issues/{ISSUE}").status_code, ""), _http_forbidden)],
    Action.STEP: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/actions", json={"trigger": "no-such-step"})
                               .status_code, ""), _http_forbidden),
        ("page", lambda d: d.page_post("step", {"trigger": "no-such-step"}), _http_forbidden)],
    Action.PROGRESS: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/progress", json={"note": "   "}).status_code, ""),
         _http_forbidden),
        ("page", lambda d: d.page_post("progress", {"note": "   "}), _http_forbidden)],
    Action.EVIDENCE: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/evidence",
                                          files={"file": ("纪要.txt", b"minutes", "text/plain")}).status_code, ""),
         _http_forbidden),
        ("page", lambda d: d.page_post("evidence", {}, files={"file": ("纪要.txt", b"minutes", "text/plain")}),
         _http_forbidden)],
    Action.EXTENSION_REQUEST: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/extension",
                                          json={"to": "2026-01-05", "reason": "需要时间"}).status_code, ""),
         _http_forbidden),
        ("page", lambda d: d.page_post("extension", {"to": "2026-01-05", "reason": "需要时间"}), _http_forbidden),
        ("cli", lambda d: d.run("issue", "extension", "request", ISSUE, "--to", "2026-01-05", "--reason", "需要时间"),
         _cli_forbidden)],
    Action.EXTENSION_DECIDE: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/extension/decide", json={"approve": True})
                               .status_code, ""), _http_forbidden),
        ("page", lambda d: d.page_post("extension/decide", {"approve": "yes"}), _http_forbidden),
        ("cli", lambda d: d.run("issue", "extension", "decide", ISSUE, "--approve"), _cli_forbidden)],
    Action.DEADLINE: [("cli", lambda d: d.run("issue", "edit", ISSUE, "--deadline", "2027-01-29"), _cli_forbidden)],
    Action.MEASURES: [("cli", lambda d: d.run("issue", "edit", ISSUE, "--measures", "每季度专题研究"), _cli_forbidden)],
    Action.HANDOVER: [
        ("api", lambda d: Call(d.api.post(f"/api/v1/issues/{ISSUE}/handover",
                                          json={"leader": "无此人", "note": "调整"}).status_code, ""), _http_forbidden),
        ("page", lambda d: d.page_post("handover", {"leader": "无此人", "department": "办公室", "note": "调整"}),
         _http_forbidden)],
    Action.CHECKIN: [("cli", lambda d: d.run("issue", "checkin", ISSUE), _cli_forbidden)],
}


def test_every_action_has_a_door():
    assert set(DOORS) == set(Action) == set(ISSUE_RULES)


@pytest.fixture
def installation(project, cli, tmp_path):
    config = project / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[board]\npublic_url = \"http://127.0.0.1:1\"\n",
                      encoding="utf-8")
    assert cli("init").code == 0
    for name, unit in ((LEDGER, UNIT_A), (OTHER_LEDGER, UNIT_A), (B_LEDGER, UNIT_B)):
        path = tmp_path / f"{name}.csv"
        path.write_text(CSV, encoding="utf-8")
        result = cli("ledger", "import", path, "--unit", unit, "--at", "2026-12-01T09:00")
        assert result.code == 0, result.err
    logins = {"admin"}
    for scopes in ACTORS.values():
        for login, unit, grant in scopes.values():
            logins.add(login)
            if login.endswith(("/党组书记", "/分管副局长", "/办公室", "/财务科")):
                continue  # the import made it
            args = ["user", "add", login, "--role", grant] + (["--unit", unit] if unit else [])
            assert cli(*args).code == 0, (login, cli(*args).err)
    for login in logins:
        result = cli("user", "passwd", login, DUBAN_NEW_PASSWORD=PASSWORD)
        assert result.code == 0, (login, result.err)
    return project


def test_the_matrix_holds_through_every_door(installation, cli):
    from engine.app.http.app import create_app

    cases = [("admin", "any", "admin")] + [(role, scope, login) for role, scopes in ACTORS.items()
                                           for scope, (login, _, _) in scopes.items()]
    wrong: list[str] = []
    checked = 0
    with serving(create_app(site_for(installation / "config.toml", at=NOW))) as base:
        for role, scope, login in cases:
            doors = Doors(base, cli, login)
            try:
                for action, ways in DOORS.items():
                    expected = _allowed(role, scope, action)
                    for door, call, forbidden in ways:
                        answer = call(doors)
                        checked += 1
                        if forbidden(answer, scope) == expected or answer.status >= 500:
                            wrong.append(f"{role}/{scope} {action} via {door}: expected "
                                         f"{'allowed' if expected else 'forbidden'}, got {answer.status} "
                                         f"{answer.text[:120]!r}")
            finally:
                doors.close()
    assert not wrong, "\n".join(wrong)
    assert checked == len(cases) * sum(len(w) for w in DOORS.values())
