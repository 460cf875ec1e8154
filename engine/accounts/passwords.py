"""Password hashes (argon2id, argon2-cffi's defaults) and the rules a new password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import BadInput

MIN_LENGTH = 8
_HASHER = PasswordHasher()
# Verified when the user does not exist or has no password, so a wrong name takes as long as a
# wrong password (the time does not tell which names exist).
_DUMMY = _HASHER.hash("duban: no such user")


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise BadInput(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > 1024:
        raise BadInput("a password of more than 1,024 characters is not accepted")
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(stored or _DUMMY, password[:1024]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
