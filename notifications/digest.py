"""What one recipient is told at one time: ``Digest`` and its ``DigestItem``s, in urgency order.

``URGENCY`` is the section order, most urgent first; ``urgency_key`` orders items within and
across sections. ``fold_hosts`` picks, for each ledger whose per-item reminders an escalation
inhibited (``Digest.folded``), the item they hang under, and ``hints`` picks the examples of the
closing "how to record progress" lines. Rendering them is ``notifications.render``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

# Section order, most urgent first; the subject counts and the body sections follow it.
URGENCY = ("escalation", "overdue", "due", "checkin", "duty", "before")

_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class DigestItem:
    """One reminder as the reader sees it."""

    kind: str  # before | due | overdue | escalation | duty | checkin
    rule: str  # before-5, due, overdue, escalate-first-responsible…
    subject: str  # "LEDGER/序号" or a duty key
    title: str
    ledger: str | None
    ref: str | None  # 序号
    due: dt.date | None
    days_overdue: int
    level: int  # 0: not escalated; N: the number of escalations reached
    period: str | None = None  # a duty occurrence's period, e.g. 2026-Q3
    item_template: str | None = None  # a rule's override of the item line (Jinja source, from YAML)
    what: str = ""  # the deadline's own title: 制定整改方案, 整改时限, 报送整改情况报告
    actions: tuple[str, ...] = ()  # the next steps the workflow offers from the state
    url: str | None = None  # the item's page, where [board] public_url is set

    def __post_init__(self) -> None:
        # An unknown kind would have no section and silently vanish from the message.
        if self.kind not in URGENCY:
            raise ValueError(f"DigestItem.kind must be one of {', '.join(URGENCY)}, not {self.kind!r}")


@dataclass(frozen=True)
class Digest:
    """Everything one recipient gets on one channel at one time."""

    recipient: str
    channel_kind: str  # email | webhook | dingtalk | wecom | feishu | console | file
    generated_at: dt.datetime  # aware
    tz: ZoneInfo
    items: list[DigestItem]  # any order: the renderer orders them
    # ledger name -> per-item reminders inhibited by that ledger's escalation: shown under it
    folded: dict[str, list[DigestItem]] = field(default_factory=dict)
    # the recipient's signed workspace link ("去处理"), when they have an account and
    # [board] public_url is set: it opens their items without a password
    workspace_url: str | None = None

    def __post_init__(self) -> None:
        # A naive time would be printed as if it were local wherever the process happens to run.
        if self.generated_at.tzinfo is None or self.generated_at.utcoffset() is None:
            raise ValueError("Digest.generated_at must be timezone-aware")


def urgency_key(item: DigestItem) -> tuple[Any, ...]:
    """Sort key: section, then within it what needs attention first.

    Escalations: higher level, then longer overdue; overdue: longer overdue; the rest: nearest due.
    Ties fall back to ledger and 序号 in their natural order (序号 9 before 10).
    """
    section = URGENCY.index(item.kind)
    if item.kind == "escalation":
        within: tuple[int, ...] = (-item.level, -item.days_overdue)
    elif item.kind == "overdue":
        within = (-item.days_overdue,)
    else:
        within = ()
    return (section, *within, item.due or dt.date.max, item.ledger or "", _natural(item.ref),
            item.subject, item.period or "", item.rule)


def _natural(ref: str | None) -> tuple[Any, ...]:
    # 序号 are written "7", "12", "3-1": compare the numbers as numbers.
    if ref is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(ref) if p)


# -- folding and hints -----------------------------------------------------------------------


def fold_hosts(items: list[DigestItem], folded: dict[str, list[DigestItem]]) -> dict[str, DigestItem]:
    """For each folded ledger, the item its reminders hang under (``items`` in urgency order).

    The natural host is the ledger-level reminder (no 序号, e.g. the overdue rectification report),
    escalated or merely overdue: that is what inhibits the per-item nags. Failing that, the most
    urgent escalation of the ledger, so the folded items still sit with what stands for them.
    """
    hosts: dict[str, DigestItem] = {}
    for ledger in folded:
        pressing = [i for i in items if i.ledger == ledger and i.kind in ("escalation", "overdue")]
        whole = [i for i in pressing if i.ref is None]
        escalations = [i for i in pressing if i.kind == "escalation"]
        if whole or escalations:
            hosts[ledger] = (whole or escalations)[0]
    return hosts


def hints(items: Iterable[DigestItem], folded: dict[str, list[DigestItem]]) -> dict[str, Any]:
    """Examples taken from the digest for the closing "how to record progress" lines."""
    every = [*items, *(i for group in folded.values() for i in group)]
    issue = next((i.subject for i in every if i.ref is not None and i.kind != "checkin"), None)
    checkin = next((i.subject for i in every if i.kind == "checkin"), None)
    duty = next(({"key": i.subject, "period": i.period} for i in every if i.period is not None), None)
    return {"issue": issue, "checkin": checkin, "duty": duty}

