"""The status board as a plain WSGI callable: server-rendered pages, read-only, no JavaScript.

Routes (relative to where it is mounted, ``SCRIPT_NAME``):

* ``/``: per ledger the overview sentence and the area × state table, the overdue and escalated
  items first, what falls due in the next 14 days, and the burn-down chart;
* ``/duties``: the duty calendar, month by month (``?month=YYYY-MM``);
* ``/issues/LEDGER/REF``: one issue with its history, evidence and look-backs;
* ``/report``: the rectification report of a ledger as HTML (``?ledger=``);
* ``/calendar.ics``: the ICS feed (``?department=``, ``?ledger=``).

Every page takes ``?ledger=`` and ``?department=``. Only GET and HEAD are answered: the board
changes nothing, so a stolen link can at worst read. Pages forbid scripts and framing through
Content-Security-Policy, since ledger text is typed by people.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from sqlalchemy.orm import Session, sessionmaker

from ..clock import Clock
from ..errors import DubanError, NotFound
from ..icsfeed import ics_response
from ..queries import find_ledger
from ..report import build_report, cn_date, cn_number, render_report
from ..runtime import Runtime
from .auth import StartResponse, WSGIApp, board_settings, guard
from .data import agenda, all_departments, issue_page, ledger_board, ledgers, month_grid
from .svg import burndown_svg
from .templating import render_template, template_env

log = logging.getLogger("duban.board")

HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),  # names and overdue items: nothing for shared caches
]


class _Request:
    """The bits of a WSGI environ a page needs."""

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ
        self.root = environ.get("SCRIPT_NAME", "").rstrip("/")
        self.path = environ.get("PATH_INFO", "") or "/"
        self.query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items() if v}
        self.ledger = self.query.get("ledger") or None
        self.department = self.query.get("department") or None

    def url(self, path: str, **params: Any) -> str:
        """A link within the board that keeps the current ledger/department filters."""
        keep = {"ledger": self.ledger, "department": self.department}
        keep.update(params)
        query = urlencode({k: v for k, v in keep.items() if v})
        return f"{self.root}{path}" + (f"?{query}" if query else "")


class Board:
    """The board's pages over one runtime and session factory."""

    def __init__(self, runtime: Runtime, sessions: sessionmaker[Session], clock: Clock):
        self.runtime, self.sessions, self.clock = runtime, sessions, clock
        override = board_settings(runtime.config).get("templates")
        self.env = template_env(runtime.config, str(override) if override else None,
                                {"cndate": cn_date, "cnnum": cn_number, "quote": lambda s: quote(str(s), safe="")})

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        req = _Request(environ)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return self._send(start_response, "405 Method Not Allowed", b"read-only\n", "text/plain",
                              [("Allow", "GET, HEAD")], method)
        try:
            if req.path == "/calendar.ics":
                return ics_response(self.runtime, self.sessions, self.clock, environ, start_response)
            status, body, ctype = "200 OK", self._route(req), "text/html"
        except NotFound as exc:
            status, body, ctype = "404 Not Found", self._error(req, exc.message), "text/html"
        except DubanError as exc:
            status, body, ctype = "400 Bad Request", self._error(req, exc.message), "text/html"
        except Exception:  # noqa: BLE001 - a page must fail alone, and say nothing of the internals
            log.exception("board: %s failed", req.path)
            status, body, ctype = "500 Internal Server Error", self._error(req, "内部错误，详见服务日志"), "text/html"
        return self._send(start_response, status, body.encode("utf-8"), ctype, [], method)

    @staticmethod
    def _send(start_response: StartResponse, status: str, body: bytes, ctype: str,
              extra: list[tuple[str, str]], method: str) -> list[bytes]:
        start_response(status, [("Content-Type", f"{ctype}; charset=utf-8"), ("Content-Length", str(len(body))),
                                *HEADERS, *extra])
        return [b"" if method == "HEAD" else body]

    def _route(self, req: _Request) -> str:
        if req.path in ("/", "/index.html"):
            return self._read(req, self.index)
        if req.path == "/duties":
            return self._read(req, self.duties)
        if req.path == "/report":
            return self._read(req, self.report)
        if req.path.startswith("/issues/"):
            ledger, _, ref = req.path[len("/issues/"):].rpartition("/")
            if ledger and ref:
                return self._read(req, lambda s, r, today: self.issue(s, r, today, unquote(ledger), unquote(ref)))
        raise NotFound(f"没有这个页面：{req.path}")

    def _read(self, req: _Request, page: Any) -> str:
        """Run a page in one read-only transaction (rolled back: the board never writes)."""
        today = self.runtime.calendar.local_date(self.clock.now())
        with self.sessions() as session:
            try:
                return page(session, req, today)
            finally:
                session.rollback()

    def _render(self, req: _Request, name: str, session: Session, today: dt.date, **context: Any) -> str:
        return render_template(self.env, name, url=req.url, req_ledger=req.ledger, req_department=req.department,
                               request_path=req.path, today=today, ledgers=[lg.name for lg in ledgers(session)],
                               **context)

    def _error(self, req: _Request, message: str) -> str:
        return render_template(self.env, "error.html.j2", url=req.url, message=message, req_ledger=req.ledger,
                               req_department=req.department, request_path="/", ledgers=[], today=None)

    # -- pages ------------------------------------------------------------------------------

    def index(self, session: Session, req: _Request, today: dt.date) -> str:
        scope = find_ledger(session, req.ledger)
        boards = []
        for lg in ([scope] if scope else ledgers(session)):
            board = ledger_board(session, self.runtime, lg, today)
            chart = burndown_svg(board.burndown, start=board.feedback_date, target=board.last_deadline, today=today)
            boards.append({"board": board, "chart": chart})
        items = agenda(session, self.runtime, today, ledger=scope, department=req.department)
        departments = all_departments(session, scope)
        return self._render(req, "index.html.j2", session, today, boards=boards, agenda=items,
                            departments=departments)

    def duties(self, session: Session, req: _Request, today: dt.date) -> str:
        month = req.query.get("month")
        try:
            first = dt.date.fromisoformat(f"{month}-01") if month else today.replace(day=1)
        except ValueError:
            raise DubanError(f"月份格式应为 YYYY-MM：{month}") from None
        scope = find_ledger(session, req.ledger)
        months = month_grid(session, self.runtime, today, first, 2, ledger=scope, department=req.department)
        prev_month = (first.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        next_month = (first.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
        return self._render(req, "duties.html.j2", session, today, months=months,
                            prev_month=f"{prev_month:%Y-%m}", next_month=f"{next_month:%Y-%m}")

    def issue(self, session: Session, req: _Request, today: dt.date, ledger: str, ref: str) -> str:
        return self._render(req, "issue.html.j2", session, today, issue=issue_page(session, self.runtime, ledger,
                                                                                   ref, today))

    def report(self, session: Session, req: _Request, today: dt.date) -> str:
        scope = find_ledger(session, req.ledger)
        if scope is None:
            names = ledgers(session)
            if len(names) != 1:
                raise DubanError("请选择台账：/report?ledger=台账名")
            scope = names[0]
        return render_report(build_report(session, self.runtime, scope, self.clock.now()), "html",
                             self.runtime.config)


def make_board_app(runtime: Runtime, sessions: sessionmaker[Session], token: str | None, *,
                   clock: Clock | None = None) -> WSGIApp:
    """The board as a WSGI app: loopback requests pass; others need ``token`` (None: refused)."""
    return guard(Board(runtime, sessions, clock or Clock()), token)
