"""Rebuild every projection from a source into a target, page by page.

Memory is bounded by one page (``PAGE_SIZE`` events); each page is one
``apply_records`` transaction that also stores the source position. ``until`` keeps
only events whose business time is at or before it (time travel): a ticket's events
never go back in time, so what is kept of each ticket is a prefix of its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import structlog
from sqlalchemy import Engine

from dispatch.projections import apply_records
from dispatch.replay.progress import EventProgress
from dispatch.replay.sources import Page

__all__ = ["RebuildResult", "Source", "rebuild"]

log = structlog.get_logger("dispatch.replay")


class Source(Protocol):
    description: str

    @property
    def total(self) -> int: ...

    def pages(self) -> Iterable[Page]: ...


@dataclass
class RebuildResult:
    source: str
    read: int = 0
    applied: int = 0
    seconds: float = 0.0
    until: datetime | None = None

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "events_read": self.read, "events_applied": self.applied,
                "seconds": round(self.seconds, 3), "events_per_second": round(self.rate),
                "until": self.until.isoformat() if self.until else None}


def rebuild(source: Source, engine: Engine, *, until: datetime | None = None,
            progress: bool = True, label: str = "replay") -> RebuildResult:
    result = RebuildResult(source.description, until=until)
    with EventProgress(source.total, label, enabled=progress) as bar:
        for page in source.pages():
            records = page.records if until is None else [r for r in page.records if r.occurred_at <= until]
            result.applied += apply_records(engine, records, source=page.source, position=page.position)
            result.read += page.read
            bar.advance(page.read)
        result.seconds = bar.seconds
    log.info("rebuilt", **result.to_dict())
    return result
