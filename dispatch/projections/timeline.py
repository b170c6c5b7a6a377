"""A ticket's timeline: every event with its business time, actor, and the SLA clock then.

Read from the event store and folded with the lifecycle fold. The SLA clock lists each
deadline still open after the event (``dispatch.domain.lifecycle.open_deadlines``), with the
minutes left at that moment (negative = overdue) in the ticket's time basis.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from dispatch.domain.errors import TicketNotFound
from dispatch.domain.lifecycle import LIFECYCLE, fold, new_state, open_deadlines
from dispatch.domain.sla_policy import SlaPolicy

__all__ = ["timeline"]

_SKIP = {"originator_id", "originator_version", "timestamp", "originator_topic", "occurred_at", "actor",
         "command_id"}


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


def timeline(runtime: Any, ticket_id: UUID, events: list[tuple[int, str, Any]] | None = None) -> dict[str, Any]:
    """``events``: the ticket's ``(version, type, data)`` when the caller has read them (else from the store)."""
    if events is None:
        events = [(e.originator_version, type(e).__name__, vars(e)) for e in runtime.store.events.get(ticket_id)]
    if not events:
        raise TicketNotFound(ticket_id)
    policy = SlaPolicy(runtime.reference)
    state = new_state()
    rows = []
    for version, kind, data in events:
        at: datetime = data["occurred_at"]
        fold(state, kind, data, at, version)
        basis_name = state["time_basis"] or "calendar"
        basis = policy.basis(basis_name)
        clock = [{"deadline": key, "due": due.isoformat(), "minutes_left": basis.minutes_between(at, due)}
                 for key, due in sorted(open_deadlines(state).items(), key=lambda kv: (kv[1], kv[0]))]
        rows.append({"version": version, "type": kind, "label": LIFECYCLE[kind].label,
                     "occurred_at": at.isoformat(), "actor": data.get("actor"), "command_id": data.get("command_id"),
                     "details": {k: _plain(v) for k, v in data.items() if k not in _SKIP},
                     "time_basis": basis_name, "sla": clock})
    return {"ticket_id": str(ticket_id), "events": rows}
