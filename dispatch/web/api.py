"""The native REST API under ``/api/``: every lifecycle step and every read, as the signed-in
identity. Routes translate HTTP to the service layer (``dispatch.service.actions``, ``dispatch.service.queries``,
``dispatch.service.accounts``) and back; they hold no rule."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request
import orjson
from fastapi.responses import Response
from fastapi.security import HTTPBearer
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, create_model

from dispatch.domain import commands as c
from dispatch.domain.errors import InvalidCommand
from dispatch.domain.identity import Identity
from dispatch.projections.records import jsonable
from dispatch.service import queries
from dispatch.service.access import may_view
from dispatch.service.actions import prepare
from dispatch.web.state import WebService

__all__ = ["router"]

router = APIRouter(prefix="/api")


async def _service(request: Request) -> WebService:
    """(``async``: FastAPI runs a plain ``def`` dependency in a thread of its own.)"""
    service: WebService = request.app.state.service
    return service


_BEARER = HTTPBearer(auto_error=False, description="An API token (dispatch users token) or a sign-in token "
                                                   "(POST /api/session)")


def _identity(request: Request, _: Annotated[Any, Depends(_BEARER)] = None) -> Identity:
    identity = request.app.state.service.identify(request)
    request.state.identity = identity
    return identity


Service = Annotated[WebService, Depends(_service)]
Who = Annotated[Identity, Depends(_identity)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200,
                                              description="Repeat a write with the same key: it is applied once, "
                                                          "and the repeat answers with the first outcome.")]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data, default=jsonable, option=orjson.OPT_NON_STR_KEYS), status_code=status,
                    headers=headers, media_type="application/json")


# -- signing in ----------------------------------------------------------------------------------------

class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=100)]
    password: Annotated[str, Field(min_length=1, max_length=1000)]


@router.post("/session", tags=["identity"], summary="Sign in with a password; answers a token for 8 hours")
def sign_in(request: Request, body: SignIn, service: Service) -> Response:
    token = service.sign_in(request, body.name, body.password)
    return _json({"token": token.text, "token_id": token.id, "expires_at": token.expires_at}, 201)


@router.get("/me", tags=["identity"], summary="Who the token stands for")
def me(who: Who) -> Response:
    return _json({"name": who.name, "role": who.role, "scope_kind": who.scope_kind, "scope": list(who.scope)})


# -- commands ------------------------------------------------------------------------------------------

_STRICT = ConfigDict(extra="forbid", strict=True)
_ENVELOPE = {"type", "actor", "ticket_id", "occurred_at", "command_id"}
_COMMON: dict[str, Any] = {
    "occurred_at": (c.BusinessTime | None, Field(None, strict=False, description=(
        "Business time, ISO-8601 with offset: admins only (a backfill); everyone else's step takes the "
        "time the server received it."))),
    "command_id": (Annotated[str, Field(min_length=1, max_length=100)] | None,
                   Field(None, description="Same as the Idempotency-Key header.")),
}


def _body_model(command: type, name: str, optional: tuple[str, ...] = (),
                extra: dict[str, Any] | None = None) -> type[BaseModel]:
    fields: dict[str, Any] = dict(_COMMON) | (extra or {})
    for key, info in command.model_fields.items():  # type: ignore[attr-defined]
        if key in _ENVELOPE:
            continue
        if key in optional:
            fields[key] = (info.annotation | None, Field(None, description=info.description))
        elif info.annotation is UUID:  # JSON text, as on the wire (strict would want a UUID object)
            fields[key] = (UUID, Field(strict=False, description=info.description))
        elif info.annotation == c.TicketRef:  # a ticket id or a case number, as JSON text
            fields[key] = (Annotated[str, Field(max_length=64, description="a ticket id or its case number")], ...)
        else:
            fields[key] = (info.annotation, info)
    model: type[BaseModel] = create_model(name, __config__=_STRICT, **fields)
    return model


ReportBody = _body_model(c.Report, "ReportBody", optional=("channel", "grid"))


class Applied(BaseModel):
    ticket_id: str
    event: str
    version: int
    occurred_at: datetime
    received_at: datetime | None = None
    command_id: str | None = None
    outcome: Literal["applied", "replayed"] = "applied"


class Pending(BaseModel):
    command_id: str
    outcome: Literal["pending"] = "pending"
    status_url: str


def _command_id(who: Identity, header: str | None, body: BaseModel) -> str | None:
    """An idempotency key, scoped to the identity (two users' keys never meet)."""
    key = header or getattr(body, "command_id", None)
    if not key:
        return None
    return "api-" + hashlib.sha256(f"{who.name}\x00{key}".encode()).hexdigest()[:40]


async def _submit(service: WebService, who: Identity, kind: type, body: BaseModel, key: str | None,
                  status: int = 200, **fields: Any) -> Response:
    """(The routes that write are ``async``: the command is built in a thread, and its recording is
    awaited without holding one — ``WebService.submit_waiting``.)"""
    values = body.model_dump(exclude={"occurred_at", "command_id"}, exclude_none=True)
    command_id = _command_id(who, key, body)
    at = getattr(body, "occurred_at", None)
    result = await service.submit_waiting(lambda runtime: prepare(runtime, kind, who, at=at, command_id=command_id,
                                                                  **values, **fields), kind)
    if result.get("outcome") == "pending":
        return _json(result, 202, {"Location": result["status_url"]})
    return _json(result, status if result.get("outcome") == "applied" else 200)


@router.post("/tickets", tags=["commands"], status_code=201, response_model=Applied,
             responses={202: {"model": Pending}}, summary="上报: report an incident")
async def report(who: Who, service: Service, body: ReportBody = Body(...),  # type: ignore[valid-type]
                 key: IdempotencyKey = None) -> Response:
    channel = {"hotline": "hotline", "dispatcher": "visit"}.get(who.role, "patrol")
    extra = {} if getattr(body, "channel", None) else {"channel": channel}
    if getattr(body, "grid", None) is None and getattr(body, "position", None) is None:
        raise InvalidCommand("grid: give the grid, or the position to place the report in its grid")
    return await _submit(service, who, c.Report, body, key, 201, **extra)


TicketRef = Annotated[str, Path(max_length=200, description="A ticket id, its case number (工单编号), a unique "
                                                             "id prefix (or, for reads, its outside reference)")]

_STEPS: list[tuple[str, type, str, tuple[str, ...]]] = [
    ("accept", c.Accept, "受理: the grid centre accepts the report", ()),
    ("first-contact", c.FirstContact, "首问接待: close at first contact", ()),
    ("dispatch", c.Dispatch, "吹哨: dispatch to a lead department and cooperating ones", ()),
    ("acknowledge", c.Acknowledge, "报到: a department reports in on its call", ("department",)),
    ("reject", c.Reject, "退单: not this department's responsibility", ("department",)),
    ("handle", c.Handle, "处置: the lead department records the handling", ("department",)),
    ("feedback", c.Feedback, "反馈: tell the reporter the result", ()),
    ("evaluate", c.Evaluate, "评价: the reporter's verdict (回访)", ()),
    ("reopen", c.Reopen, "返工: send an evaluated ticket back", ()),
    ("escalate", c.Escalate, "督办: one rung up the ladder", ()),
    ("duplicate", c.MarkDuplicate, "重复件: mark as repeating an earlier ticket", ()),
    ("cancel", c.Cancel, "Void a ticket, with a reason", ()),
    ("close", c.Close, "办结: close an evaluated ticket (after an unsatisfied evaluation: with an override)", ()),
    ("extension", c.RequestExtension, "延期申请: the lead department asks for more time", ("department",)),
    ("extension-decision", c.DecideExtension, "The centre grants or refuses an extension", ()),
    ("hold", c.Hold, "挂起: stop the ticket's clocks", ()),
    ("resume", c.Resume, "恢复: the clocks run again, every open deadline moved by the time held", ()),
]


def _step_route(path: str, kind: type, summary: str, optional: tuple[str, ...]) -> None:
    model = _body_model(kind, "".join(p.title() for p in path.split("-")) + "Body", optional)

    async def step(ticket: TicketRef, who: Who, service: Service, body: model = Body(...),  # type: ignore[valid-type]
                   key: IdempotencyKey = None) -> Response:
        fields: dict[str, Any] = {"ticket_id": ticket}
        if "department" in optional and getattr(body, "department", None) is None and who.department:
            fields["department"] = who.department  # a desk acts for its own department
        return await _submit(service, who, kind, body, key, **fields)

    step.__name__ = path.replace("-", "_")
    step.__annotations__["body"] = model  # a local class: not a name the module could resolve
    router.post(f"/tickets/{{ticket}}/{path}", tags=["commands"], response_model=Applied,
                responses={202: {"model": Pending}}, summary=summary)(step)


for _path, _kind, _summary, _optional in _STEPS:
    _step_route(_path, _kind, _summary, _optional)


class Erase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(min_length=5, max_length=30)] | None = None
    email: Annotated[str, Field(min_length=3, max_length=200)] | None = None


