"""Run simulated commands through the real engine on a simulated clock (embedded mode).

Commands are grouped by watchdog tick (every 15 simulated minutes by default): all
commands up to a tick go through ``app.execute_batch`` in one transaction, then the
clock is set to the tick and the watchdog (``dispatch.service.watchdog``) catches the
projections up and escalates whatever is overdue at that instant.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from dispatch.projections import catch_up
from dispatch.service.watchdog import Watchdog

__all__ = ["DEFAULT_TICK", "EngineReport", "run_embedded", "ticks"]

DEFAULT_TICK = timedelta(minutes=15)


@dataclass
class EngineReport:
    """What the engine did with the simulation's commands."""

    commands: int = 0
    batches: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # error code -> count
    ticks: int = 0
    escalations: int = 0
    escalations_refused: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"commands": self.commands, "batches": self.batches, "refused": sum(self.refused.values()),
                "refused_by_error": dict(sorted(self.refused.items())), "watchdog_ticks": self.ticks,
                "escalations": self.escalations, "escalations_refused": self.escalations_refused}


def ticks(start: datetime, end: datetime, every: timedelta = DEFAULT_TICK) -> Iterable[datetime]:
    """The watchdog's instants: every ``every`` after ``start``, and the last instant before ``end``."""
    at = start + every
    while at < end:
        yield at
        at += every
    yield end - timedelta(microseconds=1)


def run_embedded(
    runtime: Any,
    commands: Iterable[tuple[datetime, Any]],
    *,
    start: datetime,
    end: datetime,
    tick: timedelta = DEFAULT_TICK,
    on_tick: Callable[[datetime], None] | None = None,
    watchdog: bool = True,
) -> EngineReport:
    """Execute ``commands`` (in business-time order, all before ``end``) tick by tick.

    ``runtime.clock`` must be a ``SimulatedClock`` at or before ``start``."""
    clock, app = runtime.clock, runtime.app
    dog = Watchdog(runtime) if watchdog else None
    report = EngineReport()
    pending: list[Any] = []

    def flush(at: datetime) -> None:
        if pending:
            for outcome in app.execute_batch(pending):
                if outcome.error is not None:
                    report.refused[outcome.error.code] += 1
            report.commands += len(pending)
            report.batches += 1
            pending.clear()
        clock.set(at)
        report.ticks += 1
        if dog is not None:
            for outcome in dog.tick(at):
                if outcome.error is None:
                    report.escalations += 1
                else:
                    report.escalations_refused += 1
        else:
            catch_up(runtime)
        if on_tick is not None:
            on_tick(at)

    instants = iter(ticks(start, end, tick))
    next_tick = next(instants)
    for at, command in commands:
        while at > next_tick:
            flush(next_tick)
            next_tick = next(instants)
        clock.set(at)
        pending.append(command)
    for instant in (next_tick, *instants):
        flush(instant)
    return report
