"""The dashboards (驾驶舱), the big screen (大屏) and the analysts' page.

- ``/dashboard`` — a street's or a community's figures for a period with charts, the map of
  grids and the newest tickets; live (server-sent events follow the read models' position,
  so writes from the CLI, the API or the Kafka projector all show up) or as of any past
  instant (time travel: the same figures ``dispatch dashboard --as-of`` prints).
- ``/screen?key=dsd_…`` — one street's dashboard full-screen for a wall, opened with a display
  token (``dispatch users screen``): read-only, that street only, and independent of sign-in
  sessions. The key is swapped at once for an HttpOnly cookie limited to ``/screen``, so it
  leaves the address bar.
- ``/analysis`` — SLA figures by a dimension for a period and exports (CSV, Parquet) to
  download, personal data masked as everywhere else.

Routes translate; what they show is ``dispatch.boards`` and ``dispatch.queries``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.responses import Response

from dispatch import boards, queries, users
from dispatch.errors import DispatchError, Forbidden, Unauthenticated
from dispatch.identity import Identity
from dispatch.web import live, session
from dispatch.web.pages import _render, _signed_in
from dispatch.web.pages import config as _config
from dispatch.web.pages import script_json as _script_json

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
SCREEN_COOKIE = "dispatch_screen"
SCREEN_GONE = "这个大屏链接无效、已过期或已撤销：请向街道或网格中心索取新的链接"


# -- who is looking ------------------------------------------------------------------------------------

def _screen(request: Request) -> Identity:
    service = request.app.state.service
    client = request.client.host if request.client else "?"
    return users.check_display_token(service.runtime.engine, service.runtime.clock.now(),
                                     request.cookies.get(SCREEN_COOKIE, ""), where=f"from {client} {request.url.path}")


def _places(runtime: Any, who: Identity) -> list[Any]:
    """The streets ``who`` may choose between."""
    ref = runtime.reference
    streets = list(ref.streets.values())
    if who.role in ("leader", "dispatcher", "display") and who.scope:
        if who.scope_kind == "street":
            streets = [s for s in streets if s.id in who.scope]
        elif who.scope_kind == "district":
            streets = [s for s in streets if s.district_id in who.scope]
    return streets


def _ask(request: Request, who: Identity) -> dict[str, Any]:
    """The place, period and instant a request asks for (defaults: the first street one sees,
    this month, now)."""
    runtime = request.app.state.service.runtime
    p = request.query_params
    street, community = p.get("street") or None, p.get("community") or None
    if who.role == "display" and not street and not community:
        street = who.scope[0]  # a big screen shows its own street (and may_view refuses any other)
    if not street and not community:
        streets = _places(runtime, who)
        if not streets:
            raise Forbidden(f"{who.describe()} sees no street's dashboard")
        street = streets[0].id
    as_of_text = p.get("as_of") or None
    as_of = queries.business_time(runtime, as_of_text, "as_of") if as_of_text else None
    return {"street": street, "community": community, "period": p.get("period") or "month", "as_of": as_of}


def _board(request: Request, who: Identity) -> dict[str, Any]:
    service = request.app.state.service
    asked = _ask(request, who)
    return service.read(lambda rt: boards.board(rt, who, **asked))  # type: ignore[no-any-return]


# (figure, label, kind): kind says how it is shown — a count, a rate (%), a score (0–100), or an
# alert (a count that turns red when above zero). Names and definitions: docs/figures.md.
PAGE_FIGURES = (
    ("open", "在办", "count"), ("reported", "本期上报", "count"), ("closed", "本期办结", "count"),
    ("ack_overdue", "报到超时", "alert"), ("handle_overdue", "处置超时", "alert"), ("escalations", "督办升级", "count"),
    ("open_above_grid", "升级在办", "count"), ("accept_on_time_rate", "按时受理率", "rate"),
    ("dispatch_on_time_rate", "按时派遣率", "rate"), ("first_contact_rate", "首问办结率", "rate"),
    ("response_rate", "响应率", "rate"), ("resolution_rate", "解决率", "rate"), ("satisfaction_rate", "满意率", "rate"),
    ("reopen_rate", "返工率", "rate"), ("evaluated", "已评价", "count"), ("composite", "综合得分", "score"),
)
SCREEN_FIGURES = tuple(f for f in PAGE_FIGURES if f[0] in (
    "open", "reported", "closed", "ack_overdue", "handle_overdue", "escalations", "satisfaction_rate", "composite"))


def _page(request: Request, template: str, who: Identity, base: str, **extra: Any) -> Response:
    data = _board(request, who)
    runtime = request.app.state.service.runtime
    figures = data["figures"]
    street = figures.get("street")
    communities = [c for c in runtime.reference.communities.values() if c.street_id == street]
    figures_shown = SCREEN_FIGURES if who.role == "display" else PAGE_FIGURES
    return _render(request, template, board=data, board_json=_script_json(data),
                   config_json=_script_json(_config(request)), base=base, periods=boards.PERIODS,
                   streets=_places(runtime, who), communities=communities, figures=figures_shown, **extra)


# -- the dashboard ---------------------------------------------------------------------------------------

@router.get("/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    try:
        return _page(request, "dashboard.html", who, "/dashboard")
    except DispatchError as error:
        return _render(request, "message.html", status=403 if isinstance(error, Forbidden) else 400,
                       message=str(error))


@router.get("/dashboard/data")
def dashboard_data(request: Request) -> Response:
    return JSONResponse(json.loads(json.dumps(_board(request, session.identity(request)), default=str)))


@router.get("/dashboard/events")
async def dashboard_events(request: Request) -> Response:
    session.identity(request)
    return live.stream(request, lambda: session.identity(request), None)  # any move: the figures are asked again


@router.get("/dashboard/boundaries")
def dashboard_boundaries(request: Request) -> Response:
    who = session.identity(request)
    return JSONResponse(_boundaries(request, who))


def _boundaries(request: Request, who: Identity) -> dict[str, Any]:
    asked = _ask(request, who)
    runtime = request.app.state.service.runtime
    street = asked["street"] or runtime.reference.community(asked["community"]).street_id
    s = runtime.reference.street(street)
    from dispatch.access import may_view

    may_view(who, "dashboard", street=s.id, district=s.district_id)
    shapes = queries.boundaries(runtime, street=s.id)
    for feature in shapes["features"]:  # the map reads names, never ids
        feature["properties"] = {"grid_name": feature["properties"]["grid_name"],
                                 "community_name": feature["properties"]["community_name"]}
    return shapes


# -- the big screen ------------------------------------------------------------------------------------

@router.get("/screen", response_class=HTMLResponse)
def screen_page(request: Request, key: str | None = None, period: str | None = None) -> Response:
    service = request.app.state.service
    if key is not None:  # the link: check it, keep it in a cookie, and take it out of the address bar
        try:
            who = users.check_display_token(service.runtime.engine, service.runtime.clock.now(), key,
                                            where="screen link")
        except Unauthenticated:
            return _render(request, "message.html", status=401, message=SCREEN_GONE)
        response = RedirectResponse("/screen" + (f"?period={period}" if period in boards.PERIODS else ""),
                                    status_code=303)
        response.set_cookie(SCREEN_COOKIE, key, max_age=users.DISPLAY_DAYS * 86400, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https", path="/screen")
        del who
        return response
    try:
        who = _screen(request)
    except Unauthenticated:
        return _render(request, "message.html", status=401, message=SCREEN_GONE)
    try:
        return _page(request, "screen.html", who, "/screen")
    except DispatchError as error:
        return _render(request, "message.html", status=400, message=str(error))


@router.get("/screen/data")
def screen_data(request: Request) -> Response:
    return JSONResponse(json.loads(json.dumps(_board(request, _screen(request)), default=str)))


@router.get("/screen/events")
async def screen_events(request: Request) -> Response:
    _screen(request)
    return live.stream(request, lambda: _screen(request), None)


@router.get("/screen/boundaries")
def screen_boundaries(request: Request) -> Response:
    return JSONResponse(_boundaries(request, _screen(request)))


# -- the analysts' page --------------------------------------------------------------------------------

DIMENSIONS = {"department": "部门", "category": "类别", "community": "社区", "street": "街道"}
EXPORT_NAMES = {"tickets": "工单", "events": "事件", "sla": "派单时限明细"}


def _period_of(request: Request) -> tuple[str | None, str | None]:
    p = request.query_params
    return p.get("from") or None, p.get("to") or None


@router.get("/analysis", response_class=HTMLResponse)
def analysis_page(request: Request) -> Response:
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    service = request.app.state.service
    start, end = _period_of(request)
    if start is None and end is None:  # by default this month so far: a year of a district is a slow question
        month = boards.period_window(service.runtime, "month")
        start = month.start.date().isoformat() if month.start else None
    by = request.query_params.get("by") or "department"
    try:
        from dispatch.access import may_view

        may_view(who, "export")
        if by not in DIMENSIONS:
            raise DispatchError(f"unknown grouping {by!r}")
        window = service.read(lambda rt: queries.window(rt, start, end))
        data = service.read(lambda rt: queries.sla(rt, by=by, period=window, identity=who, percentiles=False))
    except Forbidden:
        return _render(request, "message.html", status=403, message="统计分析和数据导出仅限分析员和管理员使用")
    except DispatchError as error:
        return _render(request, "message.html", status=400, message=str(error))
    ref = service.runtime.reference
    for row in (*data["rows"], *data.get("ranking", [])):
        row["label"] = _name(ref, by, row[by])
    return _render(request, "analysis.html", sla=data, by=by, dimensions=DIMENSIONS, exports=EXPORT_NAMES,
                   start=start or "", end=end or "", pct=_pct, num=_num, score=_score)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}"


def _name(ref: Any, by: str, key: str) -> str:
    table = getattr(ref, {"department": "departments", "category": "categories", "community": "communities",
                          "street": "streets"}[by])
    return str(table[key].name) if key in table else "—"


@router.get("/analysis/export")
def analysis_export(request: Request) -> Response:
    """A download: ``kind`` (tickets, events, sla), ``from``/``to``, ``format`` (csv, parquet)."""
    import os
    import tempfile

    from starlette.background import BackgroundTask

    from dispatch.replay.export import EXPORTS, export_rows, write_csv, write_parquet

    who = session.identity(request)
    from dispatch.access import may_view

    may_view(who, "export")
    p = request.query_params
    kind, fmt = p.get("kind") or "tickets", p.get("format") or "csv"
    if kind not in EXPORTS or fmt not in ("csv", "parquet"):
        raise DispatchError(f"export one of {', '.join(EXPORTS)} as csv or parquet")
    service = request.app.state.service
    rt = service.runtime
    start, end = service.read(lambda r: queries.bounds(r, *_period_of(request)))
    from dispatch.projections import catch_up

    catch_up(rt)
    rows = export_rows(kind, rt.engine, rt.reference, start=start, end=end, as_of=rt.clock.now(), app=rt.app)
    from zoneinfo import ZoneInfo

    stamp = rt.clock.now().astimezone(ZoneInfo(rt.reference.timezone)).strftime("%Y%m%d-%H%M")
    name = f"dispatch-{kind}-{stamp}.{fmt}"
    users.audit(rt.engine, rt.clock.now(), who.name, "export", "ok",
                f"{kind} {fmt} {p.get('from') or '…'} to {p.get('to') or '…'}")
    handle, path = tempfile.mkstemp(suffix="." + fmt)  # 0600: the file holds residents' reports
    os.close(handle)
    try:
        if fmt == "parquet":
            write_parquet(kind, rows, path, rt.reference.timezone)
        else:
            with open(path, "w", encoding="utf-8", newline="") as stream:
                write_csv(kind, rows, stream, rt.reference.timezone)
    except BaseException:
        os.unlink(path)
        raise
    from fastapi.responses import FileResponse

    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/vnd.apache.parquet"
    return FileResponse(path, media_type=media, filename=name, background=BackgroundTask(os.unlink, path))

