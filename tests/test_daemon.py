"""The daemon as a real process: ``duban --config … run`` in a subprocess, on SQLite and PostgreSQL.

Data is prepared with the CLI (``duban init``, ``duban ledger import`` of a ledger whose deadlines
passed weeks ago, imported "two weeks ago", so every issue has an overdue reminder due now), every
recipient is configured to a webhook channel pointing at a loopback receiver that counts
``Idempotency-Key`` headers, and a routing rule marks everything urgent so quiet hours do not hold
messages back whatever the hour the tests run at. Intervals are a second or two (``[daemon]``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import run_cli
from tests.peers import KeyCounter, LoopbackHTTP, free_port

DUBAN = [sys.executable, "-c", "from engine.app.cli.main import entry; entry()"]
FAST = {"sweep_every": 2, "deliver_every": 1, "leader_retry_seconds": 1, "stop_timeout": 8, "listen": ""}


# -- preparing a project ----------------------------------------------------------------------


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON scalars and arrays are valid TOML values


def prepare(project: Path, *, url: str, hook: str, issues: int = 40, daemon: dict[str, Any] | None = None) -> Path:
    """Config, routing and a ledger with ``issues`` overdue issues, imported; returns config.toml."""
    today = dt.date.today()
    departments = [f"科室{i}" for i in range(1, issues + 1)]
    leaders = [f"领导{i}" for i in range(7)]
    rows = ["序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"]
    for i in range(1, issues + 1):
        deadline = today - dt.timedelta(days=40 + i % 20)
        rows.append(f"{i},方面甲,类别乙,问题{i},措施{i},{leaders[i % 7]},{departments[i - 1]},{deadline},整改中")
    (project / "ledger.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (project / "workflows" / "routing" / "zz-tests-urgent.yaml").write_text(
        "routes:\n  - name: tests-everything-urgent\n    urgent: true\n", encoding="utf-8")
    people = [*leaders, *departments, "第一责任人", "派驻纪检监察组", "分管副局长", "办公室", "财务室", "党组书记",
              "机关党支部", "admin"]
    lines = ["[database]", f"url = {_toml(url)}", "[workflows]", 'paths = ["workflows"]',
             "[channels.hook]", 'kind = "webhook"', f"url = {_toml(hook)}", "timeout = 10", "[daemon]"]
    lines += [f"{k} = {_toml(v)}" for k, v in {**FAST, **(daemon or {})}.items()]
    for person in people:
        lines += [f'[recipients."{person}"]', f"hook = {_toml(person)}"]
    config = project / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert (r := run_cli("--config", config, "init")).code == 0, r.err
    r = run_cli("--config", config, "ledger", "import", project / "ledger.csv", "--ledger", "t",
                "--feedback-date", str(today - dt.timedelta(days=120)), "--at", str(today - dt.timedelta(days=14)))
    assert r.code == 0, r.err
    return config


def sqlite_url(project: Path) -> str:
    return f"sqlite:///{project / 'duban.db'}"


def hook_messages(url: str) -> dict[str, str]:
    """key -> status of every outbox message for the webhook channel."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT key, status FROM outbox WHERE channel = 'hook'")).all())
    finally:
        engine.dispose()


