"""The outbox on a real SQLite file and the real PostgreSQL, against real loopback servers.

Rows are inserted directly; the outbox claims, sends, retries, postpones and gives up on them. The
concurrency tests run two senders in threads with their own sessions (their own connections), which
is what two daemons look like to the database.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from engine.calendar import WorkCalendar
from engine.errors import NotFound, Refused
from engine.store.db import make_engine, session_factory, transaction, upgrade
from notifications.channels import Channel, build_channel
from notifications.channels.smtp import message_id
from notifications.channels.text import key_line
from notifications.outbox import DeliveryPolicy, DeliveryStats, Outbox
from notifications.quiet import QuietHours, parse_hours
from notifications.ratelimit import DEFAULTS, Limit, take
from notifications.store import DeliveryAttempt, OutboxMessage, RateWindow
from tests.peers import (
    DingTalkRobot,
    KeyCounter,
    LoopbackHTTP,
    Seen,
    free_port,
    json_reply,
    smtp_server,
    smtp_server_at,
)

UTC = dt.UTC
SHANGHAI = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar(SHANGHAI)
D = dt.date
T = dt.time
NOW = CAL.at_local(D(2026, 9, 29), T(10, 0))  # a Tuesday morning, a working day
SENDER = "督办系统 <duban@example.gov.cn>"


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def sessions(db_url) -> Iterator:
    engine = make_engine(db_url)
    upgrade(engine)
    yield session_factory(engine)
    engine.dispose()


def queue(sessions, key: str, channel: str, *, address: str = "", due: dt.datetime = NOW,
          urgent: bool = False, text: str = "巡视反馈问题第3条整改将于10月13日到期。", **columns) -> int:
    with transaction(sessions) as session:
        row = OutboxMessage(
            key=key, channel=channel, recipient="办公室", address=address,
            subject=f"督办提醒 {key}", text=text, html=None,
            data={"issue": key}, status="pending", urgent=urgent, attempts=0,
            next_attempt_at=due, last_error="", created_at=due, **columns,
        )
        session.add(row)
        session.flush()
        return row.id


def load(sessions, message: int) -> OutboxMessage:
    with sessions() as session:
        row = session.get(OutboxMessage, message)
        assert row is not None
        return row


def by_key(sessions) -> dict[str, OutboxMessage]:
    with sessions() as session:
        return {row.key: row for row in session.scalars(select(OutboxMessage))}


def attempts(sessions, message: int) -> list[DeliveryAttempt]:
    with sessions() as session:
        return list(session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.message_id == message).order_by(DeliveryAttempt.id)))


def mail(port: int) -> Channel:
    return build_channel("mail", {"kind": "email", "host": "127.0.0.1", "port": port,
                                  "sender": SENDER, "helo": "duban.test", "timeout": 5})


def hook(server: LoopbackHTTP, name: str = "hook") -> Channel:
    return build_channel(name, {"kind": "webhook", "url": server.url(), "timeout": 10})


def seconds_after(instant: dt.datetime | None, start: dt.datetime) -> float:
    assert instant is not None
    return (instant - start).total_seconds()


def in_threads(*jobs: Callable[[], DeliveryStats]) -> list[DeliveryStats]:
    """Run the jobs at once (released together by a barrier); re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    results: list[DeliveryStats | BaseException | None] = [None] * len(jobs)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    assert all(isinstance(r, DeliveryStats) for r in results)
    return results  # type: ignore[return-value]


def total(stats: list[DeliveryStats]) -> DeliveryStats:
    out = DeliveryStats()
    for s in stats:
        out += s
    return out


# -- delivery ---------------------------------------------------------------------------------


