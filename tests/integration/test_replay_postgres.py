"""``dispatch replay`` on PostgreSQL: verify against a live PostgreSQL database, rebuild
into another PostgreSQL database, time travel there."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit.test_replay_helpers import T0, run_scenario

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning (dispatch.cli imports it)
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.cli import main

pytestmark = pytest.mark.integration
T = T0.replace(day=17, hour=15)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    url = fresh_postgres_database("replay_live")
    run_scenario(url, n=80).close()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def target() -> Iterator[str]:
    url = fresh_postgres_database("replay_target")
    yield url
    drop_postgres_database(url)


def cli(db: str, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["--db", db, "--json", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_verify_from_the_postgres_store_reports_zero_differences(live: str) -> None:
    report = cli(live, "replay", "--verify", "--no-progress")
    assert report["verification"]["ok"] and report["verification"]["differing_rows"] == 0  # type: ignore[index]


def test_rebuild_into_postgres_then_verify_against_it(live: str, target: str) -> None:
    report = cli(live, "replay", "--verify", "--into", target, "--no-progress", "--page-size", "100")
    assert report["verification"]["ok"]  # type: ignore[index]
    # the target is a working database for the views
    assert cli(target, "dashboard", "--street", "caojing", "--as-of", T.isoformat()) == \
        cli(live, "dashboard", "--street", "caojing", "--as-of", T.isoformat())


def test_until_on_postgres_equals_the_live_view_as_of(live: str, target: str, tmp_path: Path) -> None:
    cli(live, "replay", "--until", T.isoformat(), "--into", target, "--no-progress")
    for view in (["dashboard", "--street", "xinqi"], ["sla", "--by", "department"]):
        assert cli(target, *view, "--as-of", T.isoformat()) == cli(live, *view, "--as-of", T.isoformat())
    # and into SQLite from the PostgreSQL store
    sqlite = str(tmp_path / "until.db")
    cli(live, "replay", "--until", T.isoformat(), "--into", sqlite, "--no-progress")
    assert cli(sqlite, "sla", "--by", "community", "--as-of", T.isoformat()) == \
        cli(live, "sla", "--by", "community", "--as-of", T.isoformat())


def test_a_rebuild_in_one_page_matches_the_live_rows(live: str, target: str) -> None:
    # the scenario's 80 tickets in one page of one process: they are upserted through the session's
    # staging table (50 or more at once) and every new row goes in by binary COPY; the live
    # projection wrote the same rows a command at a time
    report = cli(live, "replay", "--verify", "--into", target, "--no-progress", "--page-size", "100000",
                 "--workers", "1")
    assert report["verification"]["ok"] and report["verification"]["differing_rows"] == 0  # type: ignore[index]
    assert report["events_read"] == report["events_applied"] > 80  # type: ignore[operator]
