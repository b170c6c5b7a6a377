"""Write use cases for people at a door (the CLI today, the HTTP API next): one lifecycle
step, as the person doing it, at a business time. The door says who acts and when; this
says in which role each step is recorded, builds the command every door builds (the intake
wire format, strictly validated) and hands it to the application."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch import commands as c

__all__ = ["ACTING_ROLE", "act"]

# Who records each step (the actor's role), unless the door says otherwise (a report's channel
# decides its reporter's role at the door).
ACTING_ROLE: dict[type, str] = {
    c.Accept: "centre", c.FirstContact: "centre", c.Dispatch: "centre", c.Feedback: "centre",
    c.Reopen: "centre", c.Escalate: "centre", c.MarkDuplicate: "centre", c.Cancel: "centre", c.Close: "centre",
    c.Acknowledge: "department", c.Reject: "department", c.Handle: "department",
    c.Evaluate: "resident",
}


def act(runtime: Any, kind: type, *, by: str, at: datetime, role: str | None = None, **fields: Any) -> Any:
    """Record one step ``kind`` (a command class) by ``by`` at ``at``; returns the outcome
    (raises the step's error if it was refused). A department's step acts for its department."""
    role = role or ACTING_ROLE[kind]
    actor = {"role": role, "id": by}
    if role == "department":
        actor["department"] = runtime.reference.department(fields["department"]).id
    command = c.parse_command({"type": kind.model_fields["type"].default,  # type: ignore[attr-defined]
                               "occurred_at": at.isoformat(), "actor": actor,
                               **{k: v for k, v in fields.items() if v is not None}})
    return runtime.app.execute(command)
