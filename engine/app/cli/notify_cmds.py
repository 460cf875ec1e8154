"""``duban outbox``, ``duban snooze``, ``duban notify test`` and ``duban config check``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from rich.table import Table
from sqlalchemy import select

from notifications.channels.base import DeliveryError, channel_class, platform_of
from notifications.message import OutgoingMessage
from notifications.outbox import Outbox
from notifications.service import Notifier
from notifications.settings import Notify
from notifications.store import OutboxMessage, Silence

from ...accounts.links import workspace_link
from ...accounts.users import acting_accounts, find_user, reviewer_names
from ...clock import parse_date
from ...duties.book import active_owners, duty_known
from ...errors import BadInput, ConfigError, NotFound, Refused
from ...issues.queries import department_named, find_ledger, issue_ref, named_people, resolve_ref
from ...workflow.schema import BUILTIN_ACTORS
from ..notifying import build_notifier
from .context import App, at_option, json_option, pass_app
from .output import out, print_json, say


def _notifier(app: App) -> Notifier:
    return build_notifier(app.runtime, app.sessions)


@click.group("outbox")
def outbox_group() -> None:
    """Messages queued, sent, failed (dead letters) and undeliverable."""


@outbox_group.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "dead", "undeliverable"]),
              help="Only this status ('failed' means dead letters).")
@click.option("--limit", default=200, show_default=True, type=click.IntRange(1, 100_000))
@json_option
@pass_app
def outbox_list(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """List outbox messages, newest first."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxMessage.status == ("dead" if status == "failed" else status))
    tz = app.config.tz
    with app.transaction() as session:
        rows = [{"id": m.id, "key": m.key, "status": m.status, "channel": m.channel, "recipient": m.recipient,
                 "address": m.address, "subject": m.subject, "attempts": m.attempts, "last_error": m.last_error,
                 "next_attempt_at": m.next_attempt_at.astimezone(tz).isoformat() if m.next_attempt_at else None,
                 "sent_at": m.sent_at.astimezone(tz).isoformat() if m.sent_at else None,
                 "created_at": m.created_at.astimezone(tz).isoformat()} for m in session.scalars(stmt)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "status", "channel", "recipient", "attempts", "next / sent", "subject / error")
    for r in rows:
        table.add_row(str(r["id"]), str(r["status"]), str(r["channel"] or "—"), str(r["recipient"]), str(r["attempts"]),
                      str(r["sent_at"] or r["next_attempt_at"] or "")[:16], str(r["last_error"] or r["subject"]))
    out.print(table)
    say(f"{len(rows)} message(s)")


@outbox_group.command("retry")
@click.argument("message_id", type=click.IntRange(1, 2**63 - 1))
@at_option
@pass_app
def outbox_retry(app: App, message_id: int, at: str | None) -> None:
    """Put a dead or undeliverable message back in the queue; the next sweep delivers it."""
    now = app.now(at)
    with app.transaction() as session:
        message = Outbox.retry(session, message_id, now)
    say(f"message {message.id} to {message.recipient} via {message.channel or '—'}: queued again")


@click.group("snooze")
def snooze_group() -> None:
    """Silence reminders for an issue, a duty, a department or a ledger until a date."""


@snooze_group.command("add")
@click.option("--issue", "issue", metavar="REF")
@click.option("--duty", "duty", metavar="KEY")
@click.option("--department", "department", metavar="NAME")
@click.option("--ledger", "ledger", metavar="NAME")
@click.option("--until", "until", required=True, metavar="DATE", help="Reminders resume on this date.")
@click.option("--reason", required=True)
@click.option("--by", required=True)
@at_option
@pass_app
def snooze_add(app: App, issue, duty, department, ledger, until: str, reason: str, by: str, at: str | None) -> None:
    """Add a silence; it expires by itself."""
    given = [(k, v) for k, v in (("issue", issue), ("duty", duty), ("department", department), ("ledger", ledger)) if v]
    if len(given) != 1:
        raise BadInput("say what to silence: exactly one of --issue, --duty, --department, --ledger")
    kind, target = given[0]
    now = app.now(at)
    resume = parse_date(until)
    until_at = dt.datetime.combine(resume, dt.time(0), tzinfo=app.config.tz).astimezone(dt.UTC)
    if until_at <= now:
        raise BadInput(f"--until {until} is not in the future")
    with app.transaction() as session:
        by = app.actor(session, by).name
        if kind == "issue":
            target = issue_ref(resolve_ref(session, target))
        elif kind == "ledger":
            find_ledger(session, target)
        elif kind == "duty" and not duty_known(session, target):
            raise NotFound(f"no duty {target!r}")
        elif kind == "department" and not department_named(session, target):
            raise NotFound(f"no issue has the department {target!r}")
        silence = Silence(target_kind=kind, target=target, until=until_at, reason=reason, created_by=by, created_at=now)
        session.add(silence)
        session.flush()
        sid = silence.id
    say(f"silence {sid}: {kind} {target} until {resume} ({reason})")


