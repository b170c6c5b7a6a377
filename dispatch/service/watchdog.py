"""The SLA watchdog (督办): escalate missed acknowledgement and handling deadlines.

``due_escalations`` is the pure policy: given the missed deadlines, the tickets' levels and
the time, the Escalate commands still owed — per ticket, one per rung (see ``dispatch.domain.ladder``),
each naming every deadline that earned it. ``Watchdog.tick`` reads missed deadlines from the
read model, submits the commands through ``app.execute_batch`` and catches the projections
up. Command ids are deterministic (``watchdog:<ticket>:<rung>``) and the aggregate refuses a
rung the ticket has already reached, so a repeated or concurrent run adds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from dispatch.adapters.logs import get_logger
from sqlalchemy import Engine

from dispatch.domain.commands import Actor, Escalate
from dispatch.domain.errors import AlreadyEscalated, DuplicateCommand, TopOfLadder
from dispatch.domain.ladder import LEVELS, rungs_due
from dispatch.domain.lifecycle import ack_deadline, handle_deadline
from dispatch.projections import catch_up
from dispatch.projections.deadlines import missed_deadlines

__all__ = ["OpenDeadline", "Watchdog", "WATCHDOG_ACTOR", "due_escalations", "open_deadlines"]

log = get_logger("dispatch.watchdog")
WATCHDOG_ACTOR = Actor(role="system", id="watchdog")
_HARMLESS = (AlreadyEscalated, DuplicateCommand, TopOfLadder)  # a read model a step behind the store


@dataclass(frozen=True)
class OpenDeadline:
    ticket_id: str
    key: str  # "accept", "dispatch", "ack:<call_id>" or "handle:<dispatch_no>"
    due: datetime
    every_minutes: int
    level: str = LEVELS[0]  # the ticket's escalation level now


def due_escalations(deadlines: Sequence[OpenDeadline], now: datetime) -> list[Escalate]:
    """The Escalate commands owed at ``now``, per ticket: supervision climbs the ladder one
    rung per step, each rung once, never past the district. A missed deadline earns rungs
    with time (``dispatch.domain.ladder.rungs_due``); a ticket owes every rung up to the highest any
    of its missed deadlines has earned, and each escalation names every deadline that has
    earned that rung."""
    by_ticket: dict[str, list[OpenDeadline]] = {}
    for d in deadlines:
        by_ticket.setdefault(d.ticket_id, []).append(d)
    commands = []
    for tid, missed in sorted(by_ticket.items(), key=lambda kv: (min(d.due for d in kv[1]), kv[0])):
        earned = {d.key: rungs_due(d.due, now, d.every_minutes) for d in missed}
        current = LEVELS.index(missed[0].level)
        for rung in range(current + 1, max(earned.values()) + 1):
            causes = sorted((d for d in missed if earned[d.key] >= rung), key=lambda d: (d.due, d.key))
            keys = [d.key for d in causes]
            commands.append(Escalate(
                ticket_id=UUID(tid), deadline=keys[0], deadlines=keys, rung=rung, occurred_at=now,
                actor=WATCHDOG_ACTOR, command_id=f"watchdog:{tid}:{rung}",
                reason=f"{', '.join(keys)} missed (due {causes[0].due.isoformat()}); "
                       f"escalated to the {LEVELS[rung]}"))
    return commands


def open_deadlines(engine: Engine, now: datetime, reference: Any) -> list[OpenDeadline]:
    """The deadlines missed at ``now`` (``dispatch.projections.deadlines``) with their
    ticket's level. The centre's own deadlines escalate at their SLA rule's pace (``reference``)."""
    out = []
    for m in missed_deadlines(engine, now):
        if m.kind == "ack":
            key, every = ack_deadline(m.call_id), m.escalate_every_minutes
        elif m.kind == "handle":
            key, every = handle_deadline(m.dispatch_no), m.escalate_every_minutes
        else:
            key = m.kind
            every = reference.sla_rule(m.category, m.priority).escalate_every_minutes
        out.append(OpenDeadline(m.ticket_id, key, m.due, every, m.level))
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
        commands = due_escalations(open_deadlines(self.runtime.engine, now, self.runtime.reference), now)
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

    def keep_rollups(self, limit: int = 2) -> Any:
        """Roll up a few more settled days (``dispatch.projections.rollups``): the watchdog's
        loop keeps a district's quarter fast without anyone running ``dispatch rollup``."""
        from dispatch.projections.rollups import roll_up

        result = roll_up(self.runtime.engine, self.runtime.reference.timezone, self.runtime.clock.now(), limit=limit)
        if result.built:
            log.info("rolled up", **result.to_dict())
        return result

    def run(self, interval: float, stop: threading.Event | None = None) -> None:
        stop = stop or threading.Event()
        while not stop.is_set():
            self.tick()
            self.keep_rollups()
            stop.wait(interval)
