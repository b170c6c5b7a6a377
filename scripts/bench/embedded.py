"""Benchmarks on the embedded default and PostgreSQL, no Kafka: demo, rebuild, memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, Result, drop_pg, fresh_pg, load
from bench.stores import pg_store, sqlite_store

__all__ = ["bench_demo", "bench_memory", "bench_rebuild_postgres", "bench_rebuild_sqlite"]

WORKER = str(Path(__file__).with_name("worker.py"))


def _worker(*args: str, timeout: float = 3600) -> dict[str, Any]:
    p = subprocess.run([sys.executable, WORKER, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed: {p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_demo(quick: bool) -> Result:
    """`dispatch demo`: 30 simulated days of the 143-grid street at 40 reports a day, embedded."""
    days, per_day = (7 if quick else 30), 40
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        argv = [sys.executable, "-m", "dispatch", "--json", "demo", "--days", str(days),
                "--tickets-per-day", str(per_day), "--seed", "1"]
        began = time.perf_counter()
        p = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=1800,
                           env=os.environ | {"PYTHONPATH": str(REPO)})
        seconds = time.perf_counter() - began
        if p.returncode != 0:
            raise RuntimeError(f"demo failed: {p.stderr[-2000:]}")
        data = json.loads(p.stdout)
        floor = _worker("engine-only", str(Path(folder) / "floor.db"), str(days), str(per_day))
    agree = all(a["agree"] for a in data["agreement"])
    return Result(
        "demo", f"`dispatch demo`, {days} simulated days, 143 grids, {per_day}/day, SQLite", "s", round(seconds, 1),
        "same commands through execute_batch only (no projections, no watchdog), s", round(floor["seconds"], 1),
        round(seconds / floor["seconds"], 2), "< 60 s" if not quick else "< 60 s (at 30 days)",
        passed=seconds < 60 and agree,
        details={"commands": data["engine"]["commands"], "watchdog_ticks": data["engine"]["watchdog_ticks"],
                 "escalations": data["engine"]["escalations"], "reported": data["tally"]["reported"],
                 "figures_agree_with_tally": agree, "load_average": load()})


def _orjson_floor(store: str) -> dict[str, Any]:
    """``worker.py floor`` with orjson, the decoder the rebuild uses (a fair floor for a
    rebuild that decodes with orjson; the stdlib-json floor is kept in the details)."""
    import orjson

    from bench.worker import floor

    return floor(store, orjson.loads)


def _rebuild(store: str, target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The rebuild and its floor; the floor decodes as the rebuild does (orjson), with the
    stdlib-json floor under ``json_floor``."""
    floor = {**_orjson_floor(store), "json_floor": _worker("floor", store)}
    result = _worker("rebuild", store, target)
    return result, floor


def _rebuild_result(backend: str, result: dict[str, Any], floor: dict[str, Any]) -> Result:
    rate, floor_rate = result["rate"], floor["rate"]
    ratio = rate / floor_rate
    return Result(
        {"SQLite": "rebuild-sqlite", "PostgreSQL": "rebuild-postgres"}[backend], f"rebuild: event store → all projections in a fresh database, {backend}", "events/s",
        round(rate), f"driver read + orjson decode of the same {floor['events']} events, events/s", round(floor_rate),
        round(ratio, 3), "≥ 0.33× floor and ≥ 50,000/s", passed=ratio >= 0.33 and rate >= 50_000,
        details={"events": result["events"], "seconds": round(result["seconds"], 2),
                 "floor_seconds": round(floor["seconds"], 2), "floor_decoder": "orjson",
                 "json_floor_events_per_s": round(floor["json_floor"]["rate"]),
                 "ratio_to_json_floor": round(rate / floor["json_floor"]["rate"], 3), "peak_rss_mb": round(result["peak_rss_mb"]),
                 "load_average": load()})


def bench_rebuild_sqlite(quick: bool) -> Result:
    events = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-") as folder:
        store = sqlite_store(events, Path(folder) / "store.db")
        result, floor = _rebuild(str(store), str(Path(folder) / "target.db"))
    return _rebuild_result("SQLite", result, floor)


def bench_rebuild_postgres(quick: bool) -> Result:
    events = 100_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-rebuild-pg-") as folder:
        store = pg_store(events, Path(folder))
        target = fresh_pg("bench_target")
        try:
            result, floor = _rebuild(store, target)
        finally:
            drop_pg(target)
            drop_pg(store)
    return _rebuild_result("PostgreSQL", result, floor)


def bench_memory(quick: bool) -> Result:
    events = 200_000 if quick else 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as folder:
        store = sqlite_store(events, Path(folder) / "store.db")
        floor = _worker("floor", str(store))
        result = _rebuild_all_processes(str(store), str(Path(folder) / "target.db"))
    # every process of the rebuild at once: the largest sum of PSS (shared pages split between
    # the processes sharing them) of the parent and its worker processes, sampled every 20 ms
    peak = result["peak_pss_all_processes_mb"]
    return Result(
        "memory", f"peak RSS replaying {result['events']:,} events (rebuild, SQLite → SQLite, "
        f"{result['workers']} worker process(es), all processes)", "MB", round(peak),
        "peak RSS of the driver-read floor over the same events, MB", round(floor["peak_rss_mb"]),
        round(peak / floor["peak_rss_mb"], 2), "< 300 MB", passed=peak < 300,
        details={"events": result["events"], "rss_after_startup_mb": round(result["rss_before_rebuild_mb"]),
                 "parent_peak_rss_mb": result["peak_rss_mb"], "workers_peak_rss_mb": result["workers_peak_rss_mb"],
                 "all_processes_vmhwm_sum_mb": result["peak_rss_all_processes_mb"],
                 "all_processes_vmhwm_sum_less_forked_mb": result["peak_rss_all_processes_unshared_mb"],
                 "seconds": round(result["seconds"], 1), "load_average": load()})


def _rebuild_all_processes(store: str, target: str) -> dict[str, Any]:
    """``scripts/bench_rebuild.py``'s rebuild child: the rebuild with every worker's peak RSS."""
    p = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_rebuild.py"), "--child-rebuild", store, target,
                        "--page-size", "10000"], cwd=REPO, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError(f"rebuild child failed: {p.stderr[-3000:]}")
    out: dict[str, Any] = json.loads(p.stdout.strip().splitlines()[-1])
    out["events"] = out.get("events", 0)
    return out
