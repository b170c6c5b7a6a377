"""The pages (server-rendered with Jinja2, htmx for the buttons): sign-in, a department's desk
and a ticket's page. Chinese words for everything a person reads — category, department and
place names, never ids; times in the reference data's time zone; the time left on a deadline
computed here in the SLA policy's time basis (working hours, holidays, 调休), the browser only
ticking it down. Routes translate to the service layer, as the API's do."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from dispatch.domain import commands as c
from dispatch.domain.errors import DispatchError, Forbidden, InvalidCommand, TicketNotFound, Unauthenticated
from dispatch.domain.messages import STEPS, chinese, detail
from dispatch.service import queries
from dispatch.service import actions
from dispatch.service.access import sees_change
from dispatch.service.actions import prepare
from dispatch.web import live, session

__all__ = ["router", "templates"]

router = APIRouter(include_in_schema=False)


# A form post's body is read on the event loop (a dependency), its work done in the thread pool
# (the routes are plain ``def``): nothing a post does — SQL, argon2 — holds up other requests.
async def _body(request: Request) -> bytes:
    return await request.body()


async def _upload(request: Request) -> tuple[dict[str, str], bytes | None]:
    """The report form's fields and its photo (at most one)."""
    from starlette.datastructures import UploadFile

    received = await request.form(max_files=1, max_fields=30)
    photo = received.get("photo")
    image = await photo.read() if isinstance(photo, UploadFile) and photo.filename else None
    return {k: v for k, v in received.items() if isinstance(v, str)}, image


Posted = Annotated[bytes, Depends(_body)]
Upload = Annotated[tuple[dict[str, str], bytes | None], Depends(_upload)]
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

STATUS = {"reported": "已上报", "accepted": "已受理", "dispatched": "已派单", "in_progress": "处置中",
          "awaiting_redispatch": "待再派", "handled": "已处置", "feedback_given": "已反馈", "evaluated": "已评价",
          "reopened": "返工", "closed": "已办结", "cancelled": "已撤销", "duplicate": "重复件"}
CHANNEL = {"patrol": "网格巡查", "video": "视频发现", "hotline": "12345热线", "online": "网上", "visit": "来访",
           "media": "媒体", "third_party": "第三方平台"}
CALL_STATE = {"waiting": "待报到", "to_handle": "待处置"}
ROLE = {"lead": "主办", "cooperating": "协办"}
ANSWER = {None: "未报到", "acknowledged": "已报到", "rejected": "已退单"}
LEVEL = {"grid": "网格", "community": "社区", "street": "街道", "district": "区"}
ACTOR = {"supervisor": "网格员", "hotline": "热线", "resident": "居民", "centre": "网格中心", "department": "部门",
         "system": "系统", "analyst": "分析"}
HOME = {"department": "/desk", "dispatcher": "/console", "admin": "/console", "supervisor": "/report",
        "hotline": "/report", "leader": "/dashboard", "analyst": "/analysis"}
MODES = {"on_the_spot": "当场解决", "forward_and_accept": "转交受理", "accept_on_behalf": "代为受理",
         "tell_the_path": "告知途径", "explain": "解释说明"}
PROGRESS = {"dispatched": "已派单，等待报到", "in_progress": "处置中", "awaiting_redispatch": "退单，待网格中心再派",
            "handled": "已处置，待反馈", "feedback_given": "已反馈，待评价", "evaluated": "已评价，待办结",
            "reopened": "返工，待重新派单", "accepted": "待派单", "reported": "待受理", "closed": "已办结",
            "cancelled": "已撤销", "duplicate": "重复件"}
SATISFACTION = {"satisfied": "满意", "basically_satisfied": "基本满意", "unsatisfied": "不满意"}


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


