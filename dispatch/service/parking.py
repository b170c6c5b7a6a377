"""Commands that arrive before what they follow, and wait for it (the Kafka engine): an answer
before the dispatch it answers, any command before the report of its ticket.

A department answers on its own topic; the dispatch it answers came through intake. Two topics
are read at their own pace — after an outage, while catching up, in a rebuild from Kafka — so
an answer naming dispatch ``n`` (``dispatch_no``) can reach the engine before dispatch ``n`` has
been applied. Refusing it would lose a true answer; so the engine *parks* it:

- An answer refused as ``awaiting_dispatch`` is parked (``dispatch.adapters.parked_store``): its row is written
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
- **Before the report.** One ticket's commands travel on up to three topics (intake,
  ``intake.hotline``, ``answers.<slug>``) whose relative order no producer controls, and a
  producer knows a ticket's id before its report is applied (``ticket_id_for``). So any command
  naming a ticket id the store does not hold yet (``ticket_not_found``) is parked too, waiting
  for the report (``dispatch_no`` 0); every later command of that ticket is parked behind it, in
  order; the report wakes them. One still waiting ``REPORT_WINDOW`` after it was parked (the
  engine's clock) is given up at the next sweep: dead-lettered ``ticket_not_found``.

``Lot`` is the ``application.Gate`` that does this for one batch; the engine supplies what it
reads and decodes, and stores what the lot decided (``parked_rows``, ``unparked``, ``given_up``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from dispatch.adapters.eventstore import WithOutcomes
from dispatch.adapters.kafka.wire import DeadLetter
from dispatch.adapters.outcome_log import row_of
from dispatch.domain.commands import Acknowledge, Handle, Reject, RequestExtension
from dispatch.service.application import Outcome
from datetime import datetime, timedelta
from uuid import UUID

from dispatch.adapters.parked_store import ParkedAnswer
from dispatch.domain.errors import (AwaitingDispatch, DispatchError, FeedbackNotGiven, HiddenTicket, ParkingFull, TicketNotDispatched, TicketNotEvaluated, TicketNotFound, TicketNotHandled)
from dispatch.domain.lifecycle import LIFECYCLE, TERMINAL, Status

__all__ = ["MAX_PARKED", "MAX_PER_TICKET", "REPORT", "REPORT_WINDOW", "TURN", "WAKERS", "Lot"]

MAX_PER_TICKET = 20
REPORT_WINDOW = timedelta(minutes=10)
REPORT = 0  # what a command parked before its ticket's report waits for (in place of a dispatch)
TURN = -1  # what one that came before its report waits for once the report is there: its turn
MAX_PARKED = 10_000
_ANSWERS = (Acknowledge, Reject, Handle, RequestExtension)
# what the lifecycle says to a step that may come right later: for a command that came before its report
_NOT_YET = (TicketNotDispatched, TicketNotHandled, TicketNotEvaluated, FeedbackNotGiven)
# the steps after which a ticket's parked answers are tried again: a dispatch, or the end
WAKERS = frozenset(name for name, step in LIFECYCLE.items()
                   if step.to is not None and str(getattr(step.to, "value", step.to)) in (*TERMINAL,
                                                                                          Status.DISPATCHED.value)) | {"Reported"}


def _waits(command: Any, error: DispatchError | None = None) -> int | None:
    """What a command waits for: ``REPORT`` if it names a ticket id the store does not hold (after
    ``error``), else the dispatch an answer names, if it names one."""
    if _before_report(command, error):
        return REPORT
    return command.dispatch_no if isinstance(command, _ANSWERS) else None


def _before_report(command: Any, error: DispatchError | None) -> bool:
    if not isinstance(error, TicketNotFound) or isinstance(error, HiddenTicket):
        return False
    ticket = getattr(command, "ticket_id", None)
    if ticket is None:
        return False
    try:
        UUID(str(ticket))  # a ticket id a producer knows ahead (a case number is drawn when applied)
    except ValueError:
        return False
    return True


def _waiting(error: DispatchError | None) -> bool:
    return isinstance(error, AwaitingDispatch) or (isinstance(error, TicketNotFound)
                                                     and not isinstance(error, HiddenTicket))


def _key(ticket: Any) -> str:
    return str(ticket)


@dataclass
class Lot:
    """The parked commands as one batch sees them (an ``application.Gate``).

    ``waiting``: ticket → (commands parked, lowest dispatch or report they wait for, whether some
    wait for their turn), as stored when the batch began (``dispatch.adapters.parked_store.waiting``);
    ``load(tickets)``: their stored rows, oldest first; ``decode(row)``: the command a stored row
    holds (raises ``DispatchError`` if it no longer decodes); ``origin(command)``: the message a
    new command came in (a consumer record); ``now``: the engine's clock."""

    waiting: dict[str, tuple[int, int | None, bool]]
    load: Callable[[list[str]], list[ParkedAnswer]]
    decode: Callable[[ParkedAnswer], Any]
    origin: Callable[[Any], Any]
    now: Callable[[], datetime] | None = None  # the engine's clock: when a command is parked, and given up
    window: timedelta = REPORT_WINDOW
    floors: dict[str, int] = field(default_factory=dict)  # ticket → lowest dispatch (0: the report) awaited
    turns: set[str] = field(default_factory=set)  # tickets with early commands waiting for their turn
    counts: dict[str, int] = field(default_factory=dict)
    new: dict[int, tuple[str, Any, int]] = field(default_factory=dict)  # id(command) → (ticket, command, waits)
    retried: dict[int, ParkedAnswer] = field(default_factory=dict)  # id(command) → its stored row
    stored: dict[int, Any] = field(default_factory=dict)  # a stored row's id → its command, once read
    still: set[int] = field(default_factory=set)  # id(command) of the stored ones that still wait
    early: set[int] = field(default_factory=set)  # id(command) of those that came before their report
    moved: dict[int, int] = field(default_factory=dict)  # id(command) of a stored one → what it waits for now
    undecodable: list[tuple[ParkedAnswer, DispatchError]] = field(default_factory=list)
    full: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.counts = {t: n for t, (n, _, _) in self.waiting.items()}
        self.floors = {t: lowest for t, (_, lowest, _) in self.waiting.items() if lowest is not None}
        self.turns = {t for t, (_, _, turns) in self.waiting.items() if turns}
        self.total = sum(self.counts.values())

    # -- the gate ----------------------------------------------------------------------------------
    def holds(self, command: Any) -> DispatchError | None:
        ticket = getattr(command, "ticket_id", None)
        if ticket is not None and self.floors.get(_key(ticket)) == REPORT:
            return TicketNotFound(ticket)  # an earlier command of it waits for the report: this one behind it
        n = _waits(command)
        floor = self.floors.get(_key(command.ticket_id)) if n is not None else None
        if floor is not None and n is not None and n >= floor:
            return AwaitingDispatch(f"an earlier answer on ticket {command.ticket_id} waits for dispatch {floor}; "
                                    "this one waits behind it")
        return None

    def after(self, command: Any, outcome: Outcome) -> list[Any]:
        key = id(command)
        n = _waits(command, outcome.error)
        if n is not None and _waiting(outcome.error) and not self._expired(command):
            ticket = _key(outcome.ticket_id or command.ticket_id)
            self.floors[ticket] = min(n, self.floors.get(ticket, n))
            self._park(key, ticket, command, n)
            return []
        if key in self.early and isinstance(outcome.error, _NOT_YET) and not self._expired(command):
            ticket = _key(outcome.ticket_id or command.ticket_id)  # came before its report: waits for its turn
            self.turns.add(ticket)
            self._park(key, ticket, command, TURN)
            return []
        self.still.discard(key)
        if outcome.ok and outcome.events:
            ticket = _key(outcome.ticket_id)
            if outcome.events[0] in WAKERS or ticket in self.turns:
                return self._wake(ticket)
        return []

    def _park(self, key: int, ticket: str, command: Any, waits: int) -> None:
        if key in self.retried:  # a stored one keeps its row (rewritten if it waits for something else now)
            self.still.add(key)
            self.moved[key] = waits
        elif self.counts.get(ticket, 0) >= MAX_PER_TICKET or self.total >= MAX_PARKED:
            self.full.add(key)
        else:
            self.new[key] = (ticket, command, waits)
            self.counts[ticket] = self.counts.get(ticket, 0) + 1
            self.total += 1

    def _expired(self, command: Any) -> bool:
        """A stored command that came before its report, still waiting past the window: given up now."""
        row = self.retried.get(id(command))
        if row is None or row.dispatch_no > REPORT or self.now is None or not row.parked_at:
            return False
        return datetime.fromisoformat(row.parked_at) + self.window <= self.now()

    def _wake(self, ticket: str) -> list[Any]:
        """The ticket's parked commands, to run now, in business-time order."""
        if ticket not in self.floors and ticket not in self.turns:
            return []
        self.floors.pop(ticket, None)
        self.turns.discard(ticket)
        commands: list[Any] = []
        if self.waiting.get(ticket, (0, None, False))[0]:
            for row in self.load([ticket]):
                known = self.stored.get(row.id) if row.id is not None else None
                if known is None:
                    commands += self._retry(row)
                elif id(known) in self.still:  # woken before in this batch, and it still waited
                    commands.append(known)
        for key in [k for k, (t, _, _) in self.new.items() if t == ticket]:  # parked earlier in this batch
            _, command, waits = self.new.pop(key)
            if waits <= REPORT:
                self.early.add(key)
            commands.append(command)
            self.counts[ticket] -= 1
            self.total -= 1
        return sorted(commands, key=lambda command: command.occurred_at)

    def _retry(self, row: ParkedAnswer) -> list[Any]:
        try:
            command = self.decode(row)
        except DispatchError as error:
            self.undecodable.append((row, error))
            return []
        self.retried[id(command)] = row
        if row.dispatch_no <= REPORT:
            self.early.add(id(command))
        if row.id is not None:
            self.stored[row.id] = command
        return [command]

    # -- a sweep: every stored answer, tried again -------------------------------------------------
    @classmethod
    def sweeping(cls, rows: list[ParkedAnswer], decode: Callable[[ParkedAnswer], Any],
                 now: Callable[[], datetime] | None = None, window: timedelta = REPORT_WINDOW) -> tuple[Lot, list[Any]]:
        """A lot that retries ``rows`` (all stored commands), and the commands to run; one waiting
        for its report since ``window`` before ``now()`` is given up."""
        lot = cls({}, lambda _: [], decode, lambda _: None, now=now, window=window)
        commands = [c for row in rows for c in lot._retry(row)]
        lot.counts = {}
        lot.turns = {row.ticket_id for row in rows if row.dispatch_no == TURN}
        for row in rows:
            lot.counts[row.ticket_id] = lot.counts.get(row.ticket_id, 0) + 1
        lot.total = len(rows)
        return lot, commands

    # -- what the batch stores -----------------------------------------------------------------------
    def parked_rows(self) -> list[tuple[Any, ...]]:
        """The new commands to park, as ``dispatch.adapters.parked_store`` rows."""
        rows = []
        parked_at = self.now().isoformat() if self.now is not None else None
        for ticket, command, waits in self.new.values():
            record = self.origin(command)
            rows.append(ParkedAnswer(None, ticket, waits, record.topic, record.partition,
                                     record.offset, record.timestamp, record.key, record.value,
                                     command.occurred_at.isoformat(),
                                     tuple((k, v) for k, v in (getattr(record, "headers", None) or [])),
                                     parked_at).row())
        for key, row in self._rewritten():
            rows.append(replace(row, id=None, dispatch_no=self.moved[key]).row())
        return rows

    def _rewritten(self) -> list[tuple[int, ParkedAnswer]]:
        """Stored commands that still wait, now for something else (their report came: their turn,
        or a dispatch): each row is replaced, keeping when it was first parked."""
        return [(key, row) for key, row in self.retried.items()
                if key in self.still and self.moved.get(key, row.dispatch_no) != row.dispatch_no]

    def is_parked(self, outcome: Outcome) -> bool:
        """The outcome is an answer left waiting (new, or stored and still waiting)."""
        key = id(outcome.command)
        return key in self.new or (key in self.retried and key in self.still)

    def unparked(self, outcomes: list[Outcome]) -> list[int]:
        """The stored answers this batch applied, refused, or could not read any more."""
        done = [self.retried[id(o.command)].id for o in outcomes
                if id(o.command) in self.retried and id(o.command) not in self.still]
        done += [row.id for _, row in self._rewritten()]
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
