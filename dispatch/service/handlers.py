"""One handler per command: resolve names against the reference data, load the
ticket, call one aggregate method. Business rules stay in the aggregate and the
policy modules (``sla_policy``, ``ladder``); handlers only translate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from dispatch.aggregates import Ticket, ticket_id_for
from dispatch.domain import commands as c
from dispatch.domain.errors import AlreadyReported, DuplicateCommand, NotYourWhistle
from dispatch.domain.lifecycle import accept_deadline, dispatch_deadline, open_deadlines
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.service.access import check_claims

__all__ = ["HANDLERS", "UnitOfWork"]


class UnitOfWork(Protocol):
    reference: Reference
    sla: SlaPolicy
    vault: Any  # dispatch.adapters.vault.Vault: seals a reporter's contact
    def case_number(self, street: str, reported_at: Any) -> str | None: ...
    def get(self, ticket_id: UUID | str) -> Ticket: ...
    def exists(self, ticket_id: UUID) -> bool: ...
    def add(self, ticket: Ticket) -> None: ...


def report(uow: UnitOfWork, cmd: c.Report) -> Ticket:
    check_claims(cmd, None)
    ref = uow.reference
    place = ref.place(cmd.grid)
    category = ref.category(cmd.category)
    priority = ref.priority(cmd.priority)
    ticket_id = ticket_id_for(external_ref=cmd.external_ref, channel=cmd.channel, command_id=cmd.command_id)
    if (cmd.external_ref or cmd.command_id) and uow.exists(ticket_id):  # a random id is new
        if cmd.external_ref:
            raise AlreadyReported(ticket_id, cmd.external_ref)
        raise DuplicateCommand(f"command {cmd.command_id} was already applied to ticket {ticket_id}")
    try:
        centre: Any = uow.sla.centre_deadlines(category.id, priority.id, cmd.occurred_at)
    except OverflowError:  # a time at the edge of the calendar (only a store from before the time window)
        centre = None
    case_no = uow.case_number(place.street.id, cmd.occurred_at)
    ticket = Ticket(
        id=ticket_id,
        occurred_at=cmd.occurred_at,
        actor=cmd.actor.as_dict(),
        command_id=cmd.command_id,
        grid=place.grid.id,
        community=place.community.id,
        street=place.street.id,
        district=place.district.id,
        category=category.id,
        priority=priority.id,
        channel=cmd.channel,
        description=cmd.description,
        location=cmd.location,
        position=_position(cmd.position),
        external_ref=cmd.external_ref,
        reporter=uow.vault.seal(cmd.reporter.model_dump(exclude_none=True)) if cmd.reporter else None,
        media=list(cmd.media) if cmd.media else None,
        case_no=case_no,
        accept_due=centre.accept_due if centre else None,
        dispatch_due=centre.dispatch_due if centre else None,
        centre_basis=centre.time_basis if centre else None,
        provisional=centre.provisional if centre else False,
        calendar=centre.calendar if centre else None,
    )
    uow.add(ticket)
    return ticket


def _position(given: Any) -> dict[str, Any] | None:
    """A report's position as the event keeps it: WGS-84, with the system it was given in."""
    if given is None:
        return None
    from dispatch.domain.geo import to_wgs84

    lon, lat = to_wgs84(given.lon, given.lat, given.crs)
    return {"lat": round(lat, 7), "lon": round(lon, 7), "given_in": given.crs, "accuracy": given.accuracy}


def _department(uow: UnitOfWork, cmd: Any) -> str:
    """The acting department, which must be the actor's own when the actor is a department."""
    dept = uow.reference.department(cmd.department).id
    own = cmd.actor.department
    if cmd.actor.role == "department" and own and uow.reference.department(own).id != dept:
        raise NotYourWhistle(f"{own} cannot act for {dept}")
    return dept


def _base(cmd: Any) -> dict[str, Any]:
    return {"occurred_at": cmd.occurred_at, "actor": cmd.actor.as_dict(), "command_id": cmd.command_id}


