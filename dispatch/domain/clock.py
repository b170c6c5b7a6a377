"""Time is a value, not a call: every process is handed a clock.

``SystemClock`` reads the machine's time; ``SimulatedClock`` is moved by hand,
so a simulation runs a month in seconds and a replay gives the same figures.
Nothing below the entry points calls ``datetime.now()``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol

__all__ = ["Clock", "SimulatedClock", "SystemClock"]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class SimulatedClock:
    def __init__(self, start: datetime):
        if start.tzinfo is None:
            raise ValueError("a simulated clock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, instant: datetime) -> None:
        if instant < self._now:
            raise ValueError("a simulated clock does not go backwards")
        self._now = instant
