"""Rebuild every projection from a source into a target, page by page.

Memory is bounded by a few pages (``PAGE_SIZE`` events each): on PostgreSQL a reader
thread reads and decodes the next pages while this one is written (the driver lets go of
the interpreter while the server works, so the two overlap), at most ``_AHEAD`` pages
ahead. The target is loaded in ``bulk_load`` mode (see there), tickets kept between
pages in ``TicketRows``, the cyclic garbage collector paused between collections. Each
page is one ``apply_records`` transaction (``apply_batch`` on the one connection of
``bulk_load``) that also stores the source position. ``until`` keeps only events whose
business time is at or before it (time travel): a ticket's events never go back in time,
so what is kept of each ticket is a prefix of its history.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dispatch.adapters.logs import get_logger
from sqlalchemy import Engine

from dispatch.projections.apply_events import TicketRows, apply_batch
from dispatch.projections.bulk import analyse_early, bulk_load
from dispatch.projections.decode import paused_gc
from dispatch.service.replay.ahead import read_ahead
from dispatch.service.replay.parallel import default_workers, run_workers, store_spec
from dispatch.service.replay.progress import EventProgress
from dispatch.service.replay.sources import Page, StoreSource

__all__ = ["RebuildResult", "Source", "rebuild"]

log = get_logger("dispatch.replay")

# Pages read and decoded ahead of the one being written, by target: PostgreSQL works in
# its own process while the driver waits, so a reader thread overlaps with it; SQLite's
# writes hold the interpreter most of the time, and a second thread only adds switching.
_AHEAD = {"postgresql": 2}
# The cyclic collector is off during a rebuild (each page's thousands of short-lived dicts
# would set it off again and again, scanning every live object: a quarter of the time);
# it runs once per this many events, so garbage in cycles stays bounded.
_COLLECT_EVERY = 100_000


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
    workers: int = 1
    workers_peak_rss_mb: list[float] = field(default_factory=list)  # each worker's VmHWM
    workers_own_peak_rss_mb: list[float] = field(default_factory=list)  # the same less the pages forked

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "events_read": self.read, "events_applied": self.applied,
                "seconds": round(self.seconds, 3), "events_per_second": round(self.rate),
                "until": self.until.isoformat() if self.until else None, "workers": self.workers}


def rebuild(source: Source, engine: Engine, *, until: datetime | None = None,
            progress: bool = True, label: str = "replay", workers: int | None = None) -> RebuildResult:
    """``workers`` processes (default ``default_workers()``) when the source is the event
    store and it can be read by worker processes (``dispatch.service.replay.parallel``); one
    process for ``workers=1``, Kafka, or a store only the mapper can decode."""
    result = RebuildResult(source.description, until=until)
    workers = default_workers() if workers is None else max(1, workers)
    spec = store_spec(source.app) if workers > 1 and isinstance(source, StoreSource) and source.upto else None
    if spec is not None and engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
        spec = None
    rows, collected = TicketRows(), 0
    with EventProgress(source.total, label, enabled=progress) as bar, paused_gc():
        with bulk_load(engine) as conn:
            if spec is not None:
                assert isinstance(source, StoreSource)
                out = run_workers(spec, conn, engine, workers=workers, upto=source.upto, page_size=source.page_size,
                                  until=until, on_progress=bar.advance)
                result.read, result.applied = out["read"], out["applied"]
                result.workers, result.workers_peak_rss_mb = workers, out["workers_peak_rss_mb"]
                result.workers_own_peak_rss_mb = out["workers_own_peak_rss_mb"]
            for page in ([] if spec is not None else
                         read_ahead(source.pages(), _AHEAD.get(engine.dialect.name, 0))):
                records = page.records if until is None else [r for r in page.records if r.occurred_at <= until]
                with conn.begin():
                    result.applied += apply_batch(conn, records, source=page.source, position=page.position,
                                                  rows=rows)
                if result.read == 0:
                    analyse_early(conn)
                result.read += page.read
                bar.advance(page.read)
                if result.read - collected >= _COLLECT_EVERY:
                    collected = result.read
                    gc.collect()
        result.seconds = bar.seconds  # the indexes built at the end included
    log.info("rebuilt", **result.to_dict())
    return result