def test_delivers_to_smtp_and_webhook_and_marks_unknown_channels(sessions) -> None:
    first = queue(sessions, "issue-42:due:2026-10-13", "mail", address="王书记 <shuji@example.gov.cn>")
    second = queue(sessions, "issue-43:due:2026-10-20", "hook", address="oa-office")
    ghost = queue(sessions, "issue-44:due:2026-10-20", "pager")
    counter = KeyCounter()
    with smtp_server() as (controller, sink), LoopbackHTTP(counter) as http:
        with mail(controller.port) as m, hook(http) as h:
            outbox = Outbox(sessions, {"mail": m, "hook": h}, worker="w1")
            stats = outbox.deliver_due(NOW)
            again = outbox.deliver_due(NOW + dt.timedelta(minutes=5))

    assert stats == DeliveryStats(sent=2, undeliverable=1)
    assert again == DeliveryStats()
    # the same outcomes per channel, as /metrics counts them (duban_sends_total{channel,outcome})
    assert dict(stats.by_channel) == {("mail", "sent"): 1, ("hook", "sent"): 1, ("pager", "undeliverable"): 1}
    from prometheus_client import generate_latest

    from engine.app.vitals import Metrics

    metrics = Metrics()
    metrics.delivered(stats)
    text = generate_latest(metrics.registry).decode()
    assert 'duban_sends_total{channel="mail",outcome="sent"} 1.0' in text
    assert 'duban_sends_total{channel="pager",outcome="undeliverable"} 1.0' in text
    [envelope] = sink.received
    assert envelope.rcpt_tos == ["shuji@example.gov.cn"]
    assert envelope.parsed()["Message-ID"] == message_id("issue-42:due:2026-10-13")
    assert counter.keys == {"issue-43:due:2026-10-20": 1}
    body = http.seen[0].json()
    assert body["idempotency_key"] == "issue-43:due:2026-10-20" and body["address"] == "oa-office"
    assert body["data"] == {"issue": "issue-43:due:2026-10-20"}

    for message in (first, second):
        row = load(sessions, message)
        assert (row.status, row.attempts, row.lease_owner, row.lease_until) == ("sent", 1, None, None)
        assert 0 <= seconds_after(row.sent_at, NOW) < 30
        [attempt] = attempts(sessions, message)
        assert (attempt.status, attempt.worker, attempt.error) == ("sent", "w1", "")
    row = load(sessions, ghost)
    # Never dropped silently: visible, with the reason, and nothing pretends it was tried.
    assert row.status == "undeliverable" and "'pager'" in row.last_error and "not configured" in row.last_error
    assert attempts(sessions, ghost) == []


def test_smtp_down_then_up_delivers_once_with_the_same_message_id(sessions) -> None:
    port = free_port()  # nothing listens yet: connection refused
    message = queue(sessions, "issue-42:due:2026-10-13", "mail", address="shuji@example.gov.cn")
    with mail(port) as channel:
        outbox = Outbox(sessions, {"mail": channel}, rng=random.Random(7))
        assert outbox.deliver_due(NOW) == DeliveryStats(retried=1)

        row = load(sessions, message)
        assert (row.status, row.attempts) == ("pending", 1)
        assert "cannot reach 127.0.0.1" in row.last_error
        wait = seconds_after(row.next_attempt_at, NOW)
        assert 60 * 0.8 <= wait <= 60 * 1.2 + 5  # backoff(1) = 60 s +/- 20 %
        [attempt] = attempts(sessions, message)
        assert attempt.status == "retry" and "cannot reach" in attempt.error
        # Not due yet: the next run leaves it alone.
        assert outbox.deliver_due(NOW + dt.timedelta(seconds=30)) == DeliveryStats()

        with smtp_server_at(port) as (_, sink):
            assert outbox.deliver_due(row.next_attempt_at) == DeliveryStats(sent=1)
            later = row.next_attempt_at + dt.timedelta(hours=2)
            assert outbox.deliver_due(later) == DeliveryStats()

    [envelope] = sink.received  # delivered once, none lost
    assert envelope.parsed()["Message-ID"] == message_id("issue-42:due:2026-10-13")
    row = load(sessions, message)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert [a.status for a in attempts(sessions, message)] == ["retry", "sent"]


