"""A rebuild from the event store in ``workers`` processes, partitioned by ticket.

Every projection table is keyed by ticket (``ticket_id`` leads each primary key; only
``projection_positions`` is not), and a ticket's events only touch its own rows, so
tickets can be folded independently. Worker ``i`` of ``n`` reads the raw notification
rows page by page on its own connection, only those of its tickets (``share``: the id's
last byte modulo ``n``, computed in the query, so the other rows are skipped before they
are even sent, let alone decoded), then decodes, folds and writes its share with
``apply_batch(..., claim=False)`` (no position, no lock). A ticket's events stay in id
order within its worker, which is all the fold needs.

- PostgreSQL target: the workers write concurrently into the target (disjoint rows), the
  parent's ``bulk_load`` having dropped the secondary indexes; the parent writes the
  ``store`` position (the last notification id read) only after every worker committed.
  Safe for a rebuild target because nothing reads it until the rebuild returns
  (``open_target`` takes only an empty database, the CLI reports it only then), and a
  failed rebuild leaves no position: such a database is never "caught up" to anything,
  and ``catch_up`` on it would start from the beginning, skipping what it already holds.
- SQLite target (one writer at a time): each worker writes its own scratch file next to
  the target; the parent then copies each into the target with ``ATTACH`` and
  ``INSERT INTO t SELECT * FROM w.t`` (SQLite does it in C) and writes the position in
  the same transaction as the last copy; ``bulk_load`` builds the indexes at the end.

The workers are forked (``fork`` start method: no second start-up of the interpreter and its
imports, a second or so per worker): each opens its own connections and never uses, nor
closes, one it inherited (a worker ends with ``os._exit``). At the fork the parent holds no
SQLite lock (its store and target connections are idle), which is what SQLite needs for a
child's own connection to the same files to lock them properly. The number of workers:
``rebuild(..., workers=)``, else ``DISPATCH_REPLAY_WORKERS``, else the number of CPUs.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine

from dispatch.domain.errors import DispatchError
from dispatch.projections import STORE_SOURCE
from dispatch.projections import tables as t
from dispatch.projections.apply_events import TicketRows, apply_batch
from dispatch.projections.bulk import analyse_early, bulk_session
from dispatch.projections.decode import StoredEventDecoder, paused_gc
from dispatch.projections.durations import Minutes, minutes_for
from dispatch.service.replay.shares import StoreSpec, fetcher, share, store_spec

_SQLITE_CACHE_KIB = 16_384

__all__ = ["StoreSpec", "collect", "default_workers", "merge_sqlite", "run_workers", "scratch_engine", "share", "stop",
           "store_spec"]


def default_workers() -> int:
    """``DISPATCH_REPLAY_WORKERS`` if set, else the number of CPUs."""
    value = os.environ.get("DISPATCH_REPLAY_WORKERS")
    return max(1, int(value)) if value else max(1, os.cpu_count() or 1)


def scratch_engine(path: str) -> Engine:
    """A worker's own SQLite file: the tables without secondary indexes, no journal, no fsync
    (scratch: thrown away after the merge)."""
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=OFF")
        for table in t.METADATA.sorted_tables:
            table.create(conn)
            for ix in table.indexes:
                ix.drop(conn)
    return engine


def _status_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` of this process from /proc (0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _work(spec: StoreSpec, index: int, workers: int, upto: int, page_size: int, until: datetime | None,
          target: Engine | str, counter: Any, minutes: Minutes) -> dict[str, Any]:
    """One worker: read its share page by page, fold and write it."""
    inherited = _status_mb("VmRSS")  # the parent's pages, shared until written
    if isinstance(target, str):
        engine = scratch_engine(target)
    else:
        engine = target
        engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    fetch, close = fetcher(spec, index, workers)
    decoder, rows, applied, read, position = StoredEventDecoder(), TicketRows(), 0, 0, 0
    try:
        with engine.connect() as conn, paused_gc():
            if conn.dialect.name == "sqlite":  # the target's bulk_load settings (see there), or scratch
                for pragma in ("journal_mode=MEMORY", "synchronous=OFF", f"cache_size=-{_SQLITE_CACHE_KIB}"):
                    conn.exec_driver_sql(f"PRAGMA {pragma}")
            else:
                bulk_session(conn)
            conn.commit()
            while position < upto:
                raw = fetch(position + 1, page_size, upto)
                if not raw:
                    break
                position = raw[-1][0]
                got = len(raw)
                read += got
                full = got == page_size
                records = decoder.records(raw)
                del raw
                if until is not None:
                    records = [r for r in records if r.occurred_at <= until]
                with conn.begin():
                    applied += apply_batch(conn, records, source=STORE_SOURCE, position=position, rows=rows,
                                           claim=False, minutes=minutes)
                if read == got:
                    analyse_early(conn)
                if not full:
                    break
                with counter.get_lock():
                    counter.value += got
    finally:
        close()
        engine.dispose()
    return {"read": read, "applied": applied, "position": position, "peak_rss_mb": _status_mb("VmHWM"),
            "inherited_rss_mb": inherited,
            "cpu_s": time.process_time()}


def _child(results: Any, *args: Any) -> None:
    try:
        results.put((args[1], _work(*args), None))
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        results.put((args[1], None, str(error) or "failed"))


def merge_sqlite(conn: Connection, paths: list[str], position: int | None) -> None:
    """Copy each scratch file into the target; the position (if any) goes with the last copy."""
    tables = [table.name for table in t.METADATA.sorted_tables if table is not t.positions]
    for n, path in enumerate(paths):
        if conn.in_transaction():
            conn.commit()
        conn.exec_driver_sql("ATTACH DATABASE ? AS w", (path,))
        try:
            for name in tables:
                conn.exec_driver_sql(f'INSERT INTO main."{name}" SELECT * FROM w."{name}"')
            if n == len(paths) - 1 and position is not None:
                _store_position(conn, position)
            conn.commit()
        finally:
            if conn.in_transaction():
                conn.rollback()
            conn.exec_driver_sql("DETACH DATABASE w")


def collect(procs: list[Any], results: Any, counter: Any, on_progress: Callable[[int], None],
            name: str) -> tuple[dict[int, Any], int]:
    """Start the worker processes ``procs`` and wait for each one's ``(index, value, error)`` on
    the queue ``results``, handing on the progress they add to ``counter``; a worker that failed
    or died raises. Returns the values by index and the progress handed on (``stop`` them after)."""
    for p in procs:
        p.start()
    done: dict[int, Any] = {}
    shown = 0
    while len(done) < len(procs):
        try:
            index, out, error = results.get(timeout=0.2)
        except Exception:  # noqa: BLE001 - queue.Empty: check the workers are alive
            if any(p.exitcode not in (None, 0) for p in procs):
                raise DispatchError(f"a {name} worker died") from None
        else:
            if error is not None:
                raise DispatchError(f"{name} worker {index} failed: {error}")
            done[index] = out
        if counter.value > shown:
            on_progress(counter.value - shown)
            shown = counter.value
    for p in procs:
        p.join()
    return done, shown


def stop(procs: list[Any]) -> None:
    """The workers still running ended, and every one waited for."""
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join()


def _store_position(conn: Connection, position: int) -> None:
    conn.execute(t.positions.delete().where(t.positions.c.source == STORE_SOURCE))
    conn.execute(t.positions.insert().values(source=STORE_SOURCE, position=position))


def run_workers(spec: StoreSpec, conn: Connection, engine: Engine, *, workers: int, upto: int, page_size: int,
                until: datetime | None, on_progress: Callable[[int], None]) -> dict[str, Any]:
    """Rebuild into ``engine`` (whose ``bulk_load`` connection is ``conn``) with ``workers``
    forked processes; returns events read and applied, and the workers' peak RSS."""
    ctx = multiprocessing.get_context("fork")
    sqlite = engine.dialect.name == "sqlite"
    folder = None
    if sqlite:
        base = Path(engine.url.database).parent if engine.url.database not in (None, "", ":memory:") else None
        folder = tempfile.mkdtemp(prefix="dispatch-rebuild-", dir=str(base) if base else None)
    # SQLite: worker 0 writes straight into the target (the parent's connection is idle
    # until the workers are done), the others into scratch files merged afterwards
    targets: list[Engine | str] = ([engine, *(str(Path(folder) / f"w{i}.db") for i in range(1, workers))] if folder
                                   else [engine] * workers)
    results, counter = ctx.Queue(), ctx.Value("q", 0)
    # a worker's page is its share of a page: the events in flight, hence memory, as in one process
    share_page = max(1_000, page_size // workers)
    minutes = minutes_for(conn)  # the target's calendar (a scratch file has none)
    procs = [ctx.Process(target=_child, args=(results, spec, i, workers, upto, share_page, until, targets[i], counter,
                                              minutes),
                         name=f"rebuild-{i}", daemon=True) for i in range(workers)]
    try:
        done, shown = collect(procs, results, counter, on_progress, "rebuild")
        position = upto  # every worker read its share up to here
        if sqlite:
            merge_sqlite(conn, [x for x in targets if isinstance(x, str)], position)
        else:
            with conn.begin():
                _store_position(conn, position)
        read = sum(out["read"] for out in done.values())
        if read > shown:
            on_progress(read - shown)
        return {"read": read, "applied": sum(out["applied"] for out in done.values()),
                "workers_peak_rss_mb": [round(done[i]["peak_rss_mb"], 1) for i in range(workers)],
                "workers_own_peak_rss_mb": [round(done[i]["peak_rss_mb"] - done[i]["inherited_rss_mb"], 1)
                                            for i in range(workers)],
                "workers_cpu_s": [round(done[i]["cpu_s"], 2) for i in range(workers)]}
    finally:
        stop(procs)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
