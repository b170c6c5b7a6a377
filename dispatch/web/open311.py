"""Open311 GeoReport v2 at ``/open311/v2/`` (http://wiki.open311.org/GeoReport_v2), in XML
and JSON: what a city's 12345 platform, a resident app or a third-party reporting service
speaks. A translation of the same service layer as the native API:

- services = the categories (priority and channel as attributes);
- ``POST requests`` = a report (``api_key``: an API token of a user allowed to report; a position
  in ``lat``/``long`` — WGS-84, or GCJ-02 with the ``crs=GCJ02`` extension — or ``address_id``
  = a grid id, or only ``address_string``: the report then waits to be placed on a grid by the
  grid centre, 待定位, and the answer is a ``token``); ``service_request_id`` is the ticket id (its
  case number is accepted wherever one is asked for); in Kafka mode the answer may be a ``token``
  too, to look up with ``GET tokens/{id}``;
- ``GET requests`` / ``requests/{id}`` = tickets the key's user may see (page/page_size
  extension; the last 90 days and up to 1,000 by default); ``status`` open/closed, ``status_notes``
  the lifecycle step in Chinese, ``agency_responsible`` the lead department, ``expected_datetime``
  its handling deadline. Without a key only when the server runs with ``--open311-public-reads``,
  and then only the public fields (``public_row``).

Errors are the spec's ``[{"code", "description"}]`` with the HTTP status as code: 403 for a
missing or bad ``api_key``, 404 for an unknown ``service_code``. docs/open311.md is the
conformance table, point by point.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo
from xml.etree import ElementTree as ET

import orjson
from fastapi import APIRouter, HTTPException, Request
from starlette.responses import Response

from dispatch.adapters import user_tables
from dispatch.domain import commands as c
from dispatch.domain.errors import DispatchError, TicketNotFound, Unauthenticated
from dispatch.domain.identity import Identity
from dispatch.domain.lifecycle import LIFECYCLE, TERMINAL
from dispatch.projections.records import jsonable
from dispatch.service import queries
from dispatch.service.actions import hold_unplaced, prepare
from dispatch.web.problems import status_of

__all__ = ["router"]

router = APIRouter(prefix="/open311/v2", tags=["open311"])
SPEC = "http://wiki.open311.org/GeoReport_v2"
MAX_PAGE = 1000
DEFAULT_DAYS = 90
JSON = "application/json; charset=utf-8"
_LABEL = {step.to: step.label for step in LIFECYCLE.values() if getattr(step, "to", None)}


class Open311Error(Exception):
    def __init__(self, status: int, description: str):
        self.status, self.description = status, " ".join(description.split())


def _fmt(fmt: str) -> str:
    if fmt not in ("json", "xml"):
        raise Open311Error(404, "give the response format as .json or .xml")
    return fmt


def _xml(root: str, item: str, rows: list[dict[str, Any]]) -> bytes:
    top = ET.Element(root)
    for row in rows:
        _element(top, item, row)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8", xml_declaration=False)


def _element(parent: ET.Element, name: str, value: Any) -> None:
    node = ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, inner in value.items():
            _element(node, key, inner)
    elif isinstance(value, list):
        singular = {"attributes": "attribute", "values": "value", "keywords": "keyword", "formats": "format",
                    "endpoints": "endpoint"}.get(name, "item")
        for inner in value:
            _element(node, singular, inner)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif isinstance(value, (str, int, float)):
        node.text = str(value)
    elif value is not None:
        node.text = str(jsonable(value))


def _answer(fmt: str, root: str, item: str, rows: list[dict[str, Any]], status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, rows), status_code=status, media_type="text/xml; charset=utf-8")
    return Response(orjson.dumps(rows, default=jsonable), status_code=status, media_type=JSON)


def _document(fmt: str, root: str, doc: dict[str, Any]) -> Response:
    """One document (not a list): XML under ``root``, or a JSON object."""
    if fmt == "xml":
        top = ET.Element(root)
        for key, value in doc.items():
            _element(top, key, value)
        return Response(b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(top, encoding="utf-8"),
                        media_type="text/xml; charset=utf-8")
    return Response(orjson.dumps(doc), media_type=JSON)


def _error_response(fmt: str, status: int, description: str) -> Response:
    return _answer(fmt if fmt in ("json", "xml") else "json", "errors", "error",
                   [{"code": status, "description": description}], status)


def _guarded(request: Request, fmt: str, body: Any) -> Response:
    try:
        return body()
    except Open311Error as error:
        return _error_response(fmt, error.status, error.description)
    except Unauthenticated as error:  # the spec: 403 for a missing or bad api_key
        request.app.state.service.refused(request, error)
        return _error_response(fmt, 403, str(error))
    except DispatchError as error:
        request.app.state.service.refused(request, error)
        status = status_of(error)
        return _error_response(fmt, 400 if status == 422 else status, str(error))  # the spec's general error
    except HTTPException as error:  # e.g. too many writes (429): still in the spec's shape
        response = _error_response(fmt, error.status_code, str(error.detail))
        response.headers.update(error.headers or {})
        return response


def _public(request: Request) -> bool:
    return bool(getattr(request.app.state, "open311_public_reads", False))


def _reader(request: Request, api_key: str | None) -> Identity | None:
    """Who reads: the key's user, or nobody (None) when reads are public and no key is given."""
    return None if _public(request) and not api_key else _identity(request, api_key)


