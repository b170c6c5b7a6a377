"""One handler per command: resolve names against the reference data, load the
ticket, call one aggregate method. Business rules stay in the aggregate and the
policy modules (``sla``, ``ladder``); handlers only translate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol
from uuid import UUID

from dispatch import commands as c
from dispatch.access import check_claims
from dispatch.aggregates import Ticket, ticket_id_for
from dispatch.errors import AlreadyReported, DuplicateCommand, NotYourWhistle
from dispatch.reference import Reference
from dispatch.sla import SlaPolicy

__all__ = ["HANDLERS", "UnitOfWork"]


class UnitOfWork(Protocol):
    reference: Reference
    sla: SlaPolicy
    vault: Any  # dispatch.vault.Vault: seals a reporter's contact

    def get(self, ticket_id: UUID) -> Ticket: ...
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
        external_ref=cmd.external_ref,
        reporter=uow.vault.seal(cmd.reporter.model_dump(exclude_none=True)) if cmd.reporter else None,
        media=list(cmd.media) if cmd.media else None,
    )
    uow.add(ticket)
    return ticket


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
    uow.get(cmd.original_id)  # the original must exist
    ticket = uow.get(cmd.ticket_id)
    check_claims(cmd, ticket)
    ticket.mark_duplicate(**_base(cmd), original_id=str(cmd.original_id))
    return ticket


HANDLERS: dict[type, Callable[[UnitOfWork, Any], Ticket]] = {
    c.Report: report,
    c.Accept: _on_ticket("accept", "note"),
    c.FirstContact: _on_ticket("close_at_first_contact", "mode", "note"),
    c.Dispatch: dispatch,
    c.Acknowledge: _on_ticket("acknowledge", department=True),
    c.Reject: _on_ticket("reject", "reason", department=True),
    c.Handle: _on_ticket("handle", "result", department=True),
    c.Feedback: _on_ticket("give_feedback", "message", "contacted"),
    c.Evaluate: _on_ticket("evaluate", "satisfaction", "resolved", "contacted", "comment", "method"),
    c.Reopen: _on_ticket("reopen", "reason"),
    c.Escalate: _on_ticket("escalate", "deadline", "rung", "reason"),
    c.MarkDuplicate: mark_duplicate,
    c.Cancel: _on_ticket("cancel", "reason"),
    c.Close: _on_ticket("close", "note"),
}