def test_webhook_4xx_is_dead_after_one_attempt_and_retry_brings_it_back(sessions) -> None:
    counter = KeyCounter(status=400)
    message = queue(sessions, "issue-7:overdue:2026-10-09", "hook")
    with LoopbackHTTP(counter) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel})
        assert outbox.deliver_due(NOW) == DeliveryStats(dead=1)
        row = load(sessions, message)
        assert (row.status, row.attempts) == ("dead", 1)
        assert "HTTP 400" in row.last_error
        assert [a.status for a in attempts(sessions, message)] == ["dead"]
        assert outbox.deliver_due(NOW + dt.timedelta(days=1)) == DeliveryStats()  # dead stays dead

        later = NOW + dt.timedelta(hours=3)
        with transaction(sessions) as session:
            revived = Outbox.retry(session, message, later)
            assert (revived.status, revived.attempts, revived.next_attempt_at) == ("pending", 0, later)
        counter.status = 200
        assert outbox.deliver_due(later) == DeliveryStats(sent=1)

    assert counter.keys == {"issue-7:overdue:2026-10-09": 1}
    assert (load(sessions, message).status, load(sessions, message).attempts) == ("sent", 1)
    assert [a.status for a in attempts(sessions, message)] == ["dead", "sent"]
    with transaction(sessions) as session:
        with pytest.raises(Refused, match="already sent"):
            Outbox.retry(session, message, later)
        with pytest.raises(NotFound):
            Outbox.retry(session, 999_999, later)


def test_retry_brings_a_pending_message_forward_and_refuses_silenced(sessions) -> None:
    waiting = queue(sessions, "w", "hook", due=NOW + dt.timedelta(hours=1))
    silenced = queue(sessions, "s", "hook")
    with transaction(sessions) as session:
        session.get(OutboxMessage, silenced).status = "silenced"
    with transaction(sessions) as session:
        assert Outbox.retry(session, waiting, NOW).next_attempt_at == NOW
        with pytest.raises(Refused, match="silenced"):
            Outbox.retry(session, silenced, NOW)


def test_dead_after_max_attempts_with_growing_backoff(sessions) -> None:
    counter = KeyCounter(status=503)
    message = queue(sessions, "issue-9:due:2026-10-13", "hook")
    policy = DeliveryPolicy(max_attempts=3, backoff_base=10, backoff_max=100, jitter=0)
    with LoopbackHTTP(counter) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel}, policy=policy)
        at = NOW
        for expected_wait in (10, 20):
            assert outbox.deliver_due(at) == DeliveryStats(retried=1)
            row = load(sessions, message)
            assert seconds_after(row.next_attempt_at, at) == pytest.approx(expected_wait, abs=5)
            at = row.next_attempt_at
        assert outbox.deliver_due(at) == DeliveryStats(dead=1)
        assert outbox.deliver_due(at + dt.timedelta(days=1)) == DeliveryStats()

    row = load(sessions, message)
    assert (row.status, row.attempts) == ("dead", 3)
    assert "HTTP 503" in row.last_error
    assert [a.status for a in attempts(sessions, message)] == ["retry", "retry", "dead"]
    assert len(http.seen) == 3


def test_retry_after_from_the_server_outweighs_a_shorter_backoff(sessions) -> None:
    message = queue(sessions, "k", "hook")
    with LoopbackHTTP(lambda seen: json_reply({}, 429, {"Retry-After": "600"})) as http:
        with hook(http) as channel:
            assert Outbox(sessions, {"hook": channel}).deliver_due(NOW) == DeliveryStats(retried=1)
    assert seconds_after(load(sessions, message).next_attempt_at, NOW) == pytest.approx(600, abs=5)


def test_backoff_doubles_caps_and_jitters() -> None:
    exact = Outbox(None, {}, policy=DeliveryPolicy(jitter=0))  # type: ignore[arg-type]
    assert [exact.backoff(n) for n in (1, 2, 3, 4, 6, 7, 50, 5000)] == [
        60, 120, 240, 480, 1920, 3600, 3600, 3600]
    spread = Outbox(None, {}, rng=random.Random(1))  # type: ignore[arg-type]
    waits = [spread.backoff(1) for _ in range(200)]
    assert all(48 <= w <= 72 for w in waits) and max(waits) - min(waits) > 10
    with pytest.raises(ValueError):
        DeliveryPolicy(jitter=1.0)
    with pytest.raises(ValueError):
        DeliveryPolicy(max_attempts=0)


# -- quiet hours ------------------------------------------------------------------------------


