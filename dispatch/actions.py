"""Write use cases for people at a door (the CLI, the HTTP API): one lifecycle step, as
the identity doing it. Authorization (``dispatch.access``) is asked here, with the ticket
as the event store holds it; the step's business time is the time it was received unless
the identity may backfill; the command built is the one every door builds (the intake wire
format, strictly validated) and goes to the application — or, in Kafka mode, to the intake
topic (``prepare`` builds it without applying it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch import commands as c
from dispatch.access import authorize, check_backfill, may_read
from dispatch.errors import HiddenTicket, InvalidCommand, PositionOutsideGrids
from dispatch.identity import Identity
from dispatch.queries import resolve_ticket

__all__ = ["COMMANDS", "act", "place_position", "prepare"]

COMMANDS: dict[str, type] = {
    model.model_fields["type"].default: model  # type: ignore[attr-defined]
    for model in (c.Report, c.Accept, c.FirstContact, c.Dispatch, c.Acknowledge, c.Reject, c.Handle, c.Feedback,
                  c.Evaluate, c.Reopen, c.Escalate, c.MarkDuplicate, c.Cancel, c.Close, c.RequestExtension,
                  c.DecideExtension, c.Hold, c.Resume)
}


def prepare(runtime: Any, kind: type, identity: Identity, *, at: datetime | None = None,
            command_id: str | None = None, as_role: str | None = None, uploaded: tuple[str, ...] = (),
            **fields: Any) -> Any:
    """The command ``identity`` asks for, authorized and validated (raises ``Forbidden``,
    ``BackfillNotAllowed``, ``TicketNotFound``, ``InvalidCommand``, unknown names…). A report
    names stored photos (``file:…``) only among ``uploaded``, those its own request just stored:
    never another ticket's photo by its hash."""
    check_backfill(identity, at is not None)
    ref = runtime.reference
    received = runtime.clock.now()
    fields = {k: v for k, v in fields.items() if v is not None}
    if "department" in fields:
        fields["department"] = ref.department(fields["department"]).id
    if kind is c.Report:
        theirs = [m for m in fields.get("media") or () if str(m).startswith("file:") and m not in uploaded]
        if theirs:
            raise InvalidCommand("media: a stored photo (file:…) is named only by the report that uploads it; "
                                 "send photos as http(s) URLs").saying(why="media_not_yours")
        if "position" in fields:
            fields = place_position(runtime, fields)
        place = ref.place(fields["grid"])
        fields |= {"grid": place.grid.id, "category": ref.category(fields["category"]).id,
                   "priority": ref.priority(fields.get("priority", "normal")).id}
        ticket: Any = {"grid": place.grid.id, "community": place.community.id, "street": place.street.id,
                       "district": place.district.id}
    else:
        ticket = runtime.app.get_ticket(resolve_ticket(runtime, fields["ticket_id"]))
        if identity.role != "admin" and identity.kind != "local" and not may_read(identity, ticket):
            raise HiddenTicket(fields["ticket_id"])  # a ticket one may not see does not exist for one
        fields["ticket_id"] = str(ticket.id)
        if "original_id" in fields:
            fields["original_id"] = str(resolve_ticket(runtime, fields["original_id"]))
    actor = authorize(identity, kind, ticket, fields, as_role=as_role)
    actor["received_at"] = received.isoformat()
    body = {"type": kind.model_fields["type"].default,  # type: ignore[attr-defined]
            "occurred_at": (at or received).isoformat(), "actor": actor, **fields}
    if command_id:
        body["command_id"] = command_id
    return c.parse_command(body)


def place_position(runtime: Any, fields: dict[str, Any]) -> dict[str, Any]:
    """A report's ``position`` ({"lat", "lon", "crs", "accuracy"}) placed in its grid; the
    command carries it on (the event keeps it in WGS-84, with the system it was given in)."""
    fields = dict(fields)
    position = fields["position"]
    lat, lon, crs = position["lat"], position["lon"], position.get("crs") or "WGS84"
    if not runtime.reference.boundaries:
        raise PositionOutsideGrids("this deployment's reference data has no grid boundaries: name the grid")
    grid = runtime.locator.locate(lon, lat, crs)
    if grid is None:
        raise PositionOutsideGrids(f"no grid holds the position {lat}, {lon} ({crs})")
    if fields.get("grid") and runtime.reference.grid(fields["grid"]).id != grid:
        raise InvalidCommand(f"the position lies in grid {grid}, not in {fields['grid']}")
    fields["grid"] = grid
    return fields


def act(runtime: Any, kind: type, identity: Identity, *, at: datetime | None = None, command_id: str | None = None,
        as_role: str | None = None, **fields: Any) -> Any:
    """Record one step ``kind`` (a command class) as ``identity``; returns the outcome (raises
    the step's error if it was refused)."""
    command = prepare(runtime, kind, identity, at=at, command_id=command_id, as_role=as_role, **fields)
    return runtime.app.execute(command)
