"""``duban service install``: the systemd unit for ``duban run``."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import click

from ...errors import BadInput, Refused
from ...i18n import translate
from ..service_unit import UnitSpec, account_commands, install, needs_consent, next_steps, this_executable, unit_folder
from .context import App, pass_app
from .language import Group
from .output import say


@click.group("service", cls=Group)
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
        if not click.confirm(translate(f"write {folder / spec.file_name}?"), default=False):
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
