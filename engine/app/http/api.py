"""``/api/v1``: the workspace as JSON, for integrations (OA systems, a unit's own portal).

Every request acts as the user of its bearer token (``duban user token NAME``); the same issue
services and permission checks as the web pages and the CLI run, and the history records the door
``api``. The OpenAPI document is ``/api/v1/openapi.json``; every error is ``{"detail": "..."}``
with 400 (bad input), 401 (no token, or an unknown, expired or revoked one), 403 (not yours), 404 (none, or
another unit's: the same words either way),
409 (the workflow refuses the step now; an evidence file over the user's quota, or changed since it
was stored), 413 (a body over its limit, answered before it is read: ``limits``), 422 (the request
does not match the schema) or 507 (the server's evidence disk is full).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, UploadFile
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ... import __version__
from ...accounts.actor import Actor
from ...accounts.policy import UnitAction, may_unit
from ...accounts.users import list_users
from ...clock import check_year
from ...errors import DubanError, Forbidden, NoSpace, NotFound, Refused
from ...issues import actions, extensions
from ...issues.edit import hand_over
from ...issues.evidence import EvidenceStore
from ...issues.queries import issue_detail, issue_history, local_time
from ...issues.service import open_issue, transition
from ...issues.worklists import PAGE, issue_rows, my_duties, my_todo
from ...store import db
from .identity import api_actor
from .uploads import evidence_response, read_uploads

log = logging.getLogger("duban.api")
T = TypeVar("T")
W = TypeVar("W")
DUTY_LIMIT = 200  # occurrences in one answer of /duties


class Problem(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": Problem} for code in (400, 401, 403, 404, 409, 413, 507)}
# The bearer scheme is declared for the document (and clients generated from it); each operation
# checks the token itself through ``api_actor`` so that a missing one is a 401 in duban's own words.
BEARER = HTTPBearer(auto_error=False, scheme_name="token", description="an API token from `duban user token NAME`")
router = APIRouter(prefix="/api/v1", responses=ERRORS, dependencies=[Depends(BEARER)])


class ServerInfo(BaseModel):
    name: str
    version: str


class Me(BaseModel):
    name: str
    display_name: str
    unit: str
    roles: list[str]


class IssueRow(BaseModel):
    ledger: str
    ref: str
    title: str
    state: str
    state_label: str
    deadline: str | None
    leader: str
    department: str
    round: int
    overdue: bool


class IssuePage(BaseModel):
    total: int = Field(description="how many match, exact up to 1000; past that 1000 and `more`")
    more: bool = Field(False, description="there are more than `total`")
    page: int
    per_page: int
    items: list[IssueRow]


class Extension(BaseModel):
    """A 延期申请 and, once decided, its answer."""

    id: int
    to: dt.date = Field(description="the deadline asked for")
    by: str = Field(description="who asked (login name)")
    reason: str
    at: str
    state: str = Field(description="pending, approved or refused")
    decided_by: str | None = None
    decided_at: str | None = None
    note: str = Field("", description="the decider's words: a refusal's reason")


class TodoItem(BaseModel):
    kind: str = Field("deadline", description="deadline, checkin; extension (a 延期申请 for you to decide); "
                                              "extension_answer (the answer to your own request, for 7 days)")
    ledger: str
    ref: str
    title: str
    state_label: str
    what: str = Field(description="the deadline rule's title, e.g. 整改时限, 审批延期申请")
    due: dt.date | None = Field(description="when it is due (none for an answer)")
    days_overdue: int
    extension: Extension | None = None


class HistoryItem(BaseModel):
    at: str
    by: str
    door: str
    trigger: str
    from_state: str | None = Field(alias="from")
    to_state: str = Field(alias="to")
    note: str
    # field by field, before → after; an import's file and row; an evidence file's id and SHA-256
    changes: list[dict[str, Any]] = []


class EvidenceItem(BaseModel):
    id: int
    file_name: str
    sha256: str
    size: int
    added_at: str
    added_by: str


class Step(BaseModel):
    trigger: str
    label: str
    needs: list[str]
    blocked: str


class IssueDetail(BaseModel):
    ref: str
    ledger: str
    number: str
    area: str
    category: str
    title: str
    measures: str
    leader: str
    department: str
    deadline: str | None
    state: str
    state_label: str
    state_since: str
    round: int
    history: list[HistoryItem]
    evidence: list[EvidenceItem]
    steps: list[Step]
    extension: Extension | None = Field(None, description="the 延期申请 waiting on a decision")
    extension_decided: Extension | None = Field(None, description="the last decided 延期申请 and its answer")


class Action(BaseModel):
    trigger: str = Field(min_length=1, max_length=60)
    note: str = Field("", max_length=4000)
    deadline: dt.date | None = None


class Progress(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


class ExtensionAsk(BaseModel):
    to: dt.date = Field(description="the new deadline asked for, after the current one")
    reason: str = Field(min_length=1, max_length=4000, description="why (延期理由)")


class ExtensionDecision(BaseModel):
    approve: bool
    note: str = Field("", max_length=4000, description="why; required to refuse: the requester reads it")


class Handover(BaseModel):
    leader: str | None = Field(None, max_length=200, description="the new 责任领导 (absent: unchanged)")
    department: str | None = Field(None, max_length=200, description="the new 责任科室 (absent: unchanged)")
    note: str = Field("", max_length=4000)


class HandedOver(BaseModel):
    ref: str
    changes: list[str]


class Moved(BaseModel):
    ref: str
    trigger: str
    from_state: str
    to_state: str


class DutyRow(BaseModel):
    key: str
    title: str
    period: str
    due: dt.date
    state: str
    owners: list[str]
    days_overdue: int


class UserRow(BaseModel):
    name: str
    display_name: str
    unit: str
    roles: list[str]
    disabled: bool


def _extension(asked: extensions.Asked | None, tz: Any) -> Extension | None:
    return None if asked is None else _asked(asked, tz)


def _asked(asked: extensions.Asked, tz: Any) -> Extension:
    return Extension(id=asked.id, to=asked.to, by=asked.by, reason=asked.reason, at=local_time(asked.at, tz),
                     state=asked.state, decided_by=asked.decided_by, note=asked.note,
                     decided_at=local_time(asked.decided_at, tz) if asked.decided_at else None)


async def _run(request: Request, build: Callable[[Session, Actor], T], *, write: bool = False) -> T:
    """``build`` on a worker thread, in a session of its own, as the token's user.

    The routes are coroutines that await this: one hop to a worker thread a request. A plain
    ``def`` route would hop twice, once for itself and once more for FastAPI to check its answer
    against the response model (``serialize_response`` runs a sync route's check in the pool)."""
    return await run_in_threadpool(_in_session, request, build, write)


def _in_session(request: Request, build: Callable[[Session, Actor], T], write: bool) -> T:
    site = request.app.state.site
    factory = site.writers if write else site.sessions
    if factory is None:
        raise HTTPException(503, "this server is read-only")
    try:
        if write and not db.one_writer(factory):
            # PostgreSQL: who asks is read in the write's own transaction, one round of BEGIN and
            # COMMIT for the request (its row locks are taken by the change, not by the lookup).
            with db.transaction(factory) as session:
                return build(session, _actor(request, session))
        # Who asks is read before a write begins: on SQLite the write lock is then held for the
        # change alone, not for the token's lookup too (20 writers queue behind each other's).
        with site.sessions() as session:
            actor = _actor(request, session)
            if not write:
                try:
                    return build(session, actor)
                finally:
                    session.rollback()
        with db.transaction(factory) as session:
            return build(session, actor)
    except HTTPException:
        raise
    except NoSpace as exc:
        raise HTTPException(507, exc.message) from None
    except Forbidden as exc:
        raise HTTPException(403, exc.message) from None
    except NotFound as exc:
        raise HTTPException(404, exc.message) from None
    except Refused as exc:
        raise HTTPException(409, "; ".join([exc.message, *exc.details])) from None
    except DubanError as exc:
        raise HTTPException(400, exc.message) from None


async def _write_then_read(request: Request, write: Callable[[Session, Actor], W],
                           read: Callable[[Session, Actor, W | None], T]) -> T:
    """``write``, then ``read`` what the answer shows. On PostgreSQL in the write's transaction,
    which holds the changed rows alone, given what ``write`` returned (the issue it loaded and
    checked, not looked up a second time); on SQLite after the commit, given None: writers wait in
    turn for the file's write lock, and reading for the answer is no reason to hold it longer."""
    writers = request.app.state.site.writers
    if writers is not None and not db.one_writer(writers):
        def both(session: Session, actor: Actor) -> T:
            return read(session, actor, write(session, actor))

        return await _run(request, both, write=True)
    await _run(request, write, write=True)
    return await _run(request, lambda session, actor: read(session, actor, None))


def _actor(request: Request, session: Session) -> Actor:
    actor = api_actor(request, session)
    if actor is None:
        raise HTTPException(401, "a bearer token in force is required (duban user token NAME)",
                            headers={"WWW-Authenticate": 'Bearer realm="duban"'})
    return actor


def _today(request: Request) -> dt.date:
    site = request.app.state.site
    return site.runtime().calendar.local_date(site.clock.now())


@router.get("", response_model=ServerInfo, responses={})
async def root() -> ServerInfo:
    """What this server is."""
    return ServerInfo(name="duban", version=__version__)


@router.get("/me", response_model=Me)
async def me(request: Request) -> Me:
    def build(session: Session, actor: Actor) -> Me:
        return Me(name=actor.name, display_name=actor.shown, unit=actor.unit,
                  roles=[f"{r}:{s}" if s else r for r, s in actor.grants])

    return await _run(request, build)


@router.get("/todo", response_model=list[TodoItem])
async def todo(request: Request, page: int = Query(1, ge=1, le=10_000)) -> list[TodoItem]:
    """我的待办: what waits on the token's user, most urgent first."""
    def build(session: Session, actor: Actor) -> list[TodoItem]:
        runtime = request.app.state.site.runtime()
        tz = runtime.config.tz
        items, _ = my_todo(session, runtime, actor, _today(request), page)
        out = [TodoItem(kind=d.kind, ledger=d.ledger, ref=d.ref, title=d.title, state_label=d.state_label,
                        what=d.rule_title, due=d.track.due, days_overdue=d.late.days_overdue,
                        extension=_extension(extensions.asked_of(d), tz)) for d in items]
        if page == 1:
            out += [TodoItem(kind=a.kind, ledger=a.ledger, ref=a.ref, title=a.title, state_label="",
                             what="延期申请未获同意" if a.refused else "延期申请已同意", due=None, days_overdue=0,
                             extension=_extension(a.asked, tz))
                    for a in extensions.answers(session, actor, request.app.state.site.clock.now())]
        return out

    return await _run(request, build)


@router.get("/issues", response_model=IssuePage)
async def issues(request: Request, ledger: str = Query("", max_length=200), state: str = Query("", max_length=60),
           department: str = Query("", max_length=200), area: str = Query("", max_length=300),
           category: str = Query("", max_length=300), overdue: bool = False, q: str = Query("", max_length=200),
           page: int = Query(1, ge=1, le=100_000)) -> IssuePage:
    """The issues the token's user may see, filtered and searched, a page at a time."""
    filters = {"ledger": ledger, "state": state, "department": department, "area": area, "category": category,
               "overdue": "1" if overdue else "", "q": q}

    def build(session: Session, actor: Actor) -> IssuePage:
        listing = issue_rows(session, request.app.state.site.runtime(), actor, _today(request), filters, page)
        return IssuePage(total=listing["total"], more=listing["more"], page=page, per_page=PAGE,
                         items=[IssueRow(**{k: r[k] for k in IssueRow.model_fields}) for r in listing["rows"]])

    return await _run(request, build)


def _detail(request: Request, session: Session, actor: Actor, ledger: str, ref: str) -> IssueDetail:
    runtime = request.app.state.site.runtime()
    issue = open_issue(session, f"{ledger}/{ref}", actor)
    workflow = runtime.registry.definition(issue.workflow)
    data = issue_detail(session, issue, workflow, runtime.config.tz)
    steps = [Step(trigger=o.trigger, label=o.label, needs=o.needs, blocked=o.blocked)
             for o in actions.offered(session, workflow, issue, actor,
                                      admins_sign_own=runtime.config.workspace.admins_sign_own)]
    own = ("history", "evidence", "steps", "extension", "extension_decided")
    return IssueDetail(**{k: data[k] for k in IssueDetail.model_fields if k not in own},
                       history=[HistoryItem(**h) for h in data["history"]],
                       evidence=[EvidenceItem(**e) for e in data["evidence"]], steps=steps,
                       extension=_extension(extensions.pending_extension(session, issue), runtime.config.tz),
                       extension_decided=_extension(extensions.last_decision(session, issue), runtime.config.tz))


@router.get("/issues/{ledger}/{ref}", response_model=IssueDetail)
async def issue(request: Request, ledger: str, ref: str) -> IssueDetail:
    """One issue with its history, evidence and the steps the workflow offers the token's user."""
    return await _run(request, lambda session, actor: _detail(request, session, actor, ledger, ref))


def _history(request: Request, session: Session, actor: Actor, ledger: str, ref: str,
             loaded: Any = None) -> list[HistoryItem]:
    """The issue's history, as its reader may see it; ``loaded``: the issue, when this transaction
    has it already (a write's; still checked for who may see it)."""
    issue = open_issue(session, loaded or f"{ledger}/{ref}", actor)
    return [HistoryItem(**h) for h in issue_history(session, issue, request.app.state.site.runtime().config.tz)]


@router.get("/issues/{ledger}/{ref}/history", response_model=list[HistoryItem])
async def history(request: Request, ledger: str, ref: str) -> list[HistoryItem]:
    return await _run(request, lambda session, actor: _history(request, session, actor, ledger, ref))


@router.get("/issues/{ledger}/{ref}/evidence", response_model=list[EvidenceItem])
async def evidence(request: Request, ledger: str, ref: str) -> list[EvidenceItem]:
    return await _run(request, lambda session, actor: _detail(request, session, actor, ledger, ref).evidence)


@router.post("/issues/{ledger}/{ref}/evidence", response_model=list[EvidenceItem], status_code=201)
async def upload(request: Request, ledger: str, ref: str, file: Annotated[UploadFile, File()]) -> list[EvidenceItem]:
    """Attach one evidence file (佐证材料)."""
    def build(session: Session, actor: Actor) -> list[EvidenceItem]:
        site = request.app.state.site
        config = site.runtime().config
        with EvidenceStore.of(config).staging() as staged:
            files = read_uploads([file], staged)
            actions.attach_evidence(session, f"{ledger}/{ref}", actor=actor, now=site.clock.now(), files=files)
            staged.keep(session, by=actor.name)
        return _detail(request, session, actor, ledger, ref).evidence

    return await _run(request, build, write=True)


@router.get("/evidence/{evidence_id}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}})
async def evidence_file(request: Request, evidence_id: int) -> Response:
    """An evidence file, as an attachment, to those who may see its issue."""
    store = EvidenceStore.of(request.app.state.site.runtime().config)
    return await _run(request, lambda session, actor: evidence_response(session, actor, evidence_id, store))


@router.post("/issues/{ledger}/{ref}/actions", response_model=Moved)
async def act(request: Request, ledger: str, ref: str, body: Action) -> Moved:
    """Take a step of the workflow (plan, start, submit, approve, return, …) as the token's user."""
    def build(session: Session, actor: Actor) -> Moved:
        if body.deadline is not None:
            check_year(body.deadline, "deadline")
        site = request.app.state.site
        moved = transition(session, site.runtime(), f"{ledger}/{ref}", body.trigger, actor=actor,
                           now=site.clock.now(), note=body.note, deadline=body.deadline)
        return Moved(ref=moved.ref, trigger=moved.trigger, from_state=moved.from_state, to_state=moved.to_state)

    return await _run(request, build, write=True)


@router.post("/issues/{ledger}/{ref}/progress", response_model=list[HistoryItem], status_code=201)
async def progress(request: Request, ledger: str, ref: str, body: Progress) -> list[HistoryItem]:
    """Record progress (进展情况): a dated note, not a state change."""
    def write(session: Session, actor: Actor) -> Any:  # the issue, loaded and locked
        return actions.record_progress(session, f"{ledger}/{ref}", actor=actor,
                                       now=request.app.state.site.clock.now(), note=body.note)

    return await _write_then_read(
        request, write, lambda session, actor, issue: _history(request, session, actor, ledger, ref, issue))


def _problem(text: str) -> dict[str, Any]:
    return {"model": Problem, "description": text}


@router.post("/issues/{ledger}/{ref}/extension", response_model=Extension, status_code=201, responses={
    400: _problem("no reason, a date not after the current deadline or today"),
    403: _problem("the token's user may not ask (policy: the issue's leader, department or unit administrator)"),
    409: _problem("a request is already waiting on this issue")})
async def extension_request(request: Request, ledger: str, ref: str, body: ExtensionAsk) -> Extension:
    """Ask for a later deadline (延期申请): it waits on its deciders (their 我的待办 and reminders)."""
    def build(session: Session, actor: Actor) -> Extension:
        check_year(body.to, "to")
        site = request.app.state.site
        runtime = site.runtime()
        asked = extensions.request_extension(session, runtime, f"{ledger}/{ref}", actor=actor, now=site.clock.now(),
                                             to=body.to, reason=body.reason)
        return _asked(asked, runtime.config.tz)

    return await _run(request, build, write=True)


@router.post("/issues/{ledger}/{ref}/extension/decide", response_model=Extension, responses={
    400: _problem("refused without a reason (note)"),
    403: _problem("the token's user may not decide (policy: the issue's leader, a reviewer or unit administrator), "
                  "or asked for it themselves"),
    409: _problem("no request is waiting")})
async def extension_decide(request: Request, ledger: str, ref: str, body: ExtensionDecision) -> Extension:
    """Approve the waiting 延期申请 (the deadline moves) or refuse it with a reason (the requester reads it)."""
    def build(session: Session, actor: Actor) -> Extension:
        site = request.app.state.site
        runtime = site.runtime()
        asked = extensions.decide_extension(session, runtime, f"{ledger}/{ref}", actor=actor, now=site.clock.now(),
                                            approve=body.approve, note=body.note)
        return _asked(asked, runtime.config.tz)

    return await _run(request, build, write=True)


@router.post("/issues/{ledger}/{ref}/handover", response_model=HandedOver, responses={
    400: _problem("nothing to change, or a blank leader or department"),
    403: _problem("the token's user may not hand over (policy: a reviewer or unit administrator)"),
    409: _problem("no account can act for the new leader or department")})
async def handover(request: Request, ledger: str, ref: str, body: Handover) -> HandedOver:
    """A new 责任领导 and/or 责任科室 (人员调整), as the issue page's form."""
    def build(session: Session, actor: Actor) -> HandedOver:
        site = request.app.state.site
        edited = hand_over(session, site.runtime(), f"{ledger}/{ref}", actor=actor, now=site.clock.now(),
                           leader=body.leader, department=body.department, note=body.note)
        return HandedOver(ref=edited.ref, changes=edited.changes)

    return await _run(request, build, write=True)


@router.get("/duties", response_model=list[DutyRow])
async def duties(request: Request, days: int = Query(90, ge=1, le=366)) -> list[DutyRow]:
    """Open duty occurrences due in the next ``days`` days, or overdue (at most 200)."""
    def build(session: Session, actor: Actor) -> list[DutyRow]:
        mine = my_duties(session, request.app.state.site.runtime(), actor, _today(request), days, DUTY_LIMIT)
        return [DutyRow(key=d.key, title=d.title, period=d.period, due=d.due, state=str(d.state.value),
                        owners=list(d.owners or []), days_overdue=d.late.days_overdue) for d in mine]

    return await _run(request, build)


@router.get("/users", response_model=list[UserRow])
async def users(request: Request) -> list[UserRow]:
    """Every user (administrators), or the unit's users (a unit's administrator)."""
    def build(session: Session, actor: Actor) -> list[UserRow]:
        if not (actor.is_admin or may_unit(actor, UnitAction.USERS, actor.unit)):
            raise Forbidden("only administrators list users")
        return [UserRow(name=u.name, display_name=u.display_name, unit=u.unit, disabled=u.disabled,
                        roles=[f"{g.role}:{g.scope}" if g.scope else g.role for g in u.grants])
                for u in list_users(session, unit=None if actor.is_admin else actor.unit)]

    return await _run(request, build)


