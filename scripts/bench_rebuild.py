#!/usr/bin/env python3
"""Issue 6's rebuild benchmark: events/s from the event store into ALL projections.

    python scripts/bench_rebuild.py [--events 200000] [--postgres URL] [--cache DIR] [--page-size N]
                                    [--skip-sqlite] [--stages floor,decode_mapper,decode,apply,rebuild]

A benchmark, not a test. Per backend, in the same run:

- ``floor``          the stored events read straight from their table with the driver (sqlite3 cursor /
                     psycopg server-side cursor) and ``json.loads(state)`` — nothing else;
- ``decode_mapper``  ``select_notifications`` pages decoded by eventsourcing's mapper
                     (``records_from_notifications``) — the reference decoder;
- ``decode``         ``StoreSource(app).pages()``: what a rebuild reads (read + decode into EventRecords);
- ``apply``          ``apply_records`` alone, pages decoded beforehand, into a fresh target;
- ``rebuild``        ``dispatch.service.replay.rebuild(StoreSource)`` into a fresh target (a new SQLite file / a new
                     PostgreSQL database, opened with ``open_target`` as ``dispatch replay`` does), in a
                     subprocess that also reports its peak RSS (``VmHWM``; ``ru_maxrss`` too, which
                     on Linux starts from the parent's peak at fork).

Each rate comes with its ratio to the floor. The store: a street simulation (``dispatch.service.simulation``,
with the watchdog's escalations) run once and cached (``--cache``, default ``/tmp/dispatch-bench``);
more events than the base holds are further copies of its histories under new ticket ids. On
PostgreSQL the same stored events are copied into a cached database ``dispatch_bench_store_<N>``.
Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import heapq
import json
import logging
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import NAMESPACE_URL, uuid5
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson  # noqa: E402
import structlog  # noqa: E402

structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

STREETS = (("caojing", 11), ("xinqi", 12), ("mochouhu", 13))
BASE_EVENTS = 200_000  # the simulated part; beyond it, copies under new ticket ids
EVENTS_TABLE = "stored_events"  # eventsourcing's SQLite table; PostgreSQL: dispatch_events
PG_EVENTS_TABLE = "dispatch_events"


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --- the store -------------------------------------------------------------------------------------


def _simulate_base(path: Path, events: int) -> None:
    from dispatch.bootstrap import bootstrap
    from dispatch.domain.clock import SimulatedClock
    from dispatch.service.simulation import DEFAULT_START, simulate
    from dispatch.service.simulation.runner import run_embedded

    tmp = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    rt = bootstrap(str(tmp))
    tz = ZoneInfo(rt.reference.timezone)
    start = datetime.combine(date.fromisoformat(DEFAULT_START), dtime(), tzinfo=tz)
    rt.clock = SimulatedClock(start)
    per_day = 650  # per street: ~8.3 events per ticket, 3 streets → ~16k events a day
    days = max(1, round(events / (per_day * len(STREETS) * 8.3)))
    commands = heapq.merge(*(simulate(rt.reference, street, days, per_day, seed, start) for street, seed in STREETS),
                           key=lambda item: item[0])
    began = time.perf_counter()
    log(f"simulating {days} days × {len(STREETS)} streets into {path} (once; cached)")
    run_embedded(rt, commands, start=start, end=start + timedelta(days=days), tick=timedelta(hours=1))
    log(f"simulated {rt.app.recorder.max_notification_id()} events in {time.perf_counter() - began:.0f}s")
    rt.close()
    os.replace(tmp, path)


def _extend(path: Path, base: Path, events: int) -> None:
    """``path`` = the base store + copies of its histories under new ticket ids, up to ``events``."""
    tmp = path.with_suffix(".partial")
    tmp.unlink(missing_ok=True)
    # a dispatch database first (its event table, snapshots, tracking, reference data): bootstrap()
    # refuses a file holding another tool's tables, as a bare event table would be
    from dispatch.bootstrap import bootstrap
    bootstrap(str(tmp)).close()
    src = sqlite3.connect(base)
    dst = sqlite3.connect(tmp)
    dst.execute("PRAGMA synchronous=OFF")
    written, copy = 0, 0
    while written < events:
        rows = src.execute(f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                           "ORDER BY rowid LIMIT ?", (events - written,))
        renamed: dict[str, str] = {}
        batch = []
        for oid, version, topic, state in rows:
            if copy:
                oid = renamed.get(oid) or renamed.setdefault(oid, str(uuid5(NAMESPACE_URL, f"copy{copy}:{oid}")))
            batch.append((oid, version, topic, state))
        dst.executemany(f"INSERT INTO {EVENTS_TABLE} (originator_id, originator_version, topic, state) "
                        "VALUES (?, ?, ?, ?)", batch)
        written += len(batch)
        copy += 1
    dst.commit()
    dst.close()
    src.close()
    os.replace(tmp, path)


def sqlite_store(cache: Path, events: int) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    base = cache / f"base-{BASE_EVENTS}.db"
    if not base.exists():
        _simulate_base(base, BASE_EVENTS)
    with sqlite3.connect(base) as c:
        base_events = c.execute(f"SELECT COUNT(*) FROM {EVENTS_TABLE}").fetchone()[0]
    if events == base_events:
        return base
    path = cache / f"store-{events}.db"
    if not path.exists():
        log(f"writing {path} ({events} events from the {base_events}-event base)")
        _extend(path, base, events)
    return path


def _pg_connect(url: str, dbname: str | None = None, **kw: Any) -> Any:
    import psycopg

    parts = urlsplit(url.replace("postgresql+psycopg://", "postgresql://"))
    return psycopg.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                           user=parts.username or "postgres", password=parts.password,
                           dbname=dbname or parts.path.lstrip("/"), **kw)


def _pg_url(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def pg_create(url: str, name: str) -> str:
    with _pg_connect(url, "postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')
    return _pg_url(url, name)


def pg_drop(url: str, name: str) -> None:
    with _pg_connect(url, "postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_store(url: str, sqlite_path: Path, events: int) -> str:
    name = f"dispatch_bench_store_{events}"
    store_url = _pg_url(url, name)
    try:
        with _pg_connect(url, name) as c:
            have = c.execute(f"SELECT COUNT(*) FROM {PG_EVENTS_TABLE}").fetchone()[0]
        if have == events:
            return store_url
    except Exception:  # noqa: BLE001 - missing database or table: (re)create it
        pass
    log(f"copying {events} events into PostgreSQL database {name} (once; cached)")
    pg_create(url, name)
    from dispatch.bootstrap import bootstrap
    bootstrap(store_url).close()  # the event store's tables
    src = sqlite3.connect(sqlite_path)
    with _pg_connect(url, name) as dst, dst.cursor() as cur:
        with cur.copy(f"COPY {PG_EVENTS_TABLE} (originator_id, originator_version, topic, state) FROM STDIN") as cp:
            for oid, version, topic, state in src.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE} ORDER BY rowid"):
                cp.write_row((oid, version, topic, state))
        dst.commit()
        cur.execute(f"ANALYZE {PG_EVENTS_TABLE}")
    src.close()
    return store_url


# --- the stages ------------------------------------------------------------------------------------


def _rate(n: int, seconds: float) -> dict[str, Any]:
    return {"events": n, "seconds": round(seconds, 3), "events_per_s": round(n / seconds) if seconds else None}


def floor_sqlite(path: Path, loads: Any = None) -> dict[str, Any]:
    """``loads``: orjson's by default (the rebuild decodes with it); ``json.loads`` for the stdlib floor."""
    loads = loads or orjson.loads
    conn = sqlite3.connect(path)
    began = time.perf_counter()
    n = 0
    cur = conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {EVENTS_TABLE} "
                       "ORDER BY rowid")
    while rows := cur.fetchmany(10_000):
        for row in rows:
            loads(row[4])
        n += len(rows)
    seconds = time.perf_counter() - began
    conn.close()
    return _rate(n, seconds)


