"""Write use cases for people at a door (the CLI, the HTTP API): one lifecycle step, as
the identity doing it. Authorization (``dispatch.service.access``) is asked here, with the ticket
as the event store holds it; the step's business time is the time it was received unless
the identity may backfill; the command built is the one every door builds (the intake wire
format, strictly validated) and goes to the application — or, in Kafka mode, to the intake
topic (``prepare`` builds it without applying it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch.domain import commands as c
from dispatch.domain.errors import HiddenTicket, InvalidCommand, PositionOutsideGrids
from dispatch.domain.identity import Identity
from dispatch.service.access import authorize, check_backfill, may_read
from dispatch.service.queries import resolve_ticket

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


# -- reports placed later (待定位) ----------------------------------------------------------------------

def hold_unplaced(runtime: Any, identity: Identity, *, category: str, description: str, location: str,
                  priority: str = "normal", channel: str = "third_party", reporter: dict[str, Any] | None = None,
                  media: list[str] | None = None) -> str:
    """A report that names its place only in words (Open311's ``address_string``): checked as a
    report is (who may report, the category, priority and fields), then kept to be placed on a
    grid by a dispatcher (``place``). Returns its token."""
    import uuid

    from dispatch.adapters import unplaced
    from dispatch.domain.errors import Forbidden
    from dispatch.service.access import STEPS

    if identity.role != "admin" and "Report" not in STEPS.get(identity.role, frozenset()):
        raise Forbidden(f"{identity.describe()} may not report")
    ref = runtime.reference
    fields: dict[str, Any] = {"category": ref.category(category).id, "priority": ref.priority(priority).id,
                              "channel": channel, "description": description, "location": location,
                              "media": media, "reporter": reporter}
    fields = {k: v for k, v in fields.items() if v is not None}
    received = runtime.clock.now()
    c.parse_command({"type": "report", "occurred_at": received.isoformat(), "grid": "unplaced",
                     "actor": {"role": "system", "id": identity.name}, **fields})  # the fields as a report's
    if reporter:
        fields["reporter"] = runtime.vault.seal(reporter)  # as an event keeps it
    districts = _districts(runtime, identity)
    token = str(uuid.uuid4())
    unplaced.add(runtime.engine, token, received.isoformat(),
                 {"name": identity.name, "role": identity.role, "scope_kind": identity.scope_kind,
                  "scope": list(identity.scope), "kind": identity.kind},
                 districts[0] if districts and len(districts) == 1 else None, fields)
    return token


def _districts(runtime: Any, identity: Identity) -> tuple[str, ...] | None:
    """The districts an identity's scope lies in (None: unscoped, or a department: all of them)."""
    ref = runtime.reference
    if not identity.scope or identity.scope_kind not in ("grid", "community", "street", "district"):
        return None

    def district_of(kind: str, key: str) -> str:
        if kind == "grid":
            return ref.place(key).district.id
        if kind == "community":
            return district_of("street", ref.community(key).street_id)
        if kind == "street":
            return ref.street(key).district_id
        return ref.district(key).id

    return tuple(sorted({district_of(identity.scope_kind or "district", value) for value in identity.scope}))


def unplaced_for(runtime: Any, identity: Identity) -> list[dict[str, Any]]:
    """The reports waiting to be placed that ``identity`` (a dispatcher, an admin) may place: those
    sent from its districts and those of no district, oldest first."""
    from dispatch.adapters import unplaced

    if identity.role not in ("dispatcher", "admin"):
        return []
    return unplaced.waiting(runtime.engine, _districts(runtime, identity))


def placeable_grids(runtime: Any, identity: Identity) -> list[tuple[str, list[tuple[str, str]]]]:
    """The grids ``identity`` may place a report on, by community: ``[(community name, [(grid id,
    grid name)])]`` — those of its streets or districts (every grid for an admin)."""
    ref = runtime.reference
    if identity.role not in ("dispatcher", "admin"):
        return []
    streets = [s for s in ref.streets.values()
               if identity.role == "admin" or not identity.scope
               or (s.id if identity.scope_kind == "street" else s.district_id) in identity.scope]
    return [(f"{s.name} · {k.name}", [(g.id, g.name) for g in ref.grids_of_community(k.id)])
            for s in streets for k in ref.communities_of_street(s.id)]


def place(runtime: Any, identity: Identity, token: str, grid: str) -> Any:
    """定位: the report waiting under ``token`` placed on ``grid`` by ``identity`` (a dispatcher of
    that grid's street or district, or an admin): the report command its sender would have made
    there, with the time it was received as its business time. The placing is claimed first, so
    two dispatchers never make two tickets of one report; ``placed`` or ``unplace`` follows."""
    from dispatch.adapters import unplaced
    from dispatch.domain.errors import Forbidden, NotWaitingToBePlaced

    ref = runtime.reference
    spot = ref.place(grid)
    if identity.role not in ("dispatcher", "admin"):
        raise Forbidden(f"{identity.describe()} may not place reports")
    waiting = unplaced.get(runtime.engine, token)
    if waiting is None or waiting["placed_at"] is not None:
        raise NotWaitingToBePlaced(f"no report waits to be placed under {token}")
    allowed = _districts(runtime, identity)
    if allowed is not None and waiting["district"] not in (None, *allowed):
        raise NotWaitingToBePlaced(f"no report waits to be placed under {token}")  # another area's: not said
    authorize(identity, c.Accept, {"grid": spot.grid.id, "community": spot.community.id,
                                   "street": spot.street.id, "district": spot.district.id}, {})
    sender = waiting["sender"]
    by = Identity(sender["name"], sender["role"], sender["scope_kind"], tuple(sender["scope"]), sender["kind"])
    fields = dict(waiting["fields"])
    if fields.get("reporter"):
        opened = runtime.vault.open(fields["reporter"])
        fields["reporter"] = None if not opened or opened.get("erased") else opened
    command = prepare(runtime, c.Report, by, command_id=f"placed-{token}", grid=spot.grid.id, **fields)
    received = waiting["received_at"]
    command = command.model_copy(update={"occurred_at": datetime.fromisoformat(received),
                                         "actor": command.actor.model_copy(update={"received_at": received})})
    if not unplaced.claim(runtime.engine, token, placed_at=runtime.clock.now().isoformat(), placed_by=identity.name,
                          grid=spot.grid.id):
        raise NotWaitingToBePlaced(f"no report waits to be placed under {token}")
    return command


def token_of_unplaced(runtime: Any, identity: Identity | None, token: str) -> tuple[bool, str | None]:
    """Whether ``token`` names a report given in words (待定位) that ``identity`` may look up (its
    sender, a dispatcher, an admin; anyone when the door is public: ``identity`` None), and the
    ticket it became (None while it waits, or while the engine has not applied it yet)."""
    from dispatch.adapters import outcome_log, unplaced

    waiting = unplaced.get(runtime.engine, token) if len(token) <= 40 else None
    if waiting is None:
        return False, None
    if identity is not None and identity.role not in ("admin", "dispatcher") \
            and waiting["sender"]["name"] != identity.name:
        return False, None
    ticket = waiting["ticket_id"]
    if ticket is None and waiting["command_id"]:  # Kafka mode: placed; applied by the engine since?
        found = outcome_log.lookup(runtime.engine, waiting["command_id"])
        ticket = str(found["ticket_id"]) if found is not None and found.get("outcome") == "applied" else None
    return True, ticket


def placed(runtime: Any, token: str, result: dict[str, Any] | None) -> None:
    """After ``place``: the ticket (or, in Kafka mode, the command) the report became; None: it was
    refused, and the report waits again."""
    from dispatch.adapters import unplaced

    if result is None:
        unplaced.release(runtime.engine, token)
    else:
        unplaced.settle(runtime.engine, token, ticket_id=str(result["ticket_id"]) if result.get("ticket_id") else None,
                        command_id=result.get("command_id"))
