"""From reminders to outbox messages: silence, route, group, fold, render, queue.

The stages follow Prometheus Alertmanager's notification pipeline. Reminders the sweep wrote and
nobody has routed yet are read in batches; silenced ones (an admin's snooze) are set aside; the
rest go through the routing rules; then everything for one recipient on one channel becomes one
digest, ordered by urgency, with a ledger-level escalation's per-item nags of the same ledger
folded under it (inhibition). Each digest is rendered once and queued in the outbox under a key
derived from exactly the reminders it carries, so a crash between two steps redoes the same work
and queues nothing twice. Quiet hours and jitter decide when each message may go.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from engine.heap import give_back
from engine.reminders.facts import ReminderFacts
from engine.runtime import Runtime
from engine.store.kinds import SubjectKind
from engine.store.models import REMINDERS, Reminder
from engine.store.upsert import insert_ignore
from notifications.channels.base import Body, channel_class, platform_of
from notifications.message import AppCard
from notifications.people import Contact, NoAccounts, People
from notifications.quiet import QuietHours
from notifications.render import Digest, DigestItem, Renderer
from notifications.routing import Route, route
from notifications.settings import Notify
from notifications.store import OUTBOX, REMINDER_MESSAGES, OutboxMessage, OutboxStatus, Silence, SilenceTarget

# Reminders routed in one transaction. A catch-up (the daemon down for days, 100,000 due) routes
# batch after batch, each person's digest carrying their part of one batch: 1,000 keeps a batch's
# reminders, facts and rendered digests to ~20 MB (5,000 peaked at ~80 MB above the daemon's
# baseline, bench/daemon.py), and a digest of a catch-up to ~100 items a person can read.
BATCH = 1000


@dataclass(frozen=True)
class Reached:
    """One person as a batch reaches them, asked of ``People`` once: where (channel -> address),
    and the name a digest greets them by (``办公室``, not ``区教委/办公室``)."""

    addresses: dict[str, str]
    shown: str


@dataclass
class RouteStats:
    reminders: int = 0
    silenced: int = 0
    messages: int = 0
    undeliverable: int = 0


def _silenced(r: Reminder, facts: ReminderFacts, silences: Sequence[Silence]) -> Silence | None:
    for s in silences:
        if (s.target_kind in (SilenceTarget.ISSUE, SilenceTarget.DUTY) and r.subject == s.target) or \
                (s.target_kind == SilenceTarget.DEPARTMENT and facts.department == s.target) or \
                (s.target_kind == SilenceTarget.LEDGER and facts.ledger == s.target):
            return s
    return None


def _item(r: Reminder, facts: ReminderFacts, public_url: str | None = None, link: str | None = None,
          personal: bool = True) -> DigestItem:
    # A milestone is the ledger's own item; a duty's or a look-back's ref names no issue line of its own.
    ref = facts.ref if facts.subject_kind == SubjectKind.ISSUE else None
    ledger = facts.ledger if facts.subject_kind in (SubjectKind.ISSUE, SubjectKind.MILESTONE) else None
    url = None
    if public_url and ledger is not None:
        if link is not None and ref is not None:  # the recipient's signed link, opening this item
            page = f"/ws/issues/{quote(ledger, safe='')}/{quote(ref, safe='')}"
            url = f"{link}?next={quote(page, safe='')}"
        elif not personal:  # read by a group: the item's page behind the login, never anyone's /w/ link
            page = f"/ws/issues/{quote(ledger, safe='')}/{quote(ref, safe='')}" if ref is not None else (
                f"/ws/issues?ledger={quote(ledger, safe='')}")
            url = public_url.rstrip("/") + page
        else:
            page = f"/issues/{quote(ledger, safe='')}/{quote(ref, safe='')}" if ref is not None else (
                f"/?ledger={quote(ledger, safe='')}")
            url = public_url.rstrip("/") + page
    return DigestItem(kind=r.kind, rule=r.rule, subject=r.subject, title=facts.title, ledger=ledger, ref=ref,
                      due=r.due, days_overdue=r.days_overdue, level=facts.level, period=facts.period,
                      item_template=facts.item_template, what=facts.what, actions=facts.actions, url=url)


def message_key(prefix: str, channel: str, recipient: str, reminders: list[Reminder]) -> str:
    """Stable for the same reminders to the same person on the same channel."""
    text = "\n".join([channel, recipient, *sorted(r.dedupe_key for r in reminders)])
    return f"{prefix}-{hashlib.sha256(text.encode()).hexdigest()[:40]}"


class Pipeline:
    def __init__(self, runtime: Runtime, sessions: sessionmaker[Session], notify: Notify, renderer: Renderer,
                 routes: list[Route], *, rng: random.Random | None = None, people: People | None = None):
        self.rt = runtime
        self.directory: People = people if people is not None else NoAccounts()
        self.public_url = runtime.config.board.base_url or None
        self.sessions = sessions
        self.notify = notify
        self.renderer = renderer
        self.routes = routes
        start, end = notify.working_hours()
        self.quiet = QuietHours(runtime.calendar, start, end)
        self.rng = rng or random.Random()

    def route_pending(self, now: dt.datetime) -> RouteStats:
        stats = RouteStats()
        more = True
        while more:
            more = self._batch(now, stats)
            give_back()  # a batch's digests are large and freed: a catch-up would otherwise grow the heap
        return stats

    def _batch(self, now: dt.datetime, stats: RouteStats) -> bool:
        with self.sessions() as session, session.begin():
            reminders = session.scalars(select(Reminder).where(Reminder.routed_at.is_(None), Reminder.at <= now)
                                        .order_by(Reminder.id).limit(BATCH)).all()
            if not reminders:
                return False
            silences = session.scalars(select(Silence).where(Silence.until > now, Silence.lifted_at.is_(None))).all()
            groups: dict[tuple[str, str, str], list[Reminder]] = defaultdict(list)
            urgent: set[tuple[str, str, str]] = set()
            nowhere: dict[str, list[Reminder]] = defaultdict(list)
            facts_of: dict[int, ReminderFacts] = {}
            reached: dict[str, Reached] = {}  # each person as People answers once per batch
            people: dict[tuple[str, str], list[str]] = {}  # (unit, recipient name) -> who hears
            units: dict[str | None, str] = {}  # a ledger's name -> its unit
            for r in reminders:
                facts = facts_of[r.id] = ReminderFacts.from_stored(r.details)
                if _silenced(r, facts, silences):
                    stats.silenced += 1
                    continue
                routed = route(self.routes, list(r.recipients), {
                    "kind": r.kind, "rule": r.rule, "subject": r.subject, "level": facts.level, "ledger": facts.ledger,
                    "area": facts.area, "category": facts.category, "department": facts.department,
                    "leader": facts.leader, "state": facts.state})
                unit = facts.unit or self._unit(session, facts.ledger, units)  # a unit's own duty: that unit
                hearing = dict.fromkeys(p for name in routed.recipients
                                        for p in self.people(session, name, people, unit=unit))
                for person in hearing:
                    if person not in reached:
                        reached[person] = self.reach(session, person)
                    addresses = reached[person].addresses
                    if not addresses:
                        nowhere[person].append(r)
                    for channel, address in addresses.items():
                        groups[(person, channel, address)].append(r)
                        if routed.urgent:
                            urgent.add((person, channel, address))
            for (person, channel, address), members in groups.items():
                self._queue(session, now, person, reached[person].shown, channel, address, members, facts_of,
                            (person, channel, address) in urgent)
                stats.messages += 1
            for person, members in nowhere.items():
                self._undeliverable(session, now, person, members, facts_of)
                stats.undeliverable += 1
            session.connection().execute(
                update(REMINDERS).where(REMINDERS.c.id == bindparam("b_id"))
                .values(routed_at=now), [{"b_id": r.id} for r in reminders])
            stats.reminders += len(reminders)
            return len(reminders) == BATCH

    def _unit(self, session: Session, ledger: str | None, cache: dict[str | None, str]) -> str:
        if ledger not in cache:
            cache[ledger] = self.directory.unit_of(session, ledger) if ledger else ""
        return cache[ledger]

    def people(self, session: Session, name: str, cache: dict[tuple[str, str], list[str]] | None = None, *,
               unit: str = "") -> list[str]:
        """Who hears what is addressed to ``name`` on a ledger of ``unit``: the accounts the policy
        names (the unit's own account, a reviewer, a department's members: ``People.hearers``),
        else the name itself (its ``[recipients]`` entry, or undeliverable)."""
        cache = {} if cache is None else cache
        if (unit, name) not in cache:
            cache[(unit, name)] = self.directory.hearers(session, unit, name) or [name]
        return cache[(unit, name)]

    def reach(self, session: Session, person: str) -> Reached:
        """Where ``person`` is reached and the name shown to them, from one ``People.contact``."""
        contact = self.directory.contact(session, person)
        shown = contact.names[-1] if contact is not None and contact.names else person
        return Reached(self._addresses([(person, contact)]), shown)

    def addresses_of(self, session: Session, people: list[str]) -> dict[str, str]:
        """Channel -> address for ``people`` (one person, or a department's members, joined by ``|``
        on the app channels); see ``Notify.addresses``."""
        return self._addresses([(person, self.directory.contact(session, person)) for person in people])

    def _addresses(self, people: list[tuple[str, Contact | None]]) -> dict[str, str]:
        # An account is looked up in ``[recipients]`` by its login name (``区教委/办公室``), then by
        # the name people use (``办公室``).
        found: dict[str, list[str]] = defaultdict(list)
        for person, account in people:
            if account is None:
                addresses = self.notify.addresses(person)
            else:
                listed = next((n for n in account.names if n in self.notify.recipients), person)
                addresses = self.notify.addresses(listed, account.email, account.im)
            for channel, address in addresses.items():
                found[channel].append(address)
        out: dict[str, str] = {}
        for channel, each in found.items():
            platform = platform_of(str(self.notify.channel_settings[channel].get("kind", "")))
            # an app's notice goes to several user ids at once; any other address is one box or group
            out[channel] = "|".join(dict.fromkeys(each)) if platform is not None else each[0]
        return out

    def _digest(self, now: dt.datetime, shown: str, kind: str, members: list[Reminder],
                facts_of: dict[int, ReminderFacts], link: str | None, personal: bool = True) -> Digest:
        """The digest for one recipient; ``link``: their signed link (signed once per digest)."""
        public_url = self.public_url
        items = [_item(r, facts_of[r.id], public_url, link, personal) for r in members]
        milestone = {r.id for r in members if facts_of[r.id].subject_kind == SubjectKind.MILESTONE}
        # inhibition: a ledger-level escalation carries that ledger's per-item nags inside it
        escalated = {i.ledger for i, r in zip(items, members, strict=False)
                     if r.id in milestone and i.kind in ("overdue", "escalation")}
        folded: dict[str, list[DigestItem]] = defaultdict(list)
        top = []
        for item, r in zip(items, members, strict=False):
            if item.ledger is not None and item.ledger in escalated and r.id not in milestone:
                folded[item.ledger].append(item)
            else:
                top.append(item)
        return Digest(recipient=shown, channel_kind=kind, generated_at=now, tz=self.rt.config.tz, items=top,
                      folded=dict(folded),
                      workspace_url=link if personal else (f"{public_url.rstrip('/')}/ws/login" if public_url else None))

    def _queue(self, session: Session, now: dt.datetime, person: str, shown: str, channel: str, address: str,
               members: list[Reminder], facts_of: dict[int, ReminderFacts], urgent: bool) -> None:
        kind = str(self.notify.channel_settings[channel].get("kind", ""))
        speaks = channel_class(kind)  # the body it sends, and whether bursts hurt it
        personal = speaks.reaches_one(address)  # else a group reads it: no one's signed link
        public_url = self.public_url
        # an app that signs its user in itself (engine.app.http.signin_apps) gets no link to forward
        signin = bool(public_url and speaks.platform is not None
                      and self.notify.channel_settings[channel].get("signin") is True)
        # signed once: the digest's items and the app card's button carry the same link
        link = self.directory.link(session, person, now) if personal and public_url and not signin else None
        rendered = self.renderer.render(self._digest(now, shown, kind, members, facts_of, link, personal))
        urgent = urgent or any(facts_of[r.id].urgent for r in members)
        when = now if urgent else self.quiet.next_open(now)
        if speaks.spread and self.notify.settings.jitter_seconds:
            when += dt.timedelta(seconds=self.rng.uniform(0, self.notify.settings.jitter_seconds))
        key = message_key("dg", channel, person, members)
        text = rendered.markdown if speaks.body == Body.MARKDOWN else rendered.text
        data: dict[str, Any] = {"recipient": person, "generated_at": now.isoformat(),
                "items": [{"subject": r.subject, "kind": r.kind, "rule": r.rule, "title": facts_of[r.id].title,
                           "due": r.due.isoformat() if r.due else None, "days_overdue": r.days_overdue}
                          for r in members]}
        if speaks.platform is not None:  # the organisation apps' card: items, counts, the 去处理 button
            button = link or (f"{public_url.rstrip('/')}/ws/issues" if public_url else None)
            if signin and public_url:
                button = f"{public_url.rstrip('/')}/ws/app/{quote(channel, safe='')}"
            data["card"] = AppCard(tuple(rendered.lines), len(rendered.lines), button,
                                   any(r.kind in ("overdue", "escalation") for r in members)).stored()
        self._insert(session, members, key=key, channel=channel, recipient=person, address=address,
                     subject=rendered.subject, text=text, html=rendered.html if speaks.html else None, data=data,
                     status=OutboxStatus.PENDING, urgent=urgent, next_attempt_at=when, last_error="", now=now)

    def _undeliverable(self, session: Session, now: dt.datetime, person: str, members: list[Reminder],
                       facts_of: dict[int, ReminderFacts]) -> None:
        rendered = self.renderer.render(self._digest(now, person, "console", members, facts_of, None))
        self._insert(session, members, key=message_key("ud", "", person, members), channel="", recipient=person,
                     address="", subject=rendered.subject, text=rendered.text, html=None,
                     data={"recipient": person}, status=OutboxStatus.UNDELIVERABLE, urgent=False,
                     next_attempt_at=None,
                     last_error=f"no address for {person!r} in any configured channel (give the account one: "
                                f"duban user set {person} --email … or --wecom/--dingtalk/--feishu …; "
                                f"or add [recipients.\"{person}\"] to config.toml)", now=now)

    @staticmethod
    def _insert(session: Session, members: list[Reminder], *, now: dt.datetime, **row: Any) -> None:
        stmt = insert_ignore(session, OUTBOX, ["key"]).returning(OUTBOX.c.id)
        inserted = session.execute(stmt, [{**row, "attempts": 0, "created_at": now, "data": row["data"]}]).first()
        message_id = inserted[0] if inserted else session.scalar(select(OutboxMessage.id).where(
            OutboxMessage.key == row["key"]))
        links = insert_ignore(session, REMINDER_MESSAGES, ["reminder_id", "message_id"])
        session.execute(links, [{"reminder_id": r.id, "message_id": message_id} for r in members])
