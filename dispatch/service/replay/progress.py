"""Progress of a long read: a rich bar (events/s, ETA) on a terminal, plain log
lines every few seconds otherwise (a pipe, a CI log, a cron job)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

__all__ = ["EventProgress"]


class _Rate(TextColumn):
    def __init__(self, unit: str = "events") -> None:
        super().__init__("")
        self.unit = unit

    def render(self, task):  # type: ignore[no-untyped-def]
        speed = task.finished_speed or task.speed
        return f"{speed:,.0f} {self.unit}/s" if speed else f"… {self.unit}/s"


class EventProgress:
    """``with EventProgress(total, "replay") as p: p.advance(n)``. ``total`` may be None."""

    def __init__(self, total: int | None, label: str, *, stream: TextIO | None = None,
                 interval: float = 5.0, enabled: bool = True, unit: str = "events"):
        self.total, self.label, self.interval, self.enabled = total, label, interval, enabled
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self._started = self._last = time.monotonic()
        self._bar: Progress | None = None
        self._task: int | None = None

    def __enter__(self) -> EventProgress:
        self._started = self._last = time.monotonic()
        if self.enabled and self.stream.isatty():
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TaskProgressColumn(), _Rate(self.unit), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, advance=n)  # type: ignore[arg-type]
            return
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self._started, 1e-9)
        text = f"{self.label}: {self.done:,} {self.unit}"
        if self.total:
            left = max(self.total - self.done, 0)
            eta = f"{left / rate:,.0f}s" if rate else "?"
            text += f" of {self.total:,} ({self.done / self.total:.0%}), {rate:,.0f} {self.unit}/s, ETA {eta}"
        else:
            text += f", {rate:,.0f} {self.unit}/s"
        print(text, file=self.stream, flush=True)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._started

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