def floor_postgres(url: str, loads: Any = None) -> dict[str, Any]:
    loads = loads or orjson.loads
    conn = _pg_connect(url)
    began = time.perf_counter()
    n = 0
    with conn.cursor(name="floor") as cur:  # server-side cursor
        cur.itersize = 10_000
        cur.execute(f"SELECT notification_id, originator_id, originator_version, topic, state FROM {PG_EVENTS_TABLE} "
                    "ORDER BY notification_id")
        while rows := cur.fetchmany(10_000):
            for row in rows:
                loads(row[4])
            n += len(rows)
    seconds = time.perf_counter() - began
    conn.close()
    return _rate(n, seconds)


def decode_mapper(app: Any, page_size: int) -> dict[str, Any]:
    from dispatch.projections import decode as records

    # eventsourcing's Mapper.to_domain_event per event (records_from_notifications itself takes
    # the fast decoder when it can since issue 6)
    decode = records.records_via_mapper
    began, n, position = time.perf_counter(), 0, 0
    while True:
        notifications = app.recorder.select_notifications(position + 1, page_size)
        if not notifications:
            break
        n += len(decode(notifications, app.mapper))
        position = notifications[-1].id
    return _rate(n, time.perf_counter() - began)


def decode_source(app: Any, page_size: int) -> dict[str, Any]:
    from dispatch.service.replay import StoreSource

    began, n = time.perf_counter(), 0
    for page in StoreSource(app, page_size=page_size).pages():
        n += len(page.records)
    return _rate(n, time.perf_counter() - began)


