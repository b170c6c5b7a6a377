#!/usr/bin/env python3
"""Which event-store persistence module? eventsourcing's own recorders vs eventsourcing-sqlalchemy.

    python scripts/bench_recorders.py [--events 20000] [--postgres URL]

Writes batches of real Ticket events (200 per transaction, as the Kafka engine does)
and reads the whole notification log back, on SQLite and (with --postgres) PostgreSQL.
Prints events/s for each module and the ratio. Needs `pip install eventsourcing-sqlalchemy`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from uuid import uuid4

from eventsourcing.application import Application

from dispatch.aggregates import Ticket

T0 = datetime(2026, 11, 20, 9, tzinfo=timezone(timedelta(hours=8)))


class App(Application):
    def construct_recorder(self):  # type: ignore[no-untyped-def]
        return self.factory.process_recorder()


def tickets(n: int) -> list[Ticket]:
    out = []
    for _ in range(n):
        t = Ticket(id=uuid4(), occurred_at=T0, actor={"role": "supervisor", "id": "w"}, command_id=None, grid="g",
                   community="c", street="s", district="d", category="city_appearance", priority="normal",
                   channel="patrol", description="垃圾焚烧", location=None, external_ref=None, reporter=None, media=None, case_no=None, accept_due=None, dispatch_due=None,
                  centre_basis=None, provisional=False, calendar=None)
        t.accept(occurred_at=T0 + timedelta(minutes=1), actor={"role": "centre", "id": "c"})
        out.append(t)
    return out


def measure(env: dict[str, str], events: int) -> dict[str, float]:
    app = App(env=env)
    batch = tickets(events // 2)
    start = time.perf_counter()
    for i in range(0, len(batch), 100):  # 100 tickets × 2 events per transaction
        app.save(*batch[i:i + 100])
    wrote = time.perf_counter() - start
    start, read, pos = time.perf_counter(), 0, 1
    while True:
        page = app.recorder.select_notifications(pos, 5000)
        if not page:
            break
        read += len(page)
        pos = page[-1].id + 1
    got = time.perf_counter() - start
    app.close()
    return {"write_events_per_s": events / wrote, "read_events_per_s": read / got}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--postgres", help="an empty database: postgresql://user@host:port/db")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite: eventsourcing.sqlite"] = measure(
            {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(tmp, "a.db"))}, args.events)
        results["sqlite: eventsourcing_sqlalchemy"] = measure(
            {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy", "SQLALCHEMY_URL": f"sqlite:///{tmp}/b.db"}, args.events)
    if args.postgres:
        from sqlalchemy.engine import make_url

        u = make_url(args.postgres)
        results["postgres: eventsourcing.postgres"] = measure(
            {"PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": u.database, "POSTGRES_HOST": u.host,
             "POSTGRES_PORT": str(u.port), "POSTGRES_USER": u.username, "POSTGRES_PASSWORD": u.password or "",
             "POSTGRES_SCHEMA": "es_native"}, args.events)
        results["postgres: eventsourcing_sqlalchemy"] = measure(
            {"PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
             "SQLALCHEMY_URL": u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)},
            args.events)
    print(json.dumps({k: {m: round(v) for m, v in r.items()} for k, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
