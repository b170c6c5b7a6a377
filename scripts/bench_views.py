#!/usr/bin/env python
"""Cost follows the question: the same one-week questions (street dashboard, `sla --by
department`, each for the last week of the history and as of its end) over a simulated history
of one busy street, and over a history ten times longer, on SQLite. Each figure beside its floor
measured in the same run: a plain `SELECT count(*)` of the week's calls.

    python scripts/bench_views.py [--days 14] [--per-day 300] [--n 7]

Prints a table (milliseconds, median of n) and the long/short ratio. Not a test."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from dispatch.bootstrap import bootstrap  # noqa: E402
from dispatch.clock import SimulatedClock  # noqa: E402
from dispatch.projections import dashboard as dashboard_module  # noqa: E402
from dispatch.projections import facts  # noqa: E402
from dispatch.projections import sla_stats as sla_module  # noqa: E402
from dispatch.projections import street_dashboard, sla_statistics  # noqa: E402
from dispatch.projections import tables as t  # noqa: E402
from dispatch.simulation import simulate  # noqa: E402
from dispatch.simulation.generator import DEFAULT_START  # noqa: E402
from dispatch.simulation.runner import run_embedded  # noqa: E402


def _median_ms(call: Any, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _measure(days: int, per_day: int, n: int, tmp: Path) -> dict[str, float]:
    from zoneinfo import ZoneInfo

    runtime = bootstrap(str(tmp / f"h{days}.db"))
    start = datetime.fromisoformat(DEFAULT_START).replace(tzinfo=ZoneInfo(runtime.reference.timezone))
    runtime.close()
    runtime = bootstrap(str(tmp / f"h{days}.db"), clock=SimulatedClock(start))
    end = start + timedelta(days=days)
    run_embedded(runtime, simulate(runtime.reference, "xinqi", days, per_day, 7, start), start=start, end=end,
                 watchdog=False)
    week, as_of = end - timedelta(days=7), end - timedelta(microseconds=1)
    ref, engine = runtime.reference, runtime.engine
    with engine.connect() as conn:
        tickets = conn.execute(select(func.count()).select_from(t.tickets)).scalar_one()

    def floor() -> None:
        with engine.connect() as conn:
            conn.execute(select(func.count()).select_from(t.calls).where(t.calls.c.dispatched_at >= week,
                                                                         t.calls.c.dispatched_at < end)).scalar()

    def dashboard() -> None:
        street_dashboard(engine, ref, "xinqi", as_of=as_of, start=week, end=end)

    def sla() -> None:
        sla_statistics(engine, ref, by="department", as_of=as_of, start=week, end=end)

    out = {"tickets": float(tickets), "floor": _median_ms(floor, n), "dashboard": _median_ms(dashboard, n),
           "sla": _median_ms(sla, n)}
    # the whole-history path this replaced (every fact up to the instant), on the same data
    original = facts.load_facts

    def whole(engine: Any, as_of: Any, *, community: Any = None, street: Any = None, **_: Any) -> Any:
        return original(engine, as_of, community=community, street=street)

    dashboard_module.load_facts = sla_module.load_facts = whole  # type: ignore[assignment]
    try:
        out["dashboard_before"], out["sla_before"] = _median_ms(dashboard, n), _median_ms(sla, n)
    finally:
        dashboard_module.load_facts = sla_module.load_facts = original  # type: ignore[assignment]
    runtime.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--n", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        short = _measure(args.days, args.per_day, args.n, Path(tmp))
        long = _measure(args.days * 10, args.per_day, args.n, Path(tmp))
    print(f"one street, {args.per_day} tickets/day; the last week's figures, as of the end; SQLite")
    print("| question | short history ms | long history ms | long / short | before: short, long, ratio "
          "| floor ms (short, long) |")
    print("|---|---|---|---|---|---|")
    for name in ("dashboard", "sla"):
        b = f"{name}_before"
        print(f"| {name} | {short[name]:.0f} | {long[name]:.0f} | {long[name] / short[name]:.2f} | "
              f"{short[b]:.0f}, {long[b]:.0f}, {long[b] / short[b]:.2f} | {short['floor']:.1f}, {long['floor']:.1f} |")
    print(f"tickets: {short['tickets']:,.0f} ({args.days} days) and {long['tickets']:,.0f} ({args.days * 10} days)")


if __name__ == "__main__":
    main()
