"""The workspace's templates: its own folder first, then the board's (``ws_base.html.j2`` extends
the board's ``base.html.j2``, so both share one look), behind ``[board] templates``."""

from __future__ import annotations

from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment
from starlette.requests import Request

from ....runtime import Runtime
from ..pages import BOARD_TEMPLATES, page_env

WORKSPACE_TEMPLATES = Path(__file__).resolve().parent / "templates"


def workspace_env(request: Request, runtime: Runtime) -> SandboxedEnvironment:
    return page_env(request, runtime, (WORKSPACE_TEMPLATES, BOARD_TEMPLATES))
