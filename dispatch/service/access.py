"""Authorization, decided here and nowhere else: role × scope × ticket (docs/security.md).

Every door asks the same questions: the HTTP API with the signed-in identity, the CLI with
the local operator (or ``--as USER``), the Kafka intake with the actor the message claims
(authenticated at the broker door, see docs/security.md).

- ``authorize(identity, kind, ticket, fields)`` — may this identity record this step on this
  ticket? Returns the actor the event records; raises ``Forbidden``.
- ``may_read(identity, ticket)`` / ``read_scope(identity)`` — which tickets it sees;
  ``visible_calls`` — which departments' calls on a ticket it sees.
- ``may_view(identity, view)`` — figures, work lists, exports, users.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dispatch.domain.errors import BackfillNotAllowed, Forbidden
from dispatch.domain.identity import Identity

__all__ = ["ACTING_ROLE", "CALLBACK_ROLES", "CLAIMS", "sees_contact", "STEPS", "VIEWS", "actor_for", "authorize", "check_backfill", "check_claims", "may_read", "may_view", "sees_change",
           "read_scope", "visible_calls", "where_in_scope"]

# Which steps each role records (by command class name: ``dispatch.domain.commands``, checked by a test,
# named here so that a read need not import the command models). admin: every step.
STEPS: dict[str, frozenset[str]] = {
    "supervisor": frozenset({"Report", "FirstContact"}),
    "hotline": frozenset({"Report", "FirstContact", "Evaluate"}),
    "dispatcher": frozenset({"Report", "Accept", "FirstContact", "Dispatch", "Feedback", "Evaluate", "Reopen",
                             "Escalate", "MarkDuplicate", "Cancel", "Close", "DecideExtension", "Hold",
                             "Resume"}),
    "department": frozenset({"Acknowledge", "Reject", "Handle", "Feedback", "RequestExtension"}),
    "leader": frozenset(),
    "analyst": frozenset(),
    "display": frozenset(),
}
# Which read views each role has beyond tickets (tickets are filtered by ``read_scope``).
VIEWS: dict[str, frozenset[str]] = {
    "supervisor": frozenset({"reference"}),
    "hotline": frozenset({"reference"}),
    "dispatcher": frozenset({"reference", "dashboard", "sla", "overdue"}),
    "department": frozenset({"reference", "inbox", "overdue"}),
    "leader": frozenset({"reference", "dashboard", "sla", "overdue"}),
    "display": frozenset({"dashboard", "sla"}),  # a big screen's display token: one street's figures
    "analyst": frozenset({"reference", "dashboard", "sla", "overdue", "inbox", "export"}),
    "admin": frozenset({"reference", "dashboard", "sla", "overdue", "inbox", "export", "users"}),
}
# The actor role each step is recorded under when an admin records it (a backfill).
ACTING_ROLE: dict[str, str] = {
    "Report": "centre", "Accept": "centre", "FirstContact": "centre", "Dispatch": "centre", "Feedback": "centre",
    "Reopen": "centre", "Escalate": "centre", "MarkDuplicate": "centre", "Cancel": "centre", "Close": "centre",
    "Acknowledge": "department", "Reject": "department", "Handle": "department", "Evaluate": "resident",
    "RequestExtension": "department", "DecideExtension": "centre", "Hold": "centre", "Resume": "centre",
}
# What an actor's role (as a Kafka message claims it) may record at all: the floor every
# command meets in the engine, whatever door it came through (see ``check_claims``).
_ALL = frozenset(ACTING_ROLE)
CLAIMS: dict[str, frozenset[str]] = {
    "supervisor": frozenset({"Report", "FirstContact", "Evaluate"}),  # 核查: a supervisor verifies its report
    "hotline": frozenset({"Report", "FirstContact", "Evaluate"}),
    "resident": frozenset({"Report", "Evaluate"}),
    "centre": _ALL - {"Acknowledge", "Reject", "Handle", "RequestExtension"},
    "department": frozenset({"Acknowledge", "Reject", "Handle", "Feedback", "RequestExtension"}),
    "system": _ALL,
    "analyst": frozenset(),
}
_PLACED = {"dashboard", "sla", "overdue"}  # views of a place: a scoped role names one of its own
_EVENT_ROLE = {"supervisor": "supervisor", "hotline": "hotline", "dispatcher": "centre", "department": "department"}
_COLUMN = {"grid": "grid", "community": "community", "street": "street", "district": "district"}


def _place_in_scope(identity: Identity, place: Mapping[str, Any]) -> bool:
    column = _COLUMN.get(identity.scope_kind or "")
    return column is not None and place.get(column) in identity.scope


def _calls_of(ticket: Any) -> list[Mapping[str, Any]]:
    calls = ticket["calls"] if isinstance(ticket, Mapping) else getattr(ticket, "calls", {})
    return list(calls.values()) if isinstance(calls, Mapping) else list(calls or ())


def _place(ticket: Any) -> Mapping[str, Any]:
    if isinstance(ticket, Mapping):
        return ticket
    return {k: getattr(ticket, k, None) for k in _COLUMN}


def may_read(identity: Identity, ticket: Any) -> bool:
    """Whether ``identity`` sees this ticket (an aggregate or a row with places and calls)."""
    if identity.role in ("admin", "analyst"):
        return True
    if identity.role == "department":
        return any(call.get("department") == identity.department for call in _calls_of(ticket))
    return _place_in_scope(identity, _place(ticket))


def sees_change(identity: Identity, change: Mapping[str, Any]) -> bool:
    """Whether a live page of ``identity`` is told that this ticket moved (``change``: its places,
    reporter and called departments): what it may read, and what it reported itself; a report
    waiting to be placed (``unplaced``) moves the consoles of the grid centres."""
    if change.get("unplaced"):
        return identity.role in ("dispatcher", "admin")
    return may_read(identity, change) or (change.get("reported_by") is not None
                                         and change.get("reported_by") == identity.name)


def read_scope(identity: Identity) -> tuple[str, tuple[str, ...]] | None:
    """The ticket filter for lists: ``(column, ids)`` — a place column, or ``department``
    for a desk's own calls — or None for everything."""
    if identity.role in ("admin", "analyst"):
        return None
    if identity.role == "department":
        return ("department", identity.scope)
    return (_COLUMN.get(identity.scope_kind or "", "grid"), identity.scope)


