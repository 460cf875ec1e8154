"""Following up what the platforms report after a send: "sent but not delivered to N of M".

A message whose send returned a ``Receipt`` has a ``delivery_reports`` row (written with the send's
outcome, ``notifications.recording``). When the platform reports later (DingTalk's
``getsendresult``, asked with the row's ``task`` once ``check_at`` has come), ``follow_up`` asks
its channel and keeps what it learns; an answer not ready yet, or a failed call, asks again later,
for as long as the platform keeps results (DingTalk: 24 hours). ``outbox list`` and ``/metrics``
read the rows (``gaps``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from engine.store.db import transaction
from notifications.channels.base import Channel, DeliveryError
from notifications.recording import FOLLOW_UP_AFTER, report_values
from notifications.store import DeliveryReport, OutboxMessage

log = logging.getLogger("duban.outbox")

KEPT_FOR = dt.timedelta(hours=24)  # DingTalk answers getsendresult for tasks of the last 24 hours


@dataclass(frozen=True)
class Gap:
    """A message sent but not delivered to ``missed`` of ``recipients`` (so far, if ``pending``)."""

    recipients: int
    missed: int
    missed_ids: tuple[str, ...]
    reason: str
    pending: bool

    def summary(self) -> str:
        if self.missed:
            why = f"（{self.reason}）" if self.reason else ""
            return f"已发出，但 {self.recipients} 人中 {self.missed} 人未收到{why}"
        return "已发出，等待平台回报送达情况" if self.pending else f"已送达 {self.recipients} 人"


def gap_of(report: DeliveryReport) -> Gap:
    return Gap(report.recipients, report.missed, tuple(x for x in report.missed_ids.split("|") if x),
               report.reason, report.task is not None)


def gaps(session: Session, message_ids: list[int]) -> dict[int, Gap]:
    """The reports of some outbox messages, by message id."""
    if not message_ids:
        return {}
    rows = session.scalars(select(DeliveryReport).where(DeliveryReport.message_id.in_(message_ids)))
    return {row.message_id: gap_of(row) for row in rows}


def missed_by_platform(session: Session) -> dict[str, tuple[int, int]]:
    """Per platform: (messages sent but not delivered to someone, people they missed)."""
    rows = session.execute(
        select(DeliveryReport.platform, func.count(), func.coalesce(func.sum(DeliveryReport.missed), 0))
        .where(DeliveryReport.missed > 0).group_by(DeliveryReport.platform)).all()
    return {platform: (int(messages), int(people)) for platform, messages, people in rows}


def follow_up(sessions: sessionmaker[Session], channels: Mapping[str, Channel], now: dt.datetime,
              *, batch: int = 50) -> int:
    """Ask the platforms about the reports due at ``now``; how many became final."""
    with transaction(sessions) as session:
        due = session.execute(
            select(DeliveryReport.message_id, DeliveryReport.task, DeliveryReport.reported_at,
                   DeliveryReport.recipients, OutboxMessage.channel)
            .join(OutboxMessage, OutboxMessage.id == DeliveryReport.message_id)
            .where(DeliveryReport.check_at <= now, DeliveryReport.task.is_not(None))
            .order_by(DeliveryReport.check_at).limit(batch)).all()
    final = 0
    for message_id, task, reported_at, recipients, channel_name in due:
        channel = channels.get(channel_name)
        receipt = None
        if channel is not None and task is not None:
            try:
                receipt = channel.follow_up(task)
            except DeliveryError as exc:
                log.warning("outbox message %s: delivery result not available: %s", message_id, exc.message)
            except Exception:  # one odd answer must not stop the delivery loop; it is asked again later
                log.exception("outbox message %s: asking for the delivery result failed", message_id)
        with transaction(sessions) as session:
            row = session.get(DeliveryReport, message_id, with_for_update=True)
            if row is None:
                continue
            if receipt is not None:
                values = report_values(message_id, receipt, now)
                for name in ("missed", "missed_ids", "reason", "task", "check_at", "reported_at"):
                    setattr(row, name, values[name])
                row.recipients = max(recipients, receipt.recipients)
                final += 1
                if receipt.missed:
                    log.warning("outbox message %s via %r: not delivered to %s of %s (%s)", message_id,
                                channel_name, len(receipt.missed), row.recipients, receipt.reason)
            elif channel is None or now - reported_at > KEPT_FOR:
                row.task, row.check_at = None, None  # nobody can tell any more: what we know stays
            else:
                row.check_at = now + FOLLOW_UP_AFTER
    return final
