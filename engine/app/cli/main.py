"""``duban``: the command group and the one place errors become exit codes.

Command modules are imported only when their command runs (click's lazy-group pattern): each
pulls in what it needs (SQLAlchemy, Alembic, the daemon, python-docx), and ``duban --help`` needs
none of them. The short help of every command is written here so the listing imports nothing.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click

from ... import __version__
from ...errors import EXIT_BAD_INPUT, DubanError
from ...i18n import N_, _, translate
from . import language
from .output import error_lines, show_error

# command -> (its attribute in the module engine.app.cli.<command>, the line `duban --help` shows)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", N_("Create or upgrade the database and register the workflows.")),
    "db": ("db_group", N_("Database schema commands.")),
    "workflow": ("workflow_group", N_("Workflow definitions (YAML).")),
    "ledger": ("ledger_group", N_("Ledgers (台账): draft, import, export, archive, delete; the administrators' log.")),
    "issue": ("issue_group", N_("Issues (具体问题) of the ledgers.")),
    "status": ("status", N_("The overview of a ledger (or all), as the report opens.")),
    "remind": ("remind_group", N_("Reminders: the timeline ahead and those already written.")),
    "sweep": ("sweep", N_("One tick: store duties ahead, write due reminders, route and deliver.")),
    "duty": ("duty_group", N_("Recurring duties (quarterly reports, monthly clearing…) and milestones.")),
    "outbox": ("outbox_group", N_("Messages queued, sent, failed (dead letters) and undeliverable.")),
    "snooze": ("snooze_group", N_("Silence reminders for an issue, a duty, a department or a ledger.")),
    "notify": ("notify_group", N_("Notification channels.")),
    "config": ("config_group", N_("Configuration.")),
    "run": ("run", N_("Run the daemon in the foreground: sweep, route and deliver until SIGTERM.")),
    "service": ("service_group", N_("The systemd unit for `duban run`.")),
    "report": ("report", N_("The rectification report (整改情况报告): md, html or docx.")),
    "calendar": ("calendar_group", N_("Working days by year (show, confirm) and the deadline calendar (ICS).")),
    "board": ("board", N_("Serve the read-only status board (and /calendar.ics).")),
    "user": ("user_group", N_("Accounts of the people who act, their roles, passwords and links.")),
    "audit": ("audit_group", N_("The history's hash chains: anything changed behind duban's back.")),
    "evidence": ("evidence_group", N_("Evidence files (佐证材料): the store checked against the database.")),
    "backup": ("backup", N_("One archive of the database and every evidence file, with a manifest of hashes.")),
    "restore": ("restore", N_("Fill an empty database and evidence folder from a backup archive.")),
}


class LazyGroup(language.Group):
    """A group whose commands are imported when used (see the module docstring)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = COMMANDS.get(cmd_name)
        if found is None:
            return None
        attr, _text = found
        command = getattr(importlib.import_module(f"{__package__}.{cmd_name}"), attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section(_("Commands")):
            formatter.write_dl([(name, _(text)) for name, (_attr, text) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="DUBAN_CONFIG", default=None,
              help="config.toml to use (default: $DUBAN_CONFIG, else ./config.toml, else built-in defaults).")
@click.option("--lang", metavar="LANG", default=None, expose_value=False,
              help="Language of messages: zh (the default) or en; else DUBAN_LANG, LC_ALL, LC_MESSAGES, LANG.")
@click.version_option(__version__, prog_name="duban")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """duban (督办): rectification ledgers, workflows and deadline reminders."""
    from .context import App

    ctx.obj = App(config_path)


def _database_error(exc: BaseException) -> tuple[list[str], int] | None:
    """A SQLAlchemy error as lines and an exit code (SQLAlchemy is only loaded by the commands)."""
    exc_module = sys.modules.get("sqlalchemy.exc")
    if exc_module is None or not isinstance(exc, exc_module.SQLAlchemyError):
        return None
    if isinstance(exc, exc_module.OperationalError):
        return [_("database error: {error}").format(error=exc.orig),
                _("check [database] url in config.toml or DUBAN_DATABASE_URL")], EXIT_BAD_INPUT
    return [_("database error: {error}").format(error=exc)], 1


EXIT_SOFTWARE = 70  # sysexits EX_SOFTWARE: an internal error


class LogFormatter(logging.Formatter):
    """``LEVEL: message`` in the chosen language: the %-format string through the catalogue first."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return _("{level}: {message}").format(level=_(record.levelname), message=record.message)

    def format(self, record: logging.LogRecord) -> str:
        if isinstance(record.msg, str):
            record = logging.makeLogRecord({**record.__dict__, "msg": _(record.msg)})
        return super().format(record)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user mistakes print a message and an exit code, never a traceback."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING)
        logging.getLogger().handlers[0].setFormatter(LogFormatter())
    # httpx logs every request's full URL at INFO: robot URLs carry their access token
    logging.getLogger("httpx").setLevel(logging.WARNING)
    language.start(sys.argv[1:] if argv is None else argv)
    try:
        code: Any = cli.main(args=argv, prog_name="duban", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except DubanError as exc:
        show_error(exc)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        error_lines([_("aborted")])
        return 1
    except click.ClickException as exc:
        # ours are English; click's own came through the catalogue (message is Final to type checkers)
        setattr(exc, "message", translate(exc.message))  # noqa: B010
        exc.show()
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the user gave: missing folder, no permission, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        error_lines([f"{where}{translate(exc.strerror or str(exc))}"])
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - the last guard: anything else is a bug, reported as one
        handled = _database_error(exc)
        if handled is not None:
            error_lines(handled[0])
            return handled[1]
        # A bug of ours, not a mistake of the user's: one line for them, the traceback in a file.
        report = _crash_report(argv)
        error_lines([_("internal error: {error}").format(error=f"{type(exc).__name__}: {str(exc)[:300]}"),
                     _("this is a bug in duban; the details for its maintainers are in {path}").format(path=report)])
        return EXIT_SOFTWARE


def _crash_report(argv: list[str] | None) -> str:
    """Write the traceback of the exception being handled to a file; its path (or why not)."""
    import tempfile
    import traceback

    text = f"duban {' '.join(argv if argv is not None else sys.argv[1:])}\n\n{traceback.format_exc()}"
    try:
        fd, path = tempfile.mkstemp(prefix="duban-internal-error-", suffix=".log")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        return f"(no file: {exc.strerror or exc})"
    logging.getLogger("duban").debug("internal error, traceback in %s", path)
    return path


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
