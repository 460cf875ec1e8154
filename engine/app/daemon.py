"""``duban run``: the sweep, routing and delivery on timers, as a long-lived service.

APScheduler (3.x, in-memory job store) is only the ticker here; everything that must survive a
crash is in the database. Deadlines are indexed columns (the sweep reads what is due), reminders
and outbox messages carry unique keys, and deliveries are taken under expiring leases, so a
``kill -9`` at any moment loses nothing: a restarted daemon redoes the unfinished transaction and
at most re-sends the one message that was in flight, under the same key.

Jobs (all ``coalesce=True, max_instances=1``, and no misfire limit, so a stall or a suspended
machine gives one catch-up run, never a burst and never a silently dropped run):

* ``sweep`` every ``sweep_every`` seconds, on the leader only: one tick (``engine.app.tick``:
  store duty occurrences ahead, write due reminders, route them).
* ``deliver`` every ``deliver_every`` seconds, on every daemon: send what the outbox has due.
* ``elect`` every ``leader_retry_seconds``: take or keep leadership (see ``engine.app.leader``);
  also the heartbeat /healthz judges the scheduler by.
* ``watchdog`` when systemd asks for one (``WatchdogSec``): ``WATCHDOG=1`` at half the period.

Signals are only noted by their handlers; the main thread acts on them. SIGTERM/SIGINT stop
claiming, let the message in hand finish, and exit 0 within ``stop_timeout``. SIGHUP reloads
config.toml, workflows, duties, routing and templates, all validated first: a bad file keeps the
running version and is logged with its FILE:LINE:COL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from notifications.leases import release_dead
from notifications.retention import prune

from .. import __version__
from ..clock import Clock
from ..config import Config, load_config
from ..errors import ConfigError, DubanError
from ..heap import limit_arenas, settle
from ..issues.district import unit_counts
from ..reminders.replan import replan_if_calendar_changed
from ..store import db
from .http.app import Site, create_app
from .http.auth import board_token
from .http.server import HttpServer
from .leader import Leadership, leadership_for, wait_for_database
from .loaded import Loaded, load_all
from .service_unit import SystemdNotify
from .tick import tick
from .vitals import Metrics, Vitals

log = logging.getLogger("duban.daemon")

def event(logger: logging.Logger, level: int, name: str, message: str = "", *, exc_info: bool = False,
          **fields: Any) -> None:
    """Log one event: a name and key=value fields (the formatter in cli/run prints them)."""
    logger.log(level, message or name, exc_info=exc_info, extra={"event": name, "fields": fields})


DAEMON_ARENAS = 2  # malloc arenas: a handful of threads each allocating is no reason for 16 (engine.heap)


class Daemon:
    """One daemon process: scheduler, leadership, HTTP, signals, reload and shutdown."""

    def __init__(self, config: Config, *, clock: Clock | None = None):
        self.config = config
        self.settings = config.daemon
        self.clock = clock or Clock()
        self.engine = db.make_engine(config.database.url, echo=config.database.echo)
        self.sessions = db.session_factory(self.engine)
        self.readers = db.read_factory(self.engine)
        self.vitals = Vitals(self.engine)
        self.metrics = Metrics(self.vitals.outbox_depth, self._unit_figures, self.vitals.delivery_gaps,
                               database=self.engine.dialect.name)
        self.stop = threading.Event()  # handed to deliveries: set means "stop claiming"
        self.sd = SystemdNotify()
        self.loaded: Loaded | None = None
        self.leadership: Leadership | None = None
        self.http: HttpServer | None = None
        self._wake = threading.Event()
        self._reload_wanted = False
        self._signal: int | None = None
        self._pruned_at: float | None = None  # monotonic time of the leader's last outbox prune
        self._retired: list[Any] = []  # notifiers replaced by a reload, closed once no send uses them
        self.scheduler = BackgroundScheduler(
            timezone=config.tz,
            executors={"default": ThreadPoolExecutor(max_workers=8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def _unit_figures(self) -> dict[str, dict[str, int]]:
        loaded = self.loaded
        if loaded is None:
            return {}
        today = self.clock.now().astimezone(self.config.tz).date()
        with self.readers() as session:
            return unit_counts(session, loaded.runtime, today, ("overdue", "awaiting"))

    # -- lifecycle --------------------------------------------------------------------------

    def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop; returns the exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        started = time.monotonic()
        # before the scheduler, HTTP and send threads start: see engine.heap
        limit_arenas(DAEMON_ARENAS)
        try:
            # First, so a second daemon on a SQLite file is refused before it touches anything.
            self.leadership = leadership_for(self.engine.url)
            if not self._wait_for_database():
                return self._shutdown()
            self.loaded = load_all(self.config, self.sessions)
            freed = release_dead(self.sessions, socket.gethostname())
            if freed:  # a daemon of this machine was killed: its leased messages go out now, not in 2 minutes
                event(log, logging.INFO, "leases_reclaimed", messages=freed)
            self._start_http()
            self._elect()  # now, so the leader's first sweep does not wait for a tick
            self._schedule(self.loaded)
            self.scheduler.start()
            settle()  # what start-up made stays: out of the cyclic collector's way (engine.heap)
        except BaseException:
            self._close_resources()
            raise
        role = self.leadership.role
        self.sd.send("READY=1", f"STATUS=running as {role}; sweep every {self.settings.sweep_every:g}s")
        event(log, logging.INFO, "started", version=__version__, pid=os.getpid(), role=role,
              database=self.engine.url.render_as_string(hide_password=True),
              http=self.http.address if self.http else None, ms=round((time.monotonic() - started) * 1000))
        while not self.stop.is_set():
            # A timeout as a safety net: signal handlers run between bytecodes of this thread.
            self._wake.wait(1.0)
            self._wake.clear()
            if self._reload_wanted and not self.stop.is_set():
                self._reload_wanted = False
                self.reload()
        return self._shutdown()

    def _on_signal(self, signum: int, _frame: object) -> None:
        # Only flags here: logging or locking inside a signal handler can deadlock the thread it
        # interrupted. The main loop does the work.
        if signum == signal.SIGHUP:
            self._reload_wanted = True
        else:
            self._signal = signum
            self.stop.set()
        self._wake.set()

    def _wait_for_database(self) -> bool:
        def waiting(error: str) -> None:
            event(log, logging.WARNING, "waiting_for_database", error=error)
            self.sd.send("STATUS=waiting for the database")

        return wait_for_database(self.engine, self.settings.startup_wait, self.stop, waiting)

    def _start_http(self) -> None:
        if not self.settings.listen:
            return
        site = Site(runtime=self._runtime, sessions=self.readers, clock=self.clock, token=self._token,
                    health=self.health, metrics=self.metrics.registry, writers=self.sessions)
        try:
            self.http = HttpServer(create_app(site), self.settings.listen)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {self.settings.listen}: {exc.strerror or exc}",
                              hint="set [daemon] listen to a free address, or \"\" to turn HTTP off") from None
        self.http.start()
        host = self.settings.listen.rpartition(":")[0].strip("[]")
        if host not in ("127.0.0.1", "::1", "localhost") and self._token() is None:
            # Beyond loopback without a token only /healthz's bare status answers: say so, loudly.
            event(log, logging.WARNING, "listening_without_token", listen=self.settings.listen,
                  hint="set [board] token_env and that variable: other machines get 403 on every page")

    def _schedule(self, loaded: Loaded) -> None:
        s, now = loaded.settings, dt.datetime.now(self.config.tz)
        add = self.scheduler.add_job
        add(self._job("sweep", self._sweep), IntervalTrigger(seconds=s.sweep_every), id="sweep", next_run_time=now)
        add(self._job("deliver", self._deliver), IntervalTrigger(seconds=s.deliver_every), id="deliver",
            next_run_time=now)
        add(self._job("elect", self._elect), IntervalTrigger(seconds=s.leader_retry_seconds), id="elect")
        watchdog = self.sd.watchdog_seconds()
        if watchdog:
            # A job, not a thread of its own: pings stop when the scheduler stops running jobs.
            add(self._job("watchdog", lambda: self.sd.send("WATCHDOG=1")), IntervalTrigger(seconds=watchdog),
                id="watchdog", next_run_time=now)

    def _runtime(self):  # the HTTP side reads the runtime of the configuration now in force
        assert self.loaded is not None
        return self.loaded.runtime

    def _token(self) -> str | None:
        assert self.loaded is not None
        return board_token(self.loaded.config)

    def _shutdown(self) -> int:
        started = time.monotonic()
        name = signal.Signals(self._signal).name if self._signal else None
        self.sd.send("STOPPING=1", "STATUS=stopping")
        event(log, logging.INFO, "stopping", signal=name)
        self.stop.set()
        # shutdown(wait=True) waits for running jobs; it runs aside so the wait has a bound.
        waiter = threading.Thread(target=lambda: self.scheduler.running and self.scheduler.shutdown(wait=True),
                                  name="duban-stop", daemon=True)
        waiter.start()
        waiter.join(self.settings.stop_timeout)
        clean = not waiter.is_alive()
        self._close_resources()
        event(log, logging.INFO if clean else logging.WARNING, "stopped", clean=clean,
              ms=round((time.monotonic() - started) * 1000))
        if not clean:
            # A job outlived stop_timeout (a long sweep batch, a hung send). Its transaction rolls
            # back and its lease expires, so leaving now loses nothing; waiting could outlast
            # systemd's TimeoutStopSec and end in SIGKILL anyway.
            logging.shutdown()
            os._exit(0)
        return 0

    def _close_resources(self) -> None:
        notifiers = [*self._retired, *([self.loaded.notifier] if self.loaded else [])]
        for close in (self.http and self.http.close, self.leadership and self.leadership.close,
                      *(n.close for n in notifiers), self.engine.dispose):
            try:
                if close:
                    close()
            except Exception:
                log.debug("close failed", exc_info=True)

    # -- jobs -------------------------------------------------------------------------------

    def _job(self, name: str, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if self.stop.is_set():
                return
            try:
                work()
            except Exception:  # noqa: BLE001 - one failed run must not end the job, or the daemon
                event(log, logging.ERROR, f"{name}_failed", exc_info=True)

        run.__name__ = name  # what APScheduler names the job in its own messages
        return run

    def _wake_job(self, job_id: str) -> None:
        """Run ``job_id`` now rather than at its next tick."""
        try:
            self.scheduler.modify_job(job_id, next_run_time=dt.datetime.now(self.config.tz))
        except Exception:  # noqa: BLE001 - the scheduler is shutting down: nothing to wake
            pass

    def _sweep(self) -> None:
        assert self.leadership is not None and self.loaded is not None
        if not self.leadership.is_leader:
            return
        loaded, now, started = self.loaded, self.clock.now(), time.perf_counter()
        try:
            ticked = tick(loaded.runtime, loaded.notifier, self.sessions, loaded.duties, now, deliver=False)
            result, routed = ticked.swept, ticked.routed
        except Exception:
            self.metrics.sweep_errors.inc()
            raise
        seconds = time.perf_counter() - started
        self.vitals.last_sweep = time.monotonic()
        self.metrics.swept(seconds, result.written, routed.messages)
        event(log, logging.INFO, "sweep", examined=result.examined, written=result.written, routed=routed.reminders,
              messages=routed.messages, silenced=routed.silenced, undeliverable=routed.undeliverable,
              errors=len(result.errors), ms=round(seconds * 1000, 1))
        for line in result.errors:
            event(log, logging.WARNING, "sweep_row_failed", error=line)
        if routed.messages:
            self._wake_job("deliver")
        self._prune(now)

    def _prune(self, now: dt.datetime) -> None:
        # Hourly is often enough for a retention counted in days, and keeps the walk off every tick.
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < 3600:
            return
        self._pruned_at = time.monotonic()
        assert self.loaded is not None
        keep_days = self.loaded.notifier.notify.settings.keep_days
        pruned = prune(self.sessions, now, keep_days)
        if pruned:
            event(log, logging.INFO, "outbox_pruned", messages=pruned, keep_days=keep_days)

    def _deliver(self) -> None:
        assert self.loaded is not None
        # Runs never overlap (max_instances=1), so notifiers a reload replaced are idle by now.
        while self._retired:
            self._retired.pop().close()
        loaded = self.loaded
        started = time.perf_counter()
        stats = loaded.notifier.outbox.deliver_due(self.clock.now(), batch=loaded.settings.delivery_batch,
                                                   stop=self.stop, in_flight=loaded.settings.delivery_in_flight)
        loaded.notifier.follow_up(self.clock.now())  # delivery reports the platforms give later
        counts = self.metrics.delivered(stats)
        if any(counts.values()):
            # message and exc_info spelled out, so the type checker sees the counts can only be fields
            event(log, logging.INFO, "deliver", "", exc_info=False, **counts,
                  ms=round((time.perf_counter() - started) * 1000, 1))

    def _elect(self) -> None:
        assert self.leadership is not None
        self.vitals.heartbeat = time.monotonic()
        changed = self.leadership.poll()
        leader = self.leadership.is_leader
        self.metrics.leader.set(1 if leader else 0)
        if leader and self.vitals.leader_since is None:
            self.vitals.leader_since = time.monotonic()
            if self.leadership.role != "sole":
                event(log, logging.INFO, "leader_acquired")
            self.sd.send(f"STATUS=running as {self.leadership.role}")
            self._register_workflows()
            self._wake_job("sweep")
        elif changed and not leader:
            self.vitals.leader_since = None
            event(log, logging.WARNING, "leader_lost", error=getattr(self.leadership, "last_error", None))
            self.sd.send("STATUS=running as follower")

    def _register_workflows(self) -> None:
        """Register the loaded workflow versions (leader only; duties are synced by every tick)."""
        loaded = self.loaded
        if loaded is None:
            return
        now = self.clock.now()
        registered: list[str] = []
        left_behind: list[str] = []  # ledgers that need a --map to move to a new version
        try:
            with db.transaction(self.sessions) as session:
                for wf in loaded.workflows:
                    version, created = loaded.runtime.registry.register(session, wf, now)
                    if created:
                        registered.append(f"{version.name}@{version.version}")
                        left_behind += [f"{ledger}: {n} issue(s) in {state}, not a state of @{version.version}"
                                        for ledger, state, n in loaded.runtime.registry.left_behind(session, version)]
        except DubanError as exc:  # whatever refuses a version: those registered before stay
            event(log, logging.ERROR, "workflow_refused", errors=exc.lines())
        event(log, logging.INFO, "workflows_registered", registered=registered, duties=len(loaded.duties))
        if left_behind:
            event(log, logging.WARNING, "workflow_states_left_behind", ledgers=left_behind,
                  hint="the ledgers stay on their version: duban workflow migrate LEDGER --to VERSION --map OLD=NEW")
        try:  # a changed calendar moves every stored deadline: by itself, not by an operator's replan
            with db.transaction(self.sessions) as session:
                planned = replan_if_calendar_changed(session, loaded.runtime, loaded.runtime.calendar, now)
            if planned is not None:
                event(log, logging.INFO, "calendar_changed", "stored plans made again on the new calendar",
                      rows=planned)
        except Exception as exc:  # noqa: BLE001 - the next start or reload tries again; the sweep goes on
            event(log, logging.ERROR, "replan_failed", error=f"{type(exc).__name__}: {exc}")

    # -- reload -----------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read every file; apply all of it or, if anything is wrong, none of it."""
        assert self.loaded is not None
        self.sd.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        old = self.loaded
        try:
            config = load_config(old.config.source)
            loaded = load_all(config, self.sessions)
        except Exception as exc:  # noqa: BLE001 - whatever is wrong, the running version stays
            self.metrics.reloads.labels("failed").inc()
            lines = exc.lines() if isinstance(exc, DubanError) else [f"{type(exc).__name__}: {exc}"]
            event(log, logging.ERROR, "reload_failed", "kept the running configuration", errors=lines,
                  exc_info=not isinstance(exc, DubanError))
            self.sd.send("READY=1", "STATUS=reload failed; running the previous configuration")
            return False
        # The database, the listening socket and the log format are set up once: restart for those.
        restart = [name for name, a, b in (("database.url", old.config.database.url, config.database.url),
                                           ("daemon.listen", old.settings.listen, loaded.settings.listen),
                                           ("daemon.log_format", old.settings.log_format, loaded.settings.log_format))
                   if a != b]
        self.loaded, self.settings = loaded, loaded.settings
        self._retired.append(old.notifier)
        s, o = loaded.settings, old.settings
        for job_id, seconds, before in (("sweep", s.sweep_every, o.sweep_every), ("deliver", s.deliver_every,
                                        o.deliver_every), ("elect", s.leader_retry_seconds, o.leader_retry_seconds)):
            if seconds != before:
                self.scheduler.reschedule_job(job_id, trigger=IntervalTrigger(seconds=seconds))
        logging.getLogger().setLevel(s.log_level.upper())
        self.metrics.reloads.labels("ok").inc()
        event(log, logging.INFO, "reloaded", workflows=len(loaded.workflows), duties=len(loaded.duties),
              restart_needed=restart or None)
        if self.leadership is not None and self.leadership.is_leader:
            try:
                self._register_workflows()
            except Exception:  # noqa: BLE001 - e.g. the database is down: the next election retries
                event(log, logging.ERROR, "definitions_sync_failed", exc_info=True)
        self.sd.send("READY=1", f"STATUS=running as {self.leadership.role if self.leadership else '?'}")
        return True

    # -- health -----------------------------------------------------------------------------

    def health(self, database: bool) -> dict[str, Any]:
        """What /healthz answers (see Vitals.report), the database's answer given."""
        leadership = self.leadership
        body = self.vitals.report(
            database=database, scheduler_running=self.scheduler.running, leader=bool(leadership and leadership.is_leader),
            role=leadership.role if leadership else None, sweep_every=self.settings.sweep_every,
            heartbeat_limit=max(30.0, 3 * self.settings.leader_retry_seconds))
        return {**body, "pid": os.getpid(), "version": __version__}
