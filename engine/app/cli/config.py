"""``duban config``: write a commented config.toml (init) and check the one in use (check)."""

from __future__ import annotations

from pathlib import Path

import click

from notifications.channels.base import platform_of
from notifications.settings import Notify

from ...accounts.users import acting_accounts, reviewer_names
from ...duties.book import active_owners
from ...errors import BadInput, ConfigError, Refused
from ...issues.queries import named_people
from ...workflow.schema import BUILTIN_ACTORS
from ..notifying import build_notifier
from .context import App, pass_app
from .language import Group
from .output import say


@click.group("config", cls=Group)
def config_group() -> None:
    """Configuration."""


@config_group.command("init")
@click.argument("folder", type=click.Path(path_type=Path, file_okay=False))
def config_init(folder: Path) -> None:
    """Write FOLDER/config.toml (commented) and editable copies of the shipped workflows, duties,
    routing and example ledgers; then `export DUBAN_CONFIG=FOLDER/config.toml` and `duban init`."""
    from ... import shipped

    target = folder.resolve()
    try:
        written = shipped.write_project(target, database_url=f"sqlite:///{target / 'duban.db'}")
    except FileExistsError as exc:
        raise Refused(f"{exc}: already exists; nothing was written",
                      hint="edit it, or choose another folder") from None
    except OSError as exc:
        raise BadInput(f"{target}: cannot write there ({exc.strerror or exc})") from None
    for path in written:
        say(f"wrote {path}")
    say(f"next: export DUBAN_CONFIG={target / 'config.toml'} && duban init")


@config_group.command("check")
@pass_app
def config_check(app: App) -> None:
    """Check config.toml: channels, secrets in the environment, and recipients nobody can reach."""
    notifier = build_notifier(app.runtime, app.sessions)
    notify = notifier.notify
    problems: list[str] = []
    for channel in notify.build_channels().values():
        problems += channel.check()
    names: set[str] = set()
    with app.transaction() as session:
        # a ledger's names are heard within its unit: 区教委's 办公室 is not 区审计局's
        people = named_people(session)
        names.update(active_owners(session))
        for version in app.registry.files().values():
            for esc in version.definition.reminders.escalations:
                names.update(esc.add)
            for ms in version.definition.milestones:
                names.update(ms.recipients)
            for st in version.definition.states:  # the roles a state names as its actor
                names.update(a for a in st.actor if a not in BUILTIN_ACTORS)
        names.update(reviewer_names(session))
    for r in notifier.routes:
        names.update(r.add)
        names.update(r.replace or [])
    names.update(app.config.workflows.admins)
    people.update(("", name) for name in names)
    with app.transaction() as session:  # who hears each name, and their accounts' addresses too
        for unit, name in sorted(people):
            hearing = notifier.pipeline.people(session, name, unit=unit)
            if not notifier.pipeline.addresses_of(session, hearing):
                where = f" of {unit}" if unit else ""
                problems.append(f"recipient {name!r}{where} has no address on any channel: add "
                                f"[recipients.\"{f'{unit}/{name}' if unit else name}\"] or the account's e-mail/IM id")
    problems += notifier.renderer.check()
    for line in _without_im_ids(app, notify):
        say(f"warning: {line}")
    for line in problems:
        say(f"problem: {line}")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the configuration")
    say(f"configuration ok: {len(notify.channel_settings)} channel(s), {len(people)} recipient(s) reachable")


def _without_im_ids(app: App, notify: Notify) -> list[str]:
    """Per app channel, the enabled accounts that act (leader, department, reviewer) but have no id
    on its platform: their notices go elsewhere or nowhere until someone fills it in."""
    lines = []
    with app.transaction() as session:
        acting = acting_accounts(session)
    for channel, settings in notify.channel_settings.items():
        kind = str(settings.get("kind", ""))
        platform = platform_of(kind)
        if platform is None:
            continue
        missing = [name for name, im in acting
                   if not (im or {}).get(platform) and channel not in notify.recipients.get(name, {})]
        if missing:
            shown = ", ".join(missing[:20]) + (f" and {len(missing) - 20} more" if len(missing) > 20 else "")
            lines.append(f"channel {channel!r} ({kind}): {len(missing)} account(s) without a {platform} id: {shown}")
    return lines
