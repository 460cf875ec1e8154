"""The daemon's parts in-process: HTTP routing, event lines, settings, leadership, the systemd unit."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from engine.app.cli.run import JsonFormatter, KeyValueFormatter
from engine.app.daemon import event
from engine.app.leader import AdvisoryLeader, AlreadyRunning, SoleDaemon
from engine.app.service_unit import UnitSpec, example, render
from engine.config import Config, load_config, parse_listen
from engine.errors import ConfigError
from tests.conftest import ROOT, run_cli


def test_listen_addresses():
    assert parse_listen("127.0.0.1:8790") == ("127.0.0.1", 8790)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    for bad in ("8790", "localhost", ":80", "host:http", "127.0.0.1:99999"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def record(name: str = "sweep", message: str = "", **fields) -> logging.LogRecord:
    logger = logging.getLogger("duban.test")
    captured: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = captured.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.propagate = False
    try:
        event(logger, logging.ERROR, name, message, **fields)
    finally:
        logger.removeHandler(handler)
    return captured[0]


def test_event_lines_are_one_line_of_key_value_fields():
    line = KeyValueFormatter().format(record(
        "reload_failed", "kept the running configuration", errors=["a.yaml: invalid", "a.yaml:12:10: unknown"],
        written=3, ok=True, nothing=None, title="整改 \"方案\"\n第二行", path="/tmp/x.yaml"))
    assert "\n" not in line
    assert line.startswith("ts=") and " level=error logger=duban.test event=reload_failed " in line
    assert 'errors=["a.yaml: invalid","a.yaml:12:10: unknown"]' in line.replace(", ", ",")
    assert " written=3 ok=true nothing=null " in line
    assert 'title="整改 \\"方案\\"\\n第二行"' in line and " path=/tmp/x.yaml " in line
    assert line.endswith('msg="kept the running configuration"')
    body = json.loads(JsonFormatter().format(record("sweep", written=2)))
    assert body["event"] == "sweep" and body["written"] == 2 and "msg" not in body


def test_the_daemons_log_carries_events_not_a_librarys_chatter(capsys):
    """At log_level info: a duban event is a line, the workflow library's two lines a step are not."""
    from transitions import Machine

    from engine.app.cli.run import setup_logging
    from engine.config import DaemonConfig

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        setup_logging(DaemonConfig(log_level="info"))
        machine = Machine(states=["identified", "planned"], transitions=[["plan", "identified", "planned"]],
                          initial="identified")
        machine.plan()  # type: ignore[attr-defined]
        event(logging.getLogger("duban.daemon"), logging.INFO, "moved", ref="x/1")
    finally:
        for added in list(root.handlers):
            root.removeHandler(added)
        for old in handlers:
            root.addHandler(old)
        root.setLevel(level)
    out = capsys.readouterr().out
    assert "event=moved" in out and "processing state" not in out and "transitions" not in out, out


