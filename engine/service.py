"""The one transactional entry point for moving an issue: machine, history row, evidence.

Everything a transition writes (the new state, its history entry, the evidence files, a new
deadline) is written in the caller's transaction, so a refused or failed step leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .errors import BadInput
from .queries import issue_ref, resolve_ref
from .store.models import Evidence, HistoryEntry, Issue
from .workflow.machine import Subject
from .workflow.registry import WorkflowRegistry


@dataclass(frozen=True)
class EvidenceFile:
    file_name: str
    sha256: str
    size: int
    content: bytes | None
    path: str | None


@dataclass(frozen=True)
class Moved:
    ref: str
    trigger: str
    from_state: str
    to_state: str
    at: dt.datetime


def read_evidence(paths: list[Path], *, inline_max_bytes: int) -> list[EvidenceFile]:
    """Read and hash evidence files before anything is written, so a missing file refuses early."""
    out = []
    for path in paths:
        if not path.is_file():
            raise BadInput(f"{path}: evidence file not found")
        data = path.read_bytes()
        inline = len(data) <= inline_max_bytes
        out.append(EvidenceFile(path.name, hashlib.sha256(data).hexdigest(), len(data),
                                data if inline else None, None if inline else str(path.resolve())))
    return out


def transition(
    session: Session,
    registry: WorkflowRegistry,
    ref: str | Issue,
    trigger: str,
    *,
    by: str,
    now: dt.datetime,
    note: str = "",
    deadline: dt.date | None = None,
    evidence: list[EvidenceFile] | None = None,
) -> Moved:
    """Fire ``trigger`` on the issue; raise ``Refused`` (writing nothing) when not allowed."""
    if not by.strip():
        raise BadInput("say who is acting: --by WHO")
    issue = ref if isinstance(ref, Issue) else resolve_ref(session, ref, for_update=True)
    evidence = evidence or []
    machine = registry.machine(issue.workflow)
    count = session.scalar(select(func.count()).select_from(Evidence).where(Evidence.issue_id == issue.id)) or 0
    subject = Subject(ref=issue_ref(issue), state=issue.state, deadline=issue.deadline, evidence_count=count,
                      measures=issue.measures, leader=issue.leader, department=issue.department)
    before = issue.state
    after = machine.fire(subject, trigger, by=by, note=note, deadline=deadline, evidence=evidence)
    if after != before:
        issue.state = after
        issue.state_since = now
    if deadline is not None:
        issue.deadline = deadline
    issue.updated_at = now
    session.add(HistoryEntry(issue_id=issue.id, at=now, by=by, trigger=trigger, from_state=before,
                             to_state=after, note=note))
    for item in evidence:
        session.add(Evidence(issue_id=issue.id, file_name=item.file_name, sha256=item.sha256, size=item.size,
                             content=item.content, path=item.path, added_at=now, added_by=by))
    session.flush()
    return Moved(subject.ref, trigger, before, after, now)
