"""``duban``: the command group and the one place errors become exit codes."""

from __future__ import annotations

import logging
import sys

import click
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .. import __version__
from ..errors import EXIT_BAD_INPUT, DubanError
from . import daemon_cmds, db_cmds, issue_cmds, ledger_cmds, notify_cmds, remind_cmds, report_cmds, workflow_cmds
from .app import App
from .output import error_lines


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="DUBAN_CONFIG", default=None,
              help="config.toml to use (default: $DUBAN_CONFIG, else ./config.toml, else built-in defaults).")
@click.version_option(__version__, prog_name="duban")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """duban (督办): rectification ledgers, workflows and deadline reminders."""
    ctx.obj = App(config_path)


for module in (db_cmds, workflow_cmds, ledger_cmds, issue_cmds, remind_cmds, notify_cmds, daemon_cmds, report_cmds):
    module.register(cli)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user mistakes print a message and an exit code, never a traceback."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    try:
        code = cli.main(args=argv, prog_name="duban", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except DubanError as exc:
        error_lines(exc.lines())
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        error_lines(["aborted"])
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except OperationalError as exc:
        error_lines([f"database error: {exc.orig}", "check [database] url in config.toml or DUBAN_DATABASE_URL"])
        return EXIT_BAD_INPUT
    except SQLAlchemyError as exc:
        error_lines([f"database error: {exc}"])
        return 1
    except BrokenPipeError:
        return 0
    except OSError as exc:  # a path the user gave: missing folder, no permission, disk full
        where = f"{exc.filename}: " if exc.filename else ""
        error_lines([f"{where}{exc.strerror or exc}"])
        return EXIT_BAD_INPUT


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
