"""Printing: rich for people, plain JSON for programs, errors on stderr.

Everything printed here is data (ledger cells, user names, file names), never rich markup: both
consoles have markup and emoji codes off, so a cell reading ``[/]`` or ``[bold]`` prints as
written instead of crashing the table, and ``reviewer:ledger:X`` does not turn into an emoji.
Tables (``rich.table.Table``) render their cells through these consoles and inherit both.

Messages are translated here, at the boundary (``engine.i18n.translate``): the engine raises and
the commands say English f-strings, the catalogue turns them into Chinese (the default).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from ...errors import DubanError
from ...i18n import _, translate

# Piped output (to a file, to less) is not cut to 80 columns: Chinese titles need the room.
out = Console(highlight=False, markup=False, emoji=False, width=None if sys.stdout.isatty() else 200)
# soft_wrap: a FILE:LINE:COL line must stay one line, whatever the terminal width
err = Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def say(text: str) -> None:
    out.print(translate(text), markup=False, soft_wrap=True)


def warn(text: str) -> None:
    err.print(_("warning: {message}").format(message=translate(text)), markup=False, style="yellow")


def error_lines(lines: list[str]) -> None:
    first, *rest = (translate(line) for line in lines)
    err.print(_("Error: {message}").format(message=first), markup=False, style="bold red")
    for line in rest:
        err.print(f"  {line}", markup=False)


def show_error(exc: DubanError) -> None:
    """A refusal or a mistake: its message, its details, then the hint (each translated alone)."""
    lines = [exc.message, *exc.details]
    if exc.hint:
        lines.append(_("hint: {hint}").format(hint=translate(exc.hint)))
    error_lines(lines)