def _deadline(ref: Any, key: str) -> str:
    """A deadline's name (``ack:<n>:<department>``, ``handle:<n>``, ``feedback:<n>``, the centre's
    ``accept`` and ``dispatch``) in words."""
    kind, _, rest = key.partition(":")
    if kind == "ack":
        department = rest.rpartition(":")[2]
        return (ref.departments[department].name if department in ref.departments else "") + "报到"
    return {"handle": "处置", "feedback": "反馈", "accept": "受理", "dispatch": "派遣"}.get(kind, "")


def config(request: Request) -> dict[str, Any]:
    """What the pages' maps and charts need to know (tiles, time zone, names of statuses)."""
    settings = request.app.state.board_settings
    return {"tiles": settings.get("tiles"), "attribution": settings.get("attribution") or "",
            "tz": request.app.state.service.runtime.reference.timezone, "status": STATUS, "channels": CHANNEL}


def script_json(value: Any) -> str:
    """JSON to sit inside a <script> element: no character that could close it."""
    import json

    text = json.dumps(value, ensure_ascii=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _when(request: Request, value: datetime) -> str:
    """A time a person reads in a sentence: local, to the minute (the date only when not today)."""
    tz = _tz(request)
    local, today = value.astimezone(tz), request.app.state.service.runtime.clock.now().astimezone(tz)
    return local.strftime("%H:%M") if local.date() == today.date() else local.strftime("%m月%d日 %H:%M")


def refusal(request: Request, error: DispatchError, who: Any = None, ticket: str | None = None,
            step: str | None = None, department: str | None = None) -> str:
    """A refusal as the person reads it: in Chinese, naming the case number, the department and
    the step (``dispatch.domain.messages``)."""
    ref = request.app.state.service.runtime.reference
    words: dict[str, Any] = {k: (_when(request, v) if isinstance(v, datetime) else v)
                             for k, v in (getattr(error, "words", None) or {}).items()}
    if ticket and not isinstance(error, (Forbidden, TicketNotFound)):
        rows = request.app.state.service.read(lambda rt: queries.tickets(rt, ids=[ticket], limit=1))
        if rows:
            words["case"] = rows[0]["case_no"]
    dept = department or (who.department if who is not None else None)
    if dept in ref.departments:
        words["department"] = ref.departments[dept].name
    if step:
        words["step"] = STEPS.get(step, "")
    return chinese(error, **words)


def _render(request: Request, page: str, status: int = 200, **context: Any) -> Response:
    ref = request.app.state.service.runtime.reference
    names = {"category": lambda k: ref.categories[k].name if k in ref.categories else k,
             "department": lambda k: ref.departments[k].name if k in ref.departments else k,
             "grid": lambda k: ref.place(k).grid.name if k in ref.grids else k,
             "community": lambda k: ref.communities[k].name if k in ref.communities else k,
             "status": lambda k: STATUS.get(k, k), "level": lambda k: LEVEL.get(k, k),
             "role": lambda k: ROLE.get(k, k), "answer": lambda k: ANSWER.get(k, k),
             "actor": lambda k: ACTOR.get(k, k), "call_state": lambda k: CALL_STATE.get(k, k),
             "local": lambda v: _local(request, v), "left": _left,
             "deadline": lambda key: _deadline(ref, key),
             "progress": lambda row: PROGRESS.get(row["status"], STATUS.get(row["status"], ""))}
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


def _login_form(request: Request, status: int = 200, headers: dict[str, str] | None = None,
                **context: Any) -> Response:
    """The sign-in form, with its own CSRF token (set as a cookie the first time)."""
    secret, fresh = session.login_secret(request)
    page = _render(request, "login.html", status=status, login_csrf=session.login_token(secret), **context)
    if fresh:
        session.keep_login_secret(request, page, secret)
    page.headers.update(headers or {})
    return page


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _login_form(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, body: Posted) -> Response:
    from fastapi import HTTPException

    from dispatch.domain.messages import sentence

    form = session.form_of(body)
    name = form.get("name", "")[:100]
    response = RedirectResponse("/", status_code=303)
    try:
        session.require_login_csrf(request, form)
        session.begin(request, response, name, form.get("password", ""))
    except HTTPException as limited:  # too many tries: said in the form, with when to try again
        retry = (limited.headers or {}).get("Retry-After", "60")
        return _login_form(request, status=limited.status_code, headers={"Retry-After": retry}, name=name,
                           error=sentence("rate_limited", wait=_seconds(int(retry))))
    except DispatchError as error:
        # the page itself answers 200: a browser shows the sentence, not a failed request
        return _login_form(request, error=refusal(request, error), name=name)
    return response


def _seconds(seconds: int) -> str:
    return f"{seconds} 秒" if seconds < 90 else f"{(seconds + 59) // 60} 分钟"


@router.post("/logout")
def logout(request: Request, body: Posted) -> Response:
    form = session.form_of(body)
    session.require_csrf(request, form)
    response = RedirectResponse("/login", status_code=303)
    session.end(request, response)
    return response


@router.get("/console/events")
@router.get("/desk/events")
@router.get("/report/events")
def work_events(request: Request) -> Response:
    """The event stream of a page that lists work (the console, a desk, my reports): told of
    the moved tickets its signed-in viewer may see, for as long as it stays signed in."""
    who = session.identity(request)
    return live.stream(request, lambda: session.identity(request), lambda change: sees_change(who, change))


# -- a department's desk -------------------------------------------------------------------------------

def _desk(request: Request, who: Any, **extra: Any) -> dict[str, Any]:
    """The desk's calls (待办), the tickets it led that wait for its feedback (待反馈), and the open
    tickets it reported in on and follows (我参与的)."""
    service = request.app.state.service
    calls = service.read(lambda rt: queries.inbox(rt, None, identity=who))
    handled = service.read(lambda rt: queries.tickets(rt, identity=who, status="handled", limit=100))
    to_feedback = [t for t in handled if t["lead"] and t["lead"] == who.department]
    busy = {call["ticket_id"] for call in calls} | {t["ticket_id"] for t in to_feedback}
    following = [t for t in service.read(lambda rt: queries.participating(rt, who)) if t["ticket_id"] not in busy]
    return {"calls": calls, "to_feedback": to_feedback, "following": following, **extra}


@router.get("/desk", response_class=HTMLResponse)
def desk(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if who.role != "department":
        return _render(request, "message.html", status=403, message="部门工作人员才能使用这个页面")
    return _render(request, "desk.html", **_desk(request, who))


@router.get("/desk/calls", response_class=HTMLResponse)
def desk_calls(request: Request) -> Response:
    who = session.identity(request)
    return _render(request, "desk_calls.html", **_desk(request, who))


@router.get("/desk/history", response_class=HTMLResponse)
def desk_history(request: Request) -> Response:
    """我参与的 · 已结束: the ended tickets the desk reported in on, by case number, period and status."""
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    p = request.query_params
    asked = {"case": (p.get("case") or "").strip()[:60], "status": p.get("status") or "",
             "start": p.get("from") or "", "end": p.get("to") or ""}
    error, rows = None, []
    try:
        start, end = request.app.state.service.read(lambda rt: queries.bounds(rt, asked["start"] or None,
                                                                               asked["end"] or None))
        rows = request.app.state.service.read(lambda rt: queries.participating(
            rt, who, ended=True, case_no=asked["case"] or None,
            status=asked["status"] if asked["status"] in ENDED else None, reported_from=start, reported_to=end))
    except DispatchError as refused:
        error = refusal(request, refused, who)
    return _render(request, "desk_history.html", rows=rows, asked=asked, ended=ENDED, error=error)


ENDED = {"closed": "已办结", "cancelled": "已撤销", "duplicate": "重复件"}

_DESK_STEPS = {"acknowledge": (c.Acknowledge, ()), "reject": (c.Reject, ("reason",)),
               "handle": (c.Handle, ("result",)), "feedback": (c.Feedback, ("message",)),
               "extension": (c.RequestExtension, ("reason",))}


async def _form(request: Request, work: Any) -> Response:
    """A form that writes: worked on in a thread of the forms' own (``WebService.form``)."""
    answer: Response = await request.app.state.service.form(work)
    return answer


@router.post("/desk/{ticket}/{step}", response_class=HTMLResponse)
async def desk_step(request: Request, body: Posted, ticket: str, step: str) -> Response:
    return await _form(request, lambda: _desk_step(request, body, ticket, step))


def _desk_step(request: Request, body: bytes, ticket: str, step: str) -> Response:
    form, who = _posted(request, body)

    def answer(error: str | None) -> Response:
        # a refusal is shown in the row it came from (htmx merges only 2xx answers)
        context = _desk(request, who, error=error)
        shown = {r["ticket_id"] for r in (*context["calls"], *context["to_feedback"])}
        return _render(request, "desk_calls.html", error_ticket=ticket if ticket in shown else None, **context)

    if step not in _DESK_STEPS:
        return answer(detail("no_such_step"))
    kind, fields = _DESK_STEPS[step]
    values: dict[str, Any] = {f: form.get(f, "") for f in fields}
    if step != "feedback":
        values["department"] = who.department or ""
    service = request.app.state.service
    if kind is c.RequestExtension:  # asked in hours, recorded in minutes of the dispatch's time basis
        hours = form.get("hours", "")
        if not hours.isdigit() or not 1 <= int(hours) <= 720:
            return answer(detail("extension_hours"))
        values["minutes"] = int(hours) * 60
    try:
        service.submit(lambda rt: prepare(rt, kind, who, ticket_id=ticket, **values), kind, None)
    except DispatchError as refused:
        return answer(refusal(request, refused, who, ticket=ticket, step=step))
    return answer(None)


# -- the field report (网格员 / hotline) ----------------------------------------------------------------

def _report_context(request: Request, who: Any, typed: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    import uuid

    service = request.app.state.service
    ref = service.runtime.reference
    kinds = ("grid", "community")
    own = set(who.scope) if who.scope_kind in kinds else set()
    grids = sorted(ref.grids.values(), key=lambda g: (not (g.id in own or g.community_id in own), g.community_id, g.id))
    recent = service.read(lambda rt: queries.tickets(rt, identity=who, limit=10))
    mine = service.read(lambda rt: queries.tickets(rt, identity=who, mine=True, limit=20))
    offered = ("hotline", "online", "visit") if who.role == "hotline" else ("patrol", "video", "visit")
    channels = [(k, CHANNEL[k]) for k in offered]
    # a refused report keeps what was typed (and its form key: a second try is still one report)
    typed = typed or {}
    from dispatch.adapters.media import MAX_PHOTO_BYTES

    return {"categories": list(ref.categories.values()), "grids": grids, "key": typed.get("key") or uuid.uuid4().hex,
            "max_photo": MAX_PHOTO_BYTES,
            "recent": recent, "mine": mine, "hotline": who.role == "hotline", "channels": channels,
            "typed": typed, **extra}


@router.get("/report/lists", response_class=HTMLResponse)
def report_lists(request: Request) -> Response:
    """我的上报 and the area's recent reports, for the live page."""
    who = session.identity(request)
    return _render(request, "report_lists.html", **_report_context(request, who))


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, made: str | None = None, refused: str | None = None) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    from dispatch.adapters.media import MAX_PHOTO_BYTES

    error = detail("body_too_large", limit=f"{MAX_PHOTO_BYTES // (1024 * 1024)} MB") if refused == "too_large" else None
    shown = None
    if made and queries.UUID_TEXT.match(made):
        try:
            shown = request.app.state.service.read(lambda rt: queries.show(rt, made, who))
        except DispatchError:  # in Kafka mode the engine may not have stored it yet
            shown = {"ticket_id": made, "case_no": "（编号生成中）"}
    return _render(request, "report.html", made=shown, error=error, **_report_context(request, who))


@router.post("/report", response_class=HTMLResponse)
async def report(request: Request, upload: Upload) -> Response:
    return await _form(request, lambda: _report(request, upload))


def _report(request: Request, upload: tuple[dict[str, str], bytes | None]) -> Response:
    import hashlib

    form, image = upload
    who = session.identity(request)
    session.require_csrf(request, form)
    fields: dict[str, Any] = {"category": form.get("category", ""), "description": form.get("description", ""),
                              "channel": "hotline" if who.role == "hotline" else "patrol"}
    if form.get("lat") and form.get("lon"):
        try:
            fields["position"] = {"lat": float(form["lat"]), "lon": float(form["lon"]), "crs": "WGS84"}
            if form.get("accuracy"):
                fields["position"]["accuracy"] = min(float(form["accuracy"]), 100_000.0)
        except ValueError:
            pass
    if "position" not in fields:
        fields["grid"] = form.get("grid", "")
    reporter = {k: form[f] for k, f in (("name", "reporter_name"), ("phone", "reporter_phone")) if form.get(f)}
    if reporter:
        fields["reporter"] = reporter
    if form.get("channel") in c.CHANNELS:
        fields["channel"] = form["channel"]
    service = request.app.state.service
    if image is not None:
        try:
            fields["media"] = [service.runtime.media.put(image)]
        except DispatchError as refused:
            return _render(request, "report.html", error=refusal(request, refused, who),
                           **_report_context(request, who, form))
    # a double tap on a flaky connection: the same form key makes one ticket
    key = "page-" + hashlib.sha256(f"{who.name}\x00{form.get('key', '')}".encode()).hexdigest()[:40]
    try:
        result = service.submit(lambda rt: prepare(rt, c.Report, who, command_id=key,
                                                   uploaded=tuple(fields.get("media") or ()), **fields), c.Report, key)
    except DispatchError as refused:
        return _render(request, "report.html", error=refusal(request, refused, who, step="report"),
                       **_report_context(request, who, form))
    # after a POST, a redirect: reloading the page then never sends the report again
    return RedirectResponse(f"/report?made={result.get('ticket_id', '')}", status_code=303)


# -- the grid centre's console -------------------------------------------------------------------------

_CONSOLE_LISTS = (("new", "新上报", ("reported",)), ("extensions", "延期申请", ()),
                  ("to_dispatch", "待派单", ("accepted", "reopened", "awaiting_redispatch")),
                  ("working", "处置中", ("dispatched", "in_progress")), ("to_close", "待反馈 · 评价", ("handled", "feedback_given")),
                  ("evaluated", "待办结", ("evaluated",)))


def _console(request: Request, who: Any) -> dict[str, Any]:
    service = request.app.state.service
    ref = service.runtime.reference
    listed = [status for _, _, statuses in _CONSOLE_LISTS for status in statuses]
    by_status: dict[str, list[dict[str, Any]]] = {status: [] for status in listed}
    for row in service.read(lambda rt: queries.tickets(rt, identity=who, statuses=listed, per_status=100,
                                                       limit=100 * len(listed))):  # every list: one query
        by_status[row["status"]].append(row)
    lists = []
    for key, title, statuses in _CONSOLE_LISTS:
        if key == "extensions":
            rows = service.read(lambda rt: queries.tickets(rt, identity=who, extension_pending=True, limit=100))
        else:
            rows = [row for status in statuses for row in by_status[status]]
        rows.sort(key=lambda r: r["reported_at"])
        lists.append({"key": key, "title": title, "rows": rows})
    overdue = service.read(lambda rt: queries.overdue(rt, identity=who))
    waiting = service.read(lambda rt: actions.unplaced_for(rt, who))
    grids = service.read(lambda rt: actions.placeable_grids(rt, who)) if waiting else []
    return {"lists": lists, "overdue": overdue, "unplaced": waiting, "grids": grids, "modes": MODES, "satisfaction": SATISFACTION,
            "departments": list(ref.departments.values()), "categories": ref.categories}


@router.get("/console", response_class=HTMLResponse)
def console(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if who.role not in ("dispatcher", "admin"):
        return _render(request, "message.html", status=403, message="网格中心的调度员才能使用这个页面")
    return _render(request, "console.html", **_console(request, who))


@router.get("/console/body", response_class=HTMLResponse)
def console_body(request: Request) -> Response:
    who = session.identity(request)
    return _render(request, "console_body.html", **_console(request, who))


_CONSOLE_STEPS: dict[str, tuple[type, tuple[str, ...]]] = {
    "accept": (c.Accept, ()), "first-contact": (c.FirstContact, ("mode",)), "dispatch": (c.Dispatch, ("lead",)),
    "duplicate": (c.MarkDuplicate, ("original_id",)), "feedback": (c.Feedback, ("message",)),
    "evaluate": (c.Evaluate, ("satisfaction",)), "close": (c.Close, ()), "reopen": (c.Reopen, ("reason",)),
    "escalate": (c.Escalate, ()), "cancel": (c.Cancel, ("reason",)),
    "extension-approve": (c.DecideExtension, ()), "extension-refuse": (c.DecideExtension, ("reason",)),
    "hold": (c.Hold, ("reason",)), "resume": (c.Resume, ()),
}


@router.post("/console/{ticket}/{step}", response_class=HTMLResponse)
async def console_step(request: Request, raw: Posted, ticket: str, step: str) -> Response:
    return await _form(request, lambda: _console_step(request, raw, ticket, step))


def _console_step(request: Request, raw: bytes, ticket: str, step: str) -> Response:
    form = session.form_of(raw)
    who = session.identity(request)
    session.require_csrf(request, form)
    error = None
    if step == "place":
        return _place(request, who, ticket, form.get("grid") or "")
    if step not in _CONSOLE_STEPS:
        error = detail("no_such_step")
    else:
        kind, fields = _CONSOLE_STEPS[step]
        values: dict[str, Any] = {f: form.get(f) or None for f in fields}
        if kind is c.Dispatch:
            from urllib.parse import parse_qs

            values["cooperating"] = [d for d in parse_qs(raw.decode("utf-8", "replace")).get("cooperating", [])
                                     if d != values.get("lead")]
        if kind is c.Evaluate:
            values["resolved"] = form.get("resolved") == "yes"
        if kind is c.Close:
            values["override"] = form.get("override") or None
        if kind is c.DecideExtension:
            values["approve"] = step == "extension-approve"
        if kind is c.MarkDuplicate and values.get("original_id"):
            try:
                values["original_id"] = str(request.app.state.service.read(
                    lambda rt: queries.show(rt, values["original_id"], who))["ticket_id"])
            except DispatchError as refused:
                error = "原案件：" + chinese(refused, case=str(values["original_id"])[:40])
        if error is None:
            try:
                request.app.state.service.submit(lambda rt: prepare(rt, kind, who, ticket_id=ticket, **values),
                                                 kind, None)
            except DispatchError as refused:
                error = refusal(request, refused, who, ticket=ticket, step=step,
                                department=values.get("lead") if kind is c.Dispatch else None)
    context = _console(request, who)
    shown = {r["ticket_id"] for rows in ([x["rows"] for x in context["lists"]] + [context["overdue"]]) for r in rows}
    return _render(request, "console_body.html", error=error, error_ticket=ticket if ticket in shown else None,
                   **context)


def _place(request: Request, who: Any, token: str, grid: str) -> Response:
    """定位: a report that came with an address in words only, placed on a grid."""
    service = request.app.state.service
    error = None
    try:
        if not grid:
            raise InvalidCommand("grid: choose the grid the address lies in").saying(why="place_grid")
        command = service.read(lambda rt: actions.place(rt, who, token, grid))
        try:
            result = service.submit(lambda rt: command, c.Report, None)
        except BaseException:
            service.read(lambda rt: actions.placed(rt, token, None))
            raise
        service.read(lambda rt: actions.placed(rt, token, result))
    except DispatchError as refused:
        error = refusal(request, refused, who, step="place")
    context = _console(request, who)
    shown = {u["token"] for u in context["unplaced"]}
    return _render(request, "console_body.html", error=error, error_ticket=token if token in shown else None,
                   **context)


@router.get("/tickets/{ticket}/media/{name}")
def ticket_media(request: Request, ticket: str, name: str) -> Response:
    from fastapi.responses import FileResponse

    who = session.identity(request)
    path = request.app.state.service.read(lambda rt: queries.media_file(rt, ticket, name, who))
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get("/tickets/{ticket}", response_class=HTMLResponse)
def ticket_page(request: Request, ticket: str) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    try:
        context = _ticket_context(request, who, ticket)
    except DispatchError as error:
        return _render(request, "message.html", status=404 if isinstance(error, TicketNotFound) else 403,
                       message=refusal(request, error, who))
    return _render(request, "ticket.html", **context)


def _ticket_context(request: Request, who: Any, ticket: str) -> dict[str, Any]:
    service = request.app.state.service
    shown = service.read(lambda rt: queries.show(rt, ticket, who))
    timeline = service.read(lambda rt: queries.timeline(rt, ticket, who))
    ref = service.runtime.reference
    grid_shape = ref.boundaries.get(shown["grid"]) if ref.boundaries else None
    spot = {"position": shown.get("position"), "grid": grid_shape, "grid_name": ref.place(shown["grid"]).grid.name}
    return {"t": shown, "events": timeline["events"], "spot_json": script_json(spot),
            "config_json": script_json(config(request)), "has_spot": bool(shown.get("position") or grid_shape),
            "spot_name": spot["grid_name"]}


@router.get("/tickets/{ticket}/body", response_class=HTMLResponse)
def ticket_body(request: Request, ticket: str) -> Response:
    who = session.identity(request)
    return _render(request, "ticket_body.html", **_ticket_context(request, who, ticket))


@router.get("/tickets/{ticket}/events")
def ticket_events(request: Request, ticket: str) -> Response:
    who = session.identity(request)
    tid = str(request.app.state.service.read(lambda rt: queries.show(rt, ticket, who))["ticket_id"])
    return live.stream(request, lambda: session.identity(request), lambda change: change["ticket_id"] == tid)



# -- one's own sessions --------------------------------------------------------------------------------

SESSION_KIND = {"browser": "网页", "sign-in": "接口登录"}


def _current_session(request: Request) -> str | None:
    token = request.cookies.get(session.COOKIE) or ""
    return token.split("_")[1] if token.startswith("dsp_") and token.count("_") >= 2 else None


def _posted(request: Request, body: bytes) -> tuple[dict[str, str], Any]:
    """A page's form post: its fields and who sent it, its CSRF token checked (else 403)."""
    form = session.form_of(body)
    who = session.identity(request)
    session.require_csrf(request, form)
    return form, who


@router.get("/account", response_class=HTMLResponse)
def account_page(request: Request, done: str | None = None) -> Response:
    """我的登录: where one is signed in; each can be ended, or all but this one."""
    from dispatch.service import accounts

    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    rows = request.app.state.service.read(lambda rt: accounts.sessions(rt, who, who.name))
    return _render(request, "account.html", sessions=rows, current=_current_session(request), kinds=SESSION_KIND,
                   done=done if done and done.isdigit() else None)


@router.post("/account/sessions/{token_id}/end")
def account_end_session(request: Request, body: Posted, token_id: str) -> Response:
    from dispatch.service import accounts

    form, who = _posted(request, body)
    request.app.state.service.read(lambda rt: accounts.end_session(rt, who, token_id))
    return RedirectResponse("/login" if token_id == _current_session(request) else "/account?done=1",
                            status_code=303)


@router.post("/account/sign-out-others")
def account_sign_out_others(request: Request, body: Posted) -> Response:
    from dispatch.service import accounts

    form, who = _posted(request, body)
    ended = request.app.state.service.read(lambda rt: accounts.sign_out_everywhere(
        rt, who, who.name, keep=_current_session(request)))
    return RedirectResponse(f"/account?done={ended}", status_code=303)


# -- notifications, managed (admins) -----------------------------------------------------------------------

NOTIFY_KINDS = {"email": "电子邮件", "wecom": "企业微信机器人", "dingtalk": "钉钉机器人", "webhook": "短信网关等（签名回调）"}


@router.get("/admin/notify", response_class=HTMLResponse)
def notify_page(request: Request, done: str | None = None, error: str | None = None) -> Response:
    """消息通知: the channels (add, remove) and the messages given up (send again)."""
    from dispatch.service import notifier

    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    if who.role != "admin":
        return _render(request, "message.html", status=403, message="系统管理员才能管理消息通知")
    service = request.app.state.service
    ref = service.runtime.reference
    channels = service.read(lambda rt: notifier.list_channels(rt, who))
    failed = service.read(lambda rt: notifier.failed_sends(rt, who))
    from dispatch.service import accounts

    people = service.read(lambda rt: accounts.list_all(rt, who))
    owners = ([(f"department:{d.id}", f"部门：{d.name}") for d in ref.departments.values()]
              + [(f"street:{s.id}", f"街道（网格中心）：{s.name}") for s in ref.streets.values()]
              + [(f"district:{d.id}", f"区：{d.name}") for d in ref.districts.values()]
              + [(f"community:{c.id}", f"社区：{c.name}") for c in ref.communities.values()]
              + [(f"user:{u['name']}", f"用户：{u['name']}") for u in people if not u["disabled"]])
    names = dict(owners)
    said = {"added": "已添加渠道", "removed": "已删除渠道"}.get(done or "") or (
        f"已安排重新发送 {done} 条" if done and done.isdigit() else None)
    return _render(request, "notify.html", channels=channels, failed=failed, owners=owners, kinds=NOTIFY_KINDS,
                   owner_name=lambda key: names.get(key, key), done=said,
                   error="渠道信息有误：请检查接收方、方式和地址（密钥只填位置 env: 或 file:）" if error == "bad" else None)


@router.post("/admin/notify/add")
def notify_add(request: Request, body: Posted) -> Response:
    from dispatch.service import notifier

    form, who = _posted(request, body)
    try:
        request.app.state.service.read(lambda rt: notifier.add_channel(
            rt, who, owner=form.get("owner") or "", kind=form.get("kind") or "", target=(form.get("target") or "").strip(),
            secret=(form.get("secret") or "").strip() or None, quiet=form.get("quiet") == "yes",
            label=(form.get("label") or "").strip()[:200]))
    except (DispatchError, ValueError) as refused:
        if isinstance(refused, Forbidden):
            raise
        return RedirectResponse("/admin/notify?error=bad", status_code=303)
    return RedirectResponse("/admin/notify?done=added", status_code=303)


@router.post("/admin/notify/{channel_id}/remove")
def notify_remove(request: Request, body: Posted, channel_id: int) -> Response:
    from dispatch.service import notifier

    form, who = _posted(request, body)
    request.app.state.service.read(lambda rt: notifier.remove_channel(rt, who, channel_id))
    return RedirectResponse("/admin/notify?done=removed", status_code=303)


@router.post("/admin/notify/resend")
def notify_resend(request: Request, body: Posted) -> Response:
    from dispatch.service import notifier

    form, who = _posted(request, body)
    count = request.app.state.service.read(lambda rt: notifier.resend(rt, who))
    return RedirectResponse(f"/admin/notify?done={count}", status_code=303)
