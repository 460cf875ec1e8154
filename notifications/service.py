"""Wiring the notification stages for one process: channels, renderer, routes, pipeline, outbox."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from engine.runtime import Runtime
from notifications.channels._app import AppChannel
from notifications.channels._tokens import TokenCache
from notifications.channels.base import Channel
from notifications.outbox import DeliveryPolicy, DeliveryStats, Outbox
from notifications.people import NoAccounts, People
from notifications.pipeline import Pipeline, RouteStats
from notifications.ratelimit import Limit
from notifications.render import Renderer
from notifications.reports import follow_up
from notifications.routing import Route, load_routes
from notifications.settings import Notify, load_notify
from notifications.tokens import DatabaseTokens

# database URL -> the app tokens of every notifier on it in this process (a reload keeps them)
_TOKENS: dict[str, TokenCache] = {}


def tokens_for(sessions: sessionmaker[Session]) -> TokenCache:
    """The process's token cache for one database, backed by that database's ``app_tokens``."""
    url = str(sessions.kw["bind"].url)
    if url not in _TOKENS:
        cache = TokenCache()
        cache.shared = DatabaseTokens(sessions)
        _TOKENS[url] = cache
    return _TOKENS[url]


@dataclass
class Notified:
    routed: RouteStats
    delivered: DeliveryStats


class Notifier:
    """Routes written reminders into the outbox and delivers what is due, for one configuration."""

    def __init__(self, runtime: Runtime, sessions: sessionmaker[Session], people: People | None = None):
        self.rt = runtime
        self.sessions = sessions
        # who hears and how to reach them: the accounts, wired in by the application
        self.people: People = people if people is not None else NoAccounts()

    @cached_property
    def notify(self) -> Notify:
        return load_notify(self.rt.config)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(self.notify.settings.language, self.notify.template_dir)

    @cached_property
    def routes(self) -> list[Route]:
        return load_routes(self.notify.routing_dirs)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        channels = self.notify.build_channels()
        for channel in channels.values():
            if isinstance(channel, AppChannel):
                channel.tokens = tokens_for(self.sessions)
        return channels

    @cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(self.rt, self.sessions, self.notify, self.renderer, self.routes, people=self.people)

    @cached_property
    def outbox(self) -> Outbox:
        s = self.notify.settings
        policy = DeliveryPolicy(max_attempts=s.max_attempts, backoff_base=s.backoff_base_seconds,
                                backoff_max=s.backoff_max_seconds)
        limits = {name: Limit.parse(text) for name, text in s.rate_limits.items()}
        return Outbox(self.sessions, self.channels, policy=policy, quiet=self.pipeline.quiet, limits=limits)

    def run(self, now: dt.datetime) -> Notified:
        """Route every reminder written by now, then deliver every message due by now."""
        routed = self.pipeline.route_pending(now)
        delivered = self.outbox.deliver_due(now)
        self.follow_up(now)
        return Notified(routed, delivered)

    def follow_up(self, now: dt.datetime) -> int:
        """Ask the platforms what became of accepted messages whose report is due (``reports``)."""
        return follow_up(self.sessions, self.channels, now)

    def close(self) -> None:
        if "channels" in self.__dict__:
            for channel in self.channels.values():
                channel.close()
