"""Measurements that run in a fresh process (so peak RSS is the measurement's own).

    python scripts/bench/worker.py rebuild STORE_URL TARGET_URL   the replay engineer's rebuild
    python scripts/bench/worker.py floor STORE_URL                driver read + json decode only
    python scripts/bench/worker.py engine-only DB_PATH DAYS PER_DAY   the demo's commands, execute_batch only

Each prints one JSON object: events, seconds, rate, peak_rss_mb (VmHWM of this process).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dispatch.adapters.logs import configure_logging  # noqa: E402
from dispatch.bootstrap import bootstrap  # noqa: E402


def _rss_mb() -> float:
    """Peak RSS of this process. ``VmHWM`` belongs to the address space, so it starts afresh at
    exec; ``ru_maxrss`` would also carry the parent's peak from before the fork."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rebuild(store: str, target: str) -> dict[str, float]:
    from dispatch.service.replay import open_target, StoreSource
    from dispatch.service.replay import rebuild as run

    runtime = bootstrap(store)
    into = open_target(target, runtime.reference, source="bench")
    baseline = _rss_mb()
    try:
        result = run(StoreSource(runtime.app), into.engine, progress=False)
    finally:
        into.close()
        runtime.close()
    return {"events": result.read, "applied": result.applied, "seconds": result.seconds, "rate": result.rate,
            "peak_rss_mb": _rss_mb(), "rss_before_mb": baseline}


def floor(store: str, decode: Any = json.loads) -> dict[str, float]:
    """Read every stored event straight from its table with the driver and decode it
    (``json.loads``, or the decoder given, e.g. ``orjson.loads``)."""
    n = 0
    if store.startswith("postgresql"):
        import psycopg

        with psycopg.connect(store.replace("postgresql+psycopg://", "postgresql://")) as conn:
            began = time.perf_counter()
            with conn.cursor(name="bench_floor") as cur:  # a server-side cursor
                cur.itersize = 5000
                cur.execute("SELECT notification_id, originator_id, originator_version, topic, state "
                            "FROM dispatch_events ORDER BY notification_id")
                for row in cur:
                    decode(row[4])
                    n += 1
            seconds = time.perf_counter() - began
    else:
        import sqlite3

        conn = sqlite3.connect(store)
        began = time.perf_counter()
        cur = conn.cursor()
        for row in cur.execute("SELECT rowid, originator_id, originator_version, topic, state "
                               "FROM stored_events ORDER BY rowid"):
            decode(row[4])
            n += 1
        seconds = time.perf_counter() - began
        conn.close()
    return {"events": n, "seconds": seconds, "rate": n / seconds, "peak_rss_mb": _rss_mb()}


def engine_only(db: str, days: str, per_day: str) -> dict[str, float]:
    """The demo's commands through ``execute_batch`` in the demo's tick batches: no projections, no watchdog."""
    from datetime import timedelta

    from dispatch.service.simulation import simulate
    from dispatch.service.simulation.generator import DEFAULT_START
    from dispatch.service.simulation.runner import ticks

    runtime = bootstrap(db)
    from datetime import date, datetime, time as dtime
    from zoneinfo import ZoneInfo

    start = datetime.combine(date.fromisoformat(DEFAULT_START), dtime(), tzinfo=ZoneInfo(runtime.reference.timezone))
    end = start + timedelta(days=int(days))
    began, n, pending = time.perf_counter(), 0, []
    instants = iter(ticks(start, end))
    next_tick = next(instants)
    for at, command in simulate(runtime.reference, "xinqi", int(days), float(per_day), 1, start):
        while at > next_tick:
            if pending:
                runtime.app.execute_batch(pending)
                n += len(pending)
                pending = []
            next_tick = next(instants)
        pending.append(command)
    if pending:
        runtime.app.execute_batch(pending)
        n += len(pending)
    seconds = time.perf_counter() - began
    runtime.close()
    return {"events": n, "seconds": seconds, "rate": n / seconds, "peak_rss_mb": _rss_mb()}


if __name__ == "__main__":
    configure_logging("WARNING")
    kind, *args = sys.argv[1:]
    measure = {"rebuild": rebuild, "floor": floor, "engine-only": engine_only}[kind]
    print(json.dumps(measure(*args)))
