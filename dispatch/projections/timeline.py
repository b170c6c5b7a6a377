"""A ticket's timeline: every event with its business time, actor, and the SLA clock then.

Read from the event store. The SLA clock lists each deadline still open after the event,
with the minutes left at that moment (negative = overdue) in the ticket's time basis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from dispatch.errors import TicketNotFound
from dispatch.sla import SlaPolicy

__all__ = ["timeline"]

_SKIP = {"originator_id", "originator_version", "timestamp", "originator_topic", "occurred_at", "actor",
         "command_id"}
_TERMINAL = {"Closed", "Cancelled", "MarkedDuplicate", "ClosedAtFirstContact"}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _advance(kind: str, data: dict[str, Any], open_: dict[str, datetime], lead: list[str]) -> None:
    """Update the open deadlines (key -> due) for one event."""
    if kind in ("Dispatched", "Redispatched"):
        open_.clear()
        no = data["dispatch_no"]
        for call in data["calls"]:
            open_[f"ack:{call['call_id']}"] = call["ack_due"]
        open_[f"handle:{no}"], open_[f"feedback:{no}"] = data["handle_due"], data["feedback_due"]
        lead[:] = [data["lead"], str(no)]
    elif kind in ("Acknowledged", "Rejected"):
        open_.pop(f"ack:{data['call_id']}", None)
        if kind == "Rejected" and lead and data["department"] == lead[0]:
            open_.pop(f"handle:{lead[1]}", None)
            open_.pop(f"feedback:{lead[1]}", None)
    elif kind == "Handled" and lead:
        open_.pop(f"handle:{lead[1]}", None)
    elif kind == "FeedbackGiven" and lead:
        open_.pop(f"feedback:{lead[1]}", None)
    elif kind in _TERMINAL:
        open_.clear()


def timeline(runtime: Any, ticket_id: UUID) -> dict[str, Any]:
    events = list(runtime.app.events.get(ticket_id))
    if not events:
        raise TicketNotFound(ticket_id)
    policy = SlaPolicy(runtime.reference)
    basis_name = "calendar"
    open_: dict[str, datetime] = {}
    lead: list[str] = []
    rows = []
    for event in events:
        kind, data = type(event).__name__, vars(event)
        at: datetime = data["occurred_at"]
        basis_name = data.get("time_basis", basis_name)
        _advance(kind, data, open_, lead)
        basis = policy.basis(basis_name)
        clock = [{"deadline": key, "due": due.isoformat(), "minutes_left": basis.minutes_between(at, due)}
                 for key, due in sorted(open_.items(), key=lambda kv: (kv[1], kv[0]))]
        rows.append({"version": event.originator_version, "type": kind, "occurred_at": at.isoformat(),
                     "actor": data.get("actor"), "command_id": data.get("command_id"),
                     "details": {k: _plain(v) for k, v in data.items() if k not in _SKIP},
                     "time_basis": basis_name, "sla": clock})
    return {"ticket_id": str(ticket_id), "events": rows}
