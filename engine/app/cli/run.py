"""``duban run``: the daemon in the foreground.

The daemon logs to stdout, one line per event, as ``key=value`` fields (or JSON with
``[daemon] log_format = "json"``); journald keeps stdout, so nothing else is needed under systemd.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

import click

from ...config import DaemonConfig
from ..daemon import Daemon
from .context import App, pass_app
from .language import Command

_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/@+,")


def _kv_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    # Bare when unambiguous; otherwise JSON-quoted, which also escapes newlines: one event, one line.
    return text if text and set(text) <= _BARE else json.dumps(text, ensure_ascii=False)


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": getattr(record, "event", "log"),
    }
    out.update(getattr(record, "fields", {}) or {})
    message = record.getMessage()
    if message and message != out["event"]:
        out["msg"] = message
    if record.exc_info:
        out["exc"] = formatter.formatException(record.exc_info)
    return out


class KeyValueFormatter(logging.Formatter):
    """``ts=… level=info logger=duban.daemon event=sweep written=3 ms=12.5``"""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv_value(v)}" for k, v in _fields(record, self).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self), ensure_ascii=False, default=str)


class _Quieter(logging.Filter):
    """APScheduler's per-run chatter and expected skips are noise in a service's journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "maximum number of running instances reached" not in message


def setup_logging(settings: DaemonConfig) -> None:
    """Replace the CLI's stderr logging with event lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else KeyValueFormatter())
    handler.addFilter(_Quieter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # "Running job…" / "executed successfully" every few seconds would drown the events.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # httpx and httpcore log each request's full URL (INFO, DEBUG): robot URLs carry access tokens,
    # so they stay at WARNING whatever log_level says
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # the schema check's "Context impl SQLiteImpl."
    # "Finished processing state identified exit callbacks." twice a step: the history has the step
    logging.getLogger("transitions").setLevel(logging.WARNING)
    logging.captureWarnings(True)


@click.command("run", cls=Command)
@pass_app
def run(app: App) -> int:
    """Run the daemon in the foreground: sweep, route and deliver on timers until SIGTERM.

    SIGHUP reloads config.toml and the YAML files (a bad file keeps the running version).
    /healthz and /metrics are served on [daemon] listen (default 127.0.0.1:8790).
    """
    config = app.config
    settings = config.daemon
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a pipe to journald must not sit on events
    setup_logging(settings)
    return Daemon(config).run()