@snooze_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired and lifted silences.")
@at_option
@json_option
@pass_app
def snooze_list(app: App, show_all: bool, at: str | None, as_json: bool) -> None:
    """Active silences (or all of them)."""
    now = app.now(at)
    tz = app.config.tz
    with app.transaction() as session:
        stmt = select(Silence).order_by(Silence.id)
        if not show_all:
            stmt = stmt.where(Silence.until > now, Silence.lifted_at.is_(None))
        rows = [{"id": s.id, "kind": s.target_kind, "target": s.target, "until": s.until.astimezone(tz).date().isoformat(),
                 "reason": s.reason, "by": s.created_by,
                 "active": s.lifted_at is None and s.until > now} for s in session.scalars(stmt)]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "kind", "target", "until", "reason", "by", "active")
    for r in rows:
        table.add_row(str(r["id"]), str(r["kind"]), str(r["target"]), str(r["until"]), str(r["reason"]), str(r["by"]),
                      "yes" if r["active"] else "no")
    out.print(table)


@snooze_group.command("lift")
@click.argument("silence_id", type=click.IntRange(1, 2**63 - 1))
@at_option
@pass_app
def snooze_lift(app: App, silence_id: int, at: str | None) -> None:
    """End a silence now."""
    with app.transaction() as session:
        silence = session.get(Silence, silence_id)
        if silence is None:
            raise NotFound(f"no silence {silence_id}")
        silence.lifted_at = app.now(at)
    say(f"silence {silence_id} lifted")


@click.group("notify")
def notify_group() -> None:
    """Notification channels."""


@notify_group.command("test")
@click.argument("channel")
@click.argument("user")
@pass_app
def notify_test(app: App, channel: str, user: str) -> None:
    """Send one real test notice to USER (an account or a [recipients] name) through CHANNEL now.

    USER's address is what reminders use: [recipients."USER"], else the account's e-mail or IM id
    (or its members'). An app channel's card carries USER's signed workspace link as its button."""
    notifier = _notifier(app)
    notify = notifier.notify
    if channel not in notify.channel_settings:
        raise BadInput(f"no channel {channel!r}", hint=f"channels: {', '.join(notify.channel_settings) or 'none'}")
    now = dt.datetime.now(dt.UTC)
    public_url = str(app.config.board.get("public_url") or "")
    with app.transaction() as session:
        account = find_user(session, user)  # a login name, or the one account people call so
        hearing = [account.name] if account is not None else notifier.pipeline.people(session, user)
        address = notifier.pipeline.addresses_of(session, hearing).get(channel)
        kind = notify.channel_settings[channel].get("kind", "")
        # a group robot or a webhook is read by others: no one's signed link goes there
        link = workspace_link(session, user, now, public_url, days=app.config.workspace.link_days) \
            if address is not None and channel_class(str(kind)).reaches_one(address) else None
    if address is None:
        platform = platform_of(str(kind))
        hint = (f"give the account a {platform} id (duban user import with a {platform} column)"
                if platform is not None else f"add {channel} = \"…\" to [recipients.\"{user}\"]")
        raise BadInput(f"{user!r} has no address on {channel!r}", hint=hint)
    ch = notifier.channels[channel]
    lines = [f"{user}：这是一条来自督办（duban）的测试消息。", "This is a test message from duban."]
    message = OutgoingMessage(key=f"test-{now:%Y%m%d%H%M%S}", recipient=user, address=address,
                              subject="【督办】测试消息 / duban test message", text="\n".join(lines),
                              data={"card": {"lines": lines, "total": len(lines), "link": link}})
    try:
        ch.send(message)
    except DeliveryError as exc:
        raise ConfigError(f"test message failed: {exc.message}",
                          hint="permanent: fix the channel settings" if exc.permanent else "transient: try again") from None
    finally:
        notifier.close()
    say(f"test message sent to {user} via {channel} ({address or 'group'})" + (f", button {link}" if link else ""))


@click.group("config")
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
    notifier = _notifier(app)
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
