#!/usr/bin/env python
"""A what-if of a district's quarter at city scale, timed beside its floors.

    scripts/bench_whatif.py --db URL --result bench-results/city-sqlite.json [--backend SQLite]

Runs on a read model ``scripts/bench_city.py`` laid down (``--keep`` for SQLite; the PostgreSQL
URL it prints). Such a read model has no event store behind it, so the events of a ticket whose
deadlines moved (none in a simulated city) would be made again from the cached template
(``city.CopiedEvents``) — the what-if reads them where it would read the store; every other
ticket is copied from its rows. The question: ``sla --by department`` for the history's last
quarter (91 days) under the rules in force with report-in doubled and a working day of the
quarter made a holiday; timed once, with the progress bar on stderr. Floors, measured in the same
run: reading those tickets' rows of the six tables the what-if copies into a scratch read model, by
the database driver alone (``SELECT *`` by id, 2,000 ids a statement; of their statuses, each
ticket's at the instant) — the floor of that way; the same question from the live read model
(``dispatch sla``); and the same question from the live rows raw, no rollup (what PostgreSQL works
through when it works out the deadlines itself: ``projections.derived``). Writes ``bench-results/whatif-<backend>.json``. Not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from dispatch.adapters.logs import configure_logging  # noqa: E402
from dispatch.bootstrap import bootstrap  # noqa: E402
from dispatch.projections import sla_statistics  # noqa: E402
from dispatch.projections import verdicts  # noqa: E402
from dispatch.projections.measures import Question  # noqa: E402
from dispatch.projections.writer import db_time_for_sqlite  # noqa: E402
from dispatch.service.queries import Window  # noqa: E402
from dispatch.service.replay.parallel import default_workers  # noqa: E402
from dispatch.service.simulation import city  # noqa: E402
from dispatch.service import whatif  # noqa: E402
from dispatch.service.whatif import export_rules, what_if  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="the read model bench_city.py laid down")
    parser.add_argument("--result", required=True, help="bench_city.py's result file (the history's shape)")
    parser.add_argument("--backend", default="SQLite")
    parser.add_argument("--workers", type=int, default=None, help="what-if processes [default: the CPU count]")
    args = parser.parse_args()
    workers = args.workers or default_workers()
    configure_logging("WARNING")
    shape = json.loads(Path(args.result).read_text())[f"{args.backend} build"]
    cached = REPO / "bench-results" / "city-template.pickle"
    import pickle

    tpl = pickle.loads(cached.read_bytes())["template"]
    runtime = bootstrap(args.db, create=False)
    plan = city.plan_of(tpl, weeks=shape["weeks"], per_week=shape["per_week"], variants=shape["per_week"])
    started = time.perf_counter()
    source = city.CopiedEvents(tpl, plan)
    index_seconds = time.perf_counter() - started
    end = tpl.start + timedelta(weeks=shape["weeks"])
    start = end - timedelta(days=91)
    period = Window(start, end, end - timedelta(microseconds=1))
    rules = export_rules(runtime.reference)
    for rule in rules["sla"]:
        rule["ack_minutes"] *= 2
        rule["handle_minutes"] = max(rule["handle_minutes"], rule["ack_minutes"])
        rule["feedback_minutes"] = max(rule["feedback_minutes"], rule["handle_minutes"])
    holiday = (end - timedelta(days=30)).astimezone(start.tzinfo).date()
    while holiday.weekday() >= 5:
        holiday += timedelta(days=1)
    rules["calendar_overrides"] = {**rules.get("calendar_overrides", {}), holiday.isoformat(): "holiday"}
    folder = Path(tempfile.mkdtemp(prefix="bench-whatif-"))
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")

    chosen = whatif.in_database
    found: list[Any] = []

    def noted(*args: Any) -> Any:
        found.append(chosen(*args))
        return found[-1]

    whatif.in_database = noted  # type: ignore[assignment]  # (which way the what-if went)
    started = time.perf_counter()
    result = what_if(runtime, str(path), period=period, by="department", progress=True, events=source,
                     workers=workers)
    seconds = time.perf_counter() - started
    in_database = bool(found and found[0] is not None)

    with runtime.engine.connect() as conn:  # floors
        ids = verdicts.touched(conn, Question(period.as_of, start, end))
        started = time.perf_counter()
        rows = sum(len(conn.exec_driver_sql(*_floor_query(args.backend != "SQLite", name, chunk, period.as_of)).all())
                   for i in range(0, len(ids), 2000) for chunk in [ids[i:i + 2000]]
                   for name in ("tickets", "calls", "ticket_states", "evaluations", "escalations", "reopens"))
        rows_seconds = time.perf_counter() - started
        moved = conn.exec_driver_sql("SELECT count(*) FROM tickets WHERE deadline_moves IS NULL "
                                     "OR deadline_moves > 0").scalar()
    started = time.perf_counter()
    sla_statistics(runtime.engine, runtime.reference, by="department", as_of=period.as_of, start=start, end=end)
    sla_seconds = time.perf_counter() - started
    started = time.perf_counter()  # the rows the database works through when it works out the deadlines
    sla_statistics(runtime.engine, runtime.reference, by="department", as_of=period.as_of, start=start, end=end,
                   use_rollups=False)
    raw_seconds = time.perf_counter() - started
    out = {"backend": args.backend, "tickets": result["tickets"], "rows": rows, "seconds": round(seconds, 2),
           "floor_rows_seconds": round(rows_seconds, 2), "floor_sla_seconds": round(sla_seconds, 3),
           "floor_raw_sla_seconds": round(raw_seconds, 2), "in_database": in_database,
           "history_tickets_moved": moved,
           "source_index_seconds": round(index_seconds, 2), "changed": result["changed"],
           "figures_moved": sum(1 for r in result["rows"] if r["delta"] not in (0, None)),
           "history_tickets": shape["tickets"], "workers": workers}
    runtime.close()
    (REPO / "bench-results").mkdir(exist_ok=True)
    (REPO / "bench-results" / f"whatif-{args.backend.lower()}.json").write_text(json.dumps(out, indent=1))
    print(f"{args.backend}: what-if of a quarter in {workers} process(es) ({out['tickets']:,} tickets, {rows:,} rows, "
          f"of a history of {shape['tickets']:,}, {moved:,} with deadlines moved): {seconds:.1f} s; floors: reading "
          f"the rows {rows_seconds:.1f} s, the same question live {sla_seconds * 1000:.0f} ms (from raw rows "
          f"{raw_seconds:.1f} s); deadlines worked out by {'the database' if in_database else 'Python'}; "
          f"{out['changed']:,} deadline verdicts changed, {out['figures_moved']} figures moved")


def _floor_query(postgres: bool, name: str, ids: list[str], as_of: datetime) -> tuple[str, tuple[Any, ...]]:
    """``SELECT *`` of table ``name``'s rows of the tickets ``ids`` — of their statuses, as the
    what-if of an SLA question reads them, each ticket's at the instant only."""
    marks = ", ".join(["%s" if postgres else "?"] * len(ids))
    if name != "ticket_states":
        return f"SELECT * FROM {name} WHERE ticket_id IN ({marks})", tuple(ids)
    if postgres:
        return (f"SELECT DISTINCT ON (ticket_id) * FROM ticket_states WHERE ticket_id IN ({marks}) AND at <= %s "
                "ORDER BY ticket_id, version DESC", (*ids, as_of))
    return (f"SELECT * FROM ticket_states WHERE ticket_id IN ({marks}) AND version = (SELECT max(s.version) "
            "FROM ticket_states s WHERE s.ticket_id = ticket_states.ticket_id AND s.at <= ?)",
            (*ids, db_time_for_sqlite(as_of)))


if __name__ == "__main__":
    main()
