"""Who is acting: an ``Identity`` is a signed-in user, an API client or the local operator,
with one role bound to one scope. Pure data; ``dispatch.service.access`` decides what it may do,
``dispatch.adapters.user_tables`` stores users and tokens.

Roles and the scopes they are bound to (see docs/security.md):

    supervisor  网格员        grids or a community    reports anywhere (outside its grids: 代行受理), first contact
    hotline     12345 intake  a district              reports and first contact in it, records evaluations (回访)
    dispatcher  grid centre   a street or a district  accept, whistle, escalate, duplicate, cancel, reopen, close
    department  a desk        one department          only its own calls: report in, reject, handle, feedback
    leader      big screen    a street or a district  read-only dashboards and tickets of its area
    analyst                   everything              read-only
    admin                     everything              users, reference data, every step, backfills (business time)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ROLES", "SCOPE_KINDS", "Identity"]

# role -> the scope kinds it may be bound to (the first is the default kind); () = unscoped
SCOPE_KINDS: dict[str, tuple[str, ...]] = {
    "supervisor": ("grid", "community"),
    "hotline": ("district",),
    "dispatcher": ("street", "district"),
    "department": ("department",),
    "leader": ("street", "district"),
    "analyst": (),
    "admin": (),
}
ROLES = tuple(SCOPE_KINDS)


@dataclass(frozen=True)
class Identity:
    """``name`` is what events record as the actor id; ``scope`` holds ids of ``scope_kind``
    (grid, community, street, district or department ids); ``kind`` is ``user``, ``client``
    (an API client) or ``local`` (the operator at the CLI, who holds the database itself)."""

    name: str
    role: str
    scope_kind: str | None = None
    scope: tuple[str, ...] = ()
    kind: str = "user"

    @property
    def department(self) -> str | None:
        return self.scope[0] if self.role == "department" and self.scope else None

    @property
    def may_backfill(self) -> bool:
        """Only an admin (and the local operator, who is one) may set a business time."""
        return self.role == "admin"

    def describe(self) -> str:
        where = f" of {self.scope_kind} {', '.join(self.scope)}" if self.scope else ""
        return f"{self.name} ({self.role}{where})"
