"""Workflow versions in the database, and the one machine per version.

A workflow file is registered as a new version when its content hash is new. A ledger runs one
version: the one its issues are on (a ledger with none takes the newest). Registering a version
moves nothing: the ledger's rows, old and new, stay on its version until an administrator moves
the ledger on purpose (``engine.ledger.migrate``), mapping any state the new version no longer has.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Config
from ..errors import BadInput, NotFound, WorkflowError
from ..store.models import Issue, Ledger, WorkflowVersion
from .loader import LoadedWorkflow, load_workflow, load_workflow_text
from .machine import WorkflowMachine
from .schema import WorkflowDef


class WorkflowRegistry:
    """Finds workflow files (``*.yaml`` directly in the configured folders) and their versions."""

    def __init__(self, config: Config):
        self.dirs = config.workflow_dirs()
        self.admins = frozenset(config.workflows.admins)

    def files(self) -> dict[str, LoadedWorkflow]:
        """Every workflow file, loaded and validated; the first error stops with its location."""
        found: dict[str, LoadedWorkflow] = {}
        for folder in self.dirs:
            if not folder.is_dir():
                raise WorkflowError(f"{folder}: workflow folder not found", hint="check [workflows] paths")
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                loaded = load_workflow(path)
                if loaded.name in found:
                    raise WorkflowError(
                        f"{path}: workflow {loaded.name!r} is also defined in {found[loaded.name].path}"
                    )
                found[loaded.name] = loaded
        return found

    def file(self, name: str) -> LoadedWorkflow:
        files = self.files()
        if name not in files:
            raise NotFound(
                f"no workflow named {name!r} in {', '.join(str(d) for d in self.dirs)}",
                hint=f"known workflows: {', '.join(files) or 'none'}",
            )
        return files[name]

    def register(self, session: Session, loaded: LoadedWorkflow, now: dt.datetime) -> tuple[WorkflowVersion, bool]:
        """The version row for ``loaded``, inserting it if new. Returns (version, created)."""
        existing = session.scalar(
            select(WorkflowVersion).where(
                WorkflowVersion.name == loaded.name, WorkflowVersion.content_hash == loaded.content_hash
            )
        )
        if existing is not None:
            return existing, False
        version = WorkflowVersion(
            name=loaded.name,
            content_hash=loaded.content_hash,
            title=loaded.definition.title,
            source_path=loaded.path,
            source=loaded.source,
            definition=loaded.definition.model_dump(mode="json"),
            created_at=now,
        )
        session.add(version)
        session.flush()
        return version, True

    @staticmethod
    def left_behind(session: Session, version: WorkflowVersion) -> list[tuple[str, str, int]]:
        """(ledger, state, issues) of ``version``'s workflow in states it does not have: those ledgers
        need a ``--map`` to move to it (they stay where they are until then)."""
        states = [s.name for s in WorkflowRegistry.definition(version).states]
        rows = session.execute(
            select(Ledger.name, Issue.state, func.count()).join(Ledger).join(WorkflowVersion)
            .where(WorkflowVersion.name == version.name, Issue.state.not_in(states))
            .group_by(Ledger.name, Issue.state).order_by(Ledger.name, Issue.state)).all()
        return [(ledger, state, n) for ledger, state, n in rows]

    def sync(self, session: Session, name: str, now: dt.datetime) -> WorkflowVersion:
        return self.register(session, self.file(name), now)[0]

    def sync_all(self, session: Session, now: dt.datetime) -> list[tuple[WorkflowVersion, bool]]:
        return [self.register(session, loaded, now) for loaded in self.files().values()]

    @staticmethod
    def versions(session: Session) -> list[tuple[WorkflowVersion, int]]:
        """Every registered version with the number of issues on it."""
        counts = dict(session.execute(select(Issue.workflow_id, func.count()).group_by(Issue.workflow_id)).all())
        return [(v, counts.get(v.id, 0)) for v in
                session.scalars(select(WorkflowVersion).order_by(WorkflowVersion.name, WorkflowVersion.id))]

    @staticmethod
    def current(session: Session, name: str) -> WorkflowVersion:
        version = session.scalar(
            select(WorkflowVersion).where(WorkflowVersion.name == name).order_by(WorkflowVersion.id.desc()).limit(1)
        )
        if version is None:
            raise NotFound(f"workflow {name!r} is not registered", hint="run `duban init`")
        return version

    @classmethod
    def of_ledger(cls, session: Session, ledger: Ledger) -> WorkflowVersion:
        """The version ``ledger`` runs: the one its issues are on, read off its first row (one index
        read: a ledger's issues share a version, moved together by ``duban workflow migrate``); the
        newest registered for a ledger with no issues yet."""
        first = session.scalar(select(Issue.workflow_id).where(Issue.ledger_id == ledger.id)
                               .order_by(Issue.position).limit(1))
        if first is None:
            return cls.current(session, ledger.workflow_name)
        version = session.get(WorkflowVersion, first)
        assert version is not None  # issues.workflow_id is a foreign key
        return version

    @staticmethod
    def on_ledger(session: Session, ledger: Ledger) -> list[tuple[WorkflowVersion, int]]:
        """Every version the ledger's issues are on, oldest first, with how many are on each (more
        than one only in a ledger an older duban mixed: its re-imports put new rows on the newest)."""
        counts = session.execute(select(Issue.workflow_id, func.count()).where(Issue.ledger_id == ledger.id)
                                 .group_by(Issue.workflow_id)).all()
        found = [(session.get(WorkflowVersion, wid), n) for wid, n in counts]
        return sorted(((v, n) for v, n in found if v is not None), key=lambda pair: pair[0].id)

    @staticmethod
    def named(session: Session, name: str, wanted: str) -> WorkflowVersion:
        """The version of workflow ``name`` that ``wanted`` names: ``latest`` (the newest registered)
        or its content hash as ``duban workflow list`` shows it (any unambiguous leading part)."""
        if wanted == "latest":
            return WorkflowRegistry.current(session, name)
        versions = list(session.scalars(select(WorkflowVersion).where(WorkflowVersion.name == name)
                                        .order_by(WorkflowVersion.id)))
        shown = ", ".join(f"{v.version} ({v.created_at:%Y-%m-%d})" for v in versions) or "none"
        key = wanted.strip().lower()
        hits = [v for v in versions if len(key) >= 4 and v.content_hash.startswith(key)]
        if not hits:
            raise NotFound(f"workflow {name!r} has no version {wanted!r}",
                           hint=f"versions (`duban workflow list`): {shown}; or latest")
        if len(hits) > 1:
            raise BadInput(f"{wanted!r} names {len(hits)} versions of {name!r}", hint=f"give more of the hash: {shown}")
        return hits[0]

    def machine(self, version: WorkflowVersion) -> WorkflowMachine:
        return self.machine_of(version.content_hash, lambda: version.source)

    @staticmethod
    def definition(version: WorkflowVersion) -> WorkflowDef:
        return WorkflowRegistry.definition_of(version.content_hash, lambda: version.source)

    def machine_of(self, content_hash: str, source: Callable[[], str]) -> WorkflowMachine:
        """The machine of the version with ``content_hash``; ``source`` is asked for only the first time."""
        key = (content_hash, self.admins)
        found = _MACHINES.get(key)
        if found is None:
            found = _MACHINES[key] = _machine(content_hash, source(), self.admins)
            _bound(_MACHINES)
        return found

    @staticmethod
    def definition_of(content_hash: str, source: Callable[[], str]) -> WorkflowDef:
        found = _DEFINITIONS.get(content_hash)
        if found is None:
            found = _DEFINITIONS[content_hash] = _definition(content_hash, source())
            _bound(_DEFINITIONS)
        return found


# The content hash is the hash of a version's meaning (``loader.content_hash``), so it alone names
# the definition: a step then needs only the version's hash, not its stored source and JSON.
_MACHINES: dict[tuple[str, frozenset[str]], WorkflowMachine] = {}
_DEFINITIONS: dict[str, WorkflowDef] = {}


def _bound(cache: dict) -> None:
    if len(cache) > 256:  # versions are few; this only stops a pathological process from growing
        cache.pop(next(iter(cache)))


@lru_cache(maxsize=64)
def _definition(content_hash: str, source: str) -> WorkflowDef:
    # The stored source was valid when registered; rebuilding from it (not from the file on disk)
    # keeps an issue on the exact version it started with even after the file changes.
    return load_workflow_text(source, f"<workflow {content_hash[:12]}>").definition


@lru_cache(maxsize=64)
def _machine(content_hash: str, source: str, admins: frozenset[str]) -> WorkflowMachine:
    return WorkflowMachine(_definition(content_hash, source), admins=admins)