def _identity(request: Request, api_key: str | None) -> Identity:
    service = request.app.state.service
    if not api_key:
        raise Unauthenticated("api_key is required: an API token issued to your system")
    client = request.client.host if request.client else "?"
    identity = user_tables.check_token(service.runtime.engine, service.runtime.clock.now(), api_key,
                                 where=f"from {client} open311 {request.method} {request.url.path}")
    request.state.identity = identity
    return identity


def _stamp(value: Any, tz: Any) -> str | None:
    if value is None:
        return None
    return (value if isinstance(value, datetime) else datetime.fromisoformat(str(value))).astimezone(tz).isoformat()


# -- discovery and services --------------------------------------------------------------------------

@router.get("/discovery.{fmt}", summary="Open311 service discovery")
def discovery(request: Request, fmt: str) -> Response:
    def body() -> Response:
        f = _fmt(fmt)
        base = str(request.base_url).rstrip("/") + "/open311/v2/"
        doc = {"changeset": "2026-11-26T00:00:00+08:00", "contact": "the grid centre (网格化管理中心)",
               "key_service": "ask the grid centre's administrator for an API key (dispatch users token)",
               "endpoints": [{"specification": SPEC, "url": base, "changeset": "2026-11-26T00:00:00+08:00",
                              "type": "production", "formats": ["text/xml", "application/json"]}]}
        return _document(f, "discovery", doc)

    return _guarded(request, fmt, body)


def _services(runtime: Any) -> list[dict[str, Any]]:
    ref = runtime.reference
    return [{"service_code": k.id, "service_name": k.name,
             "description": f"{k.name}: 主办 {ref.departments[k.lead_department].name}",
             "metadata": True, "type": "realtime", "keywords": [k.kind], "group": k.kind}
            for k in ref.categories.values()]


@router.get("/services.{fmt}", summary="The services (categories) one can report")
def services(request: Request, fmt: str) -> Response:
    def body() -> Response:
        rows = _services(request.app.state.service.runtime)
        for row in rows:
            row["keywords"] = ",".join(row["keywords"])  # the spec's comma-separated list
        return _answer(_fmt(fmt), "services", "service", rows)

    return _guarded(request, fmt, body)


@router.get("/services/{service_code}.{fmt}", summary="A service's definition: its attributes")
def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    def body() -> Response:
        f = _fmt(fmt)
        ref = request.app.state.service.runtime.reference
        if service_code not in ref.categories:
            raise Open311Error(404, f"no service {service_code}")
        definition = {"service_code": service_code, "attributes": [
            {"variable": True, "code": "priority", "datatype": "singlevaluelist", "required": False,
             "datatype_description": "紧急程度 (default normal)", "order": 1, "description": "priority",
             "values": [{"key": p.id, "name": p.name} for p in ref.priorities.values()]},
            {"variable": True, "code": "channel", "datatype": "singlevaluelist", "required": False,
             "datatype_description": "来源渠道 (default third_party)", "order": 2, "description": "channel",
             "values": [{"key": ch, "name": ch} for ch in c.CHANNELS]},
        ]}
        return _document(f, "service_definition", definition)

    return _guarded(request, fmt, body)


# -- requests ----------------------------------------------------------------------------------------

_ATTRIBUTE = re.compile(r"^attribute\[(\w+)\]$")


def _number(form: dict[str, str], key: str) -> float | None:
    raw = form.get(key)
    if raw in (None, ""):
        return None
    try:
        return float(raw)  # type: ignore[arg-type]
    except ValueError:
        raise Open311Error(400, f"{key}: a number, e.g. 30.78") from None