def test_daemon_settings_are_checked_with_their_key(tmp_path):
    settings = Config.model_validate({"daemon": {"sweep_every": 5, "listen": ""}}).daemon
    assert settings.sweep_every == 5 and settings.deliver_every == 10 and settings.listen == ""
    path = tmp_path / "config.toml"
    path.write_text('[daemon]\nsweep_every = 0\nlisten = "nowhere"\nlog_format = "xml"\ntypo = 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = "\n".join(caught.value.lines())
    for key in ("daemon.sweep_every", "daemon.listen", "daemon.log_format", "daemon.typo"):
        assert key in text


def test_one_daemon_per_sqlite_file(tmp_path):
    first = SoleDaemon(str(tmp_path / "duban.db"))
    try:
        with pytest.raises(AlreadyRunning) as caught:
            SoleDaemon(str(tmp_path / "duban.db"))
        assert caught.value.exit_code == 2 and "already running" in caught.value.message
        assert first.is_leader and first.role == "sole" and not first.poll()
    finally:
        first.close()
    SoleDaemon(str(tmp_path / "duban.db")).close()  # free again once the first let go


@pytest.mark.postgres
def test_one_leader_per_postgres_database(pg_url):
    a, b = AdvisoryLeader(make_url(pg_url)), AdvisoryLeader(make_url(pg_url))
    try:
        assert a.poll() and a.is_leader and a.role == "leader"
        assert not b.poll() and not b.is_leader and b.role == "follower"
        assert not a.poll()  # still the leader: no change
        a.close()
        assert b.poll() and b.is_leader
    finally:
        a.close()
        b.close()


def test_the_unit_runs_this_duban_with_this_config(tmp_path):
    unit = render(UnitSpec(Path("/srv/my venv/bin/duban"), Path("/etc/duban 2/config.toml"), run_as="duban"))
    assert 'ExecStart="/srv/my venv/bin/duban" --config "/etc/duban 2/config.toml" run' in unit
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=60", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "User=duban", "WantedBy=multi-user.target"):
        assert line in unit.splitlines()
    user = render(UnitSpec(Path("/v/bin/duban"), Path("/c/config.toml"), user=True, run_as="ignored"))
    assert "WantedBy=default.target" in user and "User=" not in user
    assert (ROOT / "packaging" / "duban.service").read_text(encoding="utf-8") == example()


def test_service_install_writes_the_unit_and_prints_the_commands(project, tmp_path):
    config = project / "config.toml"
    result = run_cli("--config", config, "service", "install", "--unit-dir", tmp_path / "units",
                     "--run-as", "duban-absent-account", "--no-create-user")
    assert result.code == 0, result.err
    unit = (tmp_path / "units" / "duban.service").read_text(encoding="utf-8")
    assert "User=duban-absent-account" in unit.splitlines() and "Group=duban-absent-account" in unit.splitlines()
    # a missing account is not created when told not to, and the unit would not start: said so, with the fix
    assert "does not exist" in result.out and "useradd --system" in result.out
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert exec_start.endswith(f" --config {config.resolve()} run")
    assert Path(exec_start.split("=", 1)[1].split(" ")[0]) == Path(sys.executable).parent / "duban"
    assert "systemctl daemon-reload" in result.out and "systemctl enable --now duban.service" in result.out
    result = run_cli("--config", config, "service", "install", "--unit-dir", tmp_path / "user", "--user")
    assert "systemctl --user daemon-reload" in result.out
    assert "WantedBy=default.target" in (tmp_path / "user" / "duban.service").read_text(encoding="utf-8")
    analyze = shutil.which("systemd-analyze")
    if analyze:  # systemd's own check of the unit, where systemd is installed
        check = subprocess.run([analyze, "verify", str(tmp_path / "units" / "duban.service")],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stderr


def test_service_install_creates_the_daemons_account_and_asks_before_writing_under_etc(project, tmp_path):
    """Issue #23: the unit runs as an account of its own (created if missing), and /etc is not written
    without consent — a run with no one at the terminal is refused (exit 1) unless --yes."""
    import grp
    import os
    import pwd

    config = project / "config.toml"
    name = f"dubantest{os.getpid() % 100000}"
    if os.geteuid() != 0:
        result = run_cli("--config", config, "service", "install", "--unit-dir", tmp_path, "--run-as", name)
        assert result.code == 1 and "only root can create it" in result.err and "useradd" in result.err
        return
    try:
        result = run_cli("--config", config, "service", "install", "--unit-dir", tmp_path, "--run-as", name,
                         "--group", f"{name}g")
        assert result.code == 0, result.err
        assert pwd.getpwnam(name).pw_shell == "/usr/sbin/nologin"
        assert grp.getgrgid(pwd.getpwnam(name).pw_gid).gr_name == f"{name}g"
        assert f"Group={name}g" in (tmp_path / "duban.service").read_text(encoding="utf-8").splitlines()
        assert f"chown -R {name}:{name}g" in result.out
        again = run_cli("--config", config, "service", "install", "--unit-dir", tmp_path, "--run-as", name,
                        "--group", f"{name}g")
        assert again.code == 0 and "useradd" not in again.out  # already there: nothing run twice
    finally:
        subprocess.run(["userdel", name], capture_output=True, check=False)
        subprocess.run(["groupdel", f"{name}g"], capture_output=True, check=False)
    etc = Path("/etc/systemd/system")
    before = sorted(etc.iterdir()) if etc.is_dir() else []
    refused = run_cli("--config", config, "service", "install", "--name", f"{name}-unit", "--no-create-user")
    assert refused.code == 1 and "--yes" in refused.err
    assert (sorted(etc.iterdir()) if etc.is_dir() else []) == before


def test_service_install_needs_a_config_file(tmp_path):
    result = run_cli("service", "install", "--unit-dir", tmp_path)
    assert result.code == 2 and "no config file" in result.err


def test_jobs_coalesce_and_every_tick_is_one_job(project):
    from engine.app.daemon import Daemon
    from engine.app.loaded import load_all
    from engine.config import load_config

    config = load_config(project / "config.toml")
    daemon = Daemon(config)
    daemon.loaded = load_all(config, daemon.sessions)
    daemon._schedule(daemon.loaded)
    daemon.scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in daemon.scheduler.get_jobs()}
        # duties are stored ahead by every tick of the sweep job: no job of their own, no cron wakers
        assert set(jobs) == {"sweep", "deliver", "elect"}
        for job in jobs.values():  # a stall gives one catch-up run: never a burst, never a dropped run
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None), job.id
    finally:
        daemon.scheduler.shutdown(wait=False)
        daemon.engine.dispose()


