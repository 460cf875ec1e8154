"""Evidence through the web and the API: uploads handed to the evidence store's staging (kept only
if the action is accepted, see ``engine.issues.evidence``), and a stored file served back as an
attachment, after its SHA-256 is checked, to those who may see its issue."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import quote

from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from ...accounts.actor import Actor
from ...errors import Forbidden, NotFound
from ...issues.evidence import CHUNK, EvidenceFile, EvidenceStore, Staging, upload_name
from ...issues.service import open_issue
from ...store.models import Evidence, Issue


def read_uploads(uploads: Iterable[Any], staged: Staging) -> list[EvidenceFile]:
    """Stage each uploaded file (starlette/FastAPI ``UploadFile``); empty or oversized ones refuse."""
    out = []
    for upload in uploads:
        upload.file.seek(0)
        out.append(staged.take(upload_name(upload.filename), upload.file))
    return out


# Ids are 32-bit on PostgreSQL (64 on SQLite): a larger number names no row, and asking the
# database for it would be an "out of range" error, not a 404.
MAX_ID = 2**31 - 1


def evidence_response(session: Session, actor: Actor, evidence_id: int, store: EvidenceStore) -> Response:
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
    body = store.open_verified(row)  # EvidenceMissing (404) or EvidenceChanged (409): never other bytes
    if isinstance(body, bytes):
        return Response(body, media_type="application/octet-stream", headers=headers)
    return StreamingResponse(_stream(body), media_type="application/octet-stream",
                             headers={**headers, "Content-Length": str(row.size)})


def _stream(fh: BinaryIO) -> Iterator[bytes]:
    # the very file whose hash was checked, so a swap of the name in between changes nothing
    try:
        while chunk := fh.read(CHUNK):
            yield chunk
    finally:
        fh.close()
