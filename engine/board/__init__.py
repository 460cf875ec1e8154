"""The status board: a read-only, server-rendered WSGI app (overview, overdue, duties, issues, ICS).

``make_board_app(runtime, sessions, token)`` returns a plain WSGI callable; the daemon mounts it at
"/", and ``duban board`` serves it alone with wsgiref. The import is lazy because ``engine.report``
uses ``engine.board.agenda`` and the app uses ``engine.report``: importing the app here would make
the two modules import each other half-initialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"

__all__ = ["TEMPLATES", "make_board_app"]


def __getattr__(name: str) -> Any:
    if name == "make_board_app":
        from .app import make_board_app

        return make_board_app
    raise AttributeError(name)