@router.post("/requests.{fmt}", summary="Report (POST Service Request), form-encoded")
async def post_request(request: Request, fmt: str) -> Response:
    raw = await request.body()

    def body() -> Response:
        f = _fmt(fmt)
        try:
            parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=100)
        except (UnicodeDecodeError, ValueError):
            raise Open311Error(400, "send the fields form-encoded (application/x-www-form-urlencoded), UTF-8")
        form = {k: v[-1] for k, v in parsed.items()}
        who = _identity(request, form.get("api_key"))
        service = request.app.state.service
        attributes = {m.group(1): v for k, v in form.items() if (m := _ATTRIBUTE.match(k))}
        if not form.get("service_code"):
            raise Open311Error(400, "service_code is required")
        if form["service_code"] not in service.runtime.reference.categories:
            raise Open311Error(404, f"no service {form['service_code']}: GET services.{f} lists them")
        fields: dict[str, Any] = {"category": form["service_code"],
                                  "priority": attributes.get("priority") or "normal",
                                  "channel": attributes.get("channel") or "third_party",
                                  "description": form.get("description") or ""}
        lat, lon = _number(form, "lat"), _number(form, "long")
        if (lat is None) != (lon is None):
            raise Open311Error(400, "give lat and long together")
        if lat is not None and lon is not None:
            fields["position"] = {"lat": lat, "lon": lon, "crs": (form.get("crs") or "WGS84").upper()}
            if fields["position"]["crs"] not in ("WGS84", "GCJ02"):
                raise Open311Error(400, "crs: WGS84 (GPS) or GCJ02 (Chinese web maps)")
        elif form.get("address_id"):
            fields["grid"] = form["address_id"]
        elif not form.get("address_string", "").strip():
            raise Open311Error(400, "give a location: lat and long, address_id (a grid id) or address_string")
        name = " ".join(x for x in (form.get("last_name"), form.get("first_name")) if x)
        reporter = {k: v for k, v in (("name", name), ("phone", form.get("phone")), ("email", form.get("email")))
                    if v}
        if reporter:
            fields["reporter"] = reporter  # sealed by the engine; shown in full only to call-back roles
        if form.get("address_string"):
            fields["location"] = form["address_string"][:4000]
        if form.get("media_url"):
            fields["media"] = [form["media_url"]]
        if "grid" not in fields and "position" not in fields:  # only words: the grid centre places it (待定位)
            wait = service.writes.take(who.name)
            if wait:
                raise HTTPException(429, f"too many writes: try again in {wait:.0f} s",
                                    headers={"Retry-After": str(int(wait) + 1)})
            token = service.read(lambda runtime: hold_unplaced(runtime, who, **fields))
            service.live.announce(token)  # the consoles' 待定位
            row = {"token": token, "service_notice": "待定位: the grid centre places the report on a grid; "
                                                     "GET tokens/{token} then gives its request id",
                   "account_id": None}
            return _answer(f, "service_requests", "request", [row], 201)
        result = service.submit(lambda runtime: prepare(runtime, c.Report, who, **fields), c.Report, None)
        if result.get("outcome") == "pending":
            row = {"token": result["command_id"], "service_notice": "accepted; look the request id up by the token",
                   "account_id": None}
        else:
            row = {"service_request_id": result["ticket_id"], "service_notice": "", "account_id": None}
        return _answer(f, "service_requests", "request", [row], 201)

    return await request.app.state.service.form(lambda: _guarded(request, fmt, body))  # type: ignore[no-any-return]


@router.get("/tokens/{token}.{fmt}", summary="The request id of a report answered with a token")
def token(request: Request, token: str, fmt: str, api_key: str | None = None) -> Response:
    """A token is given for a report waiting to be placed on a grid (待定位) and, in Kafka mode, for
    one the engine has not applied yet. Its request id is empty until there is a ticket."""
    def body() -> Response:
        from dispatch.service.actions import token_of_unplaced

        f = _fmt(fmt)
        who = _reader(request, api_key)
        service = request.app.state.service
        known, ticket_id = service.read(lambda runtime: token_of_unplaced(runtime, who, token))
        if known:
            return _answer(f, "service_requests", "request", [{"service_request_id": ticket_id, "token": token}])
        if service.submitter is None or who is None:
            raise Open311Error(404, f"no token {token}")
        try:
            result = service.outcome(token, who)
        except DispatchError as refused:
            raise Open311Error(404 if status_of(refused) == 404 else status_of(refused), str(refused)) from None
        row = {"service_request_id": result.get("ticket_id"), "token": token}
        return _answer(f, "service_requests", "request", [row])

    return _guarded(request, fmt, body)


def _request_row(runtime: Any, row: dict[str, Any]) -> dict[str, Any]:
    ref = runtime.reference
    tz = ZoneInfo(ref.timezone)
    place = ref.place(row["grid"])
    lead = row.get("lead")
    return {
        "service_request_id": str(row["ticket_id"]),
        "status": "closed" if row["status"] in TERMINAL else "open",
        "status_notes": _LABEL.get(row["status"], row["status"]),
        "service_name": ref.categories[row["category"]].name if row["category"] in ref.categories else row["category"],
        "service_code": row["category"],
        "description": row.get("description") or "",
        "agency_responsible": ref.departments[lead].name if lead in ref.departments else None,
        "service_notice": None,
        "requested_datetime": _stamp(row["reported_at"], tz),
        "updated_datetime": _stamp(row["last_at"], tz),
        "expected_datetime": _stamp(row.get("handle_due"), tz),
        "address": f"{place.grid.name}, {place.community.name}, {place.street.name}, {place.district.name}",
        "address_id": row["grid"],
        "zipcode": None,
        "lat": row.get("lat"),
        "long": row.get("lon"),
        "media_url": None,
    }


