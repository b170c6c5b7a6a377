"""The SLA watchdog (督办): escalate missed acknowledgement and handling deadlines.

``due_escalations`` is the pure policy: given the open deadlines and the time, the
Escalate commands still owed (one per rung per deadline; see ``dispatch.ladder``).
``Watchdog.tick`` reads open deadlines from the read model, submits the commands through
``app.execute_batch`` and catches the projections up. Command ids are deterministic
(``watchdog:<ticket>:<deadline>:<rung>``) and the aggregate refuses a rung it has already
reached, so a repeated or concurrent run adds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Engine, select

from dispatch.lifecycle import ack_deadline, handle_deadline
from dispatch.commands import Actor, Escalate
from dispatch.errors import AlreadyEscalated, DuplicateCommand
from dispatch.ladder import LEVELS, rungs_due
from dispatch.projections import catch_up
from dispatch.projections import tables as t
from dispatch.projections.deadlines import missed_deadlines

__all__ = ["OpenDeadline", "Watchdog", "WATCHDOG_ACTOR", "due_escalations", "open_deadlines"]

log = structlog.get_logger("dispatch.watchdog")
WATCHDOG_ACTOR = Actor(role="system", id="watchdog")
_HARMLESS = (AlreadyEscalated, DuplicateCommand)


@dataclass(frozen=True)
class OpenDeadline:
    ticket_id: str
    key: str  # "ack:<call_id>" or "handle:<dispatch_no>"
    due: datetime
    every_minutes: int
    reached: frozenset[int] = field(default_factory=frozenset)  # rungs already recorded


def due_escalations(deadlines: Sequence[OpenDeadline], now: datetime) -> list[Escalate]:
    """The Escalate commands owed at ``now``: every earned rung not yet recorded, lowest first."""
    commands = []
    for d in sorted(deadlines, key=lambda d: (d.due, d.ticket_id, d.key)):
        for rung in range(1, rungs_due(d.due, now, d.every_minutes) + 1):
            if rung in d.reached:
                continue
            commands.append(Escalate(
                ticket_id=UUID(d.ticket_id), deadline=d.key, rung=rung, occurred_at=now, actor=WATCHDOG_ACTOR,
                command_id=f"watchdog:{d.ticket_id}:{d.key}:{rung}",
                reason=f"{d.key} was due {d.due.isoformat()}; escalated to the {LEVELS[rung]}"))
    return commands


def open_deadlines(engine: Engine, now: datetime) -> list[OpenDeadline]:
    """The deadlines missed at ``now`` (``dispatch.projections.deadlines``), with the rungs
    each has already reached."""
    missed = missed_deadlines(engine, now)
    es = t.escalations.c
    ids = sorted({m.ticket_id for m in missed})
    reached: dict[tuple[str, str], set[int]] = {}
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            for tid, deadline, rung in conn.execute(select(es.ticket_id, es.deadline, es.rung).where(
                    es.ticket_id.in_(ids[i:i + 500]), es.deadline != "manual")):
                reached.setdefault((tid, deadline), set()).add(rung)
    out = []
    for m in missed:
        key = ack_deadline(m.call_id) if m.kind == "ack" else handle_deadline(m.dispatch_no)
        out.append(OpenDeadline(m.ticket_id, key, m.due, m.escalate_every_minutes,
                                frozenset(reached.get((m.ticket_id, key), ()))))
    return out


class Watchdog:
    """The engine component: ``tick()`` once, or ``run()`` every ``interval`` seconds."""

    def __init__(self, runtime: Any, submit: Callable[[list[Any]], list[Any]] | None = None):
        self.runtime = runtime
        self.submit = submit or runtime.app.execute_batch

    def tick(self, now: datetime | None = None) -> list[Any]:
        """Escalate everything owed at ``now`` (default: the runtime's clock); return the outcomes.
        Escalations are stamped in the reference data's time zone, like every other step."""
        now = (now or self.runtime.clock.now()).astimezone(ZoneInfo(self.runtime.reference.timezone))
        catch_up(self.runtime)
        commands = due_escalations(open_deadlines(self.runtime.engine, now), now)
        if not commands:
            return []
        outcomes = self.submit(commands)
        for o in outcomes:
            error = getattr(o, "error", None)
            if error is not None and not isinstance(error, _HARMLESS):
                log.warning("escalation refused", ticket_id=str(o.ticket_id), error=str(error))
        catch_up(self.runtime)
        escalated = [o for o in outcomes if getattr(o, "error", None) is None]
        log.info("watchdog tick", now=now.isoformat(), owed=len(commands), escalated=len(escalated))
        return outcomes

    def run(self, interval: float, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.tick()
            stop.wait(interval)
