"""Sign-in that cannot be turned against its users (issue #18): throttling per name and address
instead of a lock, one refusal message, argon2 off the event loop, server-side sessions, API tokens
that expire and are revoked, links only for the people reminded and never reaching far ahead.

The storm runs against the real daemon (``duban run`` in a subprocess) from several loopback
source addresses; the rest against the real application on uvicorn with a fixed clock, the CLI
in-process, and the domain functions on SQLite and the real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from engine.accounts.credentials import (
    FREE_ATTEMPTS,
    FREE_PER_ADDRESS,
    MAX_DELAY,
    REFUSED,
    begin_login,
    delay_after,
    finish_login,
    session_user,
)
from engine.accounts.passwords import verify_password
from engine.accounts.users import NewUser, add_user
from engine.store import db

from .conftest import ROOT
from .test_daemon import DaemonProc, wait_until
from .test_workspace import _csrf, workspace

EXAMPLE = ROOT / "examples" / "2026-区审计局.csv"
T0 = "2026-12-01T09:00"
NOW = "2026-12-24T10:00"
SECRETARY, SECRETARY_PASSWORD = "党组书记", "dzsj-pass-2026"
REVIEWER, REVIEWER_PASSWORD = "纪检组长", "jjzz-pass-2026"
UTC = dt.UTC


@pytest.fixture
def accounts(project, cli):
    """The example ledger imported (党组书记 and the departments get accounts), passwords for
    党组书记 and a reviewer, and the administrator ``admin`` (made by ``duban init``)."""
    assert cli("init", "--at", T0).code == 0
    assert cli("ledger", "import", EXAMPLE, "--at", T0).code == 0
    assert cli("user", "passwd", SECRETARY, DUBAN_NEW_PASSWORD=SECRETARY_PASSWORD).code == 0
    assert cli("user", "add", REVIEWER, "--role", "reviewer", DUBAN_NEW_PASSWORD=REVIEWER_PASSWORD).code == 0
    return project


def _flash(html: str) -> str:
    found = re.search(r'<div class="flash error"[^>]*>([^<]*)</div>', html)
    assert found, html[:800]
    return found.group(1)


def _login(web: httpx.Client, name: str, password: str) -> httpx.Response:
    token = _csrf(web.get("/ws/login").text)
    return web.post("/ws/login", data={"csrf": token, "name": name, "password": password})


def _client(base: str, source: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from ``source`` (any 127.x address is this machine)."""
    return httpx.Client(base_url=base, timeout=60, transport=httpx.HTTPTransport(local_address=source))


# -- the storm, against the real daemon -----------------------------------------------------------