def test_quiet_hours_hold_until_the_first_working_morning_after_national_day(sessions) -> None:
    evening = CAL.at_local(D(2026, 9, 30), T(20, 0))  # the eve of the 2026 National Day holiday
    normal = queue(sessions, "normal", "hook", due=evening - dt.timedelta(hours=1))
    urgent = queue(sessions, "urgent", "hook", due=evening - dt.timedelta(hours=1), urgent=True)
    counter = KeyCounter()
    opening = dt.datetime(2026, 10, 8, 0, 30, tzinfo=UTC)  # Thursday 08:30 in Beijing
    with LoopbackHTTP(counter) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel}, quiet=QuietHours(CAL))
        assert outbox.deliver_due(evening) == DeliveryStats(sent=1, postponed=1)
        assert counter.keys == {"urgent": 1}
        row = load(sessions, normal)
        assert row.next_attempt_at == opening == CAL.at_local(D(2026, 10, 8), T(8, 30))
        assert (row.status, row.attempts, row.lease_owner) == ("pending", 0, None)
        assert attempts(sessions, normal) == []  # a postponement is not an attempt
        assert outbox.deliver_due(opening - dt.timedelta(minutes=1)) == DeliveryStats()
        assert outbox.deliver_due(opening) == DeliveryStats(sent=1)
    assert counter.keys == {"urgent": 1, "normal": 1}
    assert load(sessions, urgent).status == "sent"


def test_quiet_hours_window() -> None:
    quiet = QuietHours(CAL, *parse_hours("08:30-18:00"))
    at = CAL.at_local
    assert quiet.allows(at(D(2026, 9, 29), T(8, 30)))
    assert not quiet.allows(at(D(2026, 9, 29), T(8, 29, 59)))
    assert quiet.allows(at(D(2026, 9, 29), T(17, 59)))
    assert not quiet.allows(at(D(2026, 9, 29), T(18, 0)))
    assert not quiet.allows(at(D(2026, 10, 5), T(10, 0)))  # a Monday inside National Day
    assert quiet.allows(at(D(2026, 10, 10), T(10, 0)))  # a make-up working Saturday (调休)
    inside = at(D(2026, 9, 29), T(9, 0))
    assert quiet.next_open(inside) == inside
    assert quiet.next_open(at(D(2026, 10, 8), T(6, 0))) == at(D(2026, 10, 8), T(8, 30))
    assert quiet.next_open(at(D(2026, 10, 9), T(19, 0))) == at(D(2026, 10, 10), T(8, 30))
    assert quiet.next_open(at(D(2026, 10, 10), T(18, 0))) == at(D(2026, 10, 12), T(8, 30))
    assert quiet.next_open(inside).tzinfo == UTC
    assert parse_hours(" 9:00 - 17:30 ")[0] == T(9, 0)
    for bad in ("8:30", "08:30-18", "18:00-08:30", "09:00-09:00", "25:00-26:00", "08:61-18:00"):
        with pytest.raises(ValueError, match="working hours"):
            parse_hours(bad)
    with pytest.raises(ValueError, match="naive"):
        quiet.allows(dt.datetime(2026, 9, 29, 10, 0))


def test_configured_working_hours_are_read_by_the_one_parser() -> None:
    """What the tests above accept is what a config.toml may say, and the other way round."""
    from engine.config import Config
    from engine.errors import ConfigError
    from notifications.settings import load_notify

    notify = load_notify(Config.model_validate({"notifications": {"working_hours": "9:00-17:30"}}))
    assert notify.working_hours() == (T(9, 0), T(17, 30))
    for bad in ("8:30", "18:00-08:30", "08:61-18:00"):
        with pytest.raises(ConfigError) as info:
            load_notify(Config.model_validate({"notifications": {"working_hours": bad}}))
        assert "working_hours" in "\n".join(info.value.lines())


# -- rate limits ------------------------------------------------------------------------------


