"""Several sends in flight: bounded per channel, in claim order per recipient, each one recorded."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.store.db import transaction
from notifications.lanes import Lanes
from notifications.message import OutgoingMessage
from notifications.outbox import DeliveryPolicy, DeliveryStats, Outbox
from notifications.senders import Pace
from notifications.store import DeliveryAttempt, OutboxMessage
from tests.peers import LoopbackHTTP, Seen, json_reply
from tests.test_outbox import NOW, hook, sessions  # noqa: F401 - the fixture

WAIT = 30.0  # a bound for waits on conditions, never a sleep


# -- the rules, over all inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    n: int
    channel: str
    recipient: str


@settings(max_examples=200, deadline=None)
@given(routes=st.lists(st.tuples(st.sampled_from("ab"), st.sampled_from("xyz")), min_size=1, max_size=30),
       limit=st.integers(1, 5), finishing=st.randoms(use_true_random=False), warm=st.booleans())
def test_lanes_bound_each_channel_and_keep_each_recipients_order(routes, limit, finishing, warm):
    items = [Item(n, channel, recipient) for n, (channel, recipient) in enumerate(routes)]
    lanes = Lanes(items, limit, {"a", "b"} if warm else set())
    flying: list[Item] = []
    started: list[Item] = []
    while lanes.waiting or flying:
        while (item := lanes.next()) is not None:
            lanes.start(item)
            flying.append(item)
            started.append(item)
            per_channel = Counter(i.channel for i in flying)
            assert max(per_channel.values()) <= limit
            assert len({(i.channel, i.recipient) for i in flying}) == len(flying)  # one per recipient
        assert flying, "nothing in flight, yet a message waits"
        done = flying.pop(finishing.randrange(len(flying)))
        lanes.finish(done)
    assert sorted(i.n for i in started) == list(range(len(items)))
    for key in {(i.channel, i.recipient) for i in items}:
        order = [i.n for i in started if (i.channel, i.recipient) == key]
        assert order == sorted(order)  # claim order per recipient


def test_a_cold_channel_sends_one_first():
    items = [Item(n, "a", f"r{n}") for n in range(4)]
    warm: set[str] = set()
    lanes = Lanes(items, 3, warm)
    first = lanes.next()
    assert first is not None
    lanes.start(first)
    assert lanes.next() is None  # its client is being opened: nobody else yet
    lanes.finish(first)
    assert warm == {"a"}
    for _ in range(3):
        item = lanes.next()
        assert item is not None
        lanes.start(item)
    assert lanes.next() is None and lanes.in_flight == 3


def test_a_set_aside_message_does_not_hold_its_recipient():
    items = [Item(0, "a", "x"), Item(1, "a", "x")]
    lanes = Lanes(items, 2, {"a"})
    first = lanes.next()
    assert first == items[0]
    lanes.drop(first)  # postponed by the gate
    assert lanes.next() == items[1]


@settings(max_examples=300, deadline=None)
@given(sends=st.lists(st.tuples(st.floats(0, 1), st.floats(0.0001, 1)), max_size=40))
def test_a_channel_goes_to_threads_once_its_sends_waited_window_times_in_a_row(sends):
    pace = Pace()
    waited = [wall_wait > Pace.WAITED * cpu for wall_wait, cpu in sends]
    for n, (wait, cpu) in enumerate(sends):
        pace.note("hook", wait + cpu, cpu)
        window = waited[max(0, n + 1 - Pace.WINDOW): n + 1]
        # threaded from the first run of WINDOW waiting sends on, and never back
        expected = any(all(waited[i:i + Pace.WINDOW]) for i in range(n + 2 - Pace.WINDOW))
        assert ("hook" in pace.threaded) == expected, (n, window)
    assert pace.threaded <= {"hook"}


# -- against a real receiver -----------------------------------------------------------------------


def queue(sessions, key: str, recipient: str, *, due: dt.datetime = NOW) -> None:  # noqa: F811
    with transaction(sessions) as session:
        session.add(OutboxMessage(key=key, channel="hook", recipient=recipient, address=f"oa-{recipient}",
                                  subject=f"督办提醒 {key}", text="整改将于10月13日到期。", html=None, data={},
                                  status="pending", urgent=False, attempts=0, next_attempt_at=due,
                                  last_error="", created_at=due))


class Waves:
    """Holds each request until ``size`` are in the server at once, then lets that wave answer:
    ``size`` sends were in flight together (a generation barrier that never sleeps)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cond = threading.Condition()
        self.arrived = 0  # of the current wave
        self.wave = 0
        self.timed_out = 0

    def __call__(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        with self.cond:
            self.arrived += 1
            if self.arrived == self.size:
                self.arrived, self.wave = 0, self.wave + 1
                self.cond.notify_all()
            else:
                wave = self.wave
                if not self.cond.wait_for(lambda: self.wave != wave, WAIT):
                    self.timed_out += 1
        return json_reply({"ok": True})


def test_sends_fly_together_up_to_the_limit_and_each_is_recorded(sessions):  # noqa: F811
    limit = 4
    keys = [f"k{n:02d}" for n in range(3 * limit)]
    for n, key in enumerate(keys):
        queue(sessions, key, f"人{n}")
    waves = Waves(limit)
    with LoopbackHTTP(waves) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel}, worker="w1", policy=DeliveryPolicy(in_flight=limit))
        outbox.warm.add("hook")  # the first send alone is test_a_cold_channel_sends_one_first's business
        outbox.pace.threaded.add("hook")  # on threads: a loopback receiver's sends would be made in turn
        stats = outbox.deliver_due(NOW, batch=50)
    # three full waves: each time ``limit`` requests were in the receiver together
    assert (waves.wave, waves.timed_out) == (3, 0)
    assert stats == DeliveryStats(sent=len(keys))
    with sessions() as s:
        rows = s.scalars(select(OutboxMessage)).all()
        assert {r.status for r in rows} == {"sent"} and {r.key for r in rows} == set(keys)
        attempts = s.scalars(select(DeliveryAttempt)).all()
        assert sorted(a.message_id for a in attempts) == sorted(r.id for r in rows)  # one each, recorded


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_each_recipient_gets_their_messages_in_claim_order(sessions, limit):  # noqa: F811
    people = ["办公室", "财务室", "人事组"]
    keys: dict[str, list[str]] = {p: [] for p in people}
    for n in range(30):
        person = people[n % len(people)] if n % 5 else people[0]
        key = f"m{n:02d}"
        keys[person].append(key)
        queue(sessions, key, person, due=NOW - dt.timedelta(seconds=30 - n))  # claimed in this order
    seen: dict[str, list[str]] = {}
    overlapped = 0
    cond = threading.Condition()
    now: Counter[str] = Counter()

    def respond(request: Seen) -> tuple[int, dict[str, str], bytes]:
        nonlocal overlapped
        body = request.json()
        with cond:
            now[body["recipient"]] += 1
            overlapped += now[body["recipient"]] > 1
            seen.setdefault(body["recipient"], []).append(body["idempotency_key"])
        with cond:
            now[body["recipient"]] -= 1
        return json_reply({"ok": True})

    with LoopbackHTTP(respond) as http, hook(http) as channel:
        stats = Outbox(sessions, {"hook": channel}, policy=DeliveryPolicy(in_flight=limit)).deliver_due(NOW, batch=7)
    assert stats == DeliveryStats(sent=30)
    assert seen == keys and overlapped == 0