def public_row(row: dict[str, Any]) -> dict[str, Any]:
    """What anyone may read (``--open311-public-reads``): no description beyond the category, no
    media, the position rounded to 0.001° (about 100 m); the rows hold no personal data anyway."""
    rounded = {k: (None if row[k] is None else round(float(row[k]), 3)) for k in ("lat", "long")}
    return {**row, "description": row["service_name"], "media_url": None, **rounded}


def _ticket_ids(runtime: Any, asked: list[str]) -> list[str]:
    """Requests named by ticket id or case number (工单编号); a name that is neither matches nothing."""
    found = []
    for value in asked:
        try:
            found.append(str(queries.resolve_ticket(runtime, value)))
        except DispatchError:
            found.append(value)
    return found


def _whole(value: str, name: str) -> int:
    if not value.isdigit() or len(value) > 7:
        raise Open311Error(400, f"{name}: a whole number")
    return int(value)


def _when(runtime: Any, value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return queries.business_time(runtime, value, name, instant=False)
    except DispatchError as refused:  # not a time, or outside the window of business times
        raise Open311Error(400, f"{name}: an ISO-8601 time from 2000 on, e.g. 2026-11-20T00:00:00+08:00 "
                                f"({refused})") from None


@router.get("/requests.{fmt}", summary="Requests (GET Service Requests), those the key's user may see")
def get_requests(request: Request, fmt: str, api_key: str | None = None, service_request_id: str | None = None,
                 service_code: str | None = None, start_date: str | None = None, end_date: str | None = None,
                 status: str | None = None, page: str = "1", page_size: str = str(MAX_PAGE)) -> Response:
    def body() -> Response:
        f = _fmt(fmt)
        number, size = _whole(page, "page"), _whole(page_size, "page_size")
        who = _reader(request, api_key)
        runtime = request.app.state.service.runtime
        if not 1 <= size <= MAX_PAGE or not 1 <= number <= 1_000_000:
            raise Open311Error(400, f"page from 1, page_size from 1 to {MAX_PAGE}")
        if service_request_id:  # the spec: a list of ids overrides every other filter
            ids = _ticket_ids(runtime, [i.strip() for i in service_request_id.split(",") if i.strip()][:MAX_PAGE])
            rows = queries.tickets(runtime, identity=who, ids=ids, limit=size, offset=(number - 1) * size)
        else:
            statuses = {x.strip() for x in (status or "").split(",") if x.strip()}
            if statuses - {"open", "closed"}:
                raise Open311Error(400, "status: open or closed (or both, comma-separated)")
            closed = None if len(statuses) != 1 else statuses == {"closed"}
            codes = [x.strip() for x in (service_code or "").split(",") if x.strip()]
            unknown = [x for x in codes if x not in runtime.reference.categories]
            if unknown:
                raise Open311Error(404, f"no service {', '.join(unknown)}: GET services.{f} lists them")
            start, end = _when(runtime, start_date, "start_date"), _when(runtime, end_date, "end_date")
            if start is None:  # the spec's default: the 90 days before the end (or now)
                start = (end or runtime.clock.now()) - timedelta(days=DEFAULT_DAYS)
            rows = queries.tickets(runtime, identity=who, categories=codes or None, closed=closed, reported_from=start,
                                   reported_to=end, limit=size, offset=(number - 1) * size)
        answer = [_request_row(runtime, r) for r in rows]
        return _answer(f, "service_requests", "request", answer if who is not None else [public_row(r) for r in answer])

    return _guarded(request, fmt, body)


@router.get("/requests/{request_id}.{fmt}", summary="One request (by ticket id or outside reference)")
def get_request(request: Request, request_id: str, fmt: str, api_key: str | None = None) -> Response:
    def body() -> Response:
        f = _fmt(fmt)
        who = _reader(request, api_key)
        runtime = request.app.state.service.runtime
        shown = queries.show(runtime, request_id, who)  # TicketNotFound (HiddenTicket alike)
        rows = queries.tickets(runtime, identity=who, ids=[str(shown["ticket_id"])], limit=1)
        if not rows:
            raise TicketNotFound(request_id)
        row = _request_row(runtime, rows[0])
        if who is None:
            return _answer(f, "service_requests", "request", [public_row(row)])
        row["media_url"] = next((m for m in shown["media"] if m.startswith("http")), None)
        return _answer(f, "service_requests", "request", [row])

    return _guarded(request, fmt, body)
