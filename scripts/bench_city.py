#!/usr/bin/env python
"""The read side at city scale: dashboards and SLA figures over a year of a whole district.

    scripts/bench_city.py [--postgres URL] [--pg-tickets 1000000] [--sqlite-tickets 100000] [--n 15]

A template (every street of the sample district simulated for 10 days, the watchdog included)
is laid down week after week through the real projection code (``dispatch.service.simulation.city``)
into a fresh read model: ~1,000,000 tickets on PostgreSQL, ~100,000 on SQLite, and for each a
history ten times shorter (the same last weeks). Then, in this process:

- each view's server time, p50 and p95 of ``--n`` runs: street dashboard for a month, community
  dashboard for a week, ``sla --by department`` and ``--by community --period week`` for a
  quarter, each also ``--as-of`` mid-period; its floor is a plain ``SELECT count(*)`` of the
  same period's rows (the tickets reported in it, in that place; for ``sla`` the calls
  dispatched in it), measured in the same run;
- growth: the same one-week questions (the year's last full week, as of its end) on the full
  history and on the ten-times-shorter one;
- peak RSS of the query process: the same questions through the CLI (``dispatch --json …``) as
  child processes.

Prints a markdown table and writes ``bench-results/city-<backends>.json`` (``--report`` prints the
table of several such files together). Not a test.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from dispatch.adapters.logs import configure_logging  # noqa: E402
from dispatch.bootstrap import bootstrap, freeze_startup  # noqa: E402
from dispatch.domain.clock import SimulatedClock  # noqa: E402
from dispatch.projections import community_dashboard, sla_statistics, street_dashboard  # noqa: E402
from dispatch.projections import tables as t  # noqa: E402
from dispatch.projections.rollups import roll_up  # noqa: E402
from dispatch.service.simulation import city  # noqa: E402

WEEKS = 52
TEMPLATE_CACHE = REPO / "bench-results" / "city-template.pickle"


def template(per_day: float) -> city.Template:
    """The simulated template (cached between runs: it takes a minute or two)."""
    if TEMPLATE_CACHE.exists():
        try:
            cached = pickle.loads(TEMPLATE_CACHE.read_bytes())
        except (ImportError, AttributeError, EOFError, pickle.UnpicklingError):
            cached = {}  # made by code that has moved or changed since: made again
        if cached.get("per_day") == per_day:
            return cached["template"]  # type: ignore[no-any-return]
    from zoneinfo import ZoneInfo

    with tempfile.TemporaryDirectory() as tmp:
        probe = bootstrap(str(Path(tmp) / "t.db"))
        start = datetime(2025, 1, 6, tzinfo=ZoneInfo(probe.reference.timezone))  # a Monday
        probe.close()
        runtime = bootstrap(str(Path(tmp) / "t.db"), clock=SimulatedClock(start))
        made = city.simulate_template(runtime, start=start, per_day=per_day)
        runtime.close()
    TEMPLATE_CACHE.parent.mkdir(exist_ok=True)
    TEMPLATE_CACHE.write_bytes(pickle.dumps({"per_day": per_day, "template": made}))
    return made


def shape(tpl: city.Template, tickets: int) -> tuple[int, int]:
    """(weeks, copies a week) for about ``tickets``: a year once it takes a copy a week or more
    (the copies of a week going to repeats of the district's streets), else fewer weeks."""
    if tickets >= WEEKS * tpl.tickets:
        return WEEKS, math.ceil(tickets / (WEEKS * tpl.tickets))
    return max(2, math.ceil(tickets / tpl.tickets)), 1


def reference_file(folder: Path, variants: int) -> str:
    from dispatch.domain.reference import load_reference

    path = folder / f"district-{variants}.json"
    path.write_text(json.dumps(city.with_variants(load_reference(None).to_dict(), variants), ensure_ascii=False))
    return str(path)


def rolled_up(runtime: Any) -> dict[str, Any]:
    """Every day before today rolled up, as the watchdog would over time (the days missing: all
    of them on a fresh read model, or where an earlier version's rollups were dropped)."""
    postgres = runtime.engine.dialect.name == "postgresql"
    if postgres:
        _maintain(runtime, "ANALYZE")  # the rollups' queries planned with statistics
    started = time.perf_counter()
    rolled = roll_up(runtime.engine, runtime.reference.timezone, datetime.now(timezone.utc)).to_dict()
    rolled["seconds"] = round(time.perf_counter() - started, 1)
    if postgres:
        _maintain(runtime, "VACUUM (ANALYZE)")  # as autovacuum would leave it (visibility map set)
    return rolled


def _maintain(runtime: Any, statement: str) -> None:
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(statement)


def build(url: str, tpl: city.Template, tickets: int, *, short: bool, workers: int, folder: Path) -> dict[str, Any]:
    weeks_all, per_week = shape(tpl, tickets)
    weeks = weeks_all if not short else math.ceil(weeks_all / 10)
    runtime = bootstrap(url, reference_file=reference_file(folder, per_week))
    started = time.perf_counter()
    laid = city.lay_down(runtime.engine, tpl, weeks=weeks, per_week=per_week, first_week=weeks_all - weeks,
                         workers=workers, variants=per_week)
    seconds = time.perf_counter() - started
    rolled = rolled_up(runtime)
    with runtime.engine.connect() as conn:
        counted = {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                   for name, table in (("tickets", t.tickets), ("calls", t.calls), ("evaluations", t.evaluations),
                                       ("escalations", t.escalations), ("states", t.ticket_states))}
        streets = conn.execute(select(func.count(func.distinct(t.tickets.c.street)))).scalar_one()
    runtime.close()
    return {"tickets": laid, "rows": counted, "seconds": round(seconds, 1), "weeks": weeks, "per_week": per_week,
            "streets": streets, "rollup": rolled}


def _times(call: Any, n: int) -> list[float]:
    call()  # warm: the first run pays for imports and the statement cache
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def questions(tpl: city.Template, weeks: int) -> dict[str, dict[str, Any]]:
    """The benchmark's questions, in the template's calendar (the history starts with it)."""
    end = tpl.start + timedelta(weeks=weeks)
    month = (end - timedelta(days=31), end - timedelta(days=3))  # the year's last whole month (28 days)
    week = (end - timedelta(days=7), end)
    quarter = (end - timedelta(days=91), end)
    mid = lambda a, b: a + (b - a) / 2  # noqa: E731
    out = {
        "street dashboard, a month": {"view": "street", "period": month},
        "street dashboard, a month, --as-of mid-month": {"view": "street", "period": month, "as_of": mid(*month)},
        "community dashboard, a week": {"view": "community", "period": week},
        "community dashboard, a week, --as-of mid-week": {"view": "community", "period": week, "as_of": mid(*week)},
        "sla --by department, a quarter": {"view": "sla", "by": "department", "period": quarter},
        "sla --by department, a quarter, --as-of mid-quarter": {"view": "sla", "by": "department",
                                                                 "period": quarter, "as_of": mid(*quarter)},
        "sla --by community --period week, a quarter": {"view": "sla", "by": "community", "buckets": "week",
                                                        "period": quarter},
        "sla --by community --period week, a quarter, --as-of mid-quarter": {
            "view": "sla", "by": "community", "buckets": "week", "period": quarter, "as_of": mid(*quarter)},
    }
    return out


GROWTH = {"street dashboard, the last week": {"view": "street", "week": True},
          "sla --by department, the last week": {"view": "sla", "by": "department", "week": True}}
STREET, COMMUNITY = "caojing", None


def _community(reference: Any) -> str:
    return sorted(c.id for c in reference.communities_of_street(STREET))[0]


def run_view(runtime: Any, spec: dict[str, Any], *, raw: bool = False) -> Any:
    start, end = spec["period"]
    as_of = spec.get("as_of") or end - timedelta(microseconds=1)
    ref, engine = runtime.reference, runtime.engine
    if spec["view"] == "street":
        return street_dashboard(engine, ref, STREET, as_of=as_of, start=start, end=end)
    if spec["view"] == "community":
        return community_dashboard(engine, ref, _community(ref), as_of=as_of, start=start, end=end)
    return sla_statistics(engine, ref, by=spec["by"], period=spec.get("buckets"), as_of=as_of, start=start, end=end,
                          use_rollups=not raw)


def floor(runtime: Any, spec: dict[str, Any]) -> None:
    start, end = spec["period"]
    with runtime.engine.connect() as conn:
        if spec["view"] == "sla":
            c = t.calls.c
            conn.execute(select(func.count()).select_from(t.calls).where(c.dispatched_at >= start,
                                                                         c.dispatched_at < end)).scalar()
        else:
            tk = t.tickets.c
            place = (tk.street == STREET if spec["view"] == "street" else tk.community == _community(runtime.reference))
            conn.execute(select(func.count()).select_from(t.tickets).where(place, tk.reported_at >= start,
                                                                           tk.reported_at < end)).scalar()


def cli_rss(url: str, spec: dict[str, Any], reference: Any) -> tuple[float, float]:
    """Peak RSS (MB) and wall time (ms) of ``dispatch --json …`` answering the question."""
    start, end = spec["period"]
    as_of = spec.get("as_of") or end - timedelta(microseconds=1)
    args = [sys.executable, "-m", "dispatch", "--db", url, "--json"]
    window = ["--from", start.isoformat(), "--to", end.isoformat(), "--as-of", as_of.isoformat()]
    if spec["view"] == "street":
        args += ["dashboard", "--street", STREET, *window]
    elif spec["view"] == "community":
        args += ["dashboard", "--community", _community(reference), *window]
    else:
        args += ["sla", "--by", spec["by"], *window] + (["--period", spec["buckets"]] if spec.get("buckets") else [])
    code = ("import resource, subprocess, sys, time; s = time.perf_counter(); "
            "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
            "w = (time.perf_counter() - s) * 1000; "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, w, p.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                         env={**os.environ, "DISPATCH_LOG_LEVEL": "WARNING"})
    rss, wall, rc = out.stdout.split()
    if rc != "0":
        raise RuntimeError(f"{' '.join(args)} exited {rc}")
    return float(rss), float(wall)


def measure(url: str, short_url: str, tpl: city.Template, n: int, backend: str, weeks: int) -> dict[str, Any]:
    # the benchmark's own template (~200,000 objects) is no server's: moved out of the collector's
    # way, or a full collection falling inside one timed question adds ~120 ms to it
    gc.collect()
    gc.freeze()
    runtime = bootstrap(url)
    freeze_startup()  # as a server does once started (``dispatch web``, the consumers)
    results: dict[str, Any] = {"views": {}, "growth": {}}
    for name, spec in questions(tpl, weeks).items():
        times, floors = _times(lambda: run_view(runtime, spec), n), _times(lambda: floor(runtime, spec), n)
        rss, wall = cli_rss(url, spec, runtime.reference)
        results["views"][name] = {"p50": _p(times, 0.5), "p95": _p(times, 0.95), "floor_p50": _p(floors, 0.5),
                                  "floor_p95": _p(floors, 0.95), "cli_rss_mb": rss, "cli_ms": wall}
        if spec["view"] == "sla":  # the same question from raw rows only: as fast as before rollups, same figures
            raw = _times(lambda: run_view(runtime, spec, raw=True), max(3, n // 3))
            results["views"][name].update(raw_p50=_p(raw, 0.5), raw_p95=_p(raw, 0.95),
                                          same_as_raw=run_view(runtime, spec) == run_view(runtime, spec, raw=True))
            print(f"  {backend}: {name}: raw rows only p50 {_p(raw, 0.5):.0f} ms, p95 {_p(raw, 0.95):.0f} ms, "
                  f"same figures: {results['views'][name]['same_as_raw']}", flush=True)
        print(f"  {backend}: {name}: p50 {_p(times, 0.5):.0f} ms, p95 {_p(times, 0.95):.0f} ms "
              f"(floor {_p(floors, 0.5):.1f} ms); CLI {wall:.0f} ms, {rss:.0f} MB", flush=True)
    short = bootstrap(short_url)
    end = tpl.start + timedelta(weeks=weeks)
    for name, base in GROWTH.items():
        spec = {**base, "period": (end - timedelta(days=7), end)}
        long_ms = statistics.median(_times(lambda: run_view(runtime, spec), n))
        short_ms = statistics.median(_times(lambda: run_view(short, spec), n))
        same = run_view(runtime, spec) == run_view(short, spec) if spec["view"] == "sla" else None
        results["growth"][name] = {"long_ms": long_ms, "short_ms": short_ms, "ratio": long_ms / short_ms,
                                   "same_answer": same}
        print(f"  {backend}: growth {name}: {short_ms:.0f} → {long_ms:.0f} ms ({long_ms / short_ms:.2f}×)", flush=True)
    runtime.close()
    short.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="a PostgreSQL server URL (a fresh database is made on it); none: SQLite only")
    parser.add_argument("--pg-tickets", type=int, default=1_000_000)
    parser.add_argument("--sqlite-tickets", type=int, default=100_000)
    parser.add_argument("--per-day", type=float, default=300, help="template tickets a day per street")
    parser.add_argument("--n", type=int, default=40, help="runs of each question (a nearest-rank p95 of 15 "
                        "runs is their slowest; of 40, the 38th)")
    parser.add_argument("--workers", type=int, default=2, help="processes laying down copies on PostgreSQL")
    parser.add_argument("--keep", help="folder to keep the SQLite files in (and reuse them)")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--pg-reuse", nargs=2, metavar=("URL", "SHORT_URL"),
                        help="measure databases an earlier run laid down (it prints their URLs)")
    parser.add_argument("--report", nargs="+", metavar="JSON", help="print the table of earlier runs' results "
                        "(bench-results/city-*.json) and measure nothing")
    args = parser.parse_args()
    if args.report:
        print(table(merged(args.report)))
        return
    configure_logging("WARNING")
    tpl = template(args.per_day)
    print(f"template: {tpl.tickets:,} tickets, {len(tpl.records):,} events", flush=True)
    out: dict[str, Any] = {"template_tickets": tpl.tickets, "template_events": len(tpl.records),
                           "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-city-"))
    folder.mkdir(parents=True, exist_ok=True)
    backends = [] if args.no_sqlite else [("SQLite", str(folder / "city.db"), str(folder / "city-short.db"),
                                            args.sqlite_tickets)]
    if args.pg_reuse:
        backends.append(("PostgreSQL", *args.pg_reuse, args.pg_tickets))
    elif args.postgres:
        from tests.integration.servers import fresh_postgres_database  # noqa: PLC0415

        os.environ.setdefault("DISPATCH_TEST_POSTGRES_URL", args.postgres)
        backends.append(("PostgreSQL", fresh_postgres_database("city"), fresh_postgres_database("cityshort"),
                         args.pg_tickets))
    name = "city-" + "-".join(b.lower() for b, *_ in backends) + ".json"
    result = REPO / "bench-results" / name
    earlier = json.loads(result.read_text()) if result.exists() else {}
    for backend, url, short_url, tickets in backends:
        reuse = ((backend == "SQLite" and args.keep and Path(url).exists() and Path(short_url).exists())
                 or (backend == "PostgreSQL" and args.pg_reuse))
        if not reuse:
            workers = args.workers if backend == "PostgreSQL" else 1
            out[f"{backend} build"] = build(url, tpl, tickets, short=False, workers=workers, folder=folder)
            out[f"{backend} short build"] = build(short_url, tpl, tickets, short=True, workers=workers, folder=folder)
            out[f"{backend} build"]["url"], out[f"{backend} short build"]["url"] = url, short_url
            print(f"{backend}: laid down {out[f'{backend} build']} in {url} (short: {short_url})", flush=True)
        else:
            for which, at in (("", url), (" short", short_url)):
                runtime = bootstrap(at, create=False)
                out[f"{backend}{which} rollup"] = rolled_up(runtime)
                runtime.close()
            print(f"{backend}: reused {url}; rolled up {out[f'{backend} rollup']}", flush=True)
            for which, at in (("", url), (" short", short_url)):  # how it was laid down, for bench_whatif.py
                kept = earlier.get(f"{backend}{which} build")
                if kept and kept.get("url") == at:
                    out[f"{backend}{which} build"] = kept
        out[backend] = measure(url, short_url, tpl, args.n, backend, shape(tpl, tickets)[0])
    out["rusage_self_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result.parent.mkdir(exist_ok=True)
    result.write_text(json.dumps(out, indent=1, default=str))
    print(table(out))


def merged(paths: list[str]) -> dict[str, Any]:
    """Earlier runs' result files, one over the other (``--report``)."""
    out: dict[str, Any] = {}
    for path in paths:
        out.update(json.loads(Path(path).read_text()))
    return out


TARGET_MS = {"PostgreSQL": 200, "SQLite": 300}
TARGET_RSS_MB, TARGET_GROWTH = 150, 1.5


def table(out: dict[str, Any]) -> str:
    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = ["| backend | question | p50 ms | p95 ms | floor p50 ms | p95 ÷ floor | target p95 | met "
             "| raw rows p95 ms | same figures as raw | CLI peak RSS MB (≤ 150) | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend in ("PostgreSQL", "SQLite"):
        if backend not in out:
            continue
        target = TARGET_MS[backend]
        for name, r in out[backend]["views"].items():
            raw = (f"{r['raw_p95']:.0f} | {'yes' if r['same_as_raw'] else '**no**'}" if "raw_p95" in r else "— | —")
            lines.append(f"| {backend} | {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['floor_p50']:.1f} | "
                         f"{r['p95'] / max(r['floor_p50'], 0.001):.0f} | ≤ {target} | {met(r['p95'] <= target)} "
                         f"| {raw} | {r['cli_rss_mb']:.0f} | {met(r['cli_rss_mb'] <= TARGET_RSS_MB)} |")
    lines += ["", "| backend | one-week question | history ÷10 ms | full history ms | ratio (≤ 1.5) | met |",
              "|---|---|---|---|---|---|"]
    for backend in ("PostgreSQL", "SQLite"):
        if backend not in out:
            continue
        for name, r in out[backend]["growth"].items():
            lines.append(f"| {backend} | {name} | {r['short_ms']:.0f} | {r['long_ms']:.0f} | {r['ratio']:.2f} "
                         f"| {met(r['ratio'] <= TARGET_GROWTH)} |")
    sizes = []
    for backend in ("PostgreSQL", "SQLite"):
        build = out.get(f"{backend} build")
        if build:
            sizes.append(f"{backend}: {build['tickets']:,} tickets in {build['streets']} streets over "
                         f"{build['weeks']} weeks ({build['rows']['calls']:,} calls, "
                         f"{build['rows']['evaluations']:,} evaluations, {build['rows']['escalations']:,} "
                         f"escalations), laid down in {build['seconds']:.0f} s"
                         + (f"; {build['rollup']['days']} days rolled up in {build['rollup']['seconds']:.0f} s "
                            f"({build['rollup']['open_tickets']:,} ticket-days read raw)" if build.get("rollup") else ""))
    return "\n".join(lines + ([""] + sizes if sizes else []))


if __name__ == "__main__":
    main()
