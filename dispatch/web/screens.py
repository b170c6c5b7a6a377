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
  download, personal data masked as everywhere else; 规则推演 (what-if): the same figures under
  rules edited on the page (``dispatch.service.whatif``), POSTed to ``/analysis/what-if``.

Routes translate; what they show is ``dispatch.service.cockpit`` and ``dispatch.service.queries``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from starlette.responses import Response

from dispatch.adapters import user_tables
from dispatch.domain.errors import DispatchError, Forbidden, Unauthenticated
from dispatch.domain.identity import Identity
from dispatch.service import cockpit, queries
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
    return user_tables.check_display_token(service.runtime.engine, service.runtime.clock.now(),
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
    return service.read(lambda rt: cockpit.board(rt, who, **asked))  # type: ignore[no-any-return]


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
                   config_json=_script_json(_config(request)), base=base, periods=cockpit.PERIODS,
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
def dashboard_events(request: Request) -> Response:
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
    from dispatch.service.access import may_view

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
            who = user_tables.check_display_token(service.runtime.engine, service.runtime.clock.now(), key,
                                            where="screen link")
        except Unauthenticated:
            return _render(request, "message.html", status=401, message=SCREEN_GONE)
        response = RedirectResponse("/screen" + (f"?period={period}" if period in cockpit.PERIODS else ""),
                                    status_code=303)
        response.set_cookie(SCREEN_COOKIE, key, max_age=user_tables.DISPLAY_DAYS * 86400, httponly=True,
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
def screen_events(request: Request) -> Response:
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
    p = request.query_params
    return _analysis(request, who, p.get("from") or None, p.get("to") or None, p.get("by") or "department")


@router.post("/analysis/what-if", response_class=HTMLResponse)
async def analysis_what_if(request: Request) -> Response:
    """规则推演: the period's figures under the rules typed on the page, beside the actual ones."""
    who = _signed_in(request)
    if who is None:
        return RedirectResponse("/login", status_code=303)
    form = session.form_of(await request.body())
    session.require_csrf(request, form)
    return await request.app.state.service.long_job(  # type: ignore[no-any-return]
        lambda: _analysis(request, who, form.get("from") or None, form.get("to") or None,
                          form.get("by") or "department", rules=form.get("rules") or ""))


WHAT_IF_SHOWN = 200  # changed deadlines listed on the page (the CLI's --out writes them all)


def _analysis(request: Request, who: Identity, start: str | None, end: str | None, by: str, *,
              rules: str | None = None) -> Response:
    from dispatch.domain.errors import ReferenceDataError
    from dispatch.service.access import may_view
    from dispatch.web.pages import refusal

    service = request.app.state.service
    if start is None and end is None:  # by default this month so far: a year of a district is a slow question
        month = cockpit.period_window(service.runtime, "month")
        start = month.start.date().isoformat() if month.start else None
    result, problem, where = None, None, None
    try:
        may_view(who, "export")
        if by not in DIMENSIONS:
            raise DispatchError(f"unknown grouping {by!r}").saying(field="分组")
        window = service.read(lambda rt: queries.window(rt, start, end))
        data = service.read(lambda rt: queries.sla(rt, by=by, period=window, identity=who, percentiles=False))
        if rules is not None:
            from dispatch.service.whatif import what_if

            try:
                result = service.read(lambda rt: what_if(rt, None, text=rules, period=window, by=by, identity=who))
            except ReferenceDataError as error:
                problem, where = refusal(request, error), error.path or None
    except Forbidden:
        return _render(request, "message.html", status=403, message="统计分析和数据导出仅限分析员和管理员使用")
    except DispatchError as error:
        return _render(request, "message.html", status=400, message=refusal(request, error))
    ref = service.runtime.reference
    for row in (*data["rows"], *data.get("ranking", [])):
        row["label"] = _name(ref, by, row[by])
    if result is not None:
        result["shown"] = _moved(result["rows"], by, ref)
        for c in result["changed_tickets"][:WHAT_IF_SHOWN]:
            c["deadline_name"] = _deadline_name(c["deadline"])
            c["department_name"] = _name(ref, "department", c["department"]) if c["department"] else ""
            c["verdicts"] = (_VERDICTS.get(c["verdict"], "—"), _VERDICTS.get(c["verdict_what_if"], "—"))
        for r in result["routing"]:
            r["lead_name"], r["lead_what_if_name"] = (_name(ref, "department", r["lead"]),
                                                      _name(ref, "department", r["lead_what_if"]))
    if rules is None:
        from dispatch.service.whatif import export_rules

        import yaml

        rules = yaml.safe_dump(export_rules(ref), allow_unicode=True, sort_keys=False)
    return _render(request, "analysis.html", status=200 if problem is None else 400, sla=data, by=by,
                   dimensions=DIMENSIONS, exports=EXPORT_NAMES, start=start or "", end=end or "", pct=_pct,
                   num=_num, score=_score, rules=rules, what_if=result, problem=problem, where=where,
                   shown=WHAT_IF_SHOWN)


# the figures a what-if shows, in Chinese, with how each is written
FIGURES = {
    "dispatched": ("派单", "n"), "answered": ("已答复", "n"), "acknowledged": ("已报到", "n"), "rejected": ("退单", "n"),
    "ack_on_time": ("按时报到", "n"), "ack_late": ("超时报到", "n"), "ack_pending": ("待报到", "n"),
    "ack_on_time_rate": ("报到及时率", "%"), "rejection_rate": ("退单率", "%"), "dispatch_accuracy": ("派单准确率", "%"),
    "mtta_minutes_mean": ("平均响应（分钟）", "m"), "mtta_minutes_p50": ("响应中位数（分钟）", "m"),
    "mtta_minutes_p90": ("响应90分位（分钟）", "m"), "lead_calls": ("主办派单", "n"), "handled": ("已处置", "n"),
    "handle_on_time": ("按时处置", "n"), "handle_late": ("超时处置", "n"), "handle_pending": ("待处置", "n"),
    "handle_on_time_rate": ("处置及时率", "%"), "mtth_minutes_mean": ("平均处置（分钟）", "m"),
    "mtth_minutes_p50": ("处置中位数（分钟）", "m"), "mtth_minutes_p90": ("处置90分位（分钟）", "m"),
    "closed_tickets": ("已结案", "n"), "close_on_time": ("按时结案", "n"), "close_late": ("超时结案", "n"),
    "close_on_time_rate": ("按时结案率", "%"), "accept_on_time": ("按时受理", "n"), "accept_late": ("超时受理", "n"),
    "accept_on_time_rate": ("按时立案率", "%"), "dispatch_on_time": ("按时派遣", "n"), "dispatch_late": ("超时派遣", "n"),
    "dispatch_on_time_rate": ("按时派遣率", "%"), "evaluated": ("已评价", "n"), "satisfied": ("满意", "n"),
    "basically_satisfied": ("基本满意", "n"), "unsatisfied": ("不满意", "n"), "contacted": ("已联系", "n"),
    "resolved": ("已解决", "n"), "satisfaction_rate": ("满意率", "%"), "response_rate": ("联系率", "%"),
    "resolution_rate": ("解决率", "%"), "reopen_rate": ("返工率", "%"), "reopened": ("返工", "n"),
    "tickets_evaluated": ("评价工单", "n"), "composite": ("综合得分", "s"),
}


def _moved(rows: list[dict[str, Any]], by: str, ref: Any) -> list[dict[str, Any]]:
    """The figures a what-if moved, named and written for the page."""
    from dispatch.service.whatif import differing

    out = []
    for r in differing(rows):
        if r["figure"] not in FIGURES:
            continue
        name, kind = FIGURES[r["figure"]]
        write = {"%": _pct, "m": _num, "s": _score}.get(kind, lambda v: "—" if v is None else str(v))
        delta = r["delta"]
        if delta is None:
            shown = "—"
        elif kind == "%":
            shown = f"{delta * 100:+.1f} 个百分点"
        elif kind == "s":
            shown = f"{delta * 100:+.1f}"
        elif kind == "m":
            shown = f"{delta:+.1f}"
        else:
            shown = f"{delta:+d}"
        out.append({"unit": _name(ref, by, r["unit"]), "figure": name, "actual": write(r["actual"]),
                    "what_if": write(r["what_if"]), "delta": shown})
    return out


_DEADLINES = {"ack": "报到", "handle": "处置", "accept": "受理", "dispatch": "派遣", "close": "结案"}
_VERDICTS = {"on_time": "按时", "late": "超时", "overdue": "超时未办", "pending": "未到期", "not_owed": "无需", None: "—"}


def _deadline_name(deadline: str) -> str:
    return _DEADLINES.get(deadline.split(":", 1)[0], "时限")



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
async def analysis_export(request: Request) -> Response:
    """A download: ``kind`` (tickets, events, sla), ``from``/``to``, ``format`` (csv, parquet)."""
    return await request.app.state.service.long_job(lambda: _export(request))  # type: ignore[no-any-return]


def _export(request: Request) -> Response:
    import os
    import tempfile

    from starlette.background import BackgroundTask

    from dispatch.service.replay.export import EXPORTS, export_rows, write_csv, write_parquet

    who = session.identity(request)
    from dispatch.service.access import may_view

    may_view(who, "export")
    p = request.query_params
    kind, fmt = p.get("kind") or "tickets", p.get("format") or "csv"
    if kind not in EXPORTS or fmt not in ("csv", "parquet"):
        raise DispatchError(f"export one of {', '.join(EXPORTS)} as csv or parquet")
    service = request.app.state.service
    rt = service.runtime
    start, end = service.read(lambda r: queries.bounds(r, *_period_of(request)))
    from dispatch.projections import for_reading

    for_reading(rt)
    rows = export_rows(kind, rt.engine, rt.reference, start=start, end=end, as_of=rt.clock.now(), app=rt.app)
    from zoneinfo import ZoneInfo

    stamp = rt.clock.now().astimezone(ZoneInfo(rt.reference.timezone)).strftime("%Y%m%d-%H%M")
    name = f"dispatch-{kind}-{stamp}.{fmt}"
    user_tables.audit(rt.engine, rt.clock.now(), who.name, "export", "ok",
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