def test_senders_hand_back_every_result_with_its_tag_and_raise_what_a_call_raised():
    from functools import partial

    from notifications.senders import Senders

    got: dict[int, int] = {}
    with Senders[int, int](3) as senders:
        for n in range(10):
            senders.start(n, partial(pow, n, 2))
        while senders.out:
            got.update(senders.finished())
    assert got == {n: n * n for n in range(10)}
    with Senders[int, float](1) as senders:
        senders.start(0, lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            senders.finished()
        with pytest.raises(RuntimeError, match="no call is out"):
            senders.finished()


class InTurn(Pace):
    """Sends stay on the calling thread, however long they wait (this test's receiver reads the
    database for each request, which would move the channel to threads)."""

    def note(self, channel: str, wall: float, cpu: float) -> None:
        pass


@pytest.mark.parametrize(("limit", "where"), [(1, "in turn"), (4, "in turn"), (4, "threads")])
def test_never_more_than_the_limit_are_sent_and_not_recorded(sessions, limit, where):  # noqa: F811
    """Sent on the calling thread, outcomes wait to be recorded together; sent on threads, each is
    recorded as it comes back. Either way, when a request arrives, all but the last ``limit - 1``
    sends before it are recorded sent."""
    from sqlalchemy import func

    for n in range(30):
        queue(sessions, f"m{n:02d}", f"人{n}", due=NOW - dt.timedelta(seconds=30 - n))
    short: list[tuple[int, int]] = []  # (request, recorded) where too few were recorded
    arrived = 0
    counting = threading.Lock()  # on threads, requests arrive together: each takes its own number

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        nonlocal arrived
        with counting:
            arrived += 1
            this = arrived  # at least this many were sent: all but the last ``limit`` are recorded
        with sessions() as s:
            recorded = s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent"))
        if recorded < this - limit:
            short.append((this, recorded))
        return json_reply({"ok": True})

    with LoopbackHTTP(respond) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel}, policy=DeliveryPolicy(in_flight=limit))
        if where == "threads":
            outbox.pace.threaded.add("hook")
        else:
            outbox.pace = InTurn()
        stats = outbox.deliver_due(NOW, batch=7)
    assert stats == DeliveryStats(sent=30) and arrived == 30
    assert short == []


def test_a_channel_whose_sends_wait_moves_to_threads_and_sends_several_at_once(sessions):  # noqa: F811
    limit = 4
    for n in range(Pace.WINDOW + 3 * limit):
        queue(sessions, f"k{n:02d}", f"人{n}", due=NOW - dt.timedelta(seconds=60 - n))
    waves = Waves(limit)
    answered = 0
    lock = threading.Lock()
    slow = threading.Event()  # never set: the warm-up's and the first WINDOW answers wait 50 ms on it

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        nonlocal answered
        with lock:
            answered += 1
            first = answered <= 1 + Pace.WINDOW
        if first:
            slow.wait(0.05)  # a server that takes its time; sends made in turn would each wait
            return json_reply({"ok": True})
        return waves(seen)  # from here on, a wave answers only once ``limit`` sends are in at once

    with LoopbackHTTP(respond) as http, hook(http) as channel:
        # The channel's first send loads the CA bundle and opens its line: the pace is measured on
        # ordinary sends after it.
        channel.send(OutgoingMessage(key="warm", recipient="人", address="", subject="s", text="t", data={}))
        outbox = Outbox(sessions, {"hook": channel}, policy=DeliveryPolicy(in_flight=limit))
        outbox.warm.add("hook")
        stats = outbox.deliver_due(NOW, batch=50)
    assert outbox.pace.threaded == {"hook"}
    assert (waves.wave, waves.timed_out) == (3, 0)
    assert stats == DeliveryStats(sent=Pace.WINDOW + 3 * limit)
