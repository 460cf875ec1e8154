"""The daemon's HTTP side: a tiny WSGI router, /healthz, /metrics, and a threaded loopback server.

Routes are mounted by path prefix (``make_app({"/healthz": …, "/metrics": …, "/board": …})``), the
way PEP 3333 mounts applications: the matched prefix moves from ``PATH_INFO`` to ``SCRIPT_NAME``, so
an application written for "/" works wherever it is mounted. Other layers add their own pages (a
board, ``/calendar.ics``) by passing more routes; nothing here needs to know about them.

Metrics live in a registry of their own rather than prometheus_client's global one, so two daemons
in one test process (or a reload) never collide over names.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, make_wsgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select, text

from .store.models import OutboxMessage

log = logging.getLogger("duban.http")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

OUTBOX_STATUSES = ("pending", "sent", "dead", "undeliverable", "silenced")
DELIVERY_OUTCOMES = ("sent", "retried", "dead", "postponed", "undeliverable", "lost")


# -- routing ----------------------------------------------------------------------------------


def _matches(path: str, prefix: str) -> bool:
    # "/metrics" must not swallow "/metricsfoo": a prefix ends at a path segment boundary.
    return prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")


def make_app(routes: Mapping[str, WSGIApp]) -> WSGIApp:
    """One WSGI application dispatching on the longest matching path prefix; 404 otherwise."""
    table = sorted(((p.rstrip("/") or "/", a) for p, a in routes.items()), key=lambda r: len(r[0]), reverse=True)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        for prefix, target in table:
            if _matches(path, prefix):
                if prefix != "/":
                    environ = {**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + prefix,
                               "PATH_INFO": path[len(prefix):]}
                return target(environ, start_response)
        return json_response(start_response, 404, {"error": f"no route for {path}",
                                                   "routes": [p for p, _ in reversed(table)]})

    return app


def json_response(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}.get(status, "")
    start_response(f"{status} {reason}".strip(), [("Content-Type", "application/json; charset=utf-8"),
                                                   ("Content-Length", str(len(payload))),
                                                   ("Cache-Control", "no-store")])
    return [payload]


def health_app(check: Callable[[], dict[str, Any]]) -> WSGIApp:
    """``GET /healthz``: ``check()`` as JSON, 200 when its status is "ok", else 503."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return json_response(start_response, 405, {"error": "GET only"})
        try:
            body = check()
        except Exception as exc:  # noqa: BLE001 - a broken check is itself an unhealthy answer
            log.exception("health check failed")
            body = {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}
        return json_response(start_response, 200 if body.get("status") == "ok" else 503, body)

    return app


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


class Metrics:
    """Every metric the daemon exports, with the ``duban_`` prefix."""

    def __init__(self, outbox_depth: Callable[[], Mapping[str, int]] | None = None):
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
        for outcome in DELIVERY_OUTCOMES:  # exported as 0 from the start, so rate() works at once
            self.deliveries.labels(outcome)
        self.leader = Gauge("duban_leader", "1 while this daemon is the leader (sweeps and routes).", registry=r)
        self.last_sweep = Gauge("duban_last_sweep_timestamp_seconds", "Unix time of the last completed sweep.",
                                registry=r)
        self.reloads = Counter("duban_reloads", "SIGHUP reloads by result.", ["result"], registry=r)
        for result in ("ok", "failed"):
            self.reloads.labels(result)
        if outbox_depth is not None:
            r.register(OutboxDepth(outbox_depth))

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
        return counts

    def app(self) -> WSGIApp:
        return make_wsgi_app(self.registry)


# -- the server -------------------------------------------------------------------------------


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    # One thread per request: a slow /metrics scrape must not hold up /healthz.
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingWSGIServer6(_ThreadingWSGIServer):
    address_family = socket.AF_INET6


class _Handler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        # Access lines would drown the event log (a scrape every 15 s); keep them at debug.
        log.debug("%s %s", self.address_string(), format % args)


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8790"`` or ``"[::1]:8790"`` -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"listen must be HOST:PORT such as 127.0.0.1:8790, got {text!r}")
    return host.strip("[]"), int(port)


class HttpServer:
    """A WSGI application served from a background thread."""

    def __init__(self, app: WSGIApp, listen: str):
        host, port = parse_listen(listen)
        server_class = _ThreadingWSGIServer6 if ":" in host else _ThreadingWSGIServer
        self._server = make_server(host, port, app, server_class=server_class, handler_class=_Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="duban-http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)


# -- what /healthz judges ---------------------------------------------------------------------


class Vitals:
    """The daemon's signs of life (heartbeat, last sweep, leadership) and a database probe."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.heartbeat = time.monotonic()  # set by a scheduler job: proves jobs still run
        self.last_sweep: float | None = None  # monotonic time of the last completed sweep
        self.leader_since: float | None = None
        self._probe = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="duban-probe")

    def report(self, *, scheduler_running: bool, leader: bool, role: str | None, sweep_every: float,
               heartbeat_limit: float) -> dict[str, Any]:
        """The /healthz body: "unhealthy" when the database, the scheduler or the leader's sweep is not."""
        now = time.monotonic()
        database = self.database_ok()
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

    def database_ok(self, timeout: float = 2.0) -> bool:
        # In a worker, so a database that hangs (rather than refuses) costs /healthz 2 s, not forever.
        def ping() -> bool:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True

        try:
            return self._probe.submit(ping).result(timeout=timeout)
        except Exception:  # noqa: BLE001 - unreachable, refused, timed out: all mean "no"
            return False

    def outbox_depth(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)).all()
        return {status: int(n) for status, n in rows}

    def close(self) -> None:
        self._probe.shutdown(wait=False)