def test_limit_parse() -> None:
    assert Limit.parse("20/minute") == Limit(20, 60) == DEFAULTS["dingtalk"]
    assert Limit.parse("5/second") == Limit(5, 1) == DEFAULTS["feishu"]
    assert Limit.parse("100/hour") == Limit(100, 3600)
    assert Limit.parse("10 / 5 minutes") == Limit(10, 300)
    assert Limit.parse("3/s") == Limit(3, 1)
    for bad in ("20", "20/fortnight", "0/minute", "x/minute", "-1/hour"):
        with pytest.raises(ValueError):
            Limit.parse(bad)


def test_take_counts_a_fixed_window(sessions) -> None:
    limit = Limit(3, 60)
    results = []
    for offset in (0, 1, 2, 3, 30, 60, 61):
        with transaction(sessions) as session:
            results.append(take(session, "ding", limit, NOW + dt.timedelta(seconds=offset)))
    # three pass, then "wait until the window ends", then a fresh window at +60 s
    assert results == [0.0, 0.0, 0.0, 57.0, 30.0, 0.0, 0.0]
    with sessions() as session:
        window = session.get(RateWindow, "ding")
        assert (window.window_start, window.count) == (NOW + dt.timedelta(seconds=60), 2)


def test_take_is_exact_under_concurrent_senders(sessions) -> None:
    limit = Limit(25, 3600)
    passed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def sender() -> None:
        barrier.wait()
        for _ in range(10):
            with transaction(sessions) as session:
                wait = take(session, "wecom", limit, NOW)
            if wait == 0.0:
                with lock:
                    passed.append(1)

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(passed) == 25
    with sessions() as session:
        assert session.get(RateWindow, "wecom").count == 25


def test_rate_limit_is_shared_by_two_concurrent_outboxes(sessions) -> None:
    robot = DingTalkRobot()
    keys = [f"r{i}" for i in range(5)]
    for key in keys:
        queue(sessions, key, "ding")
    with LoopbackHTTP(robot) as http:
        url = http.url("/robot/send", "access_token=ding-token")
        channels = [build_channel("ding", {"kind": "dingtalk", "url": url}) for _ in range(2)]
        senders = [Outbox(sessions, {"ding": c}, worker=w, limits={"ding": Limit(3, 60)})
                   for c, w in zip(channels, ("a", "b"), strict=False)]
        assert Outbox(sessions, {"ding": channels[0]}).limit_for("ding") == Limit(20, 60)  # default
        first = total(in_threads(*(lambda o=o: o.deliver_due(NOW, batch=1) for o in senders)))
        assert (first.sent, first.postponed, first.retried, first.dead) == (3, 2, 0, 0)
        assert len(http.seen) == 3 and robot.problems == []

        rows = by_key(sessions)
        held = [r for r in rows.values() if r.status == "pending"]
        assert len(held) == 2
        with sessions() as session:
            window_end = session.get(RateWindow, "ding").window_start + dt.timedelta(seconds=60)
        assert 0 <= seconds_after(window_end, NOW) - 60 < 5
        for row in held:  # postponed to the end of the shared window, without an attempt
            assert seconds_after(row.next_attempt_at, window_end) == pytest.approx(0, abs=0.01)
            assert row.attempts == 0 and attempts(sessions, row.id) == []

        second = senders[0].deliver_due(NOW + dt.timedelta(seconds=61))
        for channel in channels:
            channel.close()
    assert second == DeliveryStats(sent=2)
    texts = [seen.json()["markdown"]["text"] for seen in http.seen]
    assert sorted(k for k in keys for t in texts if key_line(k) in t) == keys  # each once


# -- leases -----------------------------------------------------------------------------------


def test_two_workers_never_send_the_same_message_twice(sessions) -> None:
    count = 60
    for i in range(count):
        queue(sessions, f"m{i:02d}", "hook", due=NOW - dt.timedelta(seconds=i))
    counter = KeyCounter(delay=0.003)  # slow enough that the two senders overlap
    with LoopbackHTTP(counter) as http, hook(http) as one, hook(http) as two:
        senders = [Outbox(sessions, {"hook": c}, worker=w) for c, w in ((one, "a"), (two, "b"))]
        stats = in_threads(*(lambda o=o: o.deliver_due(NOW, batch=4) for o in senders))

    assert counter.duplicates == {}
    assert sorted(counter.keys) == [f"m{i:02d}" for i in range(count)]
    assert total(stats) == DeliveryStats(sent=count)
    assert all(s.sent > 0 for s in stats), stats  # both really took part
    assert {r.status for r in by_key(sessions).values()} == {"sent"}
    with sessions() as session:
        workers = dict(session.execute(
            select(DeliveryAttempt.worker, func.count()).group_by(DeliveryAttempt.worker)).all())
    assert sum(workers.values()) == count and set(workers) == {"a", "b"}


