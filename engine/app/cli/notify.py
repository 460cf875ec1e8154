"""``duban notify test``: one test message through a channel, to the address reminders would use."""

from __future__ import annotations

import datetime as dt

import click

from notifications.channels.base import DeliveryError, channel_class, platform_of
from notifications.message import OutgoingMessage

from ...accounts.links import workspace_link
from ...accounts.users import find_user
from ...errors import BadInput, ConfigError
from ..notifying import build_notifier
from .context import App, pass_app
from .language import Group
from .output import say


@click.group("notify", cls=Group)
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
    notifier = build_notifier(app.runtime, app.sessions)
    notify = notifier.notify
    if channel not in notify.channel_settings:
        raise BadInput(f"no channel {channel!r}", hint=f"channels: {', '.join(notify.channel_settings) or 'none'}")
    now = dt.datetime.now(dt.UTC)
    with app.transaction() as session:
        account = find_user(session, user)  # a login name, or the one account people call so
        hearing = [account.name] if account is not None else notifier.pipeline.people(session, user)
        address = notifier.pipeline.addresses_of(session, hearing).get(channel)
        kind = notify.channel_settings[channel].get("kind", "")
        # a group robot or a webhook is read by others: no one's signed link goes there
        link = workspace_link(session, user, now, app.config.board.base_url, days=app.config.workspace.link_days) \
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