def apply_only(app: Any, target_url: str, reference: Any, page_size: int, limit: int) -> dict[str, Any]:
    from dispatch.projections import apply_records
    from dispatch.service.replay import StoreSource, open_target

    pages, held = [], 0
    for page in StoreSource(app, page_size=page_size).pages():
        pages.append(page)
        held += len(page.records)
        if held >= limit:
            break
    target = open_target(target_url, reference, source="bench")
    try:
        began, n = time.perf_counter(), 0
        for page in pages:
            n += apply_records(target.engine, page.records, source=page.source, position=page.position)
        result = _rate(n, time.perf_counter() - began)
    finally:
        target.close()
    return result


def _hwm_mb() -> float | None:
    """Peak RSS of this process image (VmHWM starts afresh at exec; ru_maxrss keeps the
    parent's peak at fork time, so a child of a big parent would report the parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


class _PssSampler:
    """Every 20 ms, the proportional set size (shared pages split between the processes that
    share them) of this process and all its children, added up; ``peak_mb`` is the largest
    sum seen: the memory the whole rebuild (parent + worker processes) held at once."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pids(self) -> list[int]:
        pids = [os.getpid()]
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                pids += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                pass
        return pids

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_mb = max(self.peak_mb, sum(_pss_mb(pid) for pid in self._pids()))

    def __enter__(self) -> "_PssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def rebuild_child(store_url: str, target_url: str, page_size: int, workers: int | None = None) -> dict[str, Any]:
    """In a fresh process: open the store, rebuild into the target, report the rate and peak RSS."""
    from dispatch.bootstrap import bootstrap
    from dispatch.service.replay import open_target, StoreSource
    from dispatch.service.replay import rebuild

    rt = bootstrap(store_url)
    before = _hwm_mb()
    target = open_target(target_url, rt.reference, source="bench", live=rt.db)
    try:
        with _PssSampler() as sampler:
            result = rebuild(StoreSource(rt.app, page_size=page_size), target.engine, progress=False,
                             workers=workers)
    finally:
        target.close()
        rt.close()
    workers_rss = result.workers_peak_rss_mb
    return {**_rate(result.read, result.seconds), "applied": result.applied, "workers": result.workers,
            "peak_rss_mb": _hwm_mb(), "rss_before_rebuild_mb": before,
            "workers_peak_rss_mb": workers_rss,
            # every process's own peak added up (forked pages shared with the parent counted twice)
            "peak_rss_all_processes_mb": round((_hwm_mb() or 0) + sum(workers_rss), 1),
            # the same, each worker's pages inherited from the parent (shared) counted once
            "peak_rss_all_processes_unshared_mb": round((_hwm_mb() or 0) + sum(result.workers_own_peak_rss_mb), 1),
            # sampled: the largest PSS of parent + workers at one moment (the honest total)
            "peak_pss_all_processes_mb": round(sampler.peak_mb, 1),
            "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def rebuild_in_subprocess(store_url: str, target_url: str, page_size: int, workers: int | None = None) -> dict[str, Any]:
    extra = ["--workers", str(workers)] if workers else []
    out = subprocess.run([sys.executable, __file__, "--child-rebuild", store_url, target_url,
                          "--page-size", str(page_size), *extra], check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def with_ratio(stage: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    if stage.get("events_per_s") and floor.get("events_per_s"):
        stage["ratio_to_floor"] = round(stage["events_per_s"] / floor["events_per_s"], 3)
    return stage


def run_backend(kind: str, store_url: str, sqlite_path: Path, stages: set[str], args: Any) -> dict[str, Any]:
    from dispatch.bootstrap import bootstrap

    out: dict[str, Any] = {"store": store_url}
    # the floor decodes as the rebuild does (orjson); the stdlib json one for comparison
    floor = floor_sqlite(sqlite_path) if kind == "sqlite" else floor_postgres(store_url)
    out["floor"] = {**floor, "decoder": "orjson"}
    out["floor_stdlib_json"] = (floor_sqlite(sqlite_path, json.loads) if kind == "sqlite"
                                else floor_postgres(store_url, json.loads))
    log(f"{kind} floor: {floor['events_per_s']:,} events/s (orjson), "
        f"{out['floor_stdlib_json']['events_per_s']:,} events/s (json)")
    rt = bootstrap(store_url)
    try:
        if "decode_mapper" in stages:
            out["decode_mapper"] = with_ratio(decode_mapper(rt.app, args.page_size), floor)
            log(f"{kind} decode_mapper: {out['decode_mapper']}")
        if "decode" in stages:
            out["decode"] = with_ratio(decode_source(rt.app, args.page_size), floor)
            log(f"{kind} decode: {out['decode']}")
        if "apply" in stages:
            target, cleanup = _fresh_target(kind, args, "apply")
            try:
                out["apply"] = with_ratio(apply_only(rt.app, target, rt.reference, args.page_size,
                                                     args.apply_limit), floor)
            finally:
                cleanup()
            log(f"{kind} apply: {out['apply']}")
    finally:
        rt.close()
    if "rebuild" in stages:
        target, cleanup = _fresh_target(kind, args, "rebuild")
        try:
            out["rebuild"] = with_ratio(rebuild_in_subprocess(store_url, target, args.page_size, args.workers), floor)
        finally:
            cleanup()
        log(f"{kind} rebuild: {out['rebuild']}")
        rate = out["rebuild"]["events_per_s"]
        out["goal_met"] = bool(rate >= 50_000 and rate >= 0.33 * floor["events_per_s"])
    return out


def _fresh_target(kind: str, args: Any, label: str) -> tuple[str, Any]:
    if kind == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))

        def cleanup() -> None:
            for p in folder.iterdir():
                p.unlink()
            folder.rmdir()

        return str(folder / "target.db"), cleanup
    name = f"dispatch_bench_{label}_{os.getpid()}"
    return pg_create(args.postgres, name), lambda: pg_drop(args.postgres, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=BASE_EVENTS)
    parser.add_argument("--postgres", metavar="URL", help="also PostgreSQL (a server URL; databases are created)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--cache", default="/tmp/dispatch-bench", help="where the synthesized stores are kept")
    parser.add_argument("--page-size", type=int, default=None, help="default: dispatch.service.replay's PAGE_SIZE")
    parser.add_argument("--apply-limit", type=int, default=200_000, help="events held in memory for 'apply'")
    parser.add_argument("--workers", type=int, default=None, help="rebuild processes (default: CPUs)")
    parser.add_argument("--stages", default="floor,decode_mapper,decode,apply,rebuild")
    parser.add_argument("--child-rebuild", nargs=2, metavar=("STORE", "TARGET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.page_size is None:
        from dispatch.service.replay import PAGE_SIZE
        args.page_size = PAGE_SIZE
    if args.child_rebuild:
        print(json.dumps(rebuild_child(*args.child_rebuild, args.page_size, args.workers)))
        return
    stages = set(args.stages.split(","))
    path = sqlite_store(Path(args.cache), args.events)
    report: dict[str, Any] = {"events": args.events, "page_size": args.page_size, "cpus": os.cpu_count(),
                              "python": sys.version.split()[0]}
    if not args.skip_sqlite:
        report["sqlite"] = run_backend("sqlite", str(path), path, stages, args)
    if args.postgres:
        report["postgresql"] = run_backend("postgresql", pg_store(args.postgres, path, args.events), path,
                                           stages, args)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
