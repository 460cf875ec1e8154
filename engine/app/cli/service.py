"""``duban service install``: the systemd unit for ``duban run``."""

from __future__ import annotations

from pathlib import Path

import click

from ...errors import BadInput
from ..service_unit import UnitSpec, install, next_steps, this_executable
from .context import App, pass_app
from .output import say


@click.group("service")
def service_group() -> None:
    """The systemd unit for `duban run`."""


@service_group.command("install")
@click.option("--unit-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Where to write the unit (default /etc/systemd/system, or ~/.config/systemd/user with --user).")
@click.option("--user", "user", is_flag=True, help="A user unit (systemctl --user) instead of a system one.")
@click.option("--run-as", metavar="USER", help="User= for a system unit (default: root).")
@click.option("--name", default="duban", show_default=True, help="Unit name.")
@pass_app
def service_install(app: App, unit_dir: Path | None, user: bool, run_as: str | None, name: str) -> None:
    """Write a systemd unit running this duban with this config, and print the systemctl commands."""
    source = app.config.source
    if source is None:
        raise BadInput("no config file: the unit needs one", hint="pass --config PATH (or set DUBAN_CONFIG)")
    spec = UnitSpec(this_executable(), source, user=user, run_as=run_as, name=name)
    try:
        path = install(spec, unit_dir)
    except PermissionError as exc:
        raise BadInput(f"cannot write the unit: {exc}", hint="run as root, or use --user or --unit-dir") from None
    say(f"wrote {path}")
    say(f"  ExecStart={spec.executable} --config {spec.config} run")
    say("next:")
    for step in next_steps(spec, path):
        say(f"  {step}")
