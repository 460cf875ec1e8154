"""One tick: store duty occurrences ahead, sweep, route, deliver — the same for `duban run` and
`duban sweep`.

The daemon's leader runs a tick every ``sweep_every`` seconds (its deliveries run on their own
timer on every daemon, so ``deliver=False`` there); ``duban sweep`` runs one tick and delivers.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from notifications.outbox import DeliveryStats
from notifications.pipeline import RouteStats
from notifications.service import Notifier

from ..duties.book import SyncResult
from ..duties.definitions import LoadedDuty
from ..reminders.sweep import Sweeper, SweepResult
from ..runtime import Runtime
from ..store.db import transaction


@dataclass
class Ticked:
    synced: SyncResult
    swept: SweepResult
    routed: RouteStats
    delivered: DeliveryStats | None


def tick(runtime: Runtime, notifier: Notifier, sessions: sessionmaker[Session], duties: list[LoadedDuty],
         now: dt.datetime, *, deliver: bool, batch: int = 50, stop: threading.Event | None = None) -> Ticked:
    with transaction(sessions) as session:
        synced = runtime.duty_book.sync(session, duties, now)
    swept = Sweeper(runtime, sessions).sweep(now)
    routed = notifier.pipeline.route_pending(now)
    delivered = notifier.outbox.deliver_due(now, batch=batch, stop=stop) if deliver else None
    if deliver:
        notifier.follow_up(now)
    return Ticked(synced, swept, routed, delivered)