def dispatch(uow: UnitOfWork, cmd: c.Dispatch) -> Ticket:
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    category = uow.reference.category(ticket.category)
    lead = uow.reference.department(cmd.lead).id if cmd.lead else category.lead_department
    if cmd.cooperating is not None:
        cooperating = [uow.reference.department(d).id for d in cmd.cooperating]
    else:
        cooperating = [d for d in category.cooperating if d != lead] if not cmd.lead else []
    due = uow.sla.deadlines(ticket.category, ticket.priority, cmd.occurred_at)
    ticket.dispatch(
        **_base(cmd),
        lead=lead,
        cooperating=cooperating,
        ack_due=due.ack_due,
        handle_due=due.handle_due,
        feedback_due=due.feedback_due,
        time_basis=due.time_basis,
        escalate_every_minutes=due.escalate_every_minutes,
        reason=cmd.reason,
        provisional=due.provisional,
        calendar=due.calendar,
    )
    return ticket


def _on_ticket(method: str, *fields: str, department: bool = False) -> Callable[[UnitOfWork, Any], Ticket]:
    def handler(uow: UnitOfWork, cmd: Any) -> Ticket:
        ticket = uow.get(cmd.ticket_id)
        check_claims(cmd, ticket)
        kwargs = _base(cmd) | {f: getattr(cmd, f) for f in fields}
        if department:
            kwargs["department"] = _department(uow, cmd)
        getattr(ticket, method)(**kwargs)
        return ticket

    handler.__name__ = method
    return handler


def mark_duplicate(uow: UnitOfWork, cmd: c.MarkDuplicate) -> Ticket:
    original = uow.get(cmd.original_id)  # the original must exist
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    ticket.mark_duplicate(**_base(cmd), original_id=str(original.id), original_status=original.status)
    return ticket


def escalate(uow: UnitOfWork, cmd: c.Escalate) -> Ticket:
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    ticket.escalate(**_base(cmd), deadline=cmd.deadline, deadlines=list(cmd.deadlines) if cmd.deadlines else None,
                    rung=cmd.rung, reason=cmd.reason)
    return ticket


def decide_extension(uow: UnitOfWork, cmd: c.DecideExtension) -> Ticket:
    """A granted extension moves the handling and feedback deadlines by the minutes asked,
    in the dispatch's time basis."""
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    dues: dict[str, Any] = {}
    if cmd.approve and ticket.extension is not None and ticket.handle_due is not None:
        minutes, basis = ticket.extension["minutes"], ticket.time_basis or "calendar"
        dues = {"handle_due": uow.sla.extended(basis, ticket.handle_due, minutes),
                "feedback_due": uow.sla.extended(basis, ticket.feedback_due or ticket.handle_due, minutes)}
    ticket.decide_extension(**_base(cmd), approve=cmd.approve, reason=cmd.reason, **dues)
    return ticket


def resume(uow: UnitOfWork, cmd: c.Resume) -> Ticket:
    """Every deadline open when the hold began moves by the time held, in its own time basis."""
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    dues: dict[str, Any] = {}
    if ticket.held_since is not None:
        for key, due in open_deadlines(ticket).items():  # type: ignore[arg-type]  # a ticket is a state by item
            basis = (ticket.centre_basis if key in (accept_deadline(), dispatch_deadline()) else ticket.time_basis) \
                or "calendar"
            moved = uow.sla.resumed(basis, due, ticket.held_since, cmd.occurred_at)
            if moved != due:
                dues[key] = moved
    ticket.resume(**_base(cmd), dues=dues, note=cmd.note)
    return ticket


HANDLERS: dict[type, Callable[[UnitOfWork, Any], Ticket]] = {
    c.Report: report,
    c.Accept: _on_ticket("accept", "note"),
    c.FirstContact: _on_ticket("close_at_first_contact", "mode", "note"),
    c.Dispatch: dispatch,
    c.Acknowledge: _on_ticket("acknowledge", "dispatch_no", department=True),
    c.Reject: _on_ticket("reject", "reason", "dispatch_no", department=True),
    c.Handle: _on_ticket("handle", "result", "dispatch_no", department=True),
    c.Feedback: _on_ticket("give_feedback", "message", "contacted"),
    c.Evaluate: _on_ticket("evaluate", "satisfaction", "resolved", "contacted", "comment", "method"),
    c.Reopen: _on_ticket("reopen", "reason"),
    c.Escalate: escalate,
    c.MarkDuplicate: mark_duplicate,
    c.Cancel: _on_ticket("cancel", "reason"),
    c.Close: _on_ticket("close", "note", "override"),
    c.RequestExtension: _on_ticket("request_extension", "minutes", "reason", "dispatch_no", department=True),
    c.DecideExtension: decide_extension,
    c.Hold: _on_ticket("hold", "reason"),
    c.Resume: resume,
}