def visible_calls(identity: Identity, ticket: Any) -> set[str] | None:
    """The departments whose calls ``identity`` sees on ``ticket``; None = all. A desk sees
    its own calls; the lead department also sees its cooperating departments' calls on the
    same dispatch."""
    if identity.role != "department":
        return None
    mine = identity.department
    lead = ticket["lead"] if isinstance(ticket, Mapping) else getattr(ticket, "lead", None)
    if lead == mine:
        return None
    return {mine} if mine else set()


def may_view(identity: Identity, view: str, *, street: str | None = None, district: str | None = None,
             department: str | None = None) -> None:
    """Raise ``Forbidden`` unless ``identity`` may see ``view`` for the place or department asked."""
    if view not in VIEWS.get(identity.role, frozenset()):
        raise Forbidden(f"{identity.describe()} may not see {view}")
    if identity.role == "department" and department is not None and department != identity.department:
        raise Forbidden(f"{identity.describe()} sees only its own department's calls")
    if identity.role in ("leader", "dispatcher", "display") and identity.scope and view in _PLACED:
        if identity.scope_kind == "street" and street not in identity.scope:
            raise Forbidden(f"{identity.describe()} sees only its own street(s): name one of them")
        if identity.scope_kind == "district" and district not in identity.scope:
            raise Forbidden(f"{identity.describe()} sees only its own district")


def check_claims(command: Any, ticket: Any) -> None:
    """The floor for every command, checked in the engine on the ticket it loaded: the actor's
    role may record this step, and a department acts only on its own call (and gives the
    feedback only as the lead). An HTTP or CLI identity has passed ``authorize`` already; a
    Kafka producer is held to this (its identity is the broker's to prove, docs/security.md)."""
    actor = command.actor
    if type(command).__name__ not in CLAIMS.get(actor.role, frozenset()):
        raise Forbidden(f"an actor in role {actor.role} may not {type(command).__name__.lower()}")
    if actor.role == "department" and type(command).__name__ == "Feedback" and getattr(ticket, "lead", None) != actor.department:
        raise Forbidden("only the lead department gives the feedback")


CALLBACK_ROLES = frozenset({"hotline", "dispatcher", "admin"})  # who calls the reporter back (回访)


def sees_contact(identity: Identity | None) -> bool:
    """Whether ``identity`` sees a reporter's name, phone and e-mail in full (None: the local
    operator); everyone else sees them masked."""
    return identity is None or identity.role in CALLBACK_ROLES


def check_backfill(identity: Identity, business_time_given: bool) -> None:
    if business_time_given and not identity.may_backfill:
        raise BackfillNotAllowed("only an admin may set a business time (occurred_at); leave it out and the "
                                 "time the server received the step is recorded")


def actor_for(identity: Identity, kind: type, department: str | None = None,
              on_behalf: bool = False, as_role: str | None = None) -> dict[str, Any]:
    """The actor an event records for ``identity`` doing ``kind``; an admin's backfill may
    say in which role (``as_role``: whose step it records, e.g. a hotline report)."""
    role = _EVENT_ROLE.get(identity.role) or as_role or ACTING_ROLE[kind.__name__]
    actor: dict[str, Any] = {"role": role, "id": identity.name}
    if role == "department":
        actor["department"] = identity.department or department
    if identity.role == "supervisor" and identity.scope_kind == "grid" and identity.scope:
        actor["grid"] = identity.scope[0]
    if on_behalf:
        actor["on_behalf"] = True
    return actor


def authorize(identity: Identity, kind: type, ticket: Any, fields: Mapping[str, Any],
              as_role: str | None = None) -> dict[str, Any]:
    """May ``identity`` record step ``kind`` (a command class) with ``fields`` on ``ticket``
    (the aggregate; for a report, the place it names: ``{"grid", "community", "street",
    "district"}``)? Returns the event's actor, or raises ``Forbidden``."""
    if identity.role == "admin":
        return actor_for(identity, kind, fields.get("department"), as_role=as_role)
    if kind.__name__ not in STEPS.get(identity.role, frozenset()):
        raise Forbidden(f"{identity.describe()} may not {kind.__name__.lower()}")
    if identity.role == "department":
        asked = fields.get("department")
        if asked is not None and asked != identity.department:
            raise Forbidden(f"{identity.describe()} acts only for its own department")
        mine = [call for call in _calls_of(ticket) if call.get("department") == identity.department]
        if not mine:
            raise Forbidden(f"{identity.describe()} has no call on this ticket")
        if kind.__name__ in ("Feedback", "RequestExtension") and getattr(ticket, "lead", None) != identity.department:
            raise Forbidden("only the lead department gives the feedback or asks for an extension")
        return actor_for(identity, kind)
    in_scope = _place_in_scope(identity, _place(ticket))
    if kind.__name__ == "Report" and identity.role == "supervisor":
        return actor_for(identity, kind, on_behalf=not in_scope)  # 首问: taken anywhere, on behalf
    if not in_scope:
        raise Forbidden(f"{identity.describe()} may not act on a ticket outside its "
                        f"{identity.scope_kind or 'scope'}")
    return actor_for(identity, kind)
