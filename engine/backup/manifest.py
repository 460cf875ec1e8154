"""The manifest of a backup archive, its member names, and hashing while bytes pass.

Member names are fixed (``MANIFEST.json``, ``database/duban.sqlite3`` or ``database/duban.pgdump``,
``evidence/<SHA-256>``): a restore reads nothing else, so a hostile archive (``../x``, a link, a
device) is refused by name before a byte of it is written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO

from ..errors import BadInput

FORMAT = "duban-backup"
FORMAT_VERSION = 1
MANIFEST = "MANIFEST.json"
DATABASE_MEMBERS = {"sqlite": "database/duban.sqlite3", "postgresql": "database/duban.pgdump"}
EVIDENCE_PREFIX = "evidence/"
_EVIDENCE = re.compile(r"evidence/([0-9a-f]{64})")
CHUNK = 1 << 20


class Damaged(BadInput):
    """The archive is not what its manifest says (a member changed, missing or unknown): exit 2."""


@dataclass(frozen=True)
class Member:
    sha256: str
    size: int


@dataclass
class Manifest:
    duban_version: str
    schema_revision: str
    created_at: str  # ISO-8601 in the configured zone, with its offset
    timezone: str
    backend: str  # sqlite | postgresql
    members: dict[str, Member] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # store files rows name that were not there
    changed: list[str] = field(default_factory=list)  # store files whose bytes no longer match their name

    @property
    def database_member(self) -> str:
        return DATABASE_MEMBERS[self.backend]

    def evidence(self) -> list[str]:
        return [name for name in self.members if name.startswith(EVIDENCE_PREFIX)]

    def to_json(self) -> bytes:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw.decode("utf-8"))
            if data.get("format") != FORMAT:
                raise Damaged(f"{MANIFEST}: not a duban backup manifest")
            if data.get("format_version") != FORMAT_VERSION:
                raise Damaged(f"{MANIFEST}: format version {data.get('format_version')!r}; this duban reads "
                              f"version {FORMAT_VERSION}", hint="restore it with the duban that made it")
            members = {str(k): Member(str(v["sha256"]), int(v["size"])) for k, v in data["members"].items()}
            manifest = cls(duban_version=str(data["duban_version"]), schema_revision=str(data["schema_revision"]),
                           created_at=str(data["created_at"]), timezone=str(data["timezone"]),
                           backend=str(data["backend"]), members=members,
                           counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
                           missing=[str(x) for x in data.get("missing") or ()],
                           changed=[str(x) for x in data.get("changed") or ()])
        except Damaged:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise Damaged(f"{MANIFEST}: unreadable ({type(exc).__name__}: {exc})",
                          hint="the archive is damaged or not a duban backup") from None
        if manifest.backend not in DATABASE_MEMBERS:
            raise Damaged(f"{MANIFEST}: unknown database backend {manifest.backend!r}")
        for name in members:
            check_name(name)
        if manifest.database_member not in members:
            raise Damaged(f"{MANIFEST}: lists no database member ({manifest.database_member})")
        return manifest


def check_name(name: str) -> None:
    """Refuse every member name a duban archive never has."""
    if name == MANIFEST or name in DATABASE_MEMBERS.values() or _EVIDENCE.fullmatch(name):
        return
    raise Damaged(f"{name!r}: not a member of a duban backup (names are {MANIFEST}, database/…, evidence/<SHA-256>)",
                  hint="the archive is damaged or was not made by duban backup; nothing was restored")


def evidence_name(sha256: str) -> str:
    return f"{EVIDENCE_PREFIX}{sha256}"


class HashingReader:
    """A file object that hashes what is read through it (tarfile reads members through one)."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None = None):
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.digest.update(chunk)
        self.size += len(chunk)
        if self.on_bytes is not None and chunk:
            self.on_bytes(len(chunk))
        return chunk

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

