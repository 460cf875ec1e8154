"""systemd and ``duban run``: the unit, rendered with this installation's paths and installed,
and the sd_notify messages the daemon sends (READY, STATUS, WATCHDOG, STOPPING, RELOADING).

``packaging/duban.service`` is this template rendered with example paths (a test keeps the two
equal), for people who install by hand or from a package.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
USER_UNIT_DIR = Path("~/.config/systemd/user")

TEMPLATE = """\
# duban (督办) daemon: sweeps deadlines, routes reminders and delivers them.
# Install with `duban --config PATH service install`; reload with `systemctl reload {name}`.
[Unit]
Description=duban (督办) deadline reminder daemon
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
WorkingDirectory={working_directory}
# Secrets (database password, SMTP password, robot secrets) go here as VAR=value lines;
# config.toml only names the variables.
EnvironmentFile=-{environment_file}
Environment=PYTHONUNBUFFERED=1
{user_line}\
# The daemon pings the watchdog from its scheduler: a hung scheduler gets the process restarted.
WatchdogSec=60
Restart=on-failure
RestartSec=5
# Exit code 2 is a mistake a restart cannot fix (bad config, no schema, a second daemon on SQLite).
RestartPreventExitStatus=2
# SIGTERM: stop claiming, finish the message in hand, exit within [daemon] stop_timeout (8 s).
TimeoutStopSec=15
NoNewPrivileges=yes
PrivateTmp=yes
# Each HTTP connection holds a file descriptor: room for many idle ones besides the database's.
LimitNOFILE=65536

[Install]
WantedBy={wanted_by}
"""


@dataclass(frozen=True)
class UnitSpec:
    executable: Path  # the duban console script of the venv
    config: Path
    user: bool = False  # a user unit (systemctl --user) rather than a system one
    run_as: str | None = None  # User= for a system unit
    group: str | None = None  # Group= for a system unit (default: the user's own group)
    name: str = "duban"

    @property
    def file_name(self) -> str:
        return f"{self.name}.service"


def _quote(arg: str) -> str:
    # systemd splits ExecStart= on whitespace unless quoted; "%" starts a specifier.
    arg = arg.replace("%", "%%")
    if any(ch.isspace() for ch in arg) or '"' in arg or "\\" in arg:
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def render(spec: UnitSpec) -> str:
    config = spec.config
    exec_start = " ".join(_quote(a) for a in (str(spec.executable), "--config", str(config), "run"))
    return TEMPLATE.format(
        name=spec.name,
        exec_start=exec_start,
        # Single-path settings take the rest of the line as is: no quoting, only "%" escaped.
        working_directory=str(config.parent).replace("%", "%%"),
        environment_file=str(config.parent / "duban.env").replace("%", "%%"),
        user_line=_user_lines(spec),
        wanted_by="default.target" if spec.user else "multi-user.target",
    )


def _user_lines(spec: UnitSpec) -> str:
    if spec.user or not spec.run_as:
        return ""
    return f"User={spec.run_as}\nGroup={spec.group or spec.run_as}\n"


def example() -> str:
    """What packaging/duban.service holds: the unit for the documented example layout."""
    return render(UnitSpec(Path("/opt/duban/.venv/bin/duban"), Path("/etc/duban/config.toml"), run_as="duban",
                           group="duban"))


def unit_folder(spec: UnitSpec, unit_dir: Path | None) -> Path:
    return (unit_dir or (USER_UNIT_DIR if spec.user else SYSTEM_UNIT_DIR)).expanduser()


def needs_consent(folder: Path) -> bool:
    """Writing under /etc changes the machine's configuration: asked for, never assumed."""
    resolved = folder.resolve()
    return resolved == Path("/etc") or Path("/etc") in resolved.parents


def account_missing(user: str, group: str) -> tuple[bool, bool]:
    """(user missing, group missing) on this machine."""
    import grp
    import pwd

    def absent(lookup: Callable[[str], object], name: str) -> bool:
        try:
            lookup(name)
        except KeyError:
            return True
        return False

    return absent(pwd.getpwnam, user), absent(grp.getgrnam, group)


def account_commands(user: str, group: str, home: Path) -> list[list[str]]:
    """The commands that make a system account for the daemon: no login shell, no home of its own."""
    user_missing, group_missing = account_missing(user, group)
    commands = []
    if group_missing:
        commands.append(["groupadd", "--system", group])
    if user_missing:
        commands.append(["useradd", "--system", "--gid", group, "--home-dir", str(home), "--no-create-home",
                         "--shell", "/usr/sbin/nologin", "--comment", "duban daemon", user])
    return commands


def this_executable() -> Path:
    """The ``duban`` script beside the running interpreter (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "duban"
    if beside.is_file():
        return beside.absolute()  # not resolve(): a venv's python is often a symlink to /usr/bin
    found = shutil.which("duban")
    if found:
        return Path(found).absolute()
    return Path(sys.argv[0]).absolute()


def install(spec: UnitSpec, unit_dir: Path | None = None) -> Path:
    """Write the unit file; returns its path."""
    folder = unit_folder(spec, unit_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / spec.file_name
    path.write_text(render(spec), encoding="utf-8")
    return path


def next_steps(spec: UnitSpec, path: Path) -> list[str]:
    """The systemctl commands to run after installing."""
    ctl = "systemctl --user" if spec.user else "systemctl"
    journal = "journalctl --user" if spec.user else "journalctl"
    steps = [f"{ctl} daemon-reload", f"{ctl} enable --now {spec.file_name}", f"{ctl} status {spec.name}",
             f"{journal} -u {spec.name} -f", f"{ctl} reload {spec.name}    # after editing config.toml or YAML"]
    if spec.user:
        steps.append("loginctl enable-linger $USER    # keep it running after you log out")
    if path.parent not in (SYSTEM_UNIT_DIR, USER_UNIT_DIR.expanduser()):
        steps.insert(0, f"# {path} is not in a folder systemd reads; link it: {ctl} link {path}")
    return steps


class SystemdNotify:
    """sd_notify through the ``sdnotify`` package; silent when not started by systemd."""

    def __init__(self) -> None:
        self._notifier = None
        if os.environ.get("NOTIFY_SOCKET"):
            import sdnotify  # only under systemd

            self._notifier = sdnotify.SystemdNotifier()

    def send(self, *assignments: str) -> None:
        if self._notifier is not None:
            # sdnotify encodes latin-1; STATUS text is kept ASCII so nothing is dropped silently.
            self._notifier.notify("\n".join(a.encode("ascii", "replace").decode() for a in assignments))

    @staticmethod
    def watchdog_seconds() -> float | None:
        """Half the period systemd expects pings in, or None without ``WatchdogSec``."""
        usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
        if not usec or not usec.isdigit() or (pid and pid != str(os.getpid())):
            return None
        return int(usec) / 2e6
