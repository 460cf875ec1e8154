"""Duties in the store: occurrences stored ahead, ledger milestones, done and re-dated.

Occurrences are generated ``horizon_days`` ahead and are unique per (duty, period). The computed
``scheduled_due`` is kept apart from the editable ``due``. When a duty's definition changes, only
future occurrences nobody has touched (edited or done) are regenerated; the past and anything a
person acted on stay as they were. A duty done for each issue in a state (a look-back per
long-term item) follows its issues: ``follow_issues`` gives an issue entering the state its
occurrences and re-plans them whenever the issue moves (leaving the state silences them, coming
back re-arms them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, delete, select, text
from sqlalchemy.orm import Session

from ..accounts.actor import SYSTEM, Actor
from ..accounts.policy import DutyAction, DutySubject, require_duty
from ..errors import BadInput, NotFound, Refused
from ..reminders.core import ReminderCore, before_tracking, spec_hash
from ..reminders.hydrate import SubjectReader
from ..reminders.planner import shift
from ..reminders.replan import store_plans
from ..reminders.subjects import OCCURRENCES, occurrence_query
from ..store.accounts import User
from ..store.kinds import DutyKind, OccurrenceState
from ..store.models import DUTIES, Duty, DutyOccurrence, Issue, Ledger
from ..store.prepared import PreparedSet
from ..store.upsert import insert_ignore
from ..workflow.rules import Milestone, ReminderPolicy
from .definitions import DutyDef, LoadedDuty, bound_key, split_key
from .schedule import occurrences

ONCE = "once"
_CHUNK = 1000
ANALYZE_AFTER = 2  # chunks of a large follow (a first import) after which PostgreSQL re-reads its statistics
_ANALYZED = ("issues", "issue_departments", "ledgers", "duty_occurrences")


class _Statistics:
    """ANALYZE once, a few chunks into following many issues on PostgreSQL.

    A first import writes its issues into tables whose statistics were taken empty (``duban init``);
    planned on those, the per-chunk queries below slowed from 2.5k to 0.7k rows a second at 1M
    issues until someone ran ANALYZE. PostgreSQL's ANALYZE samples the rows this transaction wrote
    too, so the chunks after it are planned on the table as it now is."""

    def __init__(self, session: Session, issues: int) -> None:
        self.session = session
        self.left = ANALYZE_AFTER if issues > (ANALYZE_AFTER + 1) * _CHUNK else -1
        self.done = False

    def chunk(self) -> None:
        if self.left < 0 or self.done:
            return
        if self.left == 0:
            self.done = True
            if self.session.get_bind().dialect.name == "postgresql":
                self.session.flush()
                self.session.execute(text("ANALYZE " + ", ".join(_ANALYZED)))
            return
        self.left -= 1


# built once: every transition asks which per-issue duties are active (on the driver: see
# engine.store.prepared; SQLAlchemy's execute cost more than the statement)
_ACTIVE_RECURRING = select(DUTIES.c.id, DUTIES.c.spec_hash).where(
    DUTIES.c.kind == DutyKind.RECURRING, DUTIES.c.active.is_(True), DUTIES.c.generated_until.is_not(None))
_PREPARED = PreparedSet({"active": _ACTIVE_RECURRING})


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    retired: int = 0
    occurrences: int = 0
    # units a duty binds that no ledger or account names yet: their rows wait for the unit
    waiting: list[str] = field(default_factory=list)


def known_units(session: Session) -> set[str]:
    """The units the installation has: a ledger's 单位, or an account's unit."""
    units = {*session.scalars(select(Ledger.unit).distinct()), *session.scalars(select(User.unit).distinct())}
    return {u for u in units if u}


class DutyBook:
    """Keeps the duties table in step with the YAML and the ledgers."""

    def __init__(self, core: ReminderCore, subjects: SubjectReader, horizon_days: int = 400):
        self.core = core
        self.subjects = subjects
        self.calendar = core.calendar
        self.horizon = dt.timedelta(days=horizon_days)
        self._definitions: dict[tuple[int, str], DutyDef | None] = {}

    # -- recurring duties ----------------------------------------------------------------------

    def sync(self, session: Session, loaded: list[LoadedDuty], now: dt.datetime) -> SyncResult:
        with self.calendar.quietly():  # occurrences a year ahead: not a question about that year
            return self._sync(session, loaded, now)

    def _sync(self, session: Session, loaded: list[LoadedDuty], now: dt.datetime) -> SyncResult:
        today = self.calendar.local_date(now)
        result = SyncResult()
        # A duty bound to units is one row per unit (UNIT/KEY), each with its own occurrences; a
        # unit the installation does not have yet gets none (its reminders would reach nobody of
        # it, or a namesake's [recipients] address) until a ledger or an account of it appears.
        units = known_units(session)
        wanted = {key: definition for d in loaded for key, definition in d.definition.rows()
                  if not definition.units or definition.unit in units}
        result.waiting = sorted({u for d in loaded for u in d.definition.units or () if u not in units})
        existing = {d.key: d for d in session.scalars(select(Duty).where(Duty.kind == DutyKind.RECURRING))}
        for key, definition in wanted.items():
            duty = existing.get(key)
            digest = definition.content_hash()
            if duty is None:
                duty = Duty(key=key, title=definition.title, kind=DutyKind.RECURRING, owners=list(definition.owners),
                            spec=definition.stored(), spec_hash=digest, active=True,
                            generated_until=None, created_at=now, updated_at=now)
                session.add(duty)
                session.flush()
                result.created += 1
            elif duty.spec_hash != digest or not duty.active:
                self._forget_future(session, duty, today)
                duty.title, duty.owners = definition.title, list(definition.owners)
                duty.spec, duty.spec_hash, duty.active, duty.updated_at = (
                    definition.stored(), digest, True, now)
                duty.generated_until = min(duty.generated_until or today, today - dt.timedelta(days=1))
                result.updated += 1
            result.occurrences += self._generate(session, duty, definition, today, now)
            if definition.since is not None and definition.for_each is None and (
                    duty.created_at == now or duty.updated_at == now):  # new or changed: fill in its past
                result.occurrences += self._history(session, duty, definition, today, now)
        for key, duty in existing.items():
            if key not in wanted and duty.active:
                self._forget_future(session, duty, today)
                duty.active, duty.updated_at = False, now
                result.retired += 1
        return result

    def _history(self, session: Session, duty: Duty, definition: DutyDef, today: dt.date, now: dt.datetime) -> int:
        """The periods from ``since`` that fell due before today, stored as history: open, to be
        recorded late, never reminded of (the core follows no occurrence due before it was stored)."""
        assert definition.since is not None
        past = [o for o in occurrences(definition.spec(), definition.since, today, self.calendar) if o.due < today]
        rows = [{"duty_id": duty.id, "anchor": o.anchor, "scheduled_due": o.due, "due": o.due,
                 "state": OccurrenceState.OPEN, "touched": False, "note": "", "next_remind_at": None,
                 "overdue_on": None, "remind_after": now, "created_at": now, "period": o.period, "issue_id": None,
                 "ledger_id": duty.ledger_id} for o in past]
        if rows:
            stmt = insert_ignore(session, OCCURRENCES, ["duty_id", "period"])
            for i in range(0, len(rows), _CHUNK):
                session.execute(stmt, rows[i:i + _CHUNK])
        return len(rows)

    def _forget_future(self, session: Session, duty: Duty, today: dt.date) -> None:
        session.execute(delete(DutyOccurrence).where(
            DutyOccurrence.duty_id == duty.id, DutyOccurrence.anchor >= today,
            DutyOccurrence.touched.is_(False), DutyOccurrence.state == OccurrenceState.OPEN))

    def _generate(self, session: Session, duty: Duty, definition: DutyDef, today: dt.date, now: dt.datetime,
                  *, issues: list[tuple[int, str, int]] | None = None, start: dt.date | None = None) -> int:
        """Store the occurrences from ``generated_until`` (or ``start``) to the horizon.

        A per-issue duty gets them for ``issues`` (default: every issue now in its state).
        """
        first = duty.generated_until is None
        topping_up = issues is not None  # only these issues' rows, within what is generated already
        if start is None:
            start = (today - dt.timedelta(days=366) if duty.generated_until is None
                     else duty.generated_until + dt.timedelta(days=1))
        end = (duty.generated_until or today + self.horizon) if topping_up else today + self.horizon
        if start > end:
            return 0
        found = [o for o in occurrences(definition.spec(), start, end, self.calendar)
                 if not first or o.due >= today]  # a new duty does not start life overdue
        if definition.for_each is not None and not topping_up:
            issues = [(i, f"{ledger}/{ref}", ledger_id) for i, ledger, ref, ledger_id in session.execute(
                select(Issue.id, Ledger.name, Issue.ref, Issue.ledger_id).join(Ledger)
                .where(Issue.state == definition.for_each.state, Ledger.archived_at.is_(None)))]
        rows = []
        for occ in found:
            track = self.core.duty_track(occ.due, definition.reminders, today)  # tracked from today on
            plan = self.core.plan_track(track, now)
            base = {"duty_id": duty.id, "anchor": occ.anchor, "scheduled_due": track.due, "due": track.due,
                    "state": OccurrenceState.OPEN, "touched": False, "note": "", "next_remind_at": plan.next_remind_at,
                    "overdue_on": plan.overdue_on, "remind_after": now, "created_at": now}
            if definition.for_each is None:
                rows.append({**base, "period": occ.period, "issue_id": None, "ledger_id": duty.ledger_id})
            else:
                rows.extend({**base, "period": f"{occ.period} {ref}", "issue_id": issue_id, "ledger_id": ledger_id}
                            for issue_id, ref, ledger_id in issues or ())
        if rows:
            stmt = insert_ignore(session, OCCURRENCES, ["duty_id", "period"])
            for i in range(0, len(rows), _CHUNK):
                session.execute(stmt, rows[i:i + _CHUNK])
        if not topping_up:
            duty.generated_until = end
        return len(rows)

    # -- duties that follow issues -------------------------------------------------------------

    def follow_issue(self, session: Session, issue_id: int, before: str, after: str, now: dt.datetime) -> None:
        """One issue moved from ``before`` to ``after``: only a move into or out of a per-issue
        duty's state touches its occurrences (most moves touch none, and cost one small query)."""
        states = {d.for_each.state for d in self._per_issue_duties(session) if d.for_each is not None}
        if before in states or after in states:
            self.follow_issues(session, [issue_id], now, states={issue_id: after})

    def _per_issue_duties(self, session: Session) -> list[DutyDef]:
        # the duties do not depend on the step being written: no flush, no ORM result
        conn = session.connection()
        rows = _PREPARED.get(conn, "active").all(conn)
        return [d for d in (self._per_issue(session, i, h) for i, h in rows) if d is not None]

    def follow_issues(self, session: Session, issue_ids: Iterable[int], now: dt.datetime, *,
                      states: dict[int, str] | None = None) -> None:
        """Issues changed state: give those now in a per-issue duty's state their occurrences
        from today on, and re-plan every open occurrence of theirs (silenced while an issue is out
        of the state, re-armed when it comes back). ``states``: the issues' states when the caller
        knows them (one transition), so only a duty of that state is looked at."""
        ids = list(dict.fromkeys(issue_ids))
        if not ids:
            return
        with self.calendar.quietly():
            self._follow_issues(session, ids, now, states)

    def _follow_issues(self, session: Session, ids: list[int], now: dt.datetime, states: dict[int, str] | None) -> None:
        today = self.calendar.local_date(now)
        fresh = _Statistics(session, len(ids))
        for duty_id, digest in session.execute(_ACTIVE_RECURRING).all():
            definition = self._per_issue(session, duty_id, digest)
            if definition is None or definition.for_each is None:
                continue
            if states is not None and definition.for_each.state not in states.values():
                continue
            duty = session.get(Duty, duty_id)
            assert duty is not None
            for i in range(0, len(ids), _CHUNK):
                fresh.chunk()
                entering = [(iid, f"{ledger}/{ref}", ledger_id) for iid, ledger, ref, ledger_id in session.execute(
                    select(Issue.id, Ledger.name, Issue.ref, Issue.ledger_id).join(Ledger).where(
                        Issue.id.in_(ids[i:i + _CHUNK]), Issue.state == definition.for_each.state))]
                if entering:
                    self._generate(session, duty, definition, today, now, issues=entering, start=today)
        for i in range(0, len(ids), _CHUNK):
            fresh.chunk()
            self.replan(session, occurrence_query().where(
                OCCURRENCES.c.issue_id.in_(ids[i:i + _CHUNK]), OCCURRENCES.c.state == OccurrenceState.OPEN), now)

    def _per_issue(self, session: Session, duty_id: int, digest: str) -> DutyDef | None:
        """The definition of a duty done for each issue in a state; None for the others. Kept per
        (duty, content hash): every transition asks, and definitions change only with the YAML."""
        key = (duty_id, digest)
        if key not in self._definitions:
            spec = session.scalar(select(Duty.spec).where(Duty.id == duty_id)) or {}
            self._definitions[key] = DutyDef.model_validate(spec) if spec.get("for_each") else None
        return self._definitions[key]

    def replan(self, session: Session, stmt, now: dt.datetime) -> int:
        """Store the core's plan for the occurrences ``stmt`` (an ``occurrence_query``) selects."""
        session.flush()  # the rows must see the issues' new states
        return store_plans(session, OCCURRENCES,
                           ((subject.id, self.core.plan(subject, now)) for subject in self.subjects.occurrences(session, stmt)),
                           after=now)

    # -- ledger milestones ---------------------------------------------------------------------

    def sync_milestones(self, session: Session, ledger: Ledger, milestones: list[Milestone],
                        default_policy: ReminderPolicy, now: dt.datetime) -> None:
        """One 'once' occurrence per milestone of the ledger's workflow, due from its feedback date."""
        with self.calendar.quietly():
            self._sync_milestones(session, ledger, milestones, default_policy, now)

    def _sync_milestones(self, session: Session, ledger: Ledger, milestones: list[Milestone],
                         default_policy: ReminderPolicy, now: dt.datetime) -> None:
        if ledger.feedback_date is None:
            return
        for ms in milestones:
            key = f"{ledger.name}:{ms.name}"
            policy = ms.reminders or default_policy
            spec = {"milestone": ms.model_dump(mode="json"), "policy": policy.model_dump(mode="json")}
            digest = spec_hash(spec)
            duty = session.scalar(select(Duty).where(Duty.key == key))
            if duty is None:
                duty = Duty(key=key, title=ms.title, kind=DutyKind.MILESTONE, owners=list(ms.recipients),
                            ledger_id=ledger.id, spec=spec, spec_hash=digest, active=True, created_at=now,
                            updated_at=now)
                session.add(duty)
                session.flush()
            elif duty.spec_hash != digest:
                duty.title, duty.owners, duty.spec, duty.spec_hash, duty.updated_at = (
                    ms.title, list(ms.recipients), spec, digest, now)
            due = self.core.planner.effective_due(shift(ledger.feedback_date, ms, self.calendar))
            occ = session.scalar(select(DutyOccurrence).where(DutyOccurrence.duty_id == duty.id))
            tracked = self.calendar.local_date(now if occ is None else occ.created_at)
            plan = self.core.plan_track(self.core.duty_track(due, policy, tracked), now)
            if occ is None:
                session.add(DutyOccurrence(duty_id=duty.id, ledger_id=ledger.id, period=ONCE, anchor=ledger.feedback_date,
                                           scheduled_due=due, due=due, state=OccurrenceState.OPEN, touched=False,
                                           note="", next_remind_at=plan.next_remind_at, overdue_on=plan.overdue_on,
                                           remind_after=now, created_at=now))
            elif not occ.touched and occ.scheduled_due != due:
                occ.anchor, occ.scheduled_due, occ.due = ledger.feedback_date, due, due
                occ.next_remind_at, occ.overdue_on = plan.next_remind_at, plan.overdue_on

    # -- people acting on occurrences ----------------------------------------------------------

    def find(self, session: Session, key: str, period: str, unit: str = "") -> DutyOccurrence:
        """The occurrence ``period`` of duty ``key``: its stored key, or the bare key of a duty bound
        to units when that names one row (the one of ``unit``, the actor's, or the only one)."""
        duty = session.scalar(select(Duty).where(Duty.key == key)) or _bound_row(session, key, unit)
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

    def done(self, session: Session, key: str, period: str, *, by: str, now: dt.datetime,
             note: str = "", on: dt.date | None = None, actor: Actor | None = None) -> DutyOccurrence:
        """Record the occurrence done (at ``now``, or on the day ``on`` when recorded late); a
        person's ``actor`` must be one its owners or the unit's administrator (the policy)."""
        if not by.strip():
            raise BadInput("say who did it: --by WHO")
        if on is not None and on > self.calendar.local_date(now):
            raise BadInput(f"--on {on.isoformat()} is in the future; record it when it is done")
        occ = self.find(session, key, period, actor.unit if actor is not None else "")
        require_duty(actor or SYSTEM, DutyAction.DONE, duty_subject(session, occ), f"{key} {period}")
        if occ.state == OccurrenceState.DONE:
            when = occ.done_at.astimezone(self.calendar.tz).isoformat(timespec="minutes") if occ.done_at else "?"
            raise Refused(f"{key} {period} was already done by {occ.done_by} at {when}")
        done_at = now if on is None else self.calendar.at_local(on, dt.time(0))
        occ.state, occ.touched, occ.done_at, occ.done_by, occ.note = OccurrenceState.DONE, True, done_at, by, note
        occ.next_remind_at = occ.overdue_on = None
        return occ

    def milestone_done(self, session: Session, ledger: Ledger, name: str, on: dt.date, *, by: str,
                       now: dt.datetime, note: str = "", restated: bool = False) -> DutyOccurrence:
        """Record the ledger's milestone ``name`` (e.g. rectification-report) as met on ``on``.

        For a ledger taken over mid-way: the report went out long before duban saw the ledger.
        ``restated``: a re-import saying the same day again is no change (another day is refused).
        """
        if on > self.calendar.local_date(now):
            raise BadInput(f"--on {on.isoformat()} is in the future; record a milestone when it is met")
        key = f"{ledger.name}:{name}"
        if session.scalar(select(Duty.id).where(Duty.key == key)) is None:
            names = session.scalars(select(Duty.key).where(Duty.ledger_id == ledger.id, Duty.kind == DutyKind.MILESTONE)
                                    .order_by(Duty.key)).all()
            known = ", ".join(n.split(":", 1)[1] for n in names)
            hint = f"milestones of {ledger.name}: {known}" if known else (
                f"ledger {ledger.name} has no milestones (they need its feedback date: --feedback-date)")
            raise NotFound(f"ledger {ledger.name!r} has no milestone {name!r}", hint=hint)
        occ = self.find(session, key, ONCE)
        if restated and occ.state == OccurrenceState.DONE and occ.done_at is not None and \
                self.calendar.local_date(occ.done_at) == on:
            return occ  # said again by a re-import (`--report-submitted` the same day): nothing to change
        return self.done(session, key, ONCE, by=by, now=now, note=note, on=on)

    def set_due(self, session: Session, key: str, period: str, due: dt.date, *, now: dt.datetime,
                actor: Actor | None = None) -> DutyOccurrence:
        occ = self.find(session, key, period, actor.unit if actor is not None else "")
        require_duty(actor or SYSTEM, DutyAction.SET_DUE, duty_subject(session, occ), f"{key} {period}")
        occ.due, occ.touched = due, True
        self.replan(session, occurrence_query().where(OCCURRENCES.c.id == occ.id), now)
        session.refresh(occ)
        return occ


