"""The one HTTP application: health, metrics, the status board, the ICS feed and ``/api/v1``.

``create_app(site)`` builds a FastAPI application over a ``Site`` (what the pages read from: the
current runtime, read-only sessions, the clock, the board token and, in the daemon, its health and
metrics). ``duban run`` serves it on ``[daemon] listen``; ``duban board`` serves it alone. Pages are
server-rendered (jinja2, sandboxed), every state-changing method is refused (the board reads), and
every response carries the security headers (``headers``; HSTS under https). Every request body is
authenticated and size-limited before it is read (``limits``).

Who may read: ``/healthz`` answers anyone who can reach the port, but beyond loopback and without
the board token only with its status (a liveness answer: no pid, version, role or outbox depth);
every other path, ``/metrics`` included, answers loopback freely and others only with the board
token (see ``auth``). ``/healthz`` also reports the evidence folder's free space: below
``[evidence] min_free_bytes`` its status is "degraded" (503), since uploads are refused then.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from ... import __version__
from ...accounts.links import site_secret
from ...clock import Clock
from ...issues.evidence import EvidenceStore
from ...runtime import Runtime
from ...store import db
from ..vitals import LatestAnswer, with_evidence_space
from .api import router as api_router
from .auth import BoardGuard, is_local, token_matches
from .headers import SecurityHeaders
from .limits import BodyLimits
from .oidc import router as sso_router
from .pages import router as pages_router
from .signin_apps import router as apps_router
from .signin_doors import router as doors_router
from .workspace import router as workspace_router

log = logging.getLogger("duban.http")


@dataclass
class Site:
    """What the application reads from. ``runtime`` and ``token`` are asked per request, so the
    daemon's reload (which swaps them) takes effect without restarting the server."""

    runtime: Callable[[], Runtime]
    sessions: sessionmaker[Session]  # read-only work: deferred transactions, never the write lock
    clock: Clock = field(default_factory=Clock)
    token: Callable[[], str | None] = lambda: None
    health: Callable[[bool], dict[str, Any]] | None = None  # the daemon's, given the database's answer
    metrics: CollectorRegistry | None = None
    writers: sessionmaker[Session] | None = None  # the workspace's actions; None: read-only


def create_app(site: Site) -> FastAPI:
    app = FastAPI(title="duban", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json")
    app.state.site = site

    # the database's and the evidence disk's answers, asked off the event loop (see LatestAnswer)
    checked = LatestAnswer(lambda: (_database_answers(site), EvidenceStore.of(site.runtime().config).space()))

    @app.api_route("/healthz", methods=["GET", "HEAD"], include_in_schema=False)
    async def healthz(request: Request) -> JSONResponse:
        try:
            answer = await checked.get()
            database, space = answer if answer is not None else (False, None)
            body = site.health(database) if site.health is not None else _board_health(database)
            if space is not None:
                body = with_evidence_space(body, space)
        except Exception as exc:
            log.exception("health check failed")
            body = {"status": "unhealthy", "error": type(exc).__name__}
        code = 200 if body.get("status") == "ok" else 503
        token = site.token()
        if not (is_local(request) or (token is not None and token_matches(request, token))):
            body = {"status": body.get("status", "unhealthy")}  # liveness only for strangers
        return JSONResponse(body, code)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        registry = site.metrics or CollectorRegistry()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(api_router)
    app.include_router(doors_router)  # before the workspace's: it extends /ws/login and /ws/logout
    app.include_router(apps_router)
    app.include_router(sso_router)
    app.include_router(workspace_router)
    app.include_router(pages_router)
    # Each one added runs before those added earlier: the headers wrap every answer, the session is
    # read before a body is judged (a form's CSRF token is checked against it), bodies before the guard.
    app.add_middleware(BoardGuard, token=site.token)
    app.add_middleware(BodyLimits, runtime=site.runtime, sessions=site.sessions)
    app.add_middleware(SessionMiddleware, secret_key=_secret(site), session_cookie=SESSION_COOKIE,
                       max_age=site.runtime().config.workspace.session_hours * 3600, same_site="lax",
                       https_only=site.runtime().config.board.https)
    app.add_middleware(SecurityHeaders, https=lambda: _https(site))
    return app


def _https(site: Site) -> bool:
    return site.runtime().config.board.https


SESSION_COOKIE = "duban_session"


def _secret(site: Site) -> str:
    """The key that signs sessions and links (engine.accounts.links.site_secret)."""
    if site.writers is None:
        return secrets.token_urlsafe(32)  # no workspace: a session is never needed past this process
    with db.transaction(site.writers) as session:
        return site_secret(session)


def _database_answers(site: Site) -> bool:
    try:
        with site.sessions() as session:
            session.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - unreachable, refused, locked: all mean "no"
        return False


def _board_health(database: bool) -> dict[str, Any]:
    """``duban board``'s health: the database answers a read."""
    return {"status": "ok" if database else "unhealthy", "database": database, "role": "board",
            "version": __version__}
