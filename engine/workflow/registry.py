"""Workflow versions in the database, and the one machine per version.

A workflow file is registered as a new version when its content hash is new. Issues keep the
version they started with; new issues take the newest. A new version that would strand issues in a
state it no longer has is refused, naming them, so an edit cannot silently orphan live work.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..config import Config
from ..errors import NotFound, Refused, WorkflowError
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
        self._refuse_stranding(session, loaded)
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

    def _refuse_stranding(self, session: Session, loaded: LoadedWorkflow) -> None:
        states = [s.name for s in loaded.definition.states]
        stranded = select(Ledger.name, Issue.ref, Issue.state).join(Ledger).join(WorkflowVersion).where(
            WorkflowVersion.name == loaded.name, Issue.state.not_in(states)
        )
        count = session.scalar(select(func.count()).select_from(stranded.subquery()))
        if not count:
            return
        rows = session.execute(stranded.order_by(Ledger.name, Issue.position).limit(20)).all()
        names = [f"{ledger}/{ref} ({state})" for ledger, ref, state in rows]
        more = f" and {count - len(rows)} more" if count > len(rows) else ""
        raise Refused(
            f"{loaded.path}: this version of {loaded.name!r} removes states that {count} issue(s) are in",
            details=[f"stranded: {', '.join(names)}{more}"],
            hint="keep those states, or move the issues out of them first",
        )

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

    def machine(self, version: WorkflowVersion) -> WorkflowMachine:
        return _machine(version.content_hash, version.source, self.admins)

    @staticmethod
    def definition(version: WorkflowVersion) -> WorkflowDef:
        return _definition(version.content_hash, version.source)


@lru_cache(maxsize=64)
def _definition(content_hash: str, source: str) -> WorkflowDef:
    # The stored source was valid when registered; rebuilding from it (not from the file on disk)
    # keeps an issue on the exact version it started with even after the file changes.
    return load_workflow_text(source, f"<workflow {content_hash[:12]}>").definition


@lru_cache(maxsize=64)
def _machine(content_hash: str, source: str, admins: frozenset[str]) -> WorkflowMachine:
    return WorkflowMachine(_definition(content_hash, source), admins=admins)

