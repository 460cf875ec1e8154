"""The workspace: the pages where the people who act do their part (``/ws/…``, ``/w/TOKEN``).

* ``/w/TOKEN``: a reminder's signed link; signs its user in and opens 我的待办 (never an
  administrator's: they sign in with a password);
* ``/ws/login`` (throttled per name and address, see ``engine.accounts.credentials``),
  ``/ws/logout`` (ends the session on the server; ``everywhere`` ends every session, API token and
  link of the user);
* ``/ws/``: 我的待办, what waits on me, most urgent first (the reminder core's deadlines);
* ``/ws/issues``: the issues I may see, filtered and searched in SQL, a page at a time;
* ``/ws/issues/LEDGER/REF``: one issue with what the workflow offers *me*, and the forms:
  ``…/step`` (a transition), ``…/progress``, ``…/evidence``, ``…/extension``,
  ``…/extension/decide``, ``…/handover``; ``/ws/evidence/ID`` serves a file as an attachment;
* ``/ws/overview``: per unit, for reviewers and observers over several.

Every form is a POST carrying the CSRF token in its action URL (checked before the body is read,
``limits``); each action calls the issue services with the signed-in user's ``Actor`` (door
``web``), so the same permission check holds here as in the CLI and the API. A refusal is a page
saying why (403 for what the user may not do, 409 for a step the workflow refuses now, 400 for bad
input, 507 when the evidence disk is full), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ....accounts import policy
from ....accounts.actor import Actor
from ....accounts.credentials import REFUSED, begin_login, finish_login, log_out, open_session
from ....accounts.links import read_link_token, site_secret, takes_links
from ....accounts.lookup import user_by_id
from ....accounts.policy import Action
from ....clock import check_year
from ....errors import BadInput, DubanError, Forbidden, NoSpace, NotFound, Refused
from ....i18n import CHINESE, translate
from ....issues import actions, extensions
from ....issues.district import LABELS, STATUSES, district
from ....issues.edit import hand_over
from ....issues.evidence import EvidenceFile, EvidenceStore, Staging
from ....issues.service import open_issue, transition
from ....issues.worklists import issue_rows, my_todo
from ....runtime import Runtime
from ....store import db
from ....templating import render_template
from ..auth import client_address
from ..identity import check_csrf, check_password, csrf_token, session_actor, session_id, sign_in, sign_out, signin_work
from ..uploads import read_uploads
from .env import workspace_env

log = logging.getLogger("duban.workspace")

router = APIRouter(include_in_schema=False)


class Ws:
    """A workspace request: its site, runtime, today, links that stay under the mount point."""

    def __init__(self, request: Request):
        self.request = request
        self.site = request.app.state.site
        self.runtime: Runtime = self.site.runtime()
        self.now: dt.datetime = self.site.clock.now()
        self.today = self.runtime.calendar.local_date(self.now)
        self.root = (request.scope.get("root_path") or "").rstrip("/")

    def url(self, path: str, **params: Any) -> str:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "", False)})
        return f"{self.root}{path}" + (f"?{query}" if query else "")

    def render(self, template: str, me: Actor | None, status: int = 200, **context: Any) -> HTMLResponse:
        flash = self.request.session.pop("flash", []) if me is not None else []
        context.setdefault("flash", flash)
        # the board's base template reads these; a page's own context (the issue list's ledgers) wins
        values: dict[str, Any] = {"ledgers": [], "req_ledger": None, "req_department": None, "request_path": "/ws/"}
        values.update(context)
        body = render_template(workspace_env(self.request, self.runtime), template, ws=self.url, url=self.url, me=me,
                               csrf=csrf_token(self.request), today=self.today,
                               overview=me is not None and bool(me.roles & {"admin", "reviewer", "observer"}),
                               **values)
        return HTMLResponse(body, status)

    def message(self, me: Actor | None, status: int, heading: str, text: str) -> HTMLResponse:
        return self.render("ws_message.html.j2", me, status, heading=heading, message=text)

    def flash(self, text: str, kind: str = "") -> None:
        self.request.session["flash"] = [*self.request.session.get("flash", []), (kind, text)]


def _page(ws: Ws, build: Callable[[Session, Actor], Response], *, write: bool = False) -> Response:
    """Run ``build`` for the signed-in user in one transaction (read-only unless ``write``)."""
    factory = ws.site.writers if write else ws.site.sessions
    if factory is None:
        return ws.message(None, 503, "不可用", "此服务只读：工作台未启用")
    me: Actor | None = None
    try:
        # who is signed in is read before a write begins: SQLite's write lock is held for the change alone
        with ws.site.sessions() as session:
            try:
                me = session_actor(ws.request, session)
                if me is None:
                    return _to_login(ws)
                if not write:
                    return build(session, me)
            finally:
                session.rollback()
        with db.transaction(factory) as session:
            return build(session, me)
    except HTTPException:
        raise
    except NoSpace as exc:
        return ws.message(me, 507, "存储空间不足", _said(exc.message))
    except Forbidden as exc:
        return ws.message(me, 403, "无权访问", _said(exc.message))
    except NotFound as exc:
        return ws.message(me, 404, "未找到", _said(exc.message))
    except Refused as exc:
        return ws.message(me, 409, "未能办理", "；".join(_said(m) for m in [exc.message, *exc.details]))
    except DubanError as exc:
        return ws.message(me, 400, "输入有误", _said(exc.message))
    except Exception:
        log.exception("workspace: %s failed", ws.request.url.path)
        return ws.message(me, 500, "内部错误", "内部错误，详见服务日志")


def _said(message: str) -> str:
    """An engine's message as the workspace shows it: in Chinese, whatever the server's locale (the
    domain writes its messages in English, as the CLI prints them under LANG=en)."""
    return translate(message, CHINESE)


def _to_login(ws: Ws) -> Response:
    path = ws.request.url.path[len(ws.root):] or "/ws/"
    return RedirectResponse(ws.url("/ws/login", next=path), 303)


def safe_next(value: str | None) -> str:
    # only paths of this workspace: never an absolute URL (an open redirect)
    return value if value and value.startswith("/ws/") and "//" not in value and "\\" not in value else "/ws/"


@router.get("/w/{token}")
def link(request: Request, token: str, next: str = "") -> Response:
    ws = Ws(request)
    if ws.site.writers is None:
        return ws.message(None, 503, "不可用", "工作台未启用")
    settings = ws.runtime.config.workspace
    with db.transaction(ws.site.writers) as session:
        found = read_link_token(site_secret(session), token, ws.now, days=settings.link_days)
        user = user_by_id(session, found[0]) if found else None
        if user is None or found is None or not takes_links(user) or user.session_epoch != found[1]:
            sign_out(request)
            return ws.message(None, 403, "链接无效", "此链接已过期、已撤销或不完整。请使用最新提醒中的链接，或登录。")
        held = open_session(session, user, "link", ws.now, settings.session_hours)
    sign_in(request, held)
    return RedirectResponse(ws.url(safe_next(next)), 303)


@router.get("/ws/login")
def login_form(request: Request, next: str = "") -> Response:
    return Ws(request).render("ws_login.html.j2", None, next=safe_next(next), login_name="")


@router.post("/ws/login")
async def login_post(request: Request) -> Response:
    """Sign in: count the attempt (refused at once while throttled), check the password off the
    event loop, then open a session. Every refusal is the same page (``credentials.REFUSED``)."""
    ws = Ws(request)
    form = await request.form(max_files=0, max_fields=10, max_part_size=64 * 1024)
    check_csrf(request, str(form.get("csrf") or ""))
    name, password = str(form.get("name") or "")[:200], str(form.get("password") or "")
    if ws.site.writers is None:
        return ws.message(None, 503, "不可用", "工作台未启用")
    settings = ws.runtime.config.workspace
    address = client_address(request, settings.trusted_proxies)
    attempt = await signin_work(request, ws.site.writers, begin_login, name, address, ws.now)
    ok = attempt.allowed and await check_password(request, attempt.password_hash, password)
    done = await signin_work(request, ws.site.writers, finish_login, attempt, ok, ws.now,
                             settings.session_hours) if ok else None
    if done is None:
        return ws.render("ws_login.html.j2", None, 401, next=safe_next(str(form.get("next") or "")), login_name=name,
                         flash=[("error", REFUSED)])
    sign_in(request, done[1])
    return RedirectResponse(ws.url(safe_next(str(form.get("next") or ""))), 303)


@router.post("/ws/logout")
async def logout(request: Request) -> Response:
    """End this session on the server (``everywhere``: every session, token and link of the user)."""
    ws = Ws(request)
    form = await request.form(max_files=0, max_fields=10, max_part_size=1024)
    check_csrf(request, str(form.get("csrf") or ""))
    held = session_id(request)
    if held is not None and ws.site.writers is not None:
        await signin_work(request, ws.site.writers, log_out, held, ws.now, bool(form.get("everywhere")))
    sign_out(request)
    return RedirectResponse(ws.url("/ws/login"), 303)


@router.get("/ws/")
def todo(request: Request, page: int = 1) -> Response:
    ws = Ws(request)

    def build(session: Session, me: Actor) -> Response:
        number = max(1, min(page, 10_000))
        items, counted = my_todo(session, ws.runtime, me, ws.today, number)
        answers = extensions.answers(session, me, ws.now) if number == 1 else []
        return ws.render("ws_todo.html.j2", me, items=items, total=counted.total, more=counted.more, page=number,
                         last=counted.last, answers=answers)

    return _page(ws, build)


@router.get("/ws/issues")
def issue_list(request: Request, page: int = 1) -> Response:
    ws = Ws(request)
    keys = ("unit", "ledger", "area", "category", "department", "state", "status", "overdue", "q")
    filters = {k: (request.query_params.get(k) or "")[:200] for k in keys}

    def build(session: Session, me: Actor) -> Response:
        if filters["status"] and filters["status"] not in STATUSES:
            return ws.message(me, 400, "筛选条件有误", f"未知的状态筛选 {filters['status']}（可用：{'、'.join(STATUSES)}）")
        number = max(1, min(page, 100_000))
        listing = issue_rows(session, ws.runtime, me, ws.today, filters, number)
        return ws.render("ws_issues.html.j2", me, filters=filters, page=number, status_labels=LABELS, **listing)

    return _page(ws, build)


@router.get("/ws/overview")
def overview(request: Request) -> Response:
    ws = Ws(request)

    def build(session: Session, me: Actor) -> Response:
        return ws.render("ws_overview.html.j2", me, **district(session, ws.runtime, me, ws.today))

    return _page(ws, build)


@router.get("/ws/issues/{ledger:path}/{ref}")
def issue_view(request: Request, ledger: str, ref: str) -> Response:
    ws = Ws(request)

    def build(session: Session, me: Actor) -> Response:
        return _issue(ws, session, me, ledger, ref)

    return _page(ws, build)


def _issue(ws: Ws, session: Session, me: Actor, ledger: str, ref: str, status: int = 200) -> Response:
    from ....issues.board import issue_page

    issue = open_issue(session, f"{ledger}/{ref}", me)
    data = issue_page(session, ws.runtime, ledger, ref, ws.today)
    workflow = ws.runtime.registry.definition(issue.workflow)
    may = {"progress": policy.may(me, Action.PROGRESS, issue), "evidence": policy.may(me, Action.EVIDENCE, issue),
           "extension": policy.may(me, Action.EXTENSION_REQUEST, issue),
           "decide": policy.may(me, Action.EXTENSION_DECIDE, issue), "handover": policy.may(me, Action.HANDOVER, issue)}
    decided = extensions.last_decision(session, issue)
    return ws.render("ws_issue.html.j2", me, status, issue=data, offers=actions.offered(
                         session, workflow, issue, me, admins_sign_own=ws.runtime.config.workspace.admins_sign_own),
                     may=may, extension=extensions.pending_extension(session, issue), decided=decided,
                     decided_on=ws.runtime.calendar.local_date(decided.decided_at) if decided and decided.decided_at
                     else None,
                     base=ws.url(f"/ws/issues/{quote(ledger, safe='')}/{quote(ref, safe='')}"),
                     max_mb=max(1, ws.runtime.config.evidence.max_bytes // 2**20))


Act = Callable[[Ws, Session, Actor, Any, str], str]


def _form_route(act: Act) -> Callable[..., Any]:
    """A POST route for one action: parse the form, check CSRF, run ``act`` in a write transaction
    (in the thread pool: the database work never blocks the event loop), back to the issue page."""
    async def route(request: Request, ledger: str, ref: str) -> Response:
        ws = Ws(request)
        form = await request.form(max_files=3, max_fields=20, max_part_size=64 * 1024)
        try:
            check_csrf(request, str(form.get("csrf") or ""))

            def build(session: Session, me: Actor) -> Response:
                ws.flash(act(ws, session, me, form, f"{ledger}/{ref}"))
                return RedirectResponse(ws.url(f"/ws/issues/{quote(ledger, safe='')}/{quote(ref, safe='')}"), 303)

            return await run_in_threadpool(_page, ws, build, write=True)
        finally:
            await form.close()

    return route


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _date(form: Any, name: str) -> dt.date | None:
    raw = _text(form, name).strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadInput(f"{name}: 日期格式应为 YYYY-MM-DD：{raw[:40]}") from None
    check_year(day, name)
    return day


def _files(staged: Staging, form: Any) -> list[EvidenceFile]:
    return read_uploads([f for f in form.getlist("file") if getattr(f, "filename", None)], staged)


def _step(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    with EvidenceStore.of(ws.runtime.config).staging() as staged:
        moved = transition(session, ws.runtime, ref, _text(form, "trigger")[:60], actor=me, now=ws.now,
                           note=_text(form, "note")[:4000], deadline=_date(form, "deadline"),
                           evidence=_files(staged, form))
        staged.keep(session, by=me.name)
    workflow = ws.runtime.registry.definition(open_issue(session, ref, me).workflow)
    return f"已办理：{workflow.label(moved.from_state)} → {workflow.label(moved.to_state)}"


def _progress(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    actions.record_progress(session, ref, actor=me, now=ws.now, note=_text(form, "note"))
    return "进展情况已记录"


def _evidence(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    with EvidenceStore.of(ws.runtime.config).staging() as staged:
        files = _files(staged, form)
        actions.attach_evidence(session, ref, actor=me, now=ws.now, files=files, note=_text(form, "note"))
        staged.keep(session, by=me.name)
    return f"已上传：{'、'.join(f.file_name for f in files)}"


def _extension(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    to = _date(form, "to")
    if to is None:
        raise BadInput("请填写申请延期至的日期")
    extensions.request_extension(session, ws.runtime, ref, actor=me, now=ws.now, to=to, reason=_text(form, "reason"))
    return "延期申请已提交，等待责任领导或审核人决定"


def _decide(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    approve = _text(form, "approve") == "yes"
    extensions.decide_extension(session, ws.runtime, ref, actor=me, now=ws.now, approve=approve,
                                note=_text(form, "note"))
    return "已同意延期" if approve else "已不同意延期，理由已告知申请人"


def _handover(ws: Ws, session: Session, me: Actor, form: Any, ref: str) -> str:
    edited = hand_over(session, ws.runtime, ref, actor=me, now=ws.now, note=_text(form, "note"),
                       leader=_text(form, "leader"), department=_text(form, "department"))
    return "；".join(edited.changes)


for _name, _act in (("step", _step), ("progress", _progress), ("evidence", _evidence), ("extension", _extension),
                    ("extension/decide", _decide), ("handover", _handover)):
    router.add_api_route(f"/ws/issues/{{ledger:path}}/{{ref}}/{_name}", _form_route(_act), methods=["POST"],
                         name=f"ws_{_name.replace('/', '_')}", include_in_schema=False)


@router.get("/ws/evidence/{evidence_id}")
def evidence_file(request: Request, evidence_id: int) -> Response:
    from ..uploads import evidence_response

    ws = Ws(request)

    def build(session: Session, me: Actor) -> Response:
        return evidence_response(session, me, evidence_id, EvidenceStore.of(ws.runtime.config))

    return _page(ws, build)
