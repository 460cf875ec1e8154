"""The errors duban shows to people.

Every mistake a user can make (bad YAML, a bad ledger row, a refused transition) is raised as a
``DubanError``; the CLI prints its message and exits with its code, never with a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2


class DubanError(Exception):
    """Base error with a user-facing message and the exit code the CLI should use."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = list(details or [])

    def lines(self) -> list[str]:
        out = [self.message, *self.details]
        if self.hint:
            out.append(f"hint: {self.hint}")
        return out


class BadInput(DubanError):
    """The user's input (a file, an argument, a row) is wrong; exit 2."""

    exit_code = EXIT_BAD_INPUT


class ConfigError(BadInput):
    """config.toml or the environment is wrong."""


class WorkflowError(BadInput):
    """A workflow YAML file is wrong; ``details`` are ``FILE:LINE:COL: message`` lines."""


class LedgerError(BadInput):
    """A ledger file is wrong; ``details`` are ``FILE: row N: COLUMN: message`` lines."""


class NotFound(BadInput):
    """A named thing (issue, ledger, workflow) does not exist."""


class Refused(DubanError):
    """The request is well formed but not allowed now (e.g. a transition); exit 1."""

    exit_code = EXIT_REFUSED


class Forbidden(Refused):
    """The user may not see or do this (their roles do not reach it); exit 1, HTTP 403."""


class NoSpace(Refused):
    """The server has no room to keep it now (a full disk, below the configured reserve); exit 1, HTTP 507."""