def test_a_storm_of_wrong_logins_neither_stalls_healthz_nor_keeps_the_user_out(accounts):
    config = accounts / "config.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + "[daemon]\nsweep_every = 3600\ndeliver_every = 3600\nstop_timeout = 5\n", encoding="utf-8")
    sources = [f"127.0.0.{10 + i}" for i in range(6)]
    names = [SECRETARY, REVIEWER, "办公室", "财务室", "张三", "李四", "王五", "赵六"]  # 8 per source: 48
    with DaemonProc(config, "storm") as daemon:
        daemon.started()
        base = f"http://127.0.0.1:{daemon.port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        latencies: list[float] = []
        storm_over = threading.Event()

        def probe() -> None:
            with httpx.Client(base_url=base, timeout=30) as web:
                while not storm_over.is_set():
                    started = time.perf_counter()
                    assert web.get("/healthz").status_code == 200
                    latencies.append(time.perf_counter() - started)

        # each attacker has its connection and CSRF token first: what is measured is the logins
        attackers = [_client(base, sources[i % 6]) for i in range(48)]
        tokens = [_csrf(web.get("/ws/login").text) for web in attackers]
        ready = threading.Barrier(48)

        def attacker(i: int) -> tuple[int, str]:
            ready.wait(timeout=60)
            answer = attackers[i].post("/ws/login", data={"csrf": tokens[i], "name": names[i // 6],
                                                          "password": f"guess-{i}"})
            return answer.status_code, _flash(answer.text)

        prober = threading.Thread(target=probe)
        prober.start()
        wait_until(lambda: len(latencies) >= 5, 30, "the first /healthz answers")
        before = len(latencies)
        began = time.perf_counter()
        try:
            with ThreadPoolExecutor(48) as pool:
                answers = list(pool.map(attacker, range(48)))
        finally:
            took = time.perf_counter() - began
            storm_over.set()
            prober.join(60)
            for web in attackers:
                web.close()
        during = sorted(latencies[before:])
        p99 = during[math.ceil(0.99 * len(during)) - 1]
        print(f"\n/healthz during 48 concurrent wrong logins ({took:.1f} s): {len(during)} probes, "
              f"p50 {1000 * during[len(during) // 2]:.0f} ms, p99 {1000 * p99:.0f} ms, max {1000 * during[-1]:.0f} ms")
        assert answers == [(401, REFUSED)] * 48
        assert len(during) >= 10, f"only {len(during)} probes in {took:.1f} s"
        assert p99 < 0.2, f"/healthz p99 {1000 * p99:.0f} ms while 48 logins were checked"
        # the real user, from their own address, signs in right after: nobody locked them out
        with _client(base, "127.0.0.2") as web:
            signed = _login(web, SECRETARY, SECRETARY_PASSWORD)
            assert signed.status_code == 303, _flash(signed.text)
            assert "我的待办" in web.get("/ws/").text


# -- throttling, the domain functions on both databases -------------------------------------------


def _try(sessions, name: str, password: str, address: str, at: dt.datetime):
    """One sign-in as the HTTP layer does it: (attempt, (user, session id) or None)."""
    with db.transaction(sessions) as s:
        attempt = begin_login(s, name, address, at)
    ok = attempt.allowed and verify_password(attempt.password_hash, password)
    with db.transaction(sessions) as s:
        return attempt, (finish_login(s, attempt, ok, at, 12) if ok else None)


@pytest.fixture
def member(store):
    _, sessions, _ = store
    with db.transaction(sessions) as s:
        add_user(s, NewUser(SECRETARY, roles=("leader",)), dt.datetime(2026, 12, 1, tzinfo=UTC),
                 password=SECRETARY_PASSWORD)
    return sessions


def test_waits_grow_a_throttled_attempt_is_not_checked_and_success_starts_afresh(member):
    sessions, attacker = member, "203.0.113.7"
    t = dt.datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    for _ in range(FREE_ATTEMPTS):
        attempt, done = _try(sessions, SECRETARY, "guess", attacker, t)
        assert attempt.allowed and done is None
    waits = []
    for _ in range(4):
        # inside the wait even the right password is refused, and it is never looked at
        attempt, done = _try(sessions, SECRETARY, SECRETARY_PASSWORD, attacker, t)
        assert (attempt.allowed, attempt.password_hash, done) == (False, None, None)
        wait = 0.0
        while not (attempt := _try(sessions, SECRETARY, "guess", attacker, t + dt.timedelta(seconds=wait)))[0].allowed:
            wait += 0.25
        waits.append(wait)
        t += dt.timedelta(seconds=wait)
    assert waits == [1, 2, 4, 8]
    assert delay_after(FREE_ATTEMPTS + 40, FREE_ATTEMPTS) == MAX_DELAY == dt.timedelta(minutes=15)
    # meanwhile the real user, at their own address, is not slowed at all
    _, done = _try(sessions, SECRETARY, SECRETARY_PASSWORD, "198.51.100.20", t)
    assert done is not None
    # the wait over, the right password signs in and the key starts again from nothing
    t += dt.timedelta(seconds=16)
    _, done = _try(sessions, SECRETARY, SECRETARY_PASSWORD, attacker, t)
    assert done is not None and done[0].name == SECRETARY
    for _ in range(FREE_ATTEMPTS):
        assert _try(sessions, SECRETARY, "guess", attacker, t)[0].allowed
    assert not _try(sessions, SECRETARY, "guess", attacker, t)[0].allowed
    # a day's quiet forgets it
    assert _try(sessions, SECRETARY, "guess", attacker, t + dt.timedelta(days=1, seconds=1))[0].allowed


def test_one_address_trying_many_names_is_slowed_too(member):
    sessions, t = member, dt.datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    for i in range(FREE_PER_ADDRESS - 1):
        assert _try(sessions, f"名字{i}", "guess", "203.0.113.9", t)[0].allowed
    assert _try(sessions, "名字X", "guess", "203.0.113.9", t)[0].allowed  # the last free one
    assert not _try(sessions, SECRETARY, SECRETARY_PASSWORD, "203.0.113.9", t)[0].allowed
    assert _try(sessions, SECRETARY, SECRETARY_PASSWORD, "203.0.113.10", t)[1] is not None


def test_guesses_sent_at_once_are_counted_like_guesses_in_a_row(member):
    """Each attempt is counted before its password is checked, under a row lock: of 20 parallel
    guesses only the free ones get a password check."""
    sessions, t = member, dt.datetime(2026, 12, 24, 2, 0, tzinfo=UTC)

    def guess(_: int) -> bool:
        with db.transaction(sessions) as s:
            return begin_login(s, SECRETARY, "203.0.113.7", t).allowed

    with ThreadPoolExecutor(20) as pool:
        allowed = list(pool.map(guess, range(20)))
    assert allowed.count(True) == FREE_ATTEMPTS


# -- the pages: one message, sessions that end -----------------------------------------------------


def test_every_refusal_reads_the_same(accounts, cli):
    assert cli("user", "add", "停用人员", "--role", "reviewer", DUBAN_NEW_PASSWORD="tyry-pass-2026").code == 0
    assert cli("user", "disable", "停用人员").code == 0
    with workspace(accounts) as base, _client(base) as web:
        seen = {}
        for case, name, password in (("unknown", "无此人", "whatever-1"), ("wrong", REVIEWER, "wrong-password"),
                                     ("disabled", "停用人员", "tyry-pass-2026"), ("empty", "", "x")):
            answer = _login(web, name, password)
            seen[case] = (answer.status_code, _flash(answer.text))
        for _ in range(FREE_ATTEMPTS):
            _login(web, REVIEWER, "wrong-password")
        throttled = _login(web, REVIEWER, REVIEWER_PASSWORD)  # the right password, inside the wait
        seen["throttled"] = (throttled.status_code, _flash(throttled.text))
        assert set(seen.values()) == {(401, REFUSED)}, seen
        assert "锁定" not in throttled.text and "duban_session" not in throttled.headers.get("set-cookie", "")


def test_logging_out_ends_the_session_on_the_server(accounts):
    with workspace(accounts) as base, _client(base) as web:
        assert _login(web, REVIEWER, REVIEWER_PASSWORD).status_code == 303
        home = web.get("/ws/")
        assert home.status_code == 200 and "全部退出" in home.text
        cookie = web.cookies["duban_session"]
        assert web.post("/ws/logout", data={"csrf": _csrf(home.text)},
                        params={"csrf": _csrf(home.text)}).status_code == 303
        with _client(base) as replay:  # the cookie from before the logout, replayed
            replay.cookies.set("duban_session", cookie)
            again = replay.get("/ws/")
            assert again.status_code == 303 and "/ws/login" in again.headers["location"]
    # a session lasts [workspace] session_hours (12) on the server, whatever the browser keeps
    with workspace(accounts) as base, _client(base) as web:
        assert _login(web, REVIEWER, REVIEWER_PASSWORD).status_code == 303
        cookie = web.cookies["duban_session"]
    with workspace(accounts, at="2026-12-24T22:01") as late, _client(late) as replay:
        replay.cookies.set("duban_session", cookie)
        assert replay.get("/ws/").status_code == 303


def test_log_out_everywhere_ends_every_session_token_and_link(accounts, cli):
    token = cli("user", "token", REVIEWER, "--at", NOW).out.strip()
    link = cli("user", "link", "办公室", "--at", NOW).out.strip().rsplit("/w/", 1)[1]
    with workspace(accounts) as base, _client(base) as phone, _client(base) as desk, _client(base) as office:
        assert _login(phone, REVIEWER, REVIEWER_PASSWORD).status_code == 303
        assert _login(desk, REVIEWER, REVIEWER_PASSWORD).status_code == 303
        assert office.get(f"/w/{link}").status_code == 303 and office.get("/ws/").status_code == 200
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200
        home = desk.get("/ws/")
        assert desk.post("/ws/logout", data={"csrf": _csrf(home.text), "everywhere": "1"},
                         params={"csrf": _csrf(home.text)}).status_code == 303
        assert phone.get("/ws/").status_code == 303  # the other device is signed out
        assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert office.get("/ws/").status_code == 200  # another user's session is theirs
    listed = cli("user", "token", "list", REVIEWER, "--json").json
    assert [t["revoked"] for t in listed] == [True]


# -- API tokens ------------------------------------------------------------------------------------


def _me(base: str, token: str) -> int:
    return httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code


def test_tokens_expire_are_listed_and_revoked(accounts, cli):
    made = cli("user", "token", REVIEWER, "--days", "30", "--label", "督办平台对接", "--at", NOW)
    assert made.code == 0, made.err
    short = made.out.strip()
    assert short.startswith("dbn_") and "expires 2027-01-23T10:00:00+08:00" in made.err
    default = cli("user", "token", "new", REVIEWER, "--json", "--at", NOW).json
    assert default["expires"] == "2027-03-24T10:00:00+08:00" and default["user"] == REVIEWER  # 90 days
    other = cli("user", "token", "办公室", "--at", NOW).out.strip()
    listed = cli("user", "token", "list", REVIEWER, "--json", "--at", "2027-01-24T10:00").json
    assert [(t["label"], t["created"], t["expires"], t["revoked"], t["expired"]) for t in listed] == [
        ("督办平台对接", "2026-12-24T10:00:00+08:00", "2027-01-23T10:00:00+08:00", False, True),
        ("", "2026-12-24T10:00:00+08:00", "2027-03-24T10:00:00+08:00", False, False)]
    assert all(short not in str(t) and "sha" not in str(t) for t in listed)  # never the token
    with workspace(accounts, at="2027-01-23T09:59") as base:
        assert _me(base, short) == 200
    with workspace(accounts, at="2027-01-23T10:00") as base:
        assert _me(base, short) == 401 and _me(base, default["token"]) == 200
    # revoke one: that one alone
    revoked = cli("user", "token", "revoke", str(default["id"]))
    assert revoked.code == 0 and "revoked" in revoked.out
    assert cli("user", "token", "revoke", "9999").code == 2
    with workspace(accounts) as base:
        assert (_me(base, default["token"]), _me(base, other)) == (401, 200)
    # user revoke: every token of the user
    fresh = cli("user", "token", "办公室", "--at", NOW).out.strip()
    assert cli("user", "revoke", "办公室").code == 0
    with workspace(accounts) as base:
        assert (_me(base, other), _me(base, fresh)) == (401, 401)
    assert {t["revoked"] for t in cli("user", "token", "list", "办公室", "--json").json} == {True}
    # a new password and a disabled account end them too
    for end in (("user", "passwd", REVIEWER), ("user", "disable", REVIEWER)):
        kept = cli("user", "token", REVIEWER, "--at", NOW).out.strip()
        assert cli(*end, DUBAN_NEW_PASSWORD="new-pass-2026").code == 0
        with workspace(accounts) as base:
            assert _me(base, kept) == 401, end
    assert cli("user", "token", REVIEWER).code == 1  # disabled: no new token either
    assert cli("user", "token", REVIEWER, "--days", "0").code == 2


# -- links -----------------------------------------------------------------------------------------


def test_no_link_for_an_administrator_and_none_reaching_far_ahead(accounts, cli):
    from engine.accounts.links import make_link_token, site_secret, workspace_link
    from engine.accounts.users import get_user
    from engine.app.cli.context import App
    from engine.clock import parse_instant

    refused = cli("user", "link", "admin")
    assert refused.code == 1 and "administrator" in refused.err and "passwd" in refused.err
    app = App(str(accounts / "config.toml"))
    now = parse_instant(NOW, app.config.tz)
    with app.transaction() as s:
        assert workspace_link(s, "admin", now, "http://127.0.0.1") is None
        assert workspace_link(s, "办公室", now, "http://127.0.0.1") is not None
        user = get_user(s, "admin")
        forged = make_link_token(site_secret(s), user.id, user.session_epoch, now)  # signed like a real one
    far = cli("user", "link", "办公室", "--at", "2099-01-01")
    assert far.code == 0 and "later than now" in far.err
    ok = cli("user", "link", "办公室", "--at", NOW)
    with workspace(accounts) as base, _client(base) as web:
        assert web.get(f"/w/{forged}").status_code == 403
        assert web.get("/ws/").status_code == 303  # not signed in
        assert web.get("/w/" + far.out.strip().rsplit("/w/", 1)[1]).status_code == 403
        assert web.get("/w/" + ok.out.strip().rsplit("/w/", 1)[1]).status_code == 303
        assert web.get("/ws/").status_code == 200


# -- the database and the proxy ------------------------------------------------------------------


def test_the_upgrade_gives_old_tokens_an_end(tmp_path):
    from sqlalchemy import text

    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade(engine, "0011")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, name, display_name, unit, email, phone, im, disabled, failed_logins, "
                          "session_epoch, created_at, updated_at) VALUES (1, 'x', '', '', '', '', '{}', 0, 0, 0, "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO user_roles (user_id, role, scope) VALUES (1, 'leader', '')"))
        conn.execute(text("INSERT INTO api_tokens (user_id, label, token_sha256, created_at, revoked) "
                          "VALUES (1, 'old', 'ab', '2026-01-01 00:00:00', 0)"))
    db.upgrade(engine)
    with db.transaction(db.session_factory(engine)) as s:
        from engine.store.accounts import ApiToken, Grant

        expires = s.query(ApiToken).one().expires_at
        assert s.query(Grant).count() == 1  # the users table was left alone
    left = expires - dt.datetime.now(UTC)
    assert dt.timedelta(days=89) < left <= dt.timedelta(days=90)
    engine.dispose()


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted():
    from starlette.requests import Request

    from engine.app.http.auth import client_address
    from engine.config import WorkspaceConfig

    def request(peer: str, forwarded: str | None) -> Request:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return Request({"type": "http", "client": (peer, 5000), "headers": headers, "method": "GET", "path": "/"})

    proxies = ("127.0.0.1",)
    assert client_address(request("127.0.0.1", "1.2.3.4, 203.0.113.5"), proxies) == "203.0.113.5"
    assert client_address(request("127.0.0.1", "203.0.113.5, 127.0.0.1"), proxies) == "203.0.113.5"
    assert client_address(request("198.51.100.1", "203.0.113.5"), proxies) == "198.51.100.1"  # not a proxy of ours
    assert client_address(request("127.0.0.1", "203.0.113.5"), ()) == "127.0.0.1"
    assert client_address(request("127.0.0.1", "nonsense"), proxies) == "127.0.0.1"
    with pytest.raises(ValueError, match="not an IP address"):
        WorkspaceConfig(trusted_proxies=("proxy.example.org",))


def test_a_request_finds_its_session_in_one_statement(member, store):
    """The cookie names a session row by its primary key; the user and their grants come with it.
    An unknown, malformed or expired id is no one."""
    from sqlalchemy import event

    sessions = member
    t = dt.datetime(2026, 12, 24, 2, 0, tzinfo=UTC)
    _, done = _try(sessions, SECRETARY, SECRETARY_PASSWORD, "198.51.100.20", t)
    assert done is not None
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.transaction(sessions) as s:
        before = len(statements)
        user = session_user(s, done[1], t)
        assert user is not None and [g.role for g in user.grants] == ["leader"]
        assert len(statements) - before == 1, statements[before:]
        assert session_user(s, done[1] + "x", t) is None and session_user(s, 42, t) is None
        assert session_user(s, done[1], t + dt.timedelta(hours=12)) is None


def test_the_body_gate_remembers_a_live_token_briefly_and_the_route_still_refuses_a_revoked_one(
        accounts, cli, monkeypatch):
    """A token just found live passes the body gate without a second lookup; the route's own
    lookup is what decides, so a token revoked in between is refused all the same."""
    from engine.app.http import limits

    looked_up: list[str] = []
    real = limits.BodyLimits._lookup

    def counting(self, who, scope):
        looked_up.append(scope["path"])
        return real(self, who, scope)

    monkeypatch.setattr(limits.BodyLimits, "_lookup", counting)
    monkeypatch.setattr(limits, "GATE_SECONDS", 600.0)  # far longer than this test: no clock in play
    token = cli("user", "token", "办公室", "--at", NOW).out.strip()
    listed = cli("issue", "list", "--json").json
    ref = next(i["ref"] for i in listed if "办公室" in str(i.get("department")) and i.get("state") == "in_progress")
    address = f"/api/v1/issues/{ref}/progress"
    bearer = {"Authorization": f"Bearer {token}"}
    with workspace(accounts) as base:
        first = httpx.post(base + address, headers=bearer, json={"note": "已召开专题会"}, timeout=30)
        again = httpx.post(base + address, headers=bearer, json={"note": "已形成纪要"}, timeout=30)
        assert (first.status_code, again.status_code) == (201, 201), (first.text, again.text)
        assert looked_up == [address]  # the second request passed the gate on the first's lookup
        assert cli("user", "revoke", "办公室").code == 0
        revoked = httpx.post(base + address, headers=bearer, json={"note": "不应记录"}, timeout=30)
        assert revoked.status_code == 401 and looked_up == [address]  # refused by the route itself
        stranger = httpx.post(base + address, headers={"Authorization": "Bearer dbn_forged"}, json={"note": "x"},
                              timeout=30)
        assert stranger.status_code == 401 and looked_up == [address, address]  # unknown: looked up
    notes = [h["note"] for h in cli("issue", "show", ref, "--json").json["history"]]
    assert "已形成纪要" in notes and "不应记录" not in notes
