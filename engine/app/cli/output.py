"""Printing: rich for people, plain JSON for programs, errors on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# markup off: ledger text may contain [brackets] that rich would otherwise eat
# Piped output (to a file, to less) is not cut to 80 columns: Chinese titles need the room.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
# soft_wrap: a FILE:LINE:COL line must stay one line, whatever the terminal width
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def say(text: str) -> None:
    out.print(text, markup=False, soft_wrap=True)


def warn(text: str) -> None:
    err.print(f"warning: {text}", markup=False, style="yellow")


def error_lines(lines: list[str]) -> None:
    first, *rest = lines
    err.print(f"Error: {first}", markup=False, style="bold red")
    for line in rest:
        err.print(f"  {line}", markup=False)