def test_healthz_answers_from_the_latest_check_and_one_check_at_a_time():
    """LatestAnswer: a fresh answer is reused, an older one answered at once while the check runs
    again behind it, a stale one waited for — at most ``wait`` seconds, then no answer; however many
    requests ask, one check runs at a time."""
    import threading

    import anyio

    from engine.app.vitals import LatestAnswer

    clock = [0.0]
    calls: list[int] = []
    gate = threading.Event()
    gate.set()

    def check() -> int:
        gate.wait(10)
        calls.append(1)
        return len(calls)

    latest = LatestAnswer(check, fresh=1, stale=5, wait=0.2, clock=lambda: clock[0])

    async def until(condition) -> None:
        with anyio.fail_after(10):
            while not condition():
                await anyio.sleep(0.005)

    async def scenario() -> None:
        assert await latest.get() == 1  # never asked: waits for the check
        assert await latest.get() == 1 and len(calls) == 1  # fresh: no check
        clock[0] = 2.0  # older than fresh: answered at once, asked again behind it
        assert await latest.get() == 1
        await until(lambda: len(calls) == 2)
        assert await latest.get() == 2
        gate.clear()
        clock[0] = 10.0  # stale, and the check hangs: no answer after ``wait``, for every request
        async with anyio.create_task_group() as tg:
            answers: list[int | None] = []
            for _ in range(10):
                tg.start_soon(lambda: _append(answers, latest.get()))
        assert answers == [None] * 10
        gate.set()
        await until(lambda: len(calls) == 3)  # the one check that hung, not ten
        clock[0] = 10.5
        assert await latest.get() == 3 and len(calls) == 3

    async def _append(answers: list[int | None], answer) -> None:
        answers.append(await answer)

    anyio.run(scenario)


def test_unit_figures_are_counted_behind_the_scrape_one_count_at_a_time():
    """/metrics' per-unit gauges: the first scrape waits for a count (at most ``wait``); later ones
    are answered at once with the last counts and their age, and counts that are ``every`` seconds
    old are counted again behind the scrape — once, however many scrapes ask, even while the count
    hangs (a catch-up writing beside a million-issue GROUP BY)."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from engine.app.vitals import UnitFigures

    clock = [0.0]
    calls: list[int] = []
    gate = threading.Event()
    gate.set()

    def count() -> dict[str, dict[str, int]]:
        assert gate.wait(10)
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("database is locked")
        return {"overdue": {"甲局": len(calls)}, "awaiting": {"甲局": 0}}

    def scrape(figures: UnitFigures) -> dict[str, float]:
        return {f"{s.name}{s.labels.get('unit', '')}": s.value for family in figures.collect() for s in family.samples}

    def until(condition) -> None:
        deadline = time.monotonic() + 10
        while not condition():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.005)

    figures = UnitFigures(count, every=30, wait=5, clock=lambda: clock[0])
    assert scrape(figures) == {"duban_issues_overdue甲局": 1, "duban_issues_awaiting_signoff甲局": 0,
                               "duban_unit_figures_age_seconds": 0}
    clock[0] = 29.0  # not yet old: no count
    assert scrape(figures)["duban_issues_overdue甲局"] == 1 and len(calls) == 1
    gate.clear()
    clock[0] = 30.0  # old, and the count hangs: every scrape is answered at once with the last counts
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: scrape(figures), range(16)))
    assert time.monotonic() - started < 4
    assert {a["duban_issues_overdue甲局"] for a in answers} == {1}
    assert {a["duban_unit_figures_age_seconds"] for a in answers} == {30}
    gate.set()
    until(lambda: scrape(figures)["duban_issues_overdue甲局"] == 2)
    assert len(calls) == 2, "one count behind sixteen scrapes"
    assert scrape(figures)["duban_unit_figures_age_seconds"] == 0
    clock[0] = 60.0
    assert scrape(figures)["duban_issues_overdue甲局"] == 2
    until(lambda: scrape(figures)["duban_issues_overdue甲局"] == 3)
    clock[0] = 90.0  # the fourth count fails: the third's figures stay, and are counted again
    seen: list[float] = []
    until(lambda: seen.append(scrape(figures)["duban_issues_overdue甲局"]) or seen[-1] == 5)
    assert set(seen) == {3, 5} and len(calls) == 5, seen

    # a first scrape whose count hangs waits ``wait`` seconds and has no unit figures
    gate.clear()
    hung = UnitFigures(count, every=30, wait=0.2, clock=lambda: clock[0])
    assert scrape(hung) == {}
    gate.set()
    until(lambda: "duban_issues_overdue甲局" in scrape(hung))
