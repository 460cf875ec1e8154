"""Duties in the store: occurrences stored ahead, ledger milestones, done and re-dated.

Occurrences are generated ``horizon_days`` ahead and are unique per (duty, period). The computed
``scheduled_due`` is kept apart from the editable ``due``. When a duty's definition changes, only
future occurrences nobody has touched (edited or done) are regenerated; the past and anything a
person acted on stay as they were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, delete, select
from sqlalchemy.orm import Session

from .deadlines import shift
from .duty_defs import DutyDef, LoadedDuty
from .errors import BadInput, NotFound, Refused
from .schedule import occurrences
from .store.models import Duty, DutyOccurrence, Issue, Ledger
from .store.upsert import insert_ignore
from .tracks import Tracker, issue_recipients
from .workflow.rules import Milestone, ReminderPolicy

ONCE = "once"


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    retired: int = 0
    occurrences: int = 0


class DutyBook:
    """Keeps the duties table in step with the YAML and the ledgers."""

    def __init__(self, tracker: Tracker, horizon_days: int = 400):
        self.tracker = tracker
        self.calendar = tracker.calendar
        self.horizon = dt.timedelta(days=horizon_days)

    # -- recurring duties ----------------------------------------------------------------------

    def sync(self, session: Session, loaded: list[LoadedDuty], now: dt.datetime) -> SyncResult:
        today = self.calendar.local_date(now)
        result = SyncResult()
        wanted = {d.definition.key: d.definition for d in loaded}
        existing = {d.key: d for d in session.scalars(select(Duty).where(Duty.kind == "recurring"))}
        for key, definition in wanted.items():
            duty = existing.get(key)
            digest = definition.content_hash()
            if duty is None:
                duty = Duty(key=key, title=definition.title, kind="recurring", owners=list(definition.owners),
                            spec=definition.model_dump(mode="json"), spec_hash=digest, active=True,
                            generated_until=None, created_at=now, updated_at=now)
                session.add(duty)
                session.flush()
                result.created += 1
            elif duty.spec_hash != digest or not duty.active:
                self._forget_future(session, duty, today)
                duty.title, duty.owners = definition.title, list(definition.owners)
                duty.spec, duty.spec_hash, duty.active, duty.updated_at = (
                    definition.model_dump(mode="json"), digest, True, now)
                duty.generated_until = min(duty.generated_until or today, today - dt.timedelta(days=1))
                result.updated += 1
            result.occurrences += self._generate(session, duty, definition, today, now)
        for key, duty in existing.items():
            if key not in wanted and duty.active:
                self._forget_future(session, duty, today)
                duty.active, duty.updated_at = False, now
                result.retired += 1
        return result

    def _forget_future(self, session: Session, duty: Duty, today: dt.date) -> None:
        session.execute(delete(DutyOccurrence).where(
            DutyOccurrence.duty_id == duty.id, DutyOccurrence.anchor >= today,
            DutyOccurrence.touched.is_(False), DutyOccurrence.state == "open"))

    def _generate(self, session: Session, duty: Duty, definition: DutyDef, today: dt.date,
                  now: dt.datetime) -> int:
        first = duty.generated_until is None
        start = today - dt.timedelta(days=366) if first else duty.generated_until + dt.timedelta(days=1)
        end = today + self.horizon
        if definition.for_each is not None:
            start = min(start, today)  # top up periods already generated with newly entered issues
        if start > end:
            return 0
        found = [o for o in occurrences(definition.spec(), start, end, self.calendar)
                 if not first or o.due >= today]  # a new duty does not start life overdue
        rows = []
        policy = definition.reminders
        issues: list[tuple[int, str]] = []
        if definition.for_each is not None:
            issues = [(i, f"{ledger}/{ref}") for i, ledger, ref in session.execute(
                select(Issue.id, Ledger.name, Issue.ref).join(Ledger).where(Issue.state == definition.for_each.state))]
        for occ in found:
            track = self.tracker.occurrence_track(occ.due, policy)
            nxt = self.tracker.planner.next_after(track, now)
            base = {"duty_id": duty.id, "anchor": occ.anchor, "scheduled_due": track.due, "due": track.due,
                    "state": "open", "touched": False, "note": "", "next_remind_at": nxt, "remind_after": now,
                    "created_at": now}
            if definition.for_each is None:
                rows.append({**base, "period": occ.period, "issue_id": None})
            else:
                rows.extend({**base, "period": f"{occ.period} {ref}", "issue_id": issue_id} for issue_id, ref in issues)
        if rows:
            stmt = insert_ignore(session, DutyOccurrence.__table__, ["duty_id", "period"])
            for i in range(0, len(rows), 1000):
                session.execute(stmt, rows[i:i + 1000])
        duty.generated_until = end
        return len(rows)

    # -- ledger milestones ---------------------------------------------------------------------

    def sync_milestones(self, session: Session, ledger: Ledger, milestones: list[Milestone],
                        default_policy: ReminderPolicy, now: dt.datetime) -> None:
        """One 'once' occurrence per milestone of the ledger's workflow, due from its feedback date."""
        if ledger.feedback_date is None:
            return
        for ms in milestones:
            key = f"{ledger.name}:{ms.name}"
            duty = session.scalar(select(Duty).where(Duty.key == key))
            policy = ms.reminders or default_policy
            spec = {"milestone": ms.model_dump(mode="json"), "policy": policy.model_dump(mode="json")}
            if duty is None:
                duty = Duty(key=key, title=ms.title, kind="milestone", owners=list(ms.recipients),
                            ledger_id=ledger.id, spec=spec, spec_hash="", active=True, created_at=now,
                            updated_at=now)
                session.add(duty)
                session.flush()
            due = self.tracker.planner.effective_due(shift(ledger.feedback_date, ms, self.calendar))
            occ = session.scalar(select(DutyOccurrence).where(DutyOccurrence.duty_id == duty.id))
            track = self.tracker.occurrence_track(due, policy)
            if occ is None:
                session.add(DutyOccurrence(duty_id=duty.id, period=ONCE, anchor=ledger.feedback_date,
                                           scheduled_due=due, due=due, state="open", touched=False, note="",
                                           next_remind_at=self.tracker.planner.next_after(track, now),
                                           remind_after=now, created_at=now))
            elif not occ.touched and occ.scheduled_due != due:
                occ.anchor, occ.scheduled_due, occ.due = ledger.feedback_date, due, due
                occ.next_remind_at = self.tracker.planner.next_after(track, now)

    # -- people acting on occurrences ----------------------------------------------------------

    def find(self, session: Session, key: str, period: str) -> DutyOccurrence:
        duty = session.scalar(select(Duty).where(Duty.key == key))
        if duty is None:
            known = session.scalars(select(Duty.key).where(Duty.active.is_(True)).order_by(Duty.key).limit(30)).all()
            raise NotFound(f"no duty {key!r}", hint=f"duties: {', '.join(known) or 'none'}")
        occ = session.scalar(select(DutyOccurrence).where(DutyOccurrence.duty_id == duty.id,
                                                          DutyOccurrence.period == period))
        if occ is None:
            periods = session.scalars(select(DutyOccurrence.period).where(DutyOccurrence.duty_id == duty.id)
                                      .order_by(DutyOccurrence.anchor).limit(12)).all()
            raise NotFound(f"duty {key!r} has no period {period!r}", hint=f"periods: {', '.join(periods) or 'none'}")
        return occ

    def done(self, session: Session, key: str, period: str, *, by: str, now: dt.datetime, note: str = "") -> DutyOccurrence:
        if not by.strip():
            raise BadInput("say who did it: --by WHO")
        occ = self.find(session, key, period)
        if occ.state == "done":
            raise Refused(f"{key} {period} was already done by {occ.done_by} at {occ.done_at.isoformat()}")
        occ.state, occ.touched, occ.done_at, occ.done_by, occ.note = "done", True, now, by, note
        occ.next_remind_at = None
        return occ

    def set_due(self, session: Session, key: str, period: str, due: dt.date, *, now: dt.datetime) -> DutyOccurrence:
        occ = self.find(session, key, period)
        occ.due, occ.touched, occ.remind_after = due, True, now
        policy = policy_of(occ.duty)
        occ.next_remind_at = None if occ.state == "done" else self.tracker.planner.next_after(
            self.tracker.occurrence_track(due, policy), now)
        return occ


def policy_of(duty: Duty) -> ReminderPolicy:
    if duty.kind == "milestone":
        return ReminderPolicy.model_validate(duty.spec["policy"])
    return DutyDef.model_validate(duty.spec).reminders


def occurrence_recipients(duty: Duty, issue_leader: str | None, issue_department: str | None,
                          added: tuple[str, ...] = ()) -> list[str]:
    return issue_recipients(issue_leader or "", issue_department or "", (*duty.owners, *added))


def list_occurrences(session: Session, start: dt.date, end: dt.date, today: dt.date) -> list[dict]:
    stmt = (select(DutyOccurrence, Duty).join(Duty)
            .where(and_(DutyOccurrence.due >= start, DutyOccurrence.due <= end))
            .order_by(DutyOccurrence.due, Duty.key, DutyOccurrence.period))
    out = []
    for occ, duty in session.execute(stmt):
        state = occ.state if occ.state == "done" else ("overdue" if occ.due < today else "open")
        out.append({"duty": duty.key, "title": duty.title, "period": occ.period, "due": occ.due.isoformat(),
                    "state": state, "scheduled_due": occ.scheduled_due.isoformat(),
                    "done_by": occ.done_by, "owners": duty.owners})
    return out

