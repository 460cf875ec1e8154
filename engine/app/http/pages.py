"""The status board's pages and the ICS feed: server-rendered, read-only, no JavaScript.

* ``/``: per ledger the overview sentence and the area × state table (a page of ledgers at a
  time), the overdue and escalated items first, what falls due in the next 14 days (each list a
  page with its total and a link to the rest), and the burn-down chart;
* ``/duties``: the duty calendar, month by month (``?month=YYYY-MM``);
* ``/issues/LEDGER/REF``: one issue with its history, evidence and look-backs;
* ``/report``: the rectification report of a ledger as HTML (``?ledger=``);
* ``/calendar.ics``: the ICS feed (``?department=``, ``?ledger=``).

Every page takes ``?ledger=`` and ``?department=``. Each request runs in one read-only
transaction that is rolled back: the board never writes.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy.orm import Session

from ...board.svg import burndown_svg
from ...errors import DubanError, NotFound
from ...ics.feed import ics_bytes
from ...issues.board import (
    LEDGERS_PAGE,
    PAGE,
    agenda,
    all_departments,
    issue_page,
    ledger_board,
    ledger_count,
    ledgers,
    month_grid,
)
from ...issues.queries import find_ledger
from ...report.build import build_report
from ...report.render import render_report
from ...runtime import Runtime
from ...templating import render_template, template_env
from ...wording import cn_date, cn_number

log = logging.getLogger("duban.board")

BOARD_TEMPLATES = Path(__file__).resolve().parents[2] / "board" / "templates"
NAV_LEDGERS = 50  # ledger names in the filter bar; more are reached from the front page's pages

router = APIRouter(include_in_schema=False)  # pages and feeds: /api/v1's document is the API's alone


class _Page:
    """The bits of a request a page needs, and links that keep its filters."""

    def __init__(self, request: Request):
        self.request = request
        self.root = (request.scope.get("root_path") or "").rstrip("/")
        self.path = request.url.path[len(self.root):] or "/"
        self.query = {k: v for k, v in request.query_params.items() if v}
        self.ledger = self.query.get("ledger") or None
        self.department = self.query.get("department") or None

    def url(self, path: str, **params: Any) -> str:
        keep: dict[str, Any] = {"ledger": self.ledger, "department": self.department}
        keep.update(params)
        query = urlencode({k: v for k, v in keep.items() if v})
        return f"{self.root}{path}" + (f"?{query}" if query else "")

    def int_param(self, name: str, default: int, *, low: int = 1, high: int = 100_000) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise DubanError(f"{name} 应为 {low}–{high} 之间的整数：{raw}")
        return int(raw)


def person(login: object) -> str:
    """The name people use for an account in a page: ``办公室`` of ``区教委/办公室`` (its unit is the
    page's own; the full login name stays in the history and the exports)."""
    text = str(login or "")
    return text.rsplit("/", 1)[-1] if "/" in text else text


PAGE_FILTERS: dict[str, Callable[..., str]] = {"cndate": cn_date, "cnnum": cn_number,
                                               "quote": lambda s: quote(str(s), safe=""), "person": person}


def page_env(request: Request, runtime: Runtime, folders: tuple[Path, ...] = (BOARD_TEMPLATES,)) -> SandboxedEnvironment:
    """The templates of ``folders`` (the first that has a name wins) behind ``[board] templates``,
    with the pages' filters; built once per runtime (rebuilt when a reload swaps the runtime)."""
    cache: dict[tuple[Path, ...], tuple[Runtime, SandboxedEnvironment]] = \
        request.app.state.__dict__.setdefault("page_envs", {})
    found = cache.get(folders)
    if found is None or found[0] is not runtime:
        for stale in [key for key, (built_for, _) in cache.items() if built_for is not runtime]:
            del cache[stale]
        override = runtime.config.board.templates
        found = cache[folders] = (runtime, template_env(runtime.config, folders, override, PAGE_FILTERS))
    return found[1]


PageFn = Callable[[Session, Runtime, _Page, dt.date], str]


def _html(request: Request, page_fn: PageFn) -> Response:
    """Run a page in one read-only transaction; failures are a page of their own, never a trace."""
    site = request.app.state.site
    runtime = site.runtime()
    page = _Page(request)
    today = runtime.calendar.local_date(site.clock.now())
    status = 200
    try:
        with site.sessions() as session:
            try:
                body = page_fn(session, runtime, page, today)
            finally:
                session.rollback()
    except NotFound as exc:
        status, body = 404, _error(request, runtime, page, exc.message)
    except DubanError as exc:
        status, body = 400, _error(request, runtime, page, exc.message)
    except Exception:
        log.exception("board: %s failed", page.path)
        status, body = 500, _error(request, runtime, page, "内部错误，详见服务日志")
    return HTMLResponse(body, status)


def _render(session: Session, runtime: Runtime, page: _Page, today: dt.date, name: str, **context: Any) -> str:
    names = [lg.name for lg in ledgers(session, per_page=NAV_LEDGERS)]
    return render_template(page_env(page.request, runtime), name, url=page.url, req_ledger=page.ledger,
                           req_department=page.department, request_path=page.path, today=today, ledgers=names,
                           **context)


def _error(request: Request, runtime: Runtime, page: _Page, message: str) -> str:
    return render_template(page_env(request, runtime), "error.html.j2", url=page.url, message=message,
                           req_ledger=page.ledger, req_department=page.department, request_path="/", ledgers=[],
                           today=None)


@router.api_route("/", methods=["GET", "HEAD"])
@router.api_route("/index.html", methods=["GET", "HEAD"])
def index(request: Request) -> Response:
    def build(session: Session, runtime: Runtime, page: _Page, today: dt.date) -> str:
        scope = find_ledger(session, page.ledger)
        number = page.int_param("page", 1)
        shown = [scope] if scope else ledgers(session, page=number, per_page=LEDGERS_PAGE)
        total = 1 if scope else ledger_count(session)
        boards = []
        for lg in shown:
            board = ledger_board(session, runtime, lg, today)
            chart = burndown_svg(board.burndown, start=board.feedback_date, target=board.last_deadline, today=today)
            boards.append({"board": board, "chart": chart})
        items = agenda(session, runtime, today, ledger=scope, department=page.department, page=number)
        pages = {"page": number, "ledgers": total, "per_page": LEDGERS_PAGE, "items_per_page": PAGE,
                 "last": max(1, -(-max(total, items.overdue_total, items.upcoming_total) // PAGE))}
        # a unit's departments: across many units "办公室" is twenty offices, not one filter
        departments = all_departments(session, scope) if scope is not None or total == 1 else []
        return _render(session, runtime, page, today, "index.html.j2", boards=boards, agenda=items,
                       departments=departments, pages=pages)

    return _html(request, build)


@router.api_route("/duties", methods=["GET", "HEAD"])
def duties(request: Request) -> Response:
    def build(session: Session, runtime: Runtime, page: _Page, today: dt.date) -> str:
        month = page.query.get("month")
        try:
            first = dt.date.fromisoformat(f"{month}-01") if month else today.replace(day=1)
            if not 1970 <= first.year <= 2100:
                raise ValueError(month)
        except ValueError:
            raise DubanError(f"月份格式应为 YYYY-MM（1970–2100）：{month}") from None
        scope = find_ledger(session, page.ledger)
        months = month_grid(session, runtime, today, first, 2, ledger=scope, department=page.department)
        prev_month = (first - dt.timedelta(days=1)).replace(day=1)
        next_month = (first + dt.timedelta(days=32)).replace(day=1)
        return _render(session, runtime, page, today, "duties.html.j2", months=months,
                       prev_month=f"{prev_month:%Y-%m}", next_month=f"{next_month:%Y-%m}")

    return _html(request, build)


@router.api_route("/issues/{ledger:path}/{ref}", methods=["GET", "HEAD"])
def issue(request: Request, ledger: str, ref: str) -> Response:
    def build(session: Session, runtime: Runtime, page: _Page, today: dt.date) -> str:
        return _render(session, runtime, page, today, "issue.html.j2",
                       issue=issue_page(session, runtime, ledger, ref, today))

    return _html(request, build)


@router.api_route("/report", methods=["GET", "HEAD"])
def report(request: Request) -> Response:
    def build(session: Session, runtime: Runtime, page: _Page, today: dt.date) -> str:
        scope = find_ledger(session, page.ledger)
        if scope is None:
            names = ledgers(session, per_page=2)
            if len(names) != 1:
                raise DubanError("请选择台账：/report?ledger=台账名")
            scope = names[0]
        site = request.app.state.site
        return render_report(build_report(session, runtime, scope, site.clock.now()), "html", runtime.config)

    return _html(request, build)


@router.api_route("/calendar.ics", methods=["GET", "HEAD"])
def calendar(request: Request) -> Response:
    site = request.app.state.site
    runtime = site.runtime()
    page = _Page(request)
    try:
        with site.sessions() as session:
            try:
                body, _ = ics_bytes(session, runtime, site.clock.now(), ledger_name=page.ledger,
                                 department=page.department)
            finally:
                session.rollback()
    except DubanError as exc:
        return PlainTextResponse(exc.message + "\n", 404)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"Content-Disposition": 'inline; filename="duban.ics"'})