def test_an_expired_lease_is_taken_over_and_a_live_one_is_not(sessions) -> None:
    crashed = {"lease_owner": "crashed-host:4242#0123456789ab"}
    for key in ("k1", "k2"):
        queue(sessions, key, "hook", due=NOW - dt.timedelta(minutes=5),
              lease_until=NOW - dt.timedelta(seconds=1), **crashed)
    queue(sessions, "k3", "hook", due=NOW - dt.timedelta(minutes=5),
          lease_until=NOW + dt.timedelta(seconds=60), **crashed)
    counter = KeyCounter()
    with LoopbackHTTP(counter) as http, hook(http) as channel:
        rescuer = Outbox(sessions, {"hook": channel}, worker="rescuer")
        assert rescuer.deliver_due(NOW) == DeliveryStats(sent=2)
        assert counter.keys == {"k1": 1, "k2": 1}
        assert by_key(sessions)["k3"].lease_owner == crashed["lease_owner"]
        assert rescuer.deliver_due(NOW + dt.timedelta(seconds=61)) == DeliveryStats(sent=1)
    assert counter.keys == {"k1": 1, "k2": 1, "k3": 1}  # the same keys the crashed sender had
    assert http.seen[0].headers["idempotency-key"] == "k1"


class Gate:
    """Holds the first request until ``release`` is set; answers the others at once."""

    def __init__(self) -> None:
        self.first = threading.Event()
        self.release = threading.Event()
        self.keys: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.keys.append(seen.headers["idempotency-key"])
            first = len(self.keys) == 1
        if first:
            self.first.set()
            self.release.wait(20)
        return json_reply({"ok": True})


def test_a_sender_whose_lease_was_taken_over_cannot_overwrite(sessions) -> None:
    message = queue(sessions, "slow", "hook")
    gate = Gate()
    with LoopbackHTTP(gate) as http, hook(http) as slow_channel, hook(http) as fast_channel:
        slow = Outbox(sessions, {"hook": slow_channel}, worker="slow", policy=DeliveryPolicy(lease=1))
        fast = Outbox(sessions, {"hook": fast_channel}, worker="fast")
        result: list[DeliveryStats] = []
        thread = threading.Thread(target=lambda: result.append(slow.deliver_due(NOW)))
        thread.start()
        assert gate.first.wait(20)  # the slow sender is stuck mid-send; its 1 s lease runs out
        assert fast.deliver_due(NOW + dt.timedelta(seconds=5)) == DeliveryStats(sent=1)
        gate.release.set()
        thread.join(20)

    assert result == [DeliveryStats(lost=1)]
    assert gate.keys == ["slow", "slow"]  # at least once: the duplicate carries the same key
    row = load(sessions, message)
    assert (row.status, row.attempts, row.lease_owner) == ("sent", 1, None)
    assert seconds_after(row.sent_at, NOW) >= 5  # the new owner's record stands
    history = attempts(sessions, message)
    assert [(a.worker, a.status) for a in history] == [("fast", "sent"), ("slow", "sent")]
    assert "lease lost" in history[1].error


