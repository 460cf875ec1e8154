"""``duban run`` (the daemon in the foreground) and ``duban service install`` (its systemd unit).

The daemon logs to stdout, one line per event, as ``key=value`` fields (or JSON with
``[daemon] log_format = "json"``); journald keeps stdout, so nothing else is needed under systemd.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from ...errors import BadInput, Refused
from ..daemon import Daemon
from ..loaded import DaemonSettings, load_daemon_settings
from ..service_unit import UnitSpec, account_commands, install, needs_consent, next_steps, this_executable, unit_folder
from .context import App, pass_app
from .output import say

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


def setup_logging(settings: DaemonSettings) -> None:
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
    logging.captureWarnings(True)


@click.command("run")
@pass_app
def run(app: App) -> int:
    """Run the daemon in the foreground: sweep, route and deliver on timers until SIGTERM.

    SIGHUP reloads config.toml and the YAML files (a bad file keeps the running version).
    /healthz and /metrics are served on [daemon] listen (default 127.0.0.1:8790).
    """
    config = app.config
    settings = load_daemon_settings(config)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # a pipe to journald must not sit on events
    setup_logging(settings)
    return Daemon(config).run()


@click.group("service")
def service_group() -> None:
    """The systemd unit for `duban run`."""


def _written_folders(app: App) -> list[Path]:
    """The folders the daemon writes: the evidence store, and a SQLite database's folder (its journal)."""
    folders = [app.config.evidence_dir()]
    url = app.config.database.url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        db_file = Path(url.removeprefix("sqlite:///"))
        folders.append((db_file if db_file.is_absolute() else app.config.base_dir / db_file).parent.resolve())
    return sorted(set(folders))


@service_group.command("install")
@click.option("--unit-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write the unit (default /etc/systemd/system, or ~/.config/systemd/user with --user).")
@click.option("--user", "user", is_flag=True, help="A user unit (systemctl --user) instead of a system one.")
@click.option("--run-as", metavar="USER", default="duban", show_default=True,
              help="User= of a system unit: the account the daemon runs as (never root unless you say so).")
@click.option("--group", metavar="GROUP", help="Group= of a system unit (default: the same name as --run-as).")
@click.option("--create-user/--no-create-user", default=True, show_default=True,
              help="Create the account and group (a system account, no login shell) if they are missing.")
@click.option("--yes", "-y", is_flag=True, help="Write under /etc without asking.")
@click.option("--name", default="duban", show_default=True, help="Unit name.")
@pass_app
def service_install(app: App, unit_dir: Path | None, user: bool, run_as: str, group: str | None,
                    create_user: bool, yes: bool, name: str) -> None:
    """Write a systemd unit running this duban with this config, and print the systemctl commands."""
    source = app.config.source
    if source is None:
        raise BadInput("no config file: the unit needs one", hint="pass --config PATH (or set DUBAN_CONFIG)")
    group = group or run_as
    spec = UnitSpec(this_executable(), source, user=user, run_as=None if user else run_as, group=group, name=name)
    folder = unit_folder(spec, unit_dir)
    if needs_consent(folder) and not yes:
        if not sys.stdin.isatty():
            raise Refused(f"would write {folder / spec.file_name} (under /etc) without anyone to ask",
                          hint="pass --yes to write it, or --unit-dir FOLDER to write it elsewhere")
        if not click.confirm(f"write {folder / spec.file_name}?", default=False):
            raise Refused("nothing written")
    missing = [] if user or run_as == "root" else account_commands(run_as, group, source.parent)
    if missing and create_user:
        if os.geteuid() != 0:
            raise Refused(f"the account {run_as}:{group} does not exist and only root can create it",
                          hint="run as root, or create it: " + " && ".join(shlex.join(c) for c in missing))
        for command in missing:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise Refused(f"{shlex.join(command)} failed: {done.stderr.strip()}")
            say(f"ran {shlex.join(command)}")
    try:
        path = install(spec, unit_dir)
    except PermissionError as exc:
        raise BadInput(f"cannot write the unit: {exc}", hint="run as root, or use --user or --unit-dir") from None
    say(f"wrote {path}")
    say(f"  ExecStart={spec.executable} --config {spec.config} run")
    if spec.run_as:
        say(f"  User={spec.run_as} Group={group}")
    if missing and not create_user:
        say(f"warning: the account {run_as}:{group} does not exist; systemd will refuse to start the unit. "
            "Create it: " + " && ".join(shlex.join(c) for c in missing))
    say("next:")
    if spec.run_as and spec.run_as != "root":
        for folder in _written_folders(app):
            say(f"  chown -R {spec.run_as}:{group} {shlex.quote(str(folder))}    # the daemon writes here")
    for step in next_steps(spec, path):
        say(f"  {step}")