def _bound_row(session: Session, key: str, unit: str) -> Duty | None:
    """The row of a duty bound to units that a bare ``key`` names: ``unit``'s, or the only one.
    Several units and none of them the actor's: NotFound naming each (nothing is guessed)."""
    if "/" in key:
        return None
    rows = session.scalars(select(Duty).where(Duty.kind == DutyKind.RECURRING, Duty.active.is_(True),
                                              Duty.key.endswith(f"/{key}", autoescape=True))
                           .order_by(Duty.key)).all()
    mine = [d for d in rows if unit and d.key == bound_key(unit, key)]
    if mine or len(rows) == 1:
        return (mine or rows)[0]
    if rows:
        raise NotFound(f"duty {key!r} is bound to {len(rows)} units: say whose",
                       hint="e.g. " + ", ".join(d.key for d in rows[:5]))
    return None


def duty_known(session: Session, key: str) -> bool:
    return session.scalar(select(Duty.id).where(Duty.key == key)) is not None


def active_owners(session: Session) -> set[str]:
    """Every owner an active duty names (who its reminders are addressed to)."""
    return {o for owners in session.scalars(select(Duty.owners).where(Duty.active.is_(True))) for o in owners or ()}


def duty_subject(session: Session, occ: DutyOccurrence) -> DutySubject:
    """What the policy reads of an occurrence: its duty's owners, its ledger's unit, its issue."""
    duty = session.get(Duty, occ.duty_id)
    ledger = session.get(Ledger, occ.ledger_id) if occ.ledger_id is not None else None
    issue = session.get(Issue, occ.issue_id) if occ.issue_id is not None else None
    bound = split_key(duty.key)[0] if duty is not None and (duty.spec or {}).get("units") else ""
    return DutySubject(owners=tuple(duty.owners or ()) if duty is not None else (),
                       unit=ledger.unit if ledger is not None else bound, ledger=ledger.name if ledger is not None else "",
                       issue_leader=issue.leader if issue is not None else "",
                       issue_department=issue.department if issue is not None else "",
                       archived=ledger is not None and ledger.archived_at is not None)


def list_occurrences(session: Session, start: dt.date, end: dt.date, today: dt.date,
                     tz: dt.tzinfo = dt.UTC) -> list[dict]:
    """Occurrences due in ``[start, end]``: open, overdue, done, or unrecorded (a period before duban
    followed the duty, never recorded)."""
    stmt = (select(DutyOccurrence, Duty).join(Duty)
            .where(and_(DutyOccurrence.due >= start, DutyOccurrence.due <= end))
            .order_by(DutyOccurrence.due, Duty.key, DutyOccurrence.period))
    out = []
    for occ, duty in session.execute(stmt):
        late = occ.overdue_on is not None and occ.overdue_on <= today
        history = before_tracking(duty.kind, occ.due, occ.created_at.astimezone(tz).date())
        state = ("done" if occ.state == OccurrenceState.DONE else "unrecorded" if history
                 else "overdue" if late else "open")
        out.append({"duty": duty.key, "title": duty.title, "period": occ.period, "due": occ.due.isoformat(),
                    "state": state, "scheduled_due": occ.scheduled_due.isoformat(),
                    "done_by": occ.done_by, "owners": duty.owners})
    return out
