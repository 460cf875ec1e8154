"""Silences (``duban snooze``): no reminders for an issue, a duty, a department or a ledger until a
date. The pipeline skips what they cover; the doors add, list and lift them here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from notifications.store import Silence, SilenceTarget


@dataclass(frozen=True)
class SilenceRow:
    id: int
    kind: str
    target: str
    until: dt.datetime
    reason: str
    by: str
    active: bool


def add_silence(session: Session, kind: SilenceTarget | str, target: str, *, until: dt.datetime, reason: str,
                by: str, now: dt.datetime) -> int:
    """Store a silence (its target already checked by the caller); its id."""
    silence = Silence(target_kind=SilenceTarget(kind), target=target, until=until, reason=reason, created_by=by,
                      created_at=now)
    session.add(silence)
    session.flush()
    return silence.id


def silences(session: Session, now: dt.datetime, *, show_all: bool = False) -> list[SilenceRow]:
    """The silences active at ``now`` (every one with ``show_all``), oldest first."""
    stmt = select(Silence).order_by(Silence.id)
    if not show_all:
        stmt = stmt.where(Silence.until > now, Silence.lifted_at.is_(None))
    return [SilenceRow(s.id, str(s.target_kind), s.target, s.until, s.reason, s.created_by,
                       s.lifted_at is None and s.until > now) for s in session.scalars(stmt)]


def lift_silence(session: Session, silence_id: int, now: dt.datetime) -> None:
    silence = session.get(Silence, silence_id)
    if silence is None:
        raise NotFound(f"no silence {silence_id}")
    silence.lifted_at = now
