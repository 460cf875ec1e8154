"""What ``duban run`` runs on: every file read and checked together.

``load_all`` reads the workflows, duties, routing, channels and
templates, and returns them as one ``Loaded``; it raises ``DubanError`` naming the bad file. The
daemon (``engine.app.daemon``) runs on one ``Loaded`` and swaps it whole on a good SIGHUP, so a bad
file never leaves it half reloaded.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session, sessionmaker

from notifications.service import Notifier

from ..accounts.directory import AccountHearers
from ..config import Config, DaemonConfig
from ..duties.definitions import LoadedDuty
from ..runtime import Runtime
from ..workflow.loader import LoadedWorkflow
from .checks import check_rendering
from .notifying import build_notifier


@dataclass(frozen=True)
class Loaded:
    """Everything read from files, validated together; swapped whole on a good SIGHUP."""

    config: Config
    settings: DaemonConfig  # config.daemon, kept beside the rest for a reload to swap together
    runtime: Runtime
    notifier: Notifier
    workflows: list[LoadedWorkflow]
    duties: list[LoadedDuty]


def load_all(config: Config, sessions: sessionmaker[Session]) -> Loaded:
    """Read and check every file the daemon runs on; raises DubanError naming the bad one."""
    settings = config.daemon
    runtime = Runtime(config, hearers=AccountHearers())  # the reminders ask the accounts through it
    runtime.calendar  # noqa: B018 - checks [calendar] extra dates now rather than at the first sweep
    workflows = list(runtime.registry.files().values())
    duties = runtime.duty_definitions()
    notifier = build_notifier(runtime, sessions)
    outbox = notifier.outbox  # builds settings, channels, templates, routes and pipeline: all checked
    check_rendering(notifier.renderer, workflows)  # and renders every template with sample data
    if settings.lease_seconds is not None:
        outbox.policy = replace(outbox.policy, lease=settings.lease_seconds)
    return Loaded(config, settings, runtime, notifier, workflows, duties)

