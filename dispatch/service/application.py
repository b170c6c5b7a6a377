"""The dispatch application: commands in, ticket events out, on eventsourcing.

Every entry point (CLI, Kafka engine, simulation) goes through ``execute_batch``:
load the tickets a batch touches, apply each command, and record all new events
— with the source position (a ``Tracking`` record), when there is one — in one
transaction. A refused command changes nothing and is reported in its ``Outcome``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from dispatch.adapters.logs import get_logger
from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import IntegrityError, Tracking

from dispatch.adapters import eventstore
from dispatch.adapters.eventstore import TicketStore
from dispatch.aggregates import Ticket, ticket_id_for
from dispatch.domain.case_number import case_prefix
from dispatch.domain.clock import Clock, SystemClock
from dispatch.domain.commands import MarkDuplicate, Report
from dispatch.domain.errors import ConcurrentChange, DispatchError, TicketNotFound
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.domain.timewindow import TimeWindow
from dispatch.service.handlers import HANDLERS
from dispatch.service.preload import TicketCache

__all__ = ["DispatchApp", "Gate", "Outcome"]

log = get_logger("dispatch.app")


@dataclass
class Outcome:
    """What one command did: the ticket it reached, the events it recorded, or the error."""

    command: Any
    ticket_id: UUID | None = None
    events: list[str] = field(default_factory=list)
    error: DispatchError | None = None
    version: int | None = None  # the ticket's version after the step

    @property
    def ok(self) -> bool:
        return self.error is None


class Gate(Protocol):
    """What may hold a batch's commands back and bring others in (the Kafka engine's parking,
    ``dispatch.service.parking``): ``holds(command)`` is the error to hold a command with instead of
    running it (or None); ``after(command, outcome)`` the commands to run next, right after it."""

    def holds(self, command: Any) -> DispatchError | None: ...
    def after(self, command: Any, outcome: Outcome) -> list[Any]: ...


class _Batch:
    """The tickets one batch touches: loaded together in one query, saved together."""

    def __init__(self, app: DispatchApp, commands: list[Any]):
        self.app, self.reference, self.sla, self.vault = app, app.reference, app.sla, app.vault
        self.case_numbers = app.case_numbers
        self.numbers = self._reserve(commands)  # prefix -> case numbers drawn for this batch's reports
        wanted = {tid for command in commands for tid in _tickets_named(command)}
        snapshots = app.snapshots.recorder if app.snapshots is not None else None
        self.tickets: dict[UUID, Ticket] = app.ticket_cache.load(app.recorder, app.mapper, wanted, snapshots)
        self.absent = wanted - self.tickets.keys()

    def _reserve(self, commands: list[Any]) -> dict[str, list[str]]:
        """One block of case numbers per street and day for the batch's reports, drawn in one
        transaction (a report refused later leaves a gap)."""
        if self.case_numbers is None:
            return {}
        wanted: dict[str, int] = {}
        for command in commands:
            if isinstance(command, Report):
                try:
                    street = self.reference.place(command.grid).street.id
                    prefix = case_prefix(street, command.occurred_at, self.reference.timezone)
                except DispatchError:
                    continue  # the handler refuses it
                wanted[prefix] = wanted.get(prefix, 0) + 1
        drawn = self.case_numbers.reserve(wanted) if wanted else {}
        for numbers in drawn.values():
            numbers.reverse()  # popped from the end: lowest first
        return drawn

    def case_number(self, street: str, reported_at: Any) -> str | None:
        if self.case_numbers is None:
            return None
        prefix = case_prefix(street, reported_at, self.reference.timezone)
        pool = self.numbers.get(prefix)
        if not pool:  # not foreseen (cannot happen for a Report of this batch): draw one now
            pool = self.numbers[prefix] = self.case_numbers.reserve({prefix: 1})[prefix]
        return pool.pop()

    def numbered(self) -> list[tuple[str, UUID]]:
        """(case number, ticket) of the reports this batch created."""
        return [(t.case_no, t.id) for t in self.tickets.values()
                if t.case_no and t.version == len(t.pending_events) and t.pending_events]

    def get(self, ticket_id: UUID | str) -> Ticket:
        if isinstance(ticket_id, str):  # a case number (the command model checked its form)
            found = self.case_numbers.lookup(ticket_id) if self.case_numbers is not None else None
            if found is None:
                raise TicketNotFound(f"with case number {ticket_id}")
            ticket_id = found
        assert isinstance(ticket_id, UUID)
        ticket = self.tickets.get(ticket_id)
        if ticket is None:
            if ticket_id in self.absent:
                raise TicketNotFound(ticket_id)
            ticket = self.tickets[ticket_id] = self.app.get_ticket(ticket_id)
        return ticket

    def exists(self, ticket_id: UUID) -> bool:
        try:
            self.get(ticket_id)
        except TicketNotFound:
            return False
        return True

    def add(self, ticket: Ticket) -> None:
        self.tickets[ticket.id] = ticket
        self.absent.discard(ticket.id)


def _tickets_named(command: Any) -> list[UUID]:
    """The tickets a command will read: its own, a duplicate's original, a report's future id."""
    if isinstance(command, Report):
        if command.external_ref or command.command_id:
            return [ticket_id_for(external_ref=command.external_ref, channel=command.channel,
                                  command_id=command.command_id)]
        return []
    named = [command.ticket_id]
    if isinstance(command, MarkDuplicate):
        named.append(command.original_id)
    return [n for n in named if isinstance(n, UUID)]  # a case number is looked up when it is used


class DispatchApp(TicketStore):
    """The tickets' store (``eventstore.TicketStore``: snapshots, recorders, ``get_ticket``) with
    the commands: ``execute_batch`` runs them with the reference data's rules."""

    name = "dispatch"  # eventsourcing names each subclass after itself: its tables' names come from this

    def __init__(self, env: Mapping[str, str], reference: Reference):
        self.reference = reference
        self.sla = SlaPolicy(reference)
        self.ticket_cache = TicketCache()
        # every command's business time must fall in this window, judged by this clock
        # (bootstrap() hands in the runtime's clock and the configured window)
        self.clock: Clock = SystemClock()
        self.time_window = TimeWindow()
        self.vault: Any = None  # bootstrap() hands in the database's (dispatch.adapters.vault.Vault)
        self.case_numbers: Any = None  # and its case-number counters (dispatch.adapters.case_register.CaseNumbers)
        super().__init__(env)

    def execute(self, command: Any) -> Outcome:
        """Apply one command; raise its error if it was refused."""
        outcome = self.execute_batch([command])[0]
        if outcome.error is not None:
            raise outcome.error
        return outcome

    def execute_batch(
        self,
        commands: Iterable[Any],
        tracking: Tracking | None = None,
        before_record: Callable[[list[Outcome]], None] | None = None,
        gate: Gate | None = None,
    ) -> list[Outcome]:
        """Apply commands in order; record every accepted event and ``tracking`` atomically.

        ``before_record(outcomes)`` runs after the commands ran and before anything is
        recorded; if it raises, nothing is recorded (the Kafka engine sends a batch's
        dead letters here, so they are safe before the batch's position is). ``gate`` may
        hold commands back and run others after one (``Gate``): the outcomes are then in the
        order the commands ran, one each time a command ran (a held command run again later has two)."""
        commands = list(commands)
        batch = _Batch(self, commands)
        try:
            outcomes = self._run(batch, commands, before_record, gate)
            numbered = batch.numbered()
            indexed = bool(numbered) and self.case_numbers.with_events
            if indexed:  # the index of case numbers, in the events' own transaction
                tracking = eventstore.with_numbers(tracking, [(n, str(t)) for n, t in numbered])
            self.record(batch.tickets.values(), tracking)
        except BaseException:
            self.ticket_cache.discard(list(batch.tickets))  # changed in memory, not recorded
            raise
        if numbered and not indexed:  # after them (lookups fall back to the read model meanwhile)
            self.case_numbers.record(numbered)
        self.ticket_cache.keep(list(batch.tickets.values()))
        return outcomes

    def _run(self, batch: _Batch, commands: list[Any], before_record: Callable[[list[Outcome]], None] | None,
             gate: Gate | None = None) -> list[Outcome]:
        outcomes = []
        queue = deque(commands)
        while queue:
            command = queue.popleft()
            outcome = Outcome(command, ticket_id=getattr(command, "ticket_id", None))
            held = gate.holds(command) if gate is not None else None
            try:
                if held is not None:
                    raise held
                self.time_window.check(command.occurred_at, self.clock.now())
                ticket = HANDLERS[type(command)](batch, command)
            except DispatchError as error:
                outcome.error = error
                outcome.ticket_id = getattr(error, "ticket_id", outcome.ticket_id)
            else:
                outcome.ticket_id = ticket.id
                outcome.events = [type(ticket.pending_events[-1]).__name__]  # one event per command
                outcome.version = ticket.version
            outcomes.append(outcome)
            if gate is not None:
                queue.extendleft(reversed(gate.after(command, outcome)))
        if before_record is not None:
            before_record(outcomes)
        return outcomes

    def record(self, tickets: Iterable[Ticket], tracking: Tracking | None = None) -> None:
        processing = ProcessingEvent[UUID](tracking)
        for ticket in tickets:  # ProcessingEvent.collect_events, without its Protocol isinstance checks
            processing.events.extend(ticket.collect_events())
            processing.aggregates[ticket.id] = ticket
        if not processing.events and tracking is None:
            return
        try:
            eventstore.record(self, processing)
        except IntegrityError:
            raise ConcurrentChange("another process changed these tickets at the same time; try again") from None

    def positions(self, names: Sequence[str]) -> dict[str, int | None]:
        """The last recorded source position per tracking name (e.g. ``intake:0``)."""
        recorder: Any = self.recorder  # a process recorder (construct_recorder)
        return {name: recorder.max_tracking_id(name) for name in names}

