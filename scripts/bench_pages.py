#!/usr/bin/env python
"""The dashboard pages at city scale: server time of every page and data answer a browser asks for.

    scripts/bench_pages.py [--postgres URL | --pg-reuse URL] [--keep DIR] [--n 15]
    scripts/bench_pages.py --live [--streams 200] [--n 200]

The data set is ``scripts/bench_city.py``'s (a year of the sample district laid down through the
real projection code: ~100,000 tickets on SQLite, ~1,000,000 on PostgreSQL; ``--keep DIR`` and
``--pg-reuse URL`` measure what an earlier run laid down). The web application runs in this
process (``create_app``, no background thread) with its clock at the history's end, and each
request is timed from the moment it is made to the last byte of its answer (server time: no
network, no browser), with "now" at 15:00 on the 28th of the history's last whole month: the
street dashboard page and its data for this month (also as of mid-month), today and this week;
a community's for this week;
the big screen's page and data; the analysts' page for the month. Beside each, its floor: a
plain ``SELECT count(*)`` of the tickets reported in the same place and period, measured in the
same run. Prints a markdown table, writes ``bench-results/pages-<backends>.json``. Not a test.

``--live``: the live path instead (``scripts/bench_live.py``): the time from a command to its
``changed`` event on 200 open event streams and to its row in a page, beside the same server's
event-stream floor.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_city", REPO / "scripts" / "bench_city.py")
assert _spec and _spec.loader
bench_city: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_city)

from sqlalchemy import func, select  # noqa: E402

from dispatch.adapters.logs import configure_logging  # noqa: E402
from dispatch.bootstrap import bootstrap  # noqa: E402
from dispatch.domain.clock import SimulatedClock  # noqa: E402
from dispatch.projections import tables as t  # noqa: E402
from dispatch.service import accounts, cockpit  # noqa: E402

TARGET_MS = 300
STREET = bench_city.STREET


def pages(community: str, mid_month: str) -> dict[str, tuple[str, str]]:
    """name: (path, the period its floor counts)."""
    s = f"street={STREET}"
    return {
        "dashboard page, this month": (f"/dashboard?{s}&period=month", "month"),
        "dashboard data, this month": (f"/dashboard/data?{s}&period=month", "month"),
        "dashboard data, this month, as of mid-month": (f"/dashboard/data?{s}&period=month&as_of={mid_month}",
                                                        "month"),
        "dashboard data, today": (f"/dashboard/data?{s}&period=today", "today"),
        "dashboard data, this week": (f"/dashboard/data?{s}&period=week", "week"),
        "community dashboard data, this week": (f"/dashboard/data?community={community}&period=week", "week"),
        "big screen page, this month": ("/screen?period=month", "month"),
        "big screen data, this month": ("/screen/data?period=month", "month"),
        "analysts' page, this month": ("/analysis?by=department", "month"),
    }


def floor(runtime: Any, period: str, community: str | None = None) -> None:
    window = cockpit.period_window(runtime, period, runtime.clock.now())
    tk = t.tickets.c
    where = [tk.community == community] if community else [tk.street == STREET]
    if window.start is not None:
        where += [tk.reported_at >= window.start, tk.reported_at < window.end]
    with runtime.engine.connect() as conn:
        conn.execute(select(func.count()).select_from(t.tickets).where(*where)).scalar()


def measure(url: str, n: int, end: Any) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from dispatch.web import create_app

    # "now": 15:00 on the 28th of the history's last whole month, so this month holds four weeks
    local = end.astimezone(ZoneInfo("Asia/Shanghai"))
    last_month = (local.replace(day=1) - timedelta(days=1)).replace(day=28, hour=15, minute=0, second=0, microsecond=0)
    clock = SimulatedClock(last_month)
    runtime = bootstrap(url, clock=clock)
    op = accounts.local_operator("bench")
    for name in ("bench-admin",):
        if name not in {u["name"] for u in accounts.list_all(runtime, op)}:
            accounts.add(runtime, op, name=name, role="admin", scope=None, password="bench password 1")
    key = accounts.issue_display_token(runtime, op, STREET).text
    community = bench_city._community(runtime.reference)
    month = cockpit.period_window(runtime, "month")
    mid = (month.start + (clock.now() - month.start) / 2).astimezone(month.start.tzinfo).strftime("%Y-%m-%dT%H:%M")
    out: dict[str, Any] = {}
    # the benchmark's own template (~200,000 objects) is no server's: moved out of the collector's
    # way, or a full collection falling inside one timed request adds ~120 ms to it (as bench_city)
    gc.collect()
    gc.freeze()
    with TestClient(create_app(runtime, background=False)) as client:
        import re

        form = re.search(r'name="login_csrf" value="([0-9a-f]{64})"', client.get("/login").text)
        assert form
        assert client.post("/login", data={"name": "bench-admin", "password": "bench password 1",
                                           "login_csrf": form.group(1)}, follow_redirects=False).status_code == 303
        assert client.get(f"/screen?key={key}", follow_redirects=False).status_code == 303
        for name, (path, period) in pages(community, mid).items():
            def ask() -> None:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.text[:300])

            times = bench_city._times(ask, n)
            floors = bench_city._times(lambda: floor(runtime, period,
                                                     community if "community" in name else None), n)
            out[name] = {"p50": bench_city._p(times, 0.5), "p95": bench_city._p(times, 0.95),
                         "floor_p50": bench_city._p(floors, 0.5)}
            print(f"  {name}: p50 {out[name]['p50']:.0f} ms, p95 {out[name]['p95']:.0f} ms "
                  f"(floor {out[name]['floor_p50']:.1f} ms)", flush=True)
    runtime.close()
    return out


def table(out: dict[str, Any]) -> str:
    lines = ["| backend | page | p50 ms | p95 ms | floor p50 ms | target p95 | met |", "|---|---|---|---|---|---|---|"]
    for backend in ("PostgreSQL", "SQLite"):
        for name, r in out.get(backend, {}).items():
            lines.append(f"| {backend} | {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['floor_p50']:.1f} "
                         f"| ≤ {TARGET_MS} | {'yes' if r['p95'] <= TARGET_MS else '**no**'} |")
    sizes = [f"{b}: {out[b + ' tickets']:,} tickets" for b in ("PostgreSQL", "SQLite") if b + " tickets" in out]
    return "\n".join(lines + ([""] + sizes if sizes else []))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is laid down on it)")
    parser.add_argument("--pg-reuse", metavar="URL", help="a PostgreSQL database an earlier run laid down")
    parser.add_argument("--pg-tickets", type=int, default=1_000_000)
    parser.add_argument("--sqlite-tickets", type=int, default=100_000)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--keep", help="folder to keep the SQLite file in (and reuse it)")
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--report", nargs="+", metavar="JSON", help="print earlier runs' table and measure nothing")
    parser.add_argument("--live", action="store_true", help="measure the live path (scripts/bench_live.py)")
    parser.add_argument("--streams", type=int, default=200, help="with --live: open event streams")
    args = parser.parse_args()
    if args.live:
        live_spec = importlib.util.spec_from_file_location("bench_live", REPO / "scripts" / "bench_live.py")
        assert live_spec and live_spec.loader
        bench_live: Any = importlib.util.module_from_spec(live_spec)
        live_spec.loader.exec_module(bench_live)
        import sys

        sys.argv = [sys.argv[0], "--streams", str(args.streams), "--n", str(max(args.n, 200))]
        bench_live.main()
        return
    if args.report:
        print(table(bench_city.merged(args.report)))
        return
    configure_logging("WARNING")
    tpl = bench_city.template(300)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-pages-"))
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load": os.getloadavg()}}
    backends = []
    if not args.no_sqlite:
        backends.append(("SQLite", str(folder / "city.db"), args.sqlite_tickets, Path(folder / "city.db").exists()))
    if args.pg_reuse:
        backends.append(("PostgreSQL", args.pg_reuse, args.pg_tickets, True))
    elif args.postgres:
        from tests.integration.servers import fresh_postgres_database  # noqa: PLC0415

        os.environ.setdefault("DISPATCH_TEST_POSTGRES_URL", args.postgres)
        backends.append(("PostgreSQL", fresh_postgres_database("pages"), args.pg_tickets, False))
    for backend, url, tickets, reuse in backends:
        if not reuse:
            built = bench_city.build(url, tpl, tickets, short=False, workers=2 if backend == "PostgreSQL" else 1,
                                     folder=folder)
            print(f"{backend}: laid down {built['tickets']:,} tickets in {url}", flush=True)
        weeks = bench_city.shape(tpl, tickets)[0]
        runtime = bootstrap(url)
        with runtime.engine.connect() as conn:
            out[f"{backend} tickets"] = conn.execute(select(func.count()).select_from(t.tickets)).scalar_one()
        runtime.close()
        out[backend] = measure(url, args.n, tpl.start + timedelta(weeks=weeks))
    (REPO / "bench-results").mkdir(exist_ok=True)
    name = "pages-" + "-".join(b.lower() for b, *_ in backends) + ".json"
    (REPO / "bench-results" / name).write_text(json.dumps(out, indent=1, default=str))
    print(table(out))


if __name__ == "__main__":
    main()
