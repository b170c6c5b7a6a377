"""Read use cases: what the people of the grid centre ask, as plain functions of a runtime.

The CLI calls these today and the HTTP API will call the same ones, so every door reads the
same figures with the same time rules:

- **Times** (``business_time``): ISO-8601; without an offset, local to the reference data's
  timezone; absent, the runtime's clock now.
- **Periods** (``window``): ``start`` inclusive, ``end`` exclusive; a bare date as ``end``
  includes that whole day (``is_bare_date``). The instant figures are judged at (``as_of``):
  as given, else just before ``end`` if that is in the past, else now.
- Every figure read first brings the read models up to date with the event store
  (``for_reading``: the embedded bus caught up first, unless a projector of the process keeps it so; with
  Kafka the projector does it and this finds nothing).

Functions: ``dashboard``, ``sla``, ``tickets``, ``show``, ``history``, ``timeline``, ``inbox``,
``overdue``; the reference data: ``places``, ``departments``, ``categories``, ``sla_rules``;
``ticket_id`` parses a ticket id as every door must.

**Who asks** (``identity``): given, each read is limited as ``dispatch.service.access`` decides (a
department sees only its own calls, a leader only its street…); None is the local operator,
who holds the database and sees everything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select

from dispatch.domain.case_number import legacy_case_no, looks_like_case_no
from dispatch.domain.errors import HiddenTicket, InvalidCommand, TicketNotFound
from dispatch.domain.identity import Identity
from dispatch.domain.lifecycle import TERMINAL
from dispatch.projections import for_reading, list_tickets
from dispatch.projections import tables as t
from dispatch.projections.figures import Settings
from dispatch.projections.listing import change_rows, open_versions
from dispatch.service.access import may_read, may_view, read_scope, sees_contact, visible_calls

if TYPE_CHECKING:
    from dispatch.domain.sla_policy import SlaPolicy

__all__ = ["Window", "boundaries", "media_file", "business_time", "categories", "dashboard", "departments", "history", "inbox", "is_bare_date", "live_changes", "live_moved", "unplaced_waiting", "minutes_left",
           "overdue", "participating", "places", "show", "sla", "sla_rules", "resolve_ticket", "tickets", "timeline", "window"]

_BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# event fields that are the envelope, not the step's own details
_ENVELOPE = {"originator_id", "originator_version", "timestamp", "originator_topic", "occurred_at", "actor",
             "command_id"}


# -- times and periods ---------------------------------------------------------------------------------

def is_bare_date(value: str | None) -> bool:
    """``2026-11-20`` (a day), as opposed to a time."""
    return bool(value) and bool(_BARE_DATE.match(str(value).strip()))


def business_time(runtime: Any, value: str | None, option: str = "--at", *, instant: bool = True) -> datetime:
    """A business time given as text: ISO-8601; without an offset it is local to the reference
    data's timezone; absent, it is the runtime's clock now. Every door's times obey the window
    of business times (``dispatch.domain.timewindow``): none before its earliest; an ``instant`` (a
    step's time, an ``as_of``) none past now and its tolerance — a period's bound (``from``,
    ``to``) may lie ahead, as this month's end does."""
    now: datetime = runtime.clock.now()
    if value is None:
        return now
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidCommand(f"{option} {value!r} is not an ISO-8601 time (e.g. 2026-11-20T09:30+08:00)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(runtime.reference.timezone))
    window = getattr(runtime, "time_window", None)
    if window is not None:
        window.check(parsed, now if instant else max(now, parsed))
    return parsed


@dataclass(frozen=True)
class Window:
    start: datetime | None  # inclusive
    end: datetime | None  # exclusive
    as_of: datetime  # the instant figures are judged at


def bounds(runtime: Any, start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    """``start`` inclusive, ``end`` exclusive; a bare date as ``end`` includes that whole day."""
    lo = business_time(runtime, start, "--from", instant=False) if start else None
    hi = business_time(runtime, end, "--to", instant=False) if end else None
    if hi is not None and is_bare_date(end):
        hi += timedelta(days=1)
    return lo, hi


def window(runtime: Any, start: str | None = None, end: str | None = None, as_of: str | None = None) -> Window:
    """The period asked for and the instant to judge it at (see the module's rules)."""
    lo, hi = bounds(runtime, start, end)
    now = runtime.clock.now()
    if as_of:
        instant = business_time(runtime, as_of, "--as-of")
    elif hi is not None:
        instant = min(hi - timedelta(microseconds=1), now)
    else:
        instant = now
    return Window(lo, hi, instant)


def resolve_ticket(runtime: Any, value: str | UUID) -> UUID:
    """A ticket named as people name it: its id, its case number (工单编号), or a unique
    prefix of its id (at least 6 hex digits). Raises ``TicketNotFound`` (an ambiguous
    prefix says how many tickets share it)."""
    if isinstance(value, UUID):
        return value
    text = str(value).strip()
    try:
        return UUID(text)
    except ValueError:
        pass
    if looks_like_case_no(text):
        found = runtime.case_numbers.lookup(text) if runtime.case_numbers is not None else None
        if found is None:
            raise TicketNotFound(f"with case number {text}")
        return found
    if re.fullmatch(r"[0-9a-fA-F-]{6,35}", text):
        for_reading(runtime)
        tk = t.tickets.c
        with runtime.engine.connect() as conn:
            hits = conn.execute(select(tk.ticket_id).where(tk.ticket_id.like(text.lower() + "%")).limit(3)).scalars().all()
        if len(hits) == 1:
            return UUID(hits[0])
        if hits:
            raise TicketNotFound(f"{text}: that prefix starts {'several' if len(hits) > 2 else 'two'} ticket ids; "
                                 "give more of it, or the case number")
    raise TicketNotFound(text)


# -- figures ------------------------------------------------------------------------------------------

def place_of(runtime: Any, street: str | None, community: str | None) -> dict[str, str | None]:
    ref = runtime.reference
    if community:
        street = ref.community(community).street_id
    if not street:
        return {"street": None, "district": None}
    s = ref.street(street)
    return {"street": s.id, "district": s.district_id}


def _own_place(identity: Identity | None, street: str | None, community: str | None) -> tuple[str | None, str | None]:
    """A leader's or dispatcher's one street when it names none."""
    if identity is not None and not street and not community and identity.scope_kind == "street" \
            and len(identity.scope) == 1:
        return identity.scope[0], None
    return street, community


def dashboard(runtime: Any, *, street: str | None = None, community: str | None = None,
              period: Window, settings: Settings | None = None, identity: Identity | None = None) -> dict[str, Any]:
    """A street's or a community's dashboard (docs/figures.md) for ``period``."""
    street, community = _own_place(identity, street, community)
    if (street is None) == (community is None):
        raise InvalidCommand("give exactly one of a street or a community")
    if identity is not None:
        may_view(identity, "dashboard", **place_of(runtime, street, community))
    from dispatch.projections.dashboard import community_dashboard, street_dashboard

    for_reading(runtime)
    settings = settings or Settings()
    if street is not None:
        return street_dashboard(runtime.engine, runtime.reference, street, as_of=period.as_of, start=period.start,
                                end=period.end, settings=settings)
    return community_dashboard(runtime.engine, runtime.reference, community or "", as_of=period.as_of,
                               start=period.start, end=period.end, settings=settings)


def sla(runtime: Any, *, by: str, period: Window, per: str | None = None, settings: Settings | None = None,
        street: str | None = None, community: str | None = None, identity: Identity | None = None,
        percentiles: bool = True) -> dict[str, Any]:
    """SLA statistics and the scorecard, grouped ``by`` a dimension, optionally ``per`` day/week/month,
    optionally only of one street's or community's tickets (by id or name)."""
    ref = runtime.reference
    if identity is not None:
        street, community = _own_place(identity, street, community)
        may_view(identity, "sla", **place_of(runtime, street, community))
    street_id = ref.street(street).id if street else None
    community_id = ref.community(community).id if community else None
    from dispatch.projections.sla_stats import sla_statistics

    for_reading(runtime)
    return sla_statistics(runtime.engine, ref, by=by, period=per, as_of=period.as_of, start=period.start,
                          end=period.end, settings=settings or Settings(), street=street_id, community=community_id,
                          percentiles=percentiles)


# -- tickets --------------------------------------------------------------------------------------------

def tickets(runtime: Any, *, status: str | None = None, street: str | None = None, community: str | None = None,
            grid: str | None = None, category: str | None = None, department: str | None = None,
            limit: int = 50, categories: list[str] | None = None, offset: int = 0, external_ref: str | None = None,
            identity: Identity | None = None, ids: list[str] | None = None, closed: bool | None = None,
            reported_from: datetime | None = None, reported_to: datetime | None = None,
            mine: bool = False, extension_pending: bool = False, statuses: list[str] | None = None,
            per_status: int | None = None) -> list[dict[str, Any]]:
    """Tickets newest first (``offset`` pages on); places, categories and departments by id
    or name; only those ``identity`` sees; ``mine``: only those ``identity`` reported;
    ``extension_pending``: only those with an extension request awaiting the centre;
    ``statuses`` (with ``per_status``: the newest that many of each): several lists at once."""
    ref = runtime.reference
    for_reading(runtime)
    return list_tickets(
        runtime.engine, status=status,
        street=ref.street(street).id if street else None,
        community=ref.community(community).id if community else None,
        grid=ref.grid(grid).id if grid else None,
        category=ref.category(category).id if category else None,
        categories=[ref.category(k).id for k in categories] if categories else None,
        department=ref.department(department).id if department else None,
        limit=limit, offset=offset, external_ref=external_ref,
        scope=read_scope(identity) if identity is not None else None, ids=ids, closed=closed,
        reported_from=reported_from, reported_to=reported_to,
        reported_by=identity.name if mine and identity is not None else None, extension_pending=extension_pending,
        statuses=statuses, per_status=per_status,
    )


def _ticket_id(runtime: Any, value: str | UUID) -> UUID:
    """The id of the ticket named by its id, case number or outside reference (a 12345 case number)."""
    try:
        return resolve_ticket(runtime, value)
    except TicketNotFound:
        found = tickets(runtime, external_ref=str(value), limit=1)
        if not found:
            raise
        return UUID(str(found[0]["ticket_id"]))


def _ticket(runtime: Any, value: str | UUID, identity: Identity | None) -> Any:
    """The ticket named by its id or its outside reference, if ``identity`` sees it (the aggregate)."""
    tk = runtime.store.get_ticket(_ticket_id(runtime, value))
    if identity is not None and not may_read(identity, tk):
        raise HiddenTicket(value)  # said as for a ticket that does not exist
    return tk


def _folded(runtime: Any, value: str | UUID, identity: Identity | None) -> tuple[Any, list[Any]]:
    """The ticket as its events fold (the aggregate's attributes, ``id`` and ``version``) and its
    events as ``(version, type, data)``, if ``identity`` sees it. Where the store's table may be
    read directly (``Runtime.plain_store``) its events are decoded and folded here with the
    lifecycle fold, the one the aggregate applies — no eventsourcing, no Ticket class to import
    (``dispatch show`` starts ~50 ms sooner); otherwise through the store and its aggregate."""
    if not runtime.plain_store:
        tk = _ticket(runtime, value, identity)
        return tk, [(e.originator_version, type(e).__name__, vars(e)) for e in runtime.store.events.get(tk.id)]
    from types import SimpleNamespace

    from dispatch.domain.lifecycle import fold, new_state
    from dispatch.projections.decode import ticket_records

    tid = _ticket_id(runtime, value)
    records = ticket_records(runtime.engine, runtime.store_table, tid)
    if not records:
        raise TicketNotFound(tid)
    state = new_state()
    for record in records:
        fold(state, record.type, record.data, record.data["occurred_at"], record.version)
    tk = SimpleNamespace(id=tid, version=records[-1].version, **state)
    if identity is not None and not may_read(identity, tk):
        raise HiddenTicket(value)
    return tk, [(r.version, r.type, r.data) for r in records]


def _contact(runtime: Any, sealed: Any, identity: Identity | None) -> dict[str, Any] | None:
    """A reporter's contact as ``identity`` may see it: in full, masked, or ``{"erased": true}``."""
    from dispatch.adapters.vault import mask

    data = runtime.vault.open(sealed) if sealed else None
    if data is None or data.get("erased") or sees_contact(identity):
        return data
    return mask(data)


def _reported(runtime: Any, identity: Identity | None,
              report: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The report's contact (as ``identity`` may see it) and its photos (``report``: the report event's data)."""
    return _contact(runtime, report.get("reporter"), identity), list(report.get("media") or [])


def media_file(runtime: Any, ticket: str | UUID, name: str, identity: Identity | None) -> Any:
    """The stored photo ``name`` of a ticket ``identity`` may see (TicketNotFound otherwise)."""
    tk, events = _folded(runtime, ticket, identity)
    _, media = _reported(runtime, identity, events[0][2])
    path = runtime.media.path(name) if f"file:{name}" in media else None
    if path is None:
        raise TicketNotFound(f"{ticket}/{name}")
    return path


def _hidden(identity: Identity | None, tk: Any) -> Any:
    """A predicate: is this department's call hidden from ``identity``?"""
    shown = visible_calls(identity, tk) if identity is not None else None
    return lambda department: shown is not None and department is not None and department not in shown


def show(runtime: Any, ticket: str | UUID, identity: Identity | None = None) -> dict[str, Any]:
    """A ticket's current state (from the event store: always up to date)."""
    tk, events = _folded(runtime, ticket, identity)
    hidden = _hidden(identity, tk)
    contact, media = _reported(runtime, identity, events[0][2])
    return {
        "ticket_id": str(tk.id), "status": tk.status, "version": tk.version, "level": tk.level,
        "grid": tk.grid, "community": tk.community, "street": tk.street, "district": tk.district,
        "category": tk.category, "priority": tk.priority, "channel": tk.channel, "description": tk.description,
        "external_ref": tk.external_ref, "reported_at": tk.reported_at, "lead": tk.lead,
        "calls": [dict(call) for call in tk.calls.values() if not hidden(call["department"])],
        "handle_due": tk.handle_due, "feedback_due": tk.feedback_due, "satisfaction": tk.satisfaction,
        "duplicate_of": tk.duplicate_of, "closed_via": tk.closed_via,
        "reporter": contact, "media": media, "location": tk.location, "position": getattr(tk, "position", None),
        "case_no": case_number(tk), "accept_due": tk.accept_due, "dispatch_due": tk.dispatch_due,
        "provisional": tk.provisional, "held_since": tk.held_since, "extension": tk.extension,
        "override": tk.override,
    }


def case_number(ticket: Any) -> str:
    """A ticket's case number: the one drawn at its report, or its legacy one."""
    return ticket.case_no or legacy_case_no(ticket.id, ticket.street, ticket.reported_at)


def history(runtime: Any, ticket: str | UUID, identity: Identity | None = None) -> list[dict[str, Any]]:
    """Every event of a ticket: version, type, business time, actor and the step's own details
    (not the steps of other departments' calls that ``identity`` does not see)."""
    tk, events = _folded(runtime, ticket, identity)
    hidden = _hidden(identity, tk)
    rows = []
    for version, kind, state in events:
        if hidden(state.get("department")):
            continue
        if state.get("reporter"):
            state = {**state, "reporter": _contact(runtime, state["reporter"], identity)}
        rows.append({
            "version": version,
            "event": kind,
            "occurred_at": state["occurred_at"],
            "actor": state["actor"],
            "details": {k: v for k, v in state.items() if k not in _ENVELOPE and v not in (None, "", [])},
        })
    return rows


def timeline(runtime: Any, ticket: str | UUID, identity: Identity | None = None) -> dict[str, Any]:
    """Every event with the SLA clock after it (``dispatch.projections.timeline``)."""
    from dispatch.projections.timeline import timeline as ticket_timeline

    tk, events = _folded(runtime, ticket, identity)
    hidden = _hidden(identity, tk)
    found = ticket_timeline(runtime, tk.id, events)
    found["events"] = [row for row in found["events"] if not hidden(row["details"].get("department"))]
    for row in found["events"]:
        if row["details"].get("reporter"):
            row["details"]["reporter"] = _contact(runtime, row["details"]["reporter"], identity)
    return found


# -- work lists ---------------------------------------------------------------------------------------

def minutes_left(policy: SlaPolicy, basis: str | None, now: datetime, due: datetime | None) -> float | None:
    if due is None:
        return None
    return round(policy.basis(basis or "calendar").minutes_between(now, due), 1)


def inbox(runtime: Any, department: str | None, *, now: datetime | None = None,
          identity: Identity | None = None) -> list[dict[str, Any]]:
    """A department's open calls (待办): not yet answered (报到 due), or its lead calls reported
    in and not yet handled (处置 due), on open tickets and the current dispatch; soonest first,
    with the minutes left in each call's time basis (negative = overdue)."""
    ref = runtime.reference
    if department is None and identity is not None:
        department = identity.department
    if department is None:
        raise InvalidCommand("name the department")
    dept = ref.department(department).id
    if identity is not None:
        may_view(identity, "inbox", department=dept)
    now = now or runtime.clock.now()
    for_reading(runtime)
    c, tk = t.calls.c, t.tickets.c
    waiting = c.answer.is_(None)
    to_handle = and_(c.role == "lead", c.answer == "acknowledged", c.handled_at.is_(None))
    query = (select(c.ticket_id, c.call_id, c.role, c.answer, c.dispatched_at, c.ack_due, c.handle_due,
                    c.time_basis, tk.status, tk.level, tk.category, tk.grid, tk.community, tk.description,
                    tk.case_no, tk.held_since, tk.extension_minutes)
             .join(t.tickets, tk.ticket_id == c.ticket_id)
             .where(c.department == dept, c.superseded_at.is_(None), tk.status.not_in(TERMINAL),
                    or_(waiting, to_handle)))
    from dispatch.domain.sla_policy import SlaPolicy

    policy = SlaPolicy(ref)
    rows = []
    with runtime.engine.connect() as conn:
        for r in conn.execute(query):
            state = "waiting" if r.answer is None else "to_handle"
            due = r.ack_due if state == "waiting" else r.handle_due
            rows.append({"ticket_id": r.ticket_id, "call_id": r.call_id, "role": r.role, "state": state,
                         "dispatched_at": r.dispatched_at, "ack_due": r.ack_due,
                         "handle_due": r.handle_due if r.role == "lead" else None,
                         # a held ticket's clock stands still (挂起): the time left as the hold began
                         "due": due, "minutes_left": minutes_left(policy, r.time_basis, r.held_since or now, due),
                         "time_basis": r.time_basis, "status": r.status, "level": r.level, "category": r.category,
                         "grid": r.grid, "community": r.community, "description": r.description,
                         "case_no": r.case_no, "held": r.held_since is not None,
                         "extension_minutes": r.extension_minutes if r.role == "lead" else None})
    rows.sort(key=lambda row: (row["due"], row["ticket_id"]))
    return rows


def overdue(runtime: Any, *, street: str | None = None, community: str | None = None,
            department: str | None = None, now: datetime | None = None,
            identity: Identity | None = None) -> list[dict[str, Any]]:
    """What is late now (``dispatch.projections.deadlines``: the deadlines the watchdog
    escalates): how late, in each call's time basis, and at which escalation level; the
    longest overdue first."""
    ref = runtime.reference
    if identity is not None:
        if identity.role == "department":
            department = department or identity.department
        street, community = _own_place(identity, street, community)
        may_view(identity, "overdue", **place_of(runtime, street, community),
                 department=ref.department(department).id if department else None)
    from dispatch.projections.deadlines import missed_deadlines  # only here: a dashboard does not pay for it

    now = now or runtime.clock.now()
    for_reading(runtime)
    missed = missed_deadlines(runtime.engine, now, street=ref.street(street).id if street else None,
                              community=ref.community(community).id if community else None,
                              department=ref.department(department).id if department else None)
    from dispatch.domain.sla_policy import SlaPolicy

    policy = SlaPolicy(ref)
    rows = []
    for m in missed:
        left = minutes_left(policy, m.time_basis, now, m.due)
        rows.append({"ticket_id": m.ticket_id, "case_no": m.case_no, "call_id": m.call_id,
                     "department": m.department or None, "role": m.role,
                     "deadline": m.kind, "due": m.due, "minutes_late": None if left is None else -left,
                     "time_basis": m.time_basis, "level": m.level, "status": m.status, "street": m.street,
                     "community": m.community, "grid": m.grid, "category": m.category})
    return rows


# -- reference data -------------------------------------------------------------------------------------

def places(runtime: Any, *, street: str | None = None, community: str | None = None) -> list[dict[str, Any]]:
    """Communities with their district, street and grids (ids beside names), optionally of one
    street or just one community."""
    ref = runtime.reference
    communities = list(ref.communities.values())
    if street:
        sid = ref.street(street).id
        communities = [c for c in communities if c.street_id == sid]
    if community:
        communities = [ref.community(community)]
    rows: list[dict[str, Any]] = []
    for c in communities:
        s = ref.streets[c.street_id]
        d = ref.districts[s.district_id]
        rows.append({"district": d.id, "district_name": d.name, "street": s.id, "street_name": s.name,
                     "community": c.id, "community_name": c.name,
                     "grids": [{"id": g.id, "name": g.name} for g in ref.grids_of_community(c.id)]})
    return rows


def boundaries(runtime: Any, *, street: str | None = None) -> dict[str, Any]:
    """The grid boundaries as a GeoJSON FeatureCollection (WGS-84), optionally of one street;
    each feature names its grid, community and street (ids and names) and says if it is sample data."""
    ref = runtime.reference
    street_id = ref.street(street).id if street else None
    features = []
    for grid_id, geometry in ref.boundaries.items():
        place = ref.place(grid_id)
        if street_id and place.street.id != street_id:
            continue
        features.append({"type": "Feature", "id": grid_id, "geometry": geometry, "properties": {
            "grid": grid_id, "grid_name": place.grid.name, "community": place.community.id,
            "community_name": place.community.name, "street": place.street.id, "street_name": place.street.name,
            "sample": ref.boundaries_sample}})
    return {"type": "FeatureCollection", "features": features}


def departments(runtime: Any) -> list[dict[str, Any]]:
    """Departments, with the categories each leads or cooperates on."""
    ref = runtime.reference
    return [{"id": d.id, "name": d.name,
             "leads": [c.id for c in ref.categories.values() if c.lead_department == d.id],
             "cooperates": [c.id for c in ref.categories.values() if d.id in c.cooperating]}
            for d in ref.departments.values()]


def categories(runtime: Any) -> dict[str, Any]:
    """Categories with their routing, and the priorities."""
    ref = runtime.reference
    return {"categories": [{"id": c.id, "name": c.name, "kind": c.kind, "lead_department": c.lead_department,
                            "cooperating": list(c.cooperating)} for c in ref.categories.values()],
            "priorities": [{"id": p.id, "name": p.name} for p in ref.priorities.values()]}


def sla_rules(runtime: Any) -> list[dict[str, Any]]:
    """The SLA rules per category × priority: the centre's minutes from the report, the
    departments' from the dispatch."""
    return [{"category": r.category, "priority": r.priority, "accept_minutes": r.accept_minutes,
             "dispatch_minutes": r.dispatch_minutes, "ack_minutes": r.ack_minutes,
             "handle_minutes": r.handle_minutes, "feedback_minutes": r.feedback_minutes,
             "time_basis": r.time_basis, "escalate_every_minutes": r.escalate_every_minutes}
            for r in runtime.reference.sla_rules]


def live_changes(runtime: Any, before: dict[str, int] | None) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """The open tickets' versions now, and the tickets that moved since ``before`` (new, changed,
    or ended), each with its places, reporter and called departments (``access.sees_change``
    decides who hears of it). ``before=None``: only the versions."""
    now = open_versions(runtime.engine)
    if before is None:
        return now, []
    moved = [tid for tid, version in now.items() if before.get(tid) != version]
    moved += [tid for tid in before if tid not in now]
    return now, change_rows(runtime.engine, moved)


def unplaced_waiting(runtime: Any) -> set[str]:
    """The reports waiting to be placed on a grid (待定位), by token: whichever process took one
    in, every grid centre's console hears of it (``live``)."""
    from dispatch.adapters import unplaced

    return unplaced.waiting_tokens(runtime.engine)


def live_moved(runtime: Any, versions: dict[str, int], touched: set[str]) -> list[dict[str, Any]]:
    """``live_changes`` when the tickets that can have moved are known (``touched``: those whose
    events were applied since ``versions`` was taken): the same answer, from their rows alone,
    and ``versions`` brought up to now in place."""
    changes = []
    for row in change_rows(runtime.engine, sorted(touched)):
        tid, version = row["ticket_id"], row["last_version"]
        if row["status"] in TERMINAL:
            if versions.pop(tid, None) is not None:  # it ended
                changes.append(row)
        elif versions.get(tid) != version:
            versions[tid] = version
            changes.append(row)
    return changes


def participating(runtime: Any, identity: Identity, *, ended: bool = False, case_no: str | None = None,
                  status: str | None = None, reported_from: datetime | None = None,
                  reported_to: datetime | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """我参与的: the tickets ``identity``'s department reported in on (as lead or cooperating),
    newest first, with their status and the lead's progress — open ones (``ended=False``) or,
    for the history, ended ones filtered by case number, status and reporting period."""
    dept = identity.department
    if dept is None:
        raise InvalidCommand("name the department")
    may_view(identity, "inbox", department=dept)
    for_reading(runtime)
    c, tk = t.calls.c, t.tickets.c
    query = (select(tk.ticket_id, tk.case_no, tk.status, tk.category, tk.grid, tk.community, tk.lead, tk.handled_by,
                    tk.reported_at, tk.ended_at, tk.level, tk.dispatch_no, tk.description,
                    c.role, c.dispatch_no.label("call_dispatch"), c.answered_at)
             .join(t.calls, c.ticket_id == tk.ticket_id)
             .where(c.department == dept, c.answer == "acknowledged",
                    tk.status.in_(TERMINAL) if ended else tk.status.not_in(TERMINAL)))
    if case_no:
        query = query.where(tk.case_no.contains(case_no.strip(), autoescape=True))
    if status:
        query = query.where(tk.status == status)
    if reported_from is not None:
        query = query.where(tk.reported_at >= reported_from)
    if reported_to is not None:
        query = query.where(tk.reported_at < reported_to)
    query = query.order_by(tk.reported_at.desc(), tk.ticket_id, c.dispatch_no.desc()).limit(limit * 3)
    rows: dict[str, dict[str, Any]] = {}
    with runtime.engine.connect() as conn:
        for r in conn.execute(query):
            if str(r.ticket_id) in rows:
                continue  # its latest dispatch's call speaks for it
            rows[str(r.ticket_id)] = {**r._mapping, "ticket_id": str(r.ticket_id),
                                      "current": r.call_dispatch == r.dispatch_no}
    return list(rows.values())[:limit]
