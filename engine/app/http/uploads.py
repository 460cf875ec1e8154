"""Evidence through the web and the API: an upload read in chunks under the size limit and
hashed, and a stored file served back as an attachment to those who may see its issue."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi.responses import FileResponse, Response
from sqlalchemy.orm import Session

from ...accounts.actor import Actor
from ...errors import BadInput, Forbidden, NotFound
from ...issues.service import EvidenceFile, open_issue
from ...store.models import Evidence, Issue


def read_upload(upload: Any, *, max_bytes: int, inline_max_bytes: int, store: Path) -> EvidenceFile:
    """Hash an uploaded file in chunks; small ones are kept in the database, larger ones in ``store``
    under their SHA-256 (the same bytes are kept once); one over ``max_bytes`` is refused."""
    name = Path(str(upload.filename or "file")).name[:200] or "file"
    digest, size = hashlib.sha256(), 0
    with tempfile.SpooledTemporaryFile(max_size=inline_max_bytes) as spool:
        fh = upload.file
        fh.seek(0)
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise BadInput(f"{name}: larger than the evidence limit of {max_bytes / 2**20:,.0f} MB")
            digest.update(chunk)
            spool.write(chunk)
        if size == 0:
            raise BadInput(f"{name}: the file is empty")
        sha = digest.hexdigest()
        spool.seek(0)
        if size <= inline_max_bytes:
            return EvidenceFile(name, sha, size, spool.read(), None)
        store.mkdir(parents=True, exist_ok=True)
        target = store / sha
        if not target.exists():
            with tempfile.NamedTemporaryFile(dir=store, delete=False) as out:
                while chunk := spool.read(1 << 20):
                    out.write(chunk)
            os.replace(out.name, target)
    return EvidenceFile(name, sha, size, None, str(target))


# Ids are 32-bit on PostgreSQL (64 on SQLite): a larger number names no row, and asking the
# database for it would be an "out of range" error, not a 404.
MAX_ID = 2**31 - 1


def evidence_response(session: Session, actor: Actor, evidence_id: int) -> Response:
    row = session.get(Evidence, evidence_id) if 1 <= evidence_id <= MAX_ID else None
    if row is None:
        raise NotFound(f"no evidence file {evidence_id}")
    if row.issue_id is None:
        if not actor.is_admin:
            raise Forbidden("this file belongs to a duty; only an administrator may open it here")
    else:
        issue = session.get(Issue, row.issue_id)
        if issue is None:
            raise NotFound("the issue of this file is gone")
        open_issue(session, issue, actor)  # Forbidden unless the actor may see the issue
    disposition = f"attachment; filename*=UTF-8''{quote(row.file_name, safe='')}"
    headers = {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}
    if row.content is not None:
        return Response(row.content, media_type="application/octet-stream", headers=headers)
    if row.path and Path(row.path).is_file():
        return FileResponse(row.path, media_type="application/octet-stream", headers=headers)
    raise NotFound(f"{row.file_name}: the stored file is missing")
