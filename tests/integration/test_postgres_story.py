"""The core story against a real PostgreSQL: the CLI, batches with positions, refusals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from eventsourcing.persistence import Tracking

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from tests.e2e.cli import Cli
from tests.e2e.test_cli_story import run_story
from tests.integration.servers import drop_postgres_database, fresh_postgres_database

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=8)))


def test_the_cli_story_runs_on_postgresql(tmp_path: Path) -> None:
    url = fresh_postgres_database("story")
    try:
        cli = Cli(tmp_path, db=url)
        cli("init")  # commands other than init refuse a database that does not exist
        ticket = run_story(cli)
        history = cli("--json", "history", ticket).json()["events"]
        assert [e["event"] for e in history][-1] == "Closed"
        assert history[4]["actor"]["department"] == "chengguan"
        refused = cli("accept", ticket, check=False)
        assert refused.code == 1 and "closed" in refused.err
        assert cli("--json", "history", ticket).json()["events"] == history
        assert not (tmp_path / "dispatch.db").exists()  # nothing went to the SQLite default
    finally:
        drop_postgres_database(url)


def test_a_batch_records_its_events_and_position_together_and_skips_refused_commands() -> None:
    url = fresh_postgres_database("batch")
    runtime = bootstrap(url)
    try:
        actor = {"role": "supervisor", "id": "w"}
        report = c.parse_command({"type": "report", "command_id": "m-1", "occurred_at": T0.isoformat(),
                                  "actor": actor, "grid": "cj-shuiku-g01", "category": "city_appearance",
                                  "channel": "patrol", "description": "x"})
        outcomes = runtime.app.execute_batch([report], tracking=Tracking("intake:0", 0))
        ticket = outcomes[0].ticket_id
        accept = {"type": "accept", "ticket_id": str(ticket), "actor": {"role": "centre", "id": "c"}}
        batch = [
            c.parse_command({**accept, "command_id": "m-2", "occurred_at": (T0 + timedelta(minutes=1)).isoformat()}),
            c.parse_command({**accept, "command_id": "m-2", "occurred_at": (T0 + timedelta(minutes=2)).isoformat()}),
            report,  # the same report message again
        ]
        outcomes = runtime.app.execute_batch(batch, tracking=Tracking("intake:0", 3))
        assert [o.ok for o in outcomes] == [True, False, False]
        assert {o.error.code for o in outcomes if o.error} == {"duplicate_command"}
        assert runtime.app.recorder.max_tracking_id("intake:0") == 3
        assert [type(e).__name__ for e in runtime.app.events.get(ticket)] == ["Reported", "Accepted"]
    finally:
        runtime.close()
        drop_postgres_database(url)


def test_processes_started_together_on_a_new_database_all_start() -> None:
    # Two engines and a relay deployed at once must not race to create the same tables.
    import subprocess
    import sys

    url = fresh_postgres_database("together")
    try:
        starts = [subprocess.Popen([sys.executable, "-c", f"from dispatch.bootstrap import bootstrap; "
                                    f"bootstrap({url!r}).close()"], stderr=subprocess.PIPE) for _ in range(4)]
        failures = [p.stderr.read().decode()[-300:] for p in starts if p.wait() != 0]  # type: ignore[union-attr]
        assert failures == []
    finally:
        drop_postgres_database(url)
