"""Load many tickets in one query.

A Kafka batch touches hundreds of tickets; loading them one ``repository.get`` at a
time costs a database round trip each. This reads the stored events of all of them
with one ``IN`` / ``= ANY`` query (``dispatch.adapters.eventstore.stored_events``) and replays each
ticket from its latest snapshot, if it has one, and the events after it, exactly as the
repository does.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from dispatch.adapters.eventstore import snapshots_and_events, stored_events, stored_versions
from dispatch.aggregates import Ticket

__all__ = ["TicketCache", "load_tickets"]


def load_tickets(recorder: Any, mapper: Mapper[Any], ids: Collection[UUID],
                 snapshots: Any = None) -> dict[UUID, Ticket]:
    """The current state of every ticket in ``ids`` that exists (absent ids are left out).
    With ``snapshots`` (the snapshot store's recorder), a ticket that has a snapshot starts
    from its latest one and only the events after it are read."""
    tickets: dict[UUID, Ticket] = {}
    if not ids:
        return tickets
    wanted = list(ids)
    base: dict[UUID, Any] = {}
    if snapshots is not None:
        latest, events = snapshots_and_events(recorder, snapshots, wanted)
        for tid, snapshot in latest.items():
            base[tid] = mapper.to_domain_event(snapshot).mutate(None)  # type: ignore[attr-defined]
    else:
        events = stored_events(recorder, wanted)
    for tid, stored in events.items():
        aggregate: Any = base.get(tid)
        for s in stored:
            aggregate = mapper.to_domain_event(s).mutate(aggregate)  # type: ignore[attr-defined]
        tickets[tid] = aggregate
    for tid, aggregate in base.items():
        tickets.setdefault(tid, aggregate)
    return tickets


class TicketCache:
    """Tickets as this process last recorded them. A cached ticket is used only if the
    store's latest version of it is still the cached one (checked per batch in one
    index-only query), so a write by any other process is always seen; tickets whose
    batch was not recorded are dropped (``discard``)."""

    def __init__(self, limit: int = 50_000):
        self.limit = limit
        self.tickets: dict[UUID, Ticket] = {}

    def load(self, recorder: Any, mapper: Mapper[Any], ids: Collection[UUID],
             snapshots: Any = None) -> dict[UUID, Ticket]:
        if not ids:
            return {}
        cached = [tid for tid in ids if tid in self.tickets]
        versions = stored_versions(recorder, cached) if cached else {}
        if versions is None:
            return load_tickets(recorder, mapper, ids, snapshots)
        found: dict[UUID, Ticket] = {}
        for tid in cached:
            ticket = self.tickets[tid]
            if versions.get(tid) == ticket.version:
                found[tid] = ticket
            else:
                del self.tickets[tid]
        missing = [tid for tid in ids if tid not in found]
        if missing:
            found.update(load_tickets(recorder, mapper, missing, snapshots))
        return found

    def keep(self, tickets: Collection[Ticket]) -> None:
        if len(self.tickets) + len(tickets) > self.limit:
            self.tickets.clear()
        for ticket in tickets:
            self.tickets[ticket.id] = ticket

    def discard(self, ids: Collection[UUID]) -> None:
        for tid in ids:
            self.tickets.pop(tid, None)

    def clear(self) -> None:
        self.tickets.clear()