def wait_until(check: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def all_sent(url: str, at_least: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        messages = hook_messages(url)
        return len(messages) >= at_least and all(s == "sent" for s in messages.values())

    return check


# -- the process ------------------------------------------------------------------------------


class DaemonProc:
    """``duban run`` in a subprocess, its output in a file, its HTTP port known."""

    def __init__(self, config: Path, name: str = "d", env: dict[str, str] | None = None):
        # Each daemon reads a copy of config.toml with its own listen port (beside it, so relative
        # paths stay the same); a SIGHUP test edits ``self.config``.
        self.port = free_port()
        lines = [ln for ln in config.read_text(encoding="utf-8").splitlines() if not ln.startswith("listen =")]
        lines.insert(lines.index("[daemon]") + 1, f'listen = "127.0.0.1:{self.port}"')
        self.config = config.parent / f"{name}.toml"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.log = config.parent / f"{name}.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*DUBAN, "--config", str(self.config), "run"], stdout=out,
                                         stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, needle: str, timeout: float = 20) -> str:
        def found() -> str | None:
            hits = [ln for ln in self.output().splitlines() if needle in ln]
            if not hits and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode} before {needle!r}:\n{self.output()}")
            return hits[0] if hits else None

        return wait_until(found, timeout, f"{needle!r} in {self.log.name}")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def health(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/healthz")
        return status, json.loads(body)

    def metric(self, name: str) -> float | None:
        """A sample's value, by its full name with labels as exported (``x_total{status="sent"}``)."""
        for line in self.get("/metrics")[1].decode().splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == name:
                return float(value)
        return None

    def started(self, timeout: float = 20) -> DaemonProc:
        self.wait_log("event=started", timeout)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> DaemonProc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


class NotifySocket:
    """A stand-in for systemd's notify socket: collects what the daemon sends."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.received: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.received.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def assignments(self) -> list[str]:
        return [line for datagram in self.received for line in datagram.splitlines()]


# -- SQLite -----------------------------------------------------------------------------------


def test_sqlite_daemon_serves_delivers_and_stops_on_sigterm(project, tmp_path):
    receiver = KeyCounter(delay=0.3)  # slow enough that a delivery is in flight when SIGTERM comes
    with LoopbackHTTP(receiver) as server:
        url = sqlite_url(project)
        config = prepare(project, url=url, hook=server.url())
        notify = NotifySocket(tmp_path / "notify.sock")
        env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
        try:
            with DaemonProc(config, env=env) as daemon:
                daemon.started().wait_log("event=sweep ")
                status, body = daemon.health()
                assert status == 200, body
                assert body["status"] == "ok" and body["database"] and body["scheduler"]
                assert body["leader"] is True and body["role"] == "sole"
                assert body["last_sweep_age_seconds"] is not None
                metrics = daemon.get("/metrics")[1].decode()
                assert "duban_sweeps_total" in metrics and "duban_sweep_duration_seconds_bucket" in metrics
                assert daemon.metric("duban_sweeps_total") >= 1
                assert daemon.metric("duban_reminders_written_total") >= 40
                assert 'duban_outbox_depth{status="pending"}' in metrics
                # the per-unit gauges and build info come from the daemon's own wiring (issue #23)
                assert re.search(r'^duban_issues_overdue\{unit="[^"]*"\} \d', metrics, re.M), metrics
                assert re.search(r'^duban_issues_awaiting_signoff\{unit="[^"]*"\} 0\.0', metrics, re.M)
                assert 'duban_build_info{database="sqlite"' in metrics
                assert daemon.metric("duban_leader") == 1
                assert daemon.get("/nowhere")[0] == 404
                wait_until(lambda: len(server.seen) >= 3, 20, "deliveries under way")
                started = time.monotonic()
                assert daemon.stop(signal.SIGTERM, timeout=10) == 0
                assert time.monotonic() - started < 10
                out = daemon.output()
        finally:
            notify.close()
    assert "event=stopping signal=SIGTERM" in out and "event=stopped clean=true" in out, out
    messages = hook_messages(url)
    sent = {key for key, status in messages.items() if status == "sent"}
    # The message in hand when SIGTERM came was finished and recorded: what the receiver got is
    # exactly what the outbox says was sent; the rest waits, unclaimed, for the next start.
    assert sent == set(receiver.keys), (sent ^ set(receiver.keys))
    assert 0 < len(sent) < len(messages)
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE lease_owner IS NOT NULL")).scalar() == 0
    engine.dispose()
    said = notify.assignments()
    assert "READY=1" in said and "STOPPING=1" in said and "WATCHDOG=1" in said, said
    assert said.index("READY=1") < said.index("STOPPING=1")
    assert any(a.startswith("STATUS=running as sole") for a in said), said


def test_sighup_with_a_broken_workflow_keeps_the_running_version(project):
    with LoopbackHTTP(KeyCounter()) as server:
        config = prepare(project, url=sqlite_url(project), hook=server.url(), issues=3)
        with DaemonProc(config) as daemon:
            daemon.started()
            workflow = project / "workflows" / "inspection-rectification.yaml"
            good = workflow.read_text(encoding="utf-8")
            bad = good.replace("\ninitial: identified\n", "\ninitial: nowhere\n")
            line = bad.splitlines().index("initial: nowhere") + 1
            workflow.write_text(bad, encoding="utf-8")
            daemon.proc.send_signal(signal.SIGHUP)
            failed = daemon.wait_log("event=reload_failed")
            assert f"inspection-rectification.yaml:{line}:10: unknown initial state 'nowhere'" in failed, failed
            assert failed.startswith("ts=") and "level=error" in failed
            assert daemon.health()[0] == 200 and daemon.proc.poll() is None
            sweeps = daemon.metric("duban_sweeps_total")
            wait_until(lambda: daemon.metric("duban_sweeps_total") > sweeps, 10, "a sweep after the failed reload")

            # A good file (and a changed interval) is taken on the next SIGHUP.
            workflow.write_text(good, encoding="utf-8")
            own = daemon.config
            own.write_text(own.read_text(encoding="utf-8").replace("sweep_every = 2", "sweep_every = 3"),
                           encoding="utf-8")
            daemon.proc.send_signal(signal.SIGHUP)
            assert "workflows=1" in daemon.wait_log("event=reloaded")
            assert daemon.metric('duban_reloads_total{result="failed"}') == 1
            assert daemon.metric('duban_reloads_total{result="ok"}') == 1
            assert daemon.stop() == 0


def test_sighup_with_a_broken_template_keeps_the_running_version(project):
    with LoopbackHTTP(KeyCounter()) as server:
        config = prepare(project, url=sqlite_url(project), hook=server.url(), issues=3)
        templates = project / "templates"
        templates.mkdir()
        with DaemonProc(config) as daemon:
            daemon.started()
            own = daemon.config
            own.write_text(own.read_text(encoding="utf-8") + f"[notifications]\ntemplates = {_toml(str(templates))}\n",
                           encoding="utf-8")
            for n, broken in enumerate(("{% if %}", "{{ no_such_variable }}"), 1):
                (templates / "subject.txt.j2").write_text(broken, encoding="utf-8")
                daemon.proc.send_signal(signal.SIGHUP)
                wait_until(lambda n=n: daemon.output().count("event=reload_failed") >= n, 20, f"reload {n} refused")
                failed = [ln for ln in daemon.output().splitlines() if "event=reload_failed" in ln][-1]
                assert "subject.txt.j2" in failed, failed
            assert daemon.health()[0] == 200 and daemon.proc.poll() is None
            assert "event=reloaded" not in daemon.output()
            sweeps = daemon.metric("duban_sweeps_total")
            wait_until(lambda: daemon.metric("duban_sweeps_total") > sweeps, 10, "sweeps go on with the old templates")
            assert daemon.stop() == 0


def test_a_second_daemon_on_the_same_sqlite_file_is_refused(project):
    with LoopbackHTTP(KeyCounter()) as server:
        config = prepare(project, url=sqlite_url(project), hook=server.url(), issues=3)
        with DaemonProc(config, name="first") as first:
            first.started()
            second = subprocess.run([*DUBAN, "--config", str(config), "run"], capture_output=True, text=True,
                                    timeout=30)
            assert second.returncode == 2, second
            assert "another duban daemon is already running on this SQLite database" in second.stderr
            assert f"pid {first.proc.pid}" in second.stderr and "duban.db.daemon.lock" in second.stderr
            assert first.health()[0] == 200
            assert first.stop() == 0


# sends on their way at once per channel in the kill tests: the most one kill may cause to be re-sent
IN_FLIGHT = 3


def test_kill_9_at_any_moment_loses_nothing(project):
    """20 daemons killed at random moments, then one left to finish: every message arrives."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    receiver = KeyCounter(delay=0.1)
    with LoopbackHTTP(receiver) as server:
        url = sqlite_url(project)
        settings = {"sweep_every": 1, "deliver_every": 0.5, "lease_seconds": 2, "delivery_batch": 5,
                    "delivery_in_flight": IN_FLIGHT}
        config = prepare(project, url=url, hook=server.url(), daemon=settings)
        for round_ in range(20):
            with DaemonProc(config, name=f"run{round_}") as daemon:
                time.sleep(rng.uniform(0.4, 2.5))
                assert daemon.proc.poll() is None, daemon.output()
                daemon.proc.send_signal(signal.SIGKILL)
                daemon.proc.wait(10)
        with DaemonProc(config, name="final") as daemon:
            daemon.started()
            wait_until(all_sent(url, 40), 90, "every message sent")
            assert daemon.stop() == 0
    messages = hook_messages(url)
    received = set(receiver.keys)
    assert received == set(messages), f"seed {seed}: lost {set(messages) - received}, unknown {received - set(messages)}"
    engine = create_engine(url)
    with engine.connect() as conn:
        unrouted = conn.execute(text("SELECT count(*) FROM reminders WHERE routed_at IS NULL")).scalar()
        subjects = conn.execute(text("SELECT count(DISTINCT subject) FROM reminders WHERE issue_id IS NOT NULL")).scalar()
        # The same reminder never reaches the same person in two different messages.
        doubled = conn.execute(text(
            "SELECT count(*) FROM (SELECT rm.reminder_id, o.recipient FROM reminder_messages rm "
            "JOIN outbox o ON o.id = rm.message_id WHERE o.channel = 'hook' "
            "GROUP BY rm.reminder_id, o.recipient HAVING count(*) > 1) AS d")).scalar()
    engine.dispose()
    assert unrouted == 0 and subjects == 40 and doubled == 0, (seed, unrouted, subjects, doubled)
    # Duplicates are allowed only as the same key again (a send cut off before it was recorded):
    # never more than IN_FLIGHT sends are out and unrecorded (on threads, or made in turn and held
    # until the lane is full), so at most those per kill (one hook channel).
    resent = sum(n - 1 for n in receiver.duplicates.values())
    assert resent <= 20 * IN_FLIGHT, f"seed {seed}: {resent} re-sends after the receiver's 200, for 20 kills"
    print(f"seed {seed}: {len(messages)} messages, {sum(receiver.keys.values())} deliveries, "
          f"{len(receiver.duplicates)} resent under the same key")


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("count", [2, 3])
def test_several_daemons_on_postgres_deliver_each_message_once(project, pg_url, count):
    receiver = KeyCounter(delay=0.05)
    with LoopbackHTTP(receiver) as server:
        config = prepare(project, url=pg_url, hook=server.url(), issues=120, daemon={"delivery_batch": 5})
        daemons = [DaemonProc(config, name=f"pg{i}") for i in range(count)]
        try:
            for d in daemons:
                d.started()
            wait_until(all_sent(pg_url, 120), 60, "every message sent")
            healths = [d.health() for d in daemons]
            assert all(status == 200 for status, _ in healths), healths
            assert sorted(body["role"] for _, body in healths) == ["follower"] * (count - 1) + ["leader"]
            sweeps = [d.metric("duban_sweeps_total") for d in daemons]
            assert sum(1 for s in sweeps if s) == 1, sweeps  # only the leader sweeps
            for d in daemons:
                assert d.stop() == 0
        finally:
            for d in daemons:
                d.kill()
    assert receiver.duplicates == {}
    assert set(receiver.keys) == set(hook_messages(pg_url))
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        workers = conn.execute(text("SELECT count(DISTINCT worker) FROM delivery_attempts")).scalar()
    engine.dispose()
    assert workers >= 2, "every daemon delivers, not only the leader"


@pytest.mark.postgres
def test_three_daemons_on_postgres_share_one_app_token_and_send_each_notice_once(project, pg_url):
    import threading
    from collections import Counter

    from tests.app_servers import WeComApp

    wecom = WeComApp()
    # Sends wait until the three daemons hold leases: the first one up, otherwise, may send all 30
    # before the others have started, and "several daemons, one token" would be left to chance.
    gate = threading.Event()

    def gated(seen):
        if seen.path == "/cgi-bin/message/send":
            gate.wait(60)
        return wecom(seen)

    with LoopbackHTTP(KeyCounter()) as server, LoopbackHTTP(gated) as wx:
        config = prepare(project, url=pg_url, hook=server.url(), issues=30, daemon={"delivery_batch": 3})
        config.write_text(config.read_text(encoding="utf-8") + "\n".join([
            "[channels.wx]", 'kind = "wecom_app"', f'base_url = "{wx.url("")}"', f'corp_id = "{WeComApp.corp_id}"',
            f"agent_id = {WeComApp.agent_id}", 'corp_secret_env = "WX_SECRET"', ""]), encoding="utf-8")
        with db_connection(pg_url) as conn:  # the accounts the import made get a WeCom id each
            names = [n for (n,) in conn.execute(text("SELECT name FROM users WHERE name <> 'admin'"))]
        csv_rows = ["name,wecom,roles", *(f"{n},id-{i},department" for i, n in enumerate(names))]
        (project / "ids.csv").write_text("\n".join(csv_rows) + "\n", encoding="utf-8")
        assert (r := run_cli("--config", config, "user", "import", project / "ids.csv", "--update")).code == 0, r.err
        wecom.users = {f"id-{i}" for i in range(len(names))}
        daemons = [DaemonProc(config, name=f"pg{i}", env={"WX_SECRET": wecom.secret}) for i in range(3)]
        try:
            for d in daemons:
                d.started()

            def leased_by_several() -> bool:
                with db_connection(pg_url) as conn:
                    # an owner is a batch's, "host:pid#random": the daemon is the part before '#'
                    return (conn.execute(text("SELECT count(DISTINCT split_part(lease_owner, '#', 1)) FROM outbox "
                                              "WHERE channel = 'wx' AND status = 'pending' AND lease_owner IS NOT NULL"))
                            .scalar() or 0) >= 2

            wait_until(leased_by_several, 60, "work notices leased by two daemons or more")
            gate.set()

            def all_notices_sent() -> bool:
                with db_connection(pg_url) as conn:
                    statuses = [s for (s,) in conn.execute(text("SELECT status FROM outbox WHERE channel = 'wx'"))]
                return len(statuses) >= len(names) and all(s == "sent" for s in statuses)

            wait_until(all_notices_sent, 60, "every work notice sent")
            for d in daemons:
                assert d.stop() == 0
        finally:
            gate.set()
            for d in daemons:
                d.kill()
    assert wecom.problems == [] and wecom.tokens_issued == 1, (wecom.tokens_issued, wecom.problems)
    per_person = Counter(n["touser"] for n in wecom.notices)
    assert set(per_person) == wecom.users and set(per_person.values()) == {1}
    with db_connection(pg_url) as conn:
        workers = conn.execute(text(
            "SELECT count(DISTINCT a.worker) FROM delivery_attempts a JOIN outbox o ON o.id = a.message_id "
            "WHERE o.channel = 'wx'")).scalar()
        detail = conn.execute(text(
            "SELECT a.worker, a.status, count(*) FROM delivery_attempts a JOIN outbox o ON o.id = a.message_id "
            "WHERE o.channel = 'wx' GROUP BY 1, 2")).all()
    assert workers >= 2, ("the notices went out from several daemons, on one token", detail)


def db_connection(url: str):
    """A short-lived connection to the test database (closed with the block)."""
    import contextlib

    @contextlib.contextmanager
    def connected():
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    return connected()


@pytest.mark.postgres
def test_a_follower_takes_over_when_the_leader_is_killed(project, pg_url):
    with LoopbackHTTP(KeyCounter()) as server:
        config = prepare(project, url=pg_url, hook=server.url(), issues=3)
        daemons = [DaemonProc(config, name=f"pg{i}") for i in range(2)]
        try:
            for d in daemons:
                d.started()
            leaders = [d for d in daemons if d.health()[1]["leader"]]
            assert len(leaders) == 1
            leader = leaders[0]
            follower = next(d for d in daemons if d is not leader)
            assert follower.health()[1]["role"] == "follower" and follower.metric("duban_leader") == 0
            assert not follower.metric("duban_sweeps_total")
            leader.proc.send_signal(signal.SIGKILL)
            leader.proc.wait(10)
            killed = time.monotonic()
            wait_until(lambda: follower.health()[1]["leader"], 30, "the follower to lead")
            wait_until(lambda: follower.metric("duban_sweeps_total"), 30 - (time.monotonic() - killed),
                       "a sweep by the new leader")
            assert time.monotonic() - killed < 30
            assert follower.metric("duban_leader") == 1
            assert "event=leader_acquired" in follower.output()
            status, body = follower.health()
            assert status == 200 and body["role"] == "leader", body
            assert follower.stop() == 0
        finally:
            for d in daemons:
                d.kill()


def test_sigterm_in_the_middle_of_delivery_re_sends_nothing(project):
    receiver = KeyCounter(delay=0.1)
    with LoopbackHTTP(receiver) as server:
        url = sqlite_url(project)
        settings = {"sweep_every": 1, "deliver_every": 0.5, "lease_seconds": 30, "delivery_batch": 5}
        config = prepare(project, url=url, hook=server.url(), daemon=settings)
        for round_ in range(3):
            with DaemonProc(config, name=f"term{round_}") as daemon:
                daemon.started()
                time.sleep(1.5)  # mid-delivery: 40 messages at 0.1 s each
                assert daemon.stop() == 0  # SIGTERM: the message in hand is finished and recorded
        with DaemonProc(config, name="final") as daemon:
            daemon.started()
            wait_until(all_sent(url, 40), 90, "every message sent")
            assert daemon.stop() == 0
    assert set(receiver.keys) == set(hook_messages(url))
    assert receiver.duplicates == {}, f"re-sent after SIGTERM: {receiver.duplicates}"


@pytest.mark.postgres
def test_three_daemons_on_postgres_with_the_leader_killed_four_times(project, pg_url):
    """0 lost, 0 unkeyed duplicates, and at most the sends in flight re-sent after a 200 per kill."""
    receiver = KeyCounter(delay=0.05)
    with LoopbackHTTP(receiver) as server:
        settings = {"sweep_every": 1, "deliver_every": 0.5, "lease_seconds": 3, "delivery_batch": 5,
                    "leader_retry_seconds": 1, "delivery_in_flight": IN_FLIGHT}
        config = prepare(project, url=pg_url, hook=server.url(), daemon=settings)
        daemons = [DaemonProc(config, name=f"pg{i}") for i in range(3)]
        kills = 0
        try:
            for d in daemons:
                d.started()
            for round_ in range(4):
                wait_until(lambda: any(d.proc.poll() is None and d.health()[1].get("leader") for d in daemons), 30,
                           "a leader")
                leader = next(d for d in daemons if d.proc.poll() is None and d.health()[1].get("leader"))
                time.sleep(0.7)  # let it claim and send
                leader.proc.send_signal(signal.SIGKILL)
                leader.proc.wait(10)
                kills += 1
                daemons.remove(leader)
                daemons.append(DaemonProc(config, name=f"pg-restart{round_}").started())
            wait_until(all_sent(pg_url, 40), 90, "every message sent")
            for d in daemons:
                assert d.stop() == 0
        finally:
            for d in daemons:
                d.kill()
    messages = hook_messages(pg_url)
    assert set(receiver.keys) == set(messages)  # nothing lost, nothing unknown
    resent = sum(n - 1 for n in receiver.duplicates.values())
    assert resent <= kills * IN_FLIGHT, f"{resent} re-sends after the receiver's 200, for {kills} kills"


def test_pages_answer_while_an_import_holds_the_write_lock(project, tmp_path):
    """SQLite reads begin DEFERRED: /healthz and a board page answer within 1 s while a
    100,000-row import holds the write transaction for seconds."""
    import sqlite3

    with LoopbackHTTP(KeyCounter()) as hook:
        # a sweep waits for the import's lock like any writer; with a minute between sweeps (the
        # shipped default) a few seconds of waiting do not make the leader's sweep stale
        config = prepare(project, url=sqlite_url(project), hook=hook.url(), issues=5, daemon={"sweep_every": 60})
        rows = ["序号,方面,问题类别,具体问题,整改措施,责任领导,责任科室,整改时限,整改状态"]
        rows += [f"{i},方面{i % 7},类别{i % 13},问题{i},措施{i},领导{i % 7},科室{i % 11},2026-12-31,整改中"
                 for i in range(1, 100_001)]
        big = tmp_path / "big.csv"
        big.write_text("\n".join(rows) + "\n", encoding="utf-8")
        with DaemonProc(config).started() as daemon:
            importer = subprocess.Popen([*DUBAN, "--config", str(config), "ledger", "import", str(big),
                                         "--ledger", "big"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            probe = sqlite3.connect(project / "duban.db", timeout=0, isolation_level=None)
            answers: list[tuple[str, int, float]] = []
            locked_polls = 0
            try:
                while importer.poll() is None:
                    try:  # is the import holding the write lock right now?
                        probe.execute("BEGIN IMMEDIATE")
                        probe.execute("ROLLBACK")
                        held = False
                    except sqlite3.OperationalError:
                        held = True
                    for path in ("/healthz", "/?ledger=t"):
                        started = time.monotonic()
                        status, _ = daemon.get(path)
                        answers.append((path, status, time.monotonic() - started))
                        locked_polls += held
                    time.sleep(0.05)
            finally:
                probe.close()
            assert importer.wait(120) == 0, importer.stderr.read().decode() if importer.stderr else ""
        assert locked_polls >= 10, f"only {locked_polls} polls while the import held the lock"
        slow = [a for a in answers if a[1] != 200 or a[2] > 1.0]
        assert slow == [], (slow[:5], daemon.get("/healthz"))


def test_no_secret_reaches_a_log_a_page_or_a_check(project):
    """A robot-style URL token, a signing secret and the board token, at log level debug: none of
    them appears in the daemon's log, /metrics, /healthz or `config check`."""
    secrets_ = {"DUBAN_HOOK_SECRET": "SIGNSECRET456", "DUBAN_BOARD_TOKEN": "BOARDSECRET789"}
    with LoopbackHTTP(KeyCounter()) as server:
        hook = server.url() + "?access_token=URLSECRET123"
        config = prepare(project, url=sqlite_url(project), hook=hook, issues=3, daemon={"log_level": "debug"})
        text_ = config.read_text(encoding="utf-8").replace("timeout = 10", 'timeout = 10\nsecret_env = "DUBAN_HOOK_SECRET"')
        config.write_text(text_, encoding="utf-8")
        with DaemonProc(config, env=secrets_) as daemon:
            daemon.started()
            wait_until(all_sent(sqlite_url(project), 3), 30, "messages sent")
            seen = [daemon.output(), daemon.get("/metrics")[1].decode(), json.dumps(daemon.health()[1]),
                    daemon.get("/?token=BOARDSECRET789")[1].decode("utf-8", "replace")[:0]]
            assert daemon.stop() == 0
            seen.append(daemon.output())
    check = subprocess.run([*DUBAN, "--config", str(config), "config", "check"], capture_output=True, text=True,
                           env={**os.environ, **secrets_}, timeout=60)
    seen += [check.stdout, check.stderr]
    everything = "\n".join(seen)
    assert "level=debug" in everything  # the log really was at debug
    for secret in ("URLSECRET123", "SIGNSECRET456", "BOARDSECRET789"):
        assert secret not in everything, secret
