"""The application on the embedded SQLite store: batches, positions, refusals, configuration."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import structlog
from eventsourcing.persistence import Tracking

from dispatch.adapters.config import resolve_db
from dispatch.adapters.logs import configure_logging
from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain import commands as c
from dispatch.domain.errors import AlreadyReported, DispatchError

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=8)))


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    rt = bootstrap(str(tmp_path / "t.db"))
    yield rt
    rt.close()


def report(**kw: object) -> object:
    body = {"type": "report", "occurred_at": T0.isoformat(), "actor": {"role": "hotline", "id": "h"},
            "grid": "cj-shuiku-g01", "category": "construction_transport", "channel": "hotline",
            "description": "道路破损"}
    body.update(kw)
    return c.parse_command(body)


def test_a_batch_applies_good_commands_reports_bad_ones_and_records_its_position(runtime: Runtime) -> None:
    first = runtime.app.execute(report(command_id="r-1"))
    tid = str(first.ticket_id)
    centre = {"role": "centre", "id": "c"}
    batch = [
        c.parse_command({"type": "accept", "ticket_id": tid, "occurred_at": (T0 + timedelta(minutes=1)).isoformat(),
                         "actor": centre, "command_id": "a-1"}),
        c.parse_command({"type": "close", "ticket_id": tid, "occurred_at": (T0 + timedelta(minutes=2)).isoformat(),
                         "actor": centre}),
        c.parse_command({"type": "dispatch", "ticket_id": tid, "lead": "城管",
                         "occurred_at": (T0 + timedelta(minutes=3)).isoformat(), "actor": centre}),
    ]
    outcomes = runtime.app.execute_batch(batch, tracking=Tracking("intake:2", 41))
    assert [o.error.code if o.error else o.events[0] for o in outcomes] == [
        "Accepted", "ticket_not_evaluated", "Dispatched"]
    assert runtime.app.recorder.max_tracking_id("intake:2") == 41
    ticket = runtime.app.get_ticket(first.ticket_id)
    assert ticket.lead == "chengguan" and ticket.version == 3


def test_the_same_hotline_case_reaches_the_same_ticket(runtime: Runtime) -> None:
    one = runtime.app.execute(report(external_ref="12345-1"))
    with pytest.raises(AlreadyReported) as refused:
        runtime.app.execute(report(external_ref="12345-1", description="再次来电"))
    assert refused.value.ticket_id == one.ticket_id


def test_deadlines_come_from_the_policy_in_working_time(runtime: Runtime) -> None:
    # Friday 16:30 local; the default rule gives 30 working minutes to report in and 1350 to handle.
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=timezone(timedelta(hours=8)))
    tid = runtime.app.execute(report(occurred_at=friday.isoformat(), category="city_appearance")).ticket_id
    centre = {"role": "centre", "id": "c"}
    for kind in ("accept", "dispatch"):
        runtime.app.execute(c.parse_command({"type": kind, "ticket_id": str(tid), "occurred_at": friday.isoformat(),
                                             "actor": centre}))
    call = next(iter(runtime.app.get_ticket(tid).calls.values()))
    assert call["ack_due"] == datetime(2026, 11, 20, 17, 0, tzinfo=timezone(timedelta(hours=8)))


def test_database_urls_name_one_store_for_events_and_read_models(tmp_path: Path) -> None:
    sqlite = resolve_db(str(tmp_path / "x.db"))
    assert sqlite.is_sqlite and sqlite.eventstore_env()["SQLITE_DBNAME"] == str(tmp_path / "x.db")
    pg = resolve_db("postgresql://u:pw@db.example:6543/grid")
    env = pg.eventstore_env()
    assert pg.url.drivername == "postgresql+psycopg"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_DBNAME"]) == ("db.example", "6543", "grid")
    with pytest.raises(DispatchError, match="unsupported database"):
        resolve_db("mysql://x/y")


def test_standard_library_logs_come_out_in_the_same_json_shape() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", json=True, stream=stream)
        structlog.get_logger("dispatch.test").info("batch applied", applied=3)
        logging.getLogger("kafka.conn").warning("broker unreachable")
    finally:
        root.handlers[:], _ = saved[0], root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(l["event"], l["level"], l["logger"]) for l in lines] == [
        ("batch applied", "info", "dispatch.test"), ("broker unreachable", "warning", "kafka.conn")]
    assert lines[0]["applied"] == 3 and all("timestamp" in l for l in lines)
