"""The daemon's signs of life and its Prometheus metrics.

Metrics live in a registry of their own rather than prometheus_client's global one, so two daemons
in one test process (or a reload) never collide over names. ``/healthz`` and ``/metrics`` serve
them (``engine.app.http.app``).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from notifications.outbox import DeliveryStats
from notifications.queue import OUTBOX_STATUSES, outbox_depth
from notifications.reports import missed_by_platform

from .. import __version__
from ..issues.evidence import Space

T = TypeVar("T")

log = logging.getLogger("duban.http")

DELIVERY_OUTCOMES = DeliveryStats.OUTCOMES


# -- metrics ----------------------------------------------------------------------------------


class OutboxDepth(Collector):
    """``duban_outbox_depth{status}``, counted in the database at scrape time.

    Read from the database rather than kept in memory because the outbox is shared: every daemon
    of a PostgreSQL database reports the same depth, whoever queued or sent the messages.
    """

    def __init__(self, count: Callable[[], Mapping[str, int]]):
        self.count = count

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("duban_outbox_depth", "Outbox messages by status (from the database).",
                                 labels=["status"])

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without describe() the registry would call collect() at registration: a query at startup.
        return [self._family()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = self._family()
        try:
            counts = dict(self.count())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("outbox depth not available: %s", exc)
            return []
        for status in sorted({*OUTBOX_STATUSES, *counts}):
            family.add_metric([status], float(counts.get(status, 0)))
        return [family]


class UnitFigures(Collector):
    """``duban_issues_overdue{unit}`` and ``duban_issues_awaiting_signoff{unit}``, from the database.

    The same clauses as the district overview (``engine.issues.district``), so an alert and the page it
    sends someone to agree. The counts are GROUP BYs over every issue: well under a second on a
    quiet million-issue database, but many seconds while a large catch-up writes beside them, and
    Prometheus gives up on a scrape after 10. So a scrape never waits for them once they have been
    counted: it is answered with the last counts (``duban_unit_figures_age_seconds`` says how old)
    and, when those are ``every`` seconds old, one count starts again in a thread of its own. Only
    the first scrape waits for a count, at most ``wait`` seconds; without one it has no unit
    figures. That also keeps a scrape storm from several Prometheus servers to one count at a time.
    """

    FAMILIES = (("overdue", "duban_issues_overdue", "Open issues past their deadline, per unit (逾期)."),
                ("awaiting", "duban_issues_awaiting_signoff",
                 "Issues waiting for a reviewer's sign-off, per unit (待审核销号)."))
    AGE = ("duban_unit_figures_age_seconds", "How long ago the per-unit figures were counted.")

    def __init__(self, count: Callable[[], Mapping[str, Mapping[str, int]]], every: float = 30.0,
                 wait: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self.count, self.every, self.wait, self.clock = count, every, wait, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, Mapping[str, Mapping[str, int]]] | None = None
        self._counting: threading.Thread | None = None

    def _families(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily(name, text, labels=["unit"]) for _, name, text in self.FAMILIES]

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return [*self._families(), GaugeMetricFamily(*self.AGE)]

    def _count(self) -> None:
        try:
            counts = self.count()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("unit figures not available: %s", exc)
            return
        with self._lock:
            self._cached = (self.clock(), counts)

    def _counts(self) -> tuple[float, Mapping[str, Mapping[str, int]]] | None:
        with self._lock:
            cached, counting = self._cached, self._counting
            if (cached is None or self.clock() - cached[0] >= self.every) and (
                    counting is None or not counting.is_alive()):
                counting = self._counting = threading.Thread(target=self._count, name="duban-unit-figures",
                                                             daemon=True)
                counting.start()
        if cached is None and counting is not None:
            counting.join(self.wait)
            with self._lock:
                cached = self._cached
        return cached

    def collect(self) -> Iterable[GaugeMetricFamily]:
        kept = self._counts()
        if kept is None:
            return []
        at, counts = kept
        families = self._families()
        for (status, _, _), family in zip(self.FAMILIES, families, strict=True):
            for unit, n in sorted(counts.get(status, {}).items()):
                family.add_metric([unit], float(n))
        age = GaugeMetricFamily(*self.AGE)
        age.add_metric([], max(0.0, self.clock() - at))
        return [*families, age]


class DeliveryGaps(Collector):
    """``duban_messages_not_delivered{platform}`` and ``duban_recipients_not_delivered{platform}``:
    messages a platform accepted but did not deliver to everyone (``notifications.reports``), read
    from the database at scrape time like the outbox depth."""

    def __init__(self, count: Callable[[], Mapping[str, tuple[int, int]]]):
        self.count = count

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (GaugeMetricFamily("duban_messages_not_delivered",
                                  "Sent messages the platform did not deliver to someone.", labels=["platform"]),
                GaugeMetricFamily("duban_recipients_not_delivered",
                                  "Addressees sent messages did not reach, as the platforms reported.",
                                  labels=["platform"]))

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return list(self._families())

    def collect(self) -> Iterable[GaugeMetricFamily]:
        messages, people = self._families()
        try:
            counts = dict(self.count())
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.warning("delivery reports not available: %s", exc)
            return []
        for name in sorted({"dingtalk", "wecom", *counts}):
            n, missed = counts.get(name, (0, 0))
            messages.add_metric([name], float(n))
            people.add_metric([name], float(missed))
        return [messages, people]


class Metrics:
    """Every metric the daemon exports, with the ``duban_`` prefix."""

    def __init__(self, outbox_depth: Callable[[], Mapping[str, int]] | None = None,
                 unit_figures: Callable[[], Mapping[str, Mapping[str, int]]] | None = None,
                 delivery_gaps: Callable[[], Mapping[str, tuple[int, int]]] | None = None,
                 database: str = ""):
        # The *_created series double the output for nothing Prometheus needs (process-wide switch).
        disable_created_metrics()
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.sweeps = Counter("duban_sweeps", "Completed sweeps.", registry=r)
        self.sweep_errors = Counter("duban_sweep_errors", "Sweeps (or routings) that failed.", registry=r)
        self.sweep_duration = Histogram(
            "duban_sweep_duration_seconds", "Time one sweep and its routing took.", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.reminders_written = Counter("duban_reminders_written", "Reminders written by sweeps.", registry=r)
        self.messages_queued = Counter("duban_messages_queued", "Outbox messages queued by routing.", registry=r)
        self.deliveries = Counter("duban_deliveries", "Delivery outcomes by status.", ["status"], registry=r)
        self.sends = Counter("duban_sends", "Delivery outcomes per channel (sent, retried, dead, postponed, "
                             "undeliverable, lost).", ["channel", "outcome"], registry=r)
        for outcome in DELIVERY_OUTCOMES:  # exported as 0 from the start, so rate() works at once
            self.deliveries.labels(outcome)
        self.leader = Gauge("duban_leader", "1 while this daemon is the leader (sweeps and routes).", registry=r)
        self.last_sweep = Gauge("duban_last_sweep_timestamp_seconds", "Unix time of the last completed sweep.",
                                registry=r)
        self.reloads = Counter("duban_reloads", "SIGHUP reloads by result.", ["result"], registry=r)
        for result in ("ok", "failed"):
            self.reloads.labels(result)
        self.build = Info("duban_build", "This duban: version, Python and database dialect.", registry=r)
        self.build.info({"version": __version__, "python": platform.python_version(), "database": database})
        if outbox_depth is not None:
            r.register(OutboxDepth(outbox_depth))
        if unit_figures is not None:
            r.register(UnitFigures(unit_figures))
        if delivery_gaps is not None:
            r.register(DeliveryGaps(delivery_gaps))

    def swept(self, seconds: float, written: int, queued: int) -> None:
        self.sweeps.inc()
        self.sweep_duration.observe(seconds)
        self.reminders_written.inc(written)
        self.messages_queued.inc(queued)
        self.last_sweep.set(time.time())

    def delivered(self, stats: Any) -> dict[str, int]:
        """Count one outbox run (a notifications.outbox.DeliveryStats); returns the counts by outcome."""
        counts = {outcome: int(getattr(stats, outcome, 0)) for outcome in DELIVERY_OUTCOMES}
        for outcome, n in counts.items():
            if n:
                self.deliveries.labels(outcome).inc(n)
        for (channel, outcome), n in getattr(stats, "by_channel", {}).items():
            self.sends.labels(channel or "—", outcome).inc(n)
        return counts



# -- what /healthz judges ---------------------------------------------------------------------


class Vitals:
    """The daemon's signs of life (heartbeat, last sweep, leadership); the database's answer is
    asked by /healthz itself (``LatestAnswer``)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.heartbeat = time.monotonic()  # set by a scheduler job: proves jobs still run
        self.last_sweep: float | None = None  # monotonic time of the last completed sweep
        self.leader_since: float | None = None

    def report(self, *, database: bool, scheduler_running: bool, leader: bool, role: str | None,
               sweep_every: float, heartbeat_limit: float) -> dict[str, Any]:
        """The /healthz body: "unhealthy" when the database, the scheduler or the leader's sweep is not."""
        now = time.monotonic()
        scheduler = scheduler_running and now - self.heartbeat < heartbeat_limit
        age = None if self.last_sweep is None else now - self.last_sweep
        stale = False
        if leader:
            # A new leader is judged from when it took over, not from a sweep it never ran.
            since = self.last_sweep if self.last_sweep is not None else self.leader_since
            stale = since is not None and now - since > 3 * sweep_every
        ok = database and scheduler and not stale
        return {"status": "ok" if ok else "unhealthy", "database": database, "scheduler": scheduler,
                "last_sweep_age_seconds": None if age is None else round(age, 3), "leader": leader,
                "role": role, "sweep_stale": stale}

    def outbox_depth(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return outbox_depth(conn)

    def delivery_gaps(self) -> dict[str, tuple[int, int]]:
        with self.engine.connect() as conn, Session(bind=conn) as session:
            return missed_by_platform(session)


class LatestAnswer(Generic[T]):
    """A blocking check's answer (the database, the evidence disk) for /healthz, asked in a thread
    of its own and kept ``fresh`` seconds. Older, a request gets it while the check is asked again
    in the background; older than ``stale``, or never asked, the request waits for the new answer,
    at most ``wait`` seconds (then None: a check that hangs is no answer). So /healthz answers from
    the event loop without waiting behind the worker threads' requests, and a storm of probes
    costs the database one query a second."""

    def __init__(self, check: Callable[[], T], *, fresh: float = 1.0, stale: float = 5.0, wait: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.check, self.fresh, self.stale, self.wait, self.clock = check, fresh, stale, wait, clock
        self._value: T | None = None
        self._at: float | None = None
        self._asking: asyncio.Task[None] | None = None
        self._limiter: anyio.CapacityLimiter | None = None  # made in the loop that serves the app

    async def get(self) -> T | None:
        age = None if self._at is None else self.clock() - self._at
        if age is not None and age <= self.fresh:
            return self._value
        if self._asking is None or self._asking.done():
            self._asking = asyncio.ensure_future(self._ask())  # one check at a time, whoever waits
        if age is not None and age <= self.stale:
            return self._value
        with anyio.move_on_after(self.wait):
            await asyncio.shield(self._asking)
            return self._value
        return None

    async def _ask(self) -> None:
        # its own thread (the limiter): busy worker threads never hold the check up
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        self._value = await anyio.to_thread.run_sync(self.check, limiter=self._limiter)
        self._at = self.clock()


def with_evidence_space(body: dict[str, Any], space: Space) -> dict[str, Any]:
    """``body`` with the evidence folder's free space; "degraded" (so /healthz answers 503) when it
    is below ``[evidence] min_free_bytes``: uploads are refused then, reminders still go out."""
    out = {**body, "evidence": space.report()}
    if not space.ok and out.get("status") == "ok":
        out["status"] = "degraded"
    return out
