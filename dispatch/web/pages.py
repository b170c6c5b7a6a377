"""The pages (server-rendered with Jinja2, htmx for the buttons): sign-in, a department's desk
and a ticket's page. Chinese words for everything a person reads — category, department and
place names, never ids; times in the reference data's time zone; the time left on a deadline
computed here in the SLA policy's time basis (working hours, holidays, 调休), the browser only
ticking it down. Routes translate to the service layer, as the API's do."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from dispatch import commands as c
from dispatch import queries
from dispatch.actions import prepare
from dispatch.errors import DispatchError, Unauthenticated
from dispatch.web import session

__all__ = ["router", "templates"]

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

STATUS = {"reported": "已上报", "accepted": "已受理", "dispatched": "已派单", "in_progress": "处置中",
          "awaiting_redispatch": "待再派", "handled": "已处置", "feedback_given": "已反馈", "evaluated": "已评价",
          "reopened": "返工", "closed": "已办结", "cancelled": "已撤销", "duplicate": "重复件"}
CALL_STATE = {"waiting": "待报到", "to_handle": "待处置"}
ROLE = {"lead": "主办", "cooperating": "协办"}
ANSWER = {None: "未报到", "acknowledged": "已报到", "rejected": "已退单"}
LEVEL = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}
ACTOR = {"supervisor": "网格员", "hotline": "热线", "resident": "居民", "centre": "网格中心", "department": "部门",
         "system": "系统", "analyst": "分析"}
HOME = {"department": "/desk"}


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.service.runtime.reference.timezone)


def _local(request: Request, value: Any) -> str:
    if value is None:
        return "—"
    when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return when.astimezone(_tz(request)).strftime("%m-%d %H:%M")


def _left(minutes: float | None) -> str:
    if minutes is None:
        return "—"
    late, minutes = minutes < 0, abs(minutes)
    hours, mins = divmod(int(round(minutes)), 60)
    text = (f"{hours}小时{mins}分" if hours else f"{mins}分钟")
    return f"超时 {text}" if late else f"剩余 {text}"


def _render(request: Request, page: str, status: int = 200, **context: Any) -> Response:
    ref = request.app.state.service.runtime.reference
    names = {"category": lambda k: ref.categories[k].name if k in ref.categories else k,
             "department": lambda k: ref.departments[k].name if k in ref.departments else k,
             "grid": lambda k: ref.place(k).grid.name if k in ref.grids else k,
             "community": lambda k: ref.communities[k].name if k in ref.communities else k,
             "status": lambda k: STATUS.get(k, k), "level": lambda k: LEVEL.get(k, k),
             "role": lambda k: ROLE.get(k, k), "answer": lambda k: ANSWER.get(k, k),
             "actor": lambda k: ACTOR.get(k, k), "call_state": lambda k: CALL_STATE.get(k, k),
             "local": lambda v: _local(request, v), "left": _left}
    return templates.TemplateResponse(request, page, {"n": names, "csrf": session.csrf_token(request),
                                                      "who": getattr(request.state, "identity", None), **context},
                                      status_code=status)


def _signed_in(request: Request) -> Any:
    try:
        return session.identity(request)
    except Unauthenticated:
        return None


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    return RedirectResponse(HOME.get(who.role, "/tickets"), status_code=303)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return RedirectResponse("/static/favicon.svg", status_code=301)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _render(request, "login.html")


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = session.form_of(await request.body())
    response = RedirectResponse("/", status_code=303)
    try:
        session.begin(request, response, form.get("name", ""), form.get("password", ""))
    except DispatchError as error:
        # the page itself answers 200: a browser shows the sentence, not a failed request
        return _render(request, "login.html", error=str(error), name=form.get("name", ""))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = session.form_of(await request.body())
    session.require_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    session.end(request, response)
    return response


def _desk_calls(request: Request, who: Any) -> list[dict[str, Any]]:
    service = request.app.state.service
    return service.read(lambda rt: queries.inbox(rt, None, identity=who))


@router.get("/desk", response_class=HTMLResponse)
def desk(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    return _render(request, "desk.html", calls=_desk_calls(request, who))


@router.get("/desk/calls", response_class=HTMLResponse)
def desk_calls(request: Request) -> Response:
    who = session.identity(request)
    return _render(request, "desk_calls.html", calls=_desk_calls(request, who))


_DESK_STEPS = {"acknowledge": (c.Acknowledge, ()), "reject": (c.Reject, ("reason",)),
               "handle": (c.Handle, ("result",)), "feedback": (c.Feedback, ("message",))}


@router.post("/desk/{ticket}/{step}", response_class=HTMLResponse)
async def desk_step(request: Request, ticket: str, step: str) -> Response:
    form = session.form_of(await request.body())
    who = session.identity(request)
    session.require_csrf(request, form)
    if step not in _DESK_STEPS:
        return _render(request, "desk_calls.html", status=404, calls=_desk_calls(request, who),
                       error="没有这个操作")
    kind, fields = _DESK_STEPS[step]
    values = {f: form.get(f, "") for f in fields}
    if step != "feedback":
        values["department"] = who.department or ""
    service = request.app.state.service
    error = None
    try:
        service.submit(lambda rt: prepare(rt, kind, who, ticket_id=ticket, **values), kind, None)
    except DispatchError as refused:
        error = str(refused)
    return _render(request, "desk_calls.html", status=200 if error is None else 409,
                   calls=_desk_calls(request, who), error=error)


@router.get("/tickets/{ticket}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket: str) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    service = request.app.state.service
    try:
        shown = service.read(lambda rt: queries.show(rt, ticket, who))
        timeline = service.read(lambda rt: queries.timeline(rt, ticket, who))
    except DispatchError as error:
        return _render(request, "message.html", status=404 if "no ticket" in str(error) else 403,
                       message=str(error))
    return _render(request, "ticket.html", t=shown, events=timeline["events"])

