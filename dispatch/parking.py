"""Answers that arrive before the dispatch they answer, and wait for it (the Kafka engine).

A department answers on its own topic; the dispatch it answers came through intake. Two topics
are read at their own pace — after an outage, while catching up, in a rebuild from Kafka — so
an answer naming dispatch ``n`` (``dispatch_no``) can reach the engine before dispatch ``n`` has
been applied. Refusing it would lose a true answer; so the engine *parks* it:

- An answer refused as ``awaiting_dispatch`` is parked (``dispatch.parked``): its row is written
  in the transaction that stores the batch and moves the partition past it.
- **Ordered per ticket**: while a ticket has an answer parked for dispatch ``n``, a later answer
  of that ticket for dispatch ``n`` or later is parked behind it, not applied before it.
- **Woken by the ticket**: when a batch applies the dispatch (or ends the ticket: closed,
  cancelled, marked duplicate), the ticket's parked answers run right after that step, oldest
  first, in the same transaction: each is applied, or refused and dead-lettered with its own
  bytes and the reason — or, if it still waits (it answers a later dispatch), stays parked.
- **Bounded**: at most ``MAX_PER_TICKET`` answers wait per ticket and ``MAX_PARKED`` in all;
  beyond that an answer is dead-lettered (``parking_full``) rather than held.
- A periodic sweep (``Lot.sweeping``) retries every parked answer, for the case where another
  engine process applied the dispatch while this one was parking its answer.

``Lot`` is the ``application.Gate`` that does this for one batch; the engine supplies what it
reads and decodes, and stores what the lot decided (``parked_rows``, ``unparked``, ``given_up``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dispatch.application import Outcome
from dispatch.commandlog import row_of
from dispatch.eventstore import WithOutcomes
from dispatch.kafka.wire import DeadLetter
from dispatch.commands import Acknowledge, Handle, Reject, RequestExtension
from dispatch.errors import AwaitingDispatch, DispatchError, ParkingFull
from dispatch.lifecycle import LIFECYCLE, TERMINAL, Status
from dispatch.parked import ParkedAnswer

__all__ = ["MAX_PARKED", "MAX_PER_TICKET", "WAKERS", "Lot"]

MAX_PER_TICKET = 20
MAX_PARKED = 10_000
_ANSWERS = (Acknowledge, Reject, Handle, RequestExtension)
# the steps after which a ticket's parked answers are tried again: a dispatch, or the end
WAKERS = frozenset(name for name, step in LIFECYCLE.items()
                   if step.to is not None and str(getattr(step.to, "value", step.to)) in (*TERMINAL,
                                                                                          Status.DISPATCHED.value))


def _waits(command: Any) -> int | None:
    """The dispatch an answer names, if it is an answer that names one."""
    return command.dispatch_no if isinstance(command, _ANSWERS) else None


def _key(ticket: Any) -> str:
    return str(ticket)


@dataclass
class Lot:
    """The parked answers as one batch sees them (an ``application.Gate``).

    ``waiting``: ticket → (answers parked, lowest dispatch they wait for), as stored when the
    batch began (``dispatch.parked.waiting``); ``load(tickets)``: their stored rows, oldest
    first; ``decode(row)``: the command a stored row holds (raises ``DispatchError`` if it no
    longer decodes); ``origin(command)``: the message a new answer came in (a consumer record)."""

    waiting: dict[str, tuple[int, int]]
    load: Callable[[list[str]], list[ParkedAnswer]]
    decode: Callable[[ParkedAnswer], Any]
    origin: Callable[[Any], Any]
    floors: dict[str, int] = field(default_factory=dict)  # ticket → lowest dispatch an answer waits for
    counts: dict[str, int] = field(default_factory=dict)
    new: dict[int, tuple[str, Any]] = field(default_factory=dict)  # id(command) → (ticket, command), to park
    retried: dict[int, ParkedAnswer] = field(default_factory=dict)  # id(command) → its stored row
    stored: dict[int, Any] = field(default_factory=dict)  # a stored row's id → its command, once read
    still: set[int] = field(default_factory=set)  # id(command) of the stored ones that still wait
    undecodable: list[tuple[ParkedAnswer, DispatchError]] = field(default_factory=list)
    full: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.counts = {t: n for t, (n, _) in self.waiting.items()}
        self.floors = {t: lowest for t, (_, lowest) in self.waiting.items()}
        self.total = sum(self.counts.values())

    # -- the gate ----------------------------------------------------------------------------------
    def holds(self, command: Any) -> DispatchError | None:
        n = _waits(command)
        floor = self.floors.get(_key(command.ticket_id)) if n is not None else None
        if floor is not None and n is not None and n >= floor:
            return AwaitingDispatch(f"an earlier answer on ticket {command.ticket_id} waits for dispatch {floor}; "
                                    "this one waits behind it")
        return None

    def after(self, command: Any, outcome: Outcome) -> list[Any]:
        n = _waits(command)
        if n is not None and isinstance(outcome.error, AwaitingDispatch):
            ticket = _key(outcome.ticket_id or command.ticket_id)
            self.floors[ticket] = min(n, self.floors.get(ticket, n))
            if id(command) in self.retried:  # a stored one keeps its row
                self.still.add(id(command))
            else:
                if self.counts.get(ticket, 0) >= MAX_PER_TICKET or self.total >= MAX_PARKED:
                    self.full.add(id(command))
                else:
                    self.new[id(command)] = (ticket, command)
                    self.counts[ticket] = self.counts.get(ticket, 0) + 1
                    self.total += 1
            return []
        self.still.discard(id(command))
        if outcome.ok and outcome.events and outcome.events[0] in WAKERS:
            return self._wake(_key(outcome.ticket_id))
        return []

    def _wake(self, ticket: str) -> list[Any]:
        if ticket not in self.floors:
            return []
        del self.floors[ticket]
        commands: list[Any] = []
        if self.waiting.get(ticket, (0, 0))[0]:
            for row in self.load([ticket]):
                known = self.stored.get(row.id) if row.id is not None else None
                if known is None:
                    commands += self._retry(row)
                elif id(known) in self.still:  # woken before in this batch, and it still waited
                    commands.append(known)
        for key in [k for k, (t, _) in self.new.items() if t == ticket]:  # parked earlier in this batch
            commands.append(self.new.pop(key)[1])
            self.counts[ticket] -= 1
            self.total -= 1
        return commands

    def _retry(self, row: ParkedAnswer) -> list[Any]:
        try:
            command = self.decode(row)
        except DispatchError as error:
            self.undecodable.append((row, error))
            return []
        self.retried[id(command)] = row
        if row.id is not None:
            self.stored[row.id] = command
        return [command]

    # -- a sweep: every stored answer, tried again -------------------------------------------------
    @classmethod
    def sweeping(cls, rows: list[ParkedAnswer], decode: Callable[[ParkedAnswer], Any]) -> tuple[Lot, list[Any]]:
        """A lot that retries ``rows`` (all stored answers), and the commands to run."""
        lot = cls({}, lambda _: [], decode, lambda _: None)
        commands = [c for row in rows for c in lot._retry(row)]
        lot.counts = {}
        for row in rows:
            lot.counts[row.ticket_id] = lot.counts.get(row.ticket_id, 0) + 1
        lot.total = len(rows)
        return lot, commands

    # -- what the batch stores -----------------------------------------------------------------------
    def parked_rows(self) -> list[tuple[Any, ...]]:
        """The new answers to park, as ``dispatch.parked`` rows."""
        rows = []
        for ticket, command in self.new.values():
            record = self.origin(command)
            rows.append(ParkedAnswer(None, ticket, command.dispatch_no, record.topic, record.partition,
                                     record.offset, record.timestamp, record.key, record.value,
                                     command.occurred_at.isoformat()).row())
        return rows

    def is_parked(self, outcome: Outcome) -> bool:
        """The outcome is an answer left waiting (new, or stored and still waiting)."""
        key = id(outcome.command)
        return key in self.new or (key in self.retried and isinstance(outcome.error, AwaitingDispatch))

    def unparked(self, outcomes: list[Outcome]) -> list[int]:
        """The stored answers this batch applied, refused, or could not read any more."""
        done = [self.retried[id(o.command)].id for o in outcomes
                if id(o.command) in self.retried and not isinstance(o.error, AwaitingDispatch)]
        return [i for i in done + [row.id for row, _ in self.undecodable] if i is not None]

    def given_up(self, outcome: Outcome) -> DispatchError | None:
        """Why an answer that should have waited is refused instead (the lot is full)."""
        if id(outcome.command) in self.full:
            return ParkingFull(f"{MAX_PER_TICKET} answers on ticket {outcome.ticket_id} (or {MAX_PARKED} in all) "
                               "already wait for their dispatch; this one was not kept")
        return None

    @staticmethod
    def final(outcomes: list[Outcome]) -> list[Outcome]:
        """One outcome per command: its last (an answer parked and woken in the same batch ran twice)."""
        return list({id(o.command): o for o in outcomes}.values())

    def settle(self, outcomes: list[Outcome], tracking: WithOutcomes, dead: list[DeadLetter]) -> None:
        """What a batch's outcomes write with it (``before_record``): each command's log row, a
        dead letter for each refusal (with the bytes it came in), the answers parked, and the
        stored ones applied or given up."""
        outcomes = self.final(outcomes)
        for outcome in outcomes:
            if self.is_parked(outcome):
                continue
            outcome.error = self.given_up(outcome) or outcome.error
            row = row_of(outcome.command, outcome)  # the HTTP API answers from the log
            if row is not None:
                tracking.rows.append(row)
            if outcome.error is not None:
                record = self.retried.get(id(outcome.command)) or self.origin(outcome.command)
                dead.append(DeadLetter.of(record, outcome.error.code, str(outcome.error), ticket_id=outcome.ticket_id))
        dead += [DeadLetter.of(row, error.code, str(error)) for row, error in self.undecodable]
        dead.sort(key=lambda letter: (letter.topic, letter.partition, letter.offset))
        tracking.parked.extend(self.parked_rows())
        tracking.unparked.extend(self.unparked(outcomes))