def test_stop_finishes_the_message_in_hand_and_releases_the_rest(sessions) -> None:
    for i in range(5):
        queue(sessions, f"s{i}", "hook", due=NOW - dt.timedelta(seconds=10 - i))
    stop = threading.Event()

    def respond(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        stop.set()  # a shutdown signal arrives while the first message is being sent
        return json_reply({"ok": True})

    with LoopbackHTTP(respond) as http, hook(http) as channel:
        outbox = Outbox(sessions, {"hook": channel})
        assert outbox.deliver_due(NOW, batch=10, stop=stop) == DeliveryStats(sent=1)
        rows = by_key(sessions)
        assert rows["s0"].status == "sent"
        for key in ("s1", "s2", "s3", "s4"):  # released at once, not left to expire
            assert (rows[key].status, rows[key].lease_owner, rows[key].lease_until) == ("pending", None, None)
        assert outbox.deliver_due(NOW) == DeliveryStats(sent=4)
    assert [s.headers["idempotency-key"] for s in http.seen] == [f"s{i}" for i in range(5)]


def test_a_restarted_daemon_takes_back_the_leases_of_a_killed_one_at_once(sessions) -> None:
    from sqlalchemy import select

    from notifications.leases import release_dead

    until = NOW + dt.timedelta(minutes=2)
    queue(sessions, "dead", "hook", lease_owner="box:999999#a1b2", lease_until=until)
    queue(sessions, "alive", "hook", lease_owner="box:4242#c3d4", lease_until=until)
    queue(sessions, "elsewhere", "hook", lease_owner="other:999999#e5f6", lease_until=until)
    assert release_dead(sessions, "box", alive=lambda pid: pid == 4242) == 1
    with transaction(sessions) as session:
        owners = dict(session.execute(select(OutboxMessage.key, OutboxMessage.lease_owner)).all())
    assert owners == {"dead": None, "alive": "box:4242#c3d4", "elsewhere": "other:999999#e5f6"}
    assert release_dead(sessions, "box", alive=lambda pid: pid == 4242) == 0


def test_a_batch_of_large_messages_is_cut_by_its_size_never_below_one(sessions) -> None:
    from notifications.leases import BATCH_CHARS, lease_batch

    big = "逾期事项" * (BATCH_CHARS // 4 // 3 + 1)  # a third of the budget and a little more
    ids = [queue(sessions, f"big-{n}", "mail", text=big) for n in range(4)]
    engine = sessions.kw["bind"]
    with engine.connect() as conn:
        first, _ = lease_batch(conn, NOW, 50, "a", 60)
        assert [m.id for m in first] == ids[:2]  # a third would pass the budget
        queue(sessions, "huge", "mail", text=big * 4)
        rest = [m.id for m in lease_batch(conn, NOW, 50, "b", 60)[0]]
        assert rest == ids[2:4]
        huge = lease_batch(conn, NOW, 50, "c", 60)[0]
        assert len(huge) == 1 and len(huge[0].text) > BATCH_CHARS  # alone over the budget: still sent


def test_outcomes_recorded_together_keep_a_lost_lease_apart(sessions) -> None:
    """Sends that finished together share one transaction; one whose lease another sender took
    over leaves that sender's row as it was, and the others are recorded all the same."""
    import time

    from notifications.leases import lease_batch
    from notifications.recording import record_all, result_of

    ids = [queue(sessions, f"t{i}", "hook", due=NOW - dt.timedelta(seconds=10 - i)) for i in range(4)]
    engine = sessions.kw["bind"]
    with engine.connect() as conn:
        leased, lease = lease_batch(conn, NOW, 10, "mine#1", 120)
        assert [item.id for item in leased] == ids
        with transaction(sessions) as session:  # t2's lease lapsed and another sender took it
            row = session.get(OutboxMessage, ids[2])
            row.lease_owner = "theirs#2"
        began = time.monotonic()
        results = [(result_of(item, NOW, None if i != 1 else RuntimeError("boom"), began, max_attempts=8,
                              backoff=lambda n: 60.0), lease.owner) for i, item in enumerate(leased)]
        assert record_all(conn, results, "w1") == [True, True, False, True]
    rows = by_key(sessions)
    assert [(rows[f"t{i}"].status, rows[f"t{i}"].lease_owner) for i in range(4)] == [
        ("sent", None), ("pending", None), ("pending", "theirs#2"), ("sent", None)]
    assert rows["t1"].attempts == 1 and "boom" in rows["t1"].last_error
    history = {message: [(a.status, a.error) for a in attempts(sessions, message)] for message in ids}
    assert history[ids[0]] == [("sent", "")] and history[ids[3]] == [("sent", "")]
    assert history[ids[1]][0][0] == "retry"
    assert history[ids[2]] == [("sent", "lease lost to another sender, result not applied")]
