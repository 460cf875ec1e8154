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
from ...issues.actions import evidence_row
from ...issues.evidence import CHUNK, EvidenceFile, EvidenceStore, Staging, upload_name


def read_uploads(uploads: Iterable[Any], staged: Staging) -> list[EvidenceFile]:
    """Stage each uploaded file (starlette/FastAPI ``UploadFile``); empty or oversized ones refuse."""
    out = []
    for upload in uploads:
        upload.file.seek(0)
        out.append(staged.take(upload_name(upload.filename), upload.file))
    return out


def evidence_response(session: Session, actor: Actor, evidence_id: int, store: EvidenceStore) -> Response:
    row = evidence_row(session, actor, evidence_id)  # NotFound, or Forbidden unless the actor may read it
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