@router.post("/reporters/erase", tags=["identity"],
             summary="Erase a reporter's personal data on request (admins): unreadable everywhere")
def erase_reporter(body: Erase, who: Who, service: Service) -> Response:
    from dispatch.service import accounts

    erased = service.read(lambda rt: accounts.erase_reporter(rt, who, phone=body.phone, email=body.email))
    return _json({"erased_keys": erased})


@router.get("/commands/{command_id}", tags=["commands"], summary="What became of a command (Kafka mode)")
def command_outcome(command_id: Annotated[str, Path(max_length=100)], who: Who, service: Service) -> Response:
    return _json(service.outcome(command_id, who))


# -- reads ---------------------------------------------------------------------------------------------

Name = Annotated[str | None, Query(max_length=200)]
Time = Annotated[str | None, Query(max_length=40, description="ISO-8601; without an offset, local time")]


@router.get("/tickets", tags=["tickets"], summary="Tickets newest first, those you may see")
def list_tickets(who: Who, service: Service, status: Name = None, street: Name = None, community: Name = None,
                 grid: Name = None, category: Name = None, department: Name = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> Response:
    rows = service.read(lambda rt: queries.tickets(rt, identity=who, status=status, street=street,
                                                   community=community, grid=grid, category=category,
                                                   department=department, limit=limit + 1, offset=offset))
    more = len(rows) > limit
    return _json({"tickets": rows[:limit], "limit": limit, "offset": offset,
                  "next_offset": offset + limit if more else None})


@router.get("/tickets/{ticket}", tags=["tickets"], summary="A ticket's current state (by id or outside reference)")
def show_ticket(ticket: TicketRef, who: Who, service: Service) -> Response:
    return _json(service.read(lambda rt: queries.show(rt, ticket, who)))


@router.get("/tickets/{ticket}/history", tags=["tickets"], summary="Every event of a ticket")
def ticket_history(ticket: TicketRef, who: Who, service: Service) -> Response:
    return _json({"ticket": ticket, "events": service.read(lambda rt: queries.history(rt, ticket, who))})


@router.get("/tickets/{ticket}/timeline", tags=["tickets"], summary="Every event with the SLA clock after it")
def ticket_timeline(ticket: TicketRef, who: Who, service: Service) -> Response:
    return _json(service.read(lambda rt: queries.timeline(rt, ticket, who)))


@router.get("/dashboard", tags=["figures"], summary="A street's or a community's dashboard for a period")
def dashboard(who: Who, service: Service, street: Name = None, community: Name = None, start: Time = None,
              end: Time = None, as_of: Time = None) -> Response:
    return _json(service.read(lambda rt: queries.dashboard(
        rt, street=street, community=community, period=queries.window(rt, start, end, as_of), identity=who)))


@router.get("/sla", tags=["figures"], summary="SLA statistics grouped by a dimension")
def sla(who: Who, service: Service,
        by: Annotated[Literal["department", "category", "community", "street"], Query()] = "department",
        per: Annotated[Literal["day", "week", "month"] | None, Query()] = None,
        street: Name = None, community: Name = None, start: Time = None, end: Time = None,
        as_of: Time = None) -> Response:
    return _json(service.read(lambda rt: queries.sla(rt, by=by, per=per, period=queries.window(rt, start, end, as_of),
                                                     street=street, community=community, identity=who)))


@router.get("/inbox", tags=["work lists"], summary="A department's open calls (待办), soonest due first")
def inbox(who: Who, service: Service, department: Name = None) -> Response:
    return _json({"calls": service.read(lambda rt: queries.inbox(rt, department, identity=who))})


@router.get("/overdue", tags=["work lists"], summary="What is late now, longest overdue first")
def overdue(who: Who, service: Service, street: Name = None, community: Name = None,
            department: Name = None) -> Response:
    return _json({"overdue": service.read(lambda rt: queries.overdue(rt, street=street, community=community,
                                                                      department=department, identity=who))})


def _reference(who: Identity) -> None:
    may_view(who, "reference")


@router.get("/reference/places", tags=["reference"], summary="Districts, streets, communities and grids")
def places(who: Who, service: Service, street: Name = None, community: Name = None) -> Response:
    _reference(who)
    return _json({"places": service.read(lambda rt: queries.places(rt, street=street, community=community))})


@router.get("/reference/boundaries", tags=["reference"],
            summary="Grid boundaries as GeoJSON (WGS-84), for a map; optionally of one street")
def boundaries(who: Who, service: Service, street: Name = None) -> Response:
    _reference(who)
    return _json(service.read(lambda rt: queries.boundaries(rt, street=street)))


@router.get("/reference/departments", tags=["reference"], summary="Departments and what they lead")
def departments(who: Who, service: Service) -> Response:
    _reference(who)
    return _json({"departments": service.read(queries.departments)})


@router.get("/reference/categories", tags=["reference"], summary="Categories with routing, and priorities")
def categories(who: Who, service: Service) -> Response:
    _reference(who)
    return _json(service.read(queries.categories))


@router.get("/reference/sla-rules", tags=["reference"], summary="SLA rules per category and priority")
def sla_rules(who: Who, service: Service) -> Response:
    _reference(who)
    return _json({"rules": service.read(queries.sla_rules)})


# -- notifications: who hears what (admins) -------------------------------------------------------------

class ChannelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Annotated[str, Field(min_length=3, max_length=300, description="department:<id or name>, user:<name>, "
                                "or community:/street:/district:<id or name>")]
    kind: Literal["email", "wecom", "dingtalk", "webhook"]
    target: Annotated[str, Field(min_length=3, max_length=1000, description="an e-mail address, or the robot's or "
                                                                            "receiver's http(s) URL")]
    secret: Annotated[str | None, Field(max_length=500, description="where the secret is: env:NAME or file:/path "
                                                                   "(never the secret itself)")] = None
    quiet: Annotated[bool, Field(description="working-time notices wait for working hours")] = True
    label: Annotated[str, Field(max_length=200)] = ""


class Resend(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: Annotated[list[Annotated[int, Field(ge=1)]] | None, Field(max_length=1000)] = None


@router.get("/notify/channels", tags=["notifications"], summary="Every notification channel (admins)")
def notify_channels(who: Who, service: Service) -> Response:
    from dispatch.service import notifier

    return _json(service.read(lambda rt: notifier.list_channels(rt, who)))


@router.post("/notify/channels", tags=["notifications"], status_code=201,
             summary="A channel for a department, a user or a level of the ladder (admins)")
def notify_add(body: ChannelBody, who: Who, service: Service) -> Response:
    from dispatch.service import notifier

    made = service.read(lambda rt: notifier.add_channel(rt, who, owner=body.owner, kind=body.kind, target=body.target,
                                                        secret=body.secret, quiet=body.quiet, label=body.label))
    return _json(made, 201)


@router.delete("/notify/channels/{channel_id}", tags=["notifications"], summary="Remove a channel (admins)")
def notify_remove(channel_id: Annotated[int, Path(ge=1, le=2**31 - 1)], who: Who, service: Service) -> Response:
    from dispatch.domain.errors import UnknownReference
    from dispatch.service import notifier

    if not service.read(lambda rt: notifier.remove_channel(rt, who, channel_id)):
        raise UnknownReference(f"no channel {channel_id}")
    return _json({"removed": channel_id})


@router.get("/notify/failed", tags=["notifications"], summary="Messages given up after their retries (admins)")
def notify_failed(who: Who, service: Service) -> Response:
    from dispatch.service import notifier

    return _json(service.read(lambda rt: notifier.failed_sends(rt, who)))


@router.post("/notify/resend", tags=["notifications"], summary="Send given-up messages again (admins)")
def notify_resend(body: Resend, who: Who, service: Service) -> Response:
    from dispatch.service import notifier

    return _json({"resent": service.read(lambda rt: notifier.resend(rt, who, body.ids))})
