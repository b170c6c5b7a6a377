"""``dispatch replay``: rebuild from the event store, verification, time travel."""

from __future__ import annotations

import io
import json
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from dispatch.bootstrap import bootstrap
from dispatch.domain.errors import DispatchError
from dispatch.projections import catch_up
from dispatch.projections import tables as t
from dispatch.service.replay import compare, open_target, StoreSource
from dispatch.service.replay import rebuild
from dispatch.service.replay.progress import EventProgress
from tests.unit.test_replay_helpers import T0, run_scenario

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning (dispatch.cli imports it)
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.cli import main

T = T0.replace(day=17, hour=15)  # mid-scenario: the scenario runs two more days past it


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("live") / "live.db"
    run_scenario(path, n=120).close()
    return str(path)


def cli(*args: str, db: str, cwd: Path | None = None) -> Any:
    result = CliRunner().invoke(main, ["--db", db, "--json", *args], catch_exceptions=False)
    return result


def test_verify_reports_zero_differences(live: str) -> None:
    result = cli("replay", "--verify", "--no-progress", db=live)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["verification"]["ok"] and report["verification"]["differing_rows"] == 0
    assert report["events_read"] == report["events_applied"] > 500
    tables = {x["table"]: x for x in report["verification"]["tables"]}
    assert set(tables) == {"tickets", "ticket_states", "calls", "evaluations", "escalations", "reopens",
                           "quarantined_events"}
    assert tables["tickets"]["live_rows"] == 120
    assert report["verification"]["excluded"] == ["projection_positions"]


def test_rebuild_writes_a_fresh_file_and_says_where(live: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["--db", live, "replay", "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [written] = list(tmp_path.glob("replay-*.db"))
    assert f"wrote {written}" in result.stdout
    # the copy carries the reference data: dashboards work on it and agree with the live ones
    a = cli("dashboard", "--street", "caojing", "--as-of", T.isoformat(), db=live)
    b = cli("dashboard", "--street", "caojing", "--as-of", T.isoformat(), db=str(written))
    assert json.loads(a.stdout) == json.loads(b.stdout)
    copy = bootstrap(str(written))
    try:
        assert copy.reference.to_dict() == bootstrap_reference(live)
    finally:
        copy.close()


def bootstrap_reference(db: str) -> dict[str, Any]:
    runtime = bootstrap(db)
    try:
        return runtime.reference.to_dict()
    finally:
        runtime.close()


@pytest.mark.parametrize("view", [["dashboard", "--street", "caojing"], ["dashboard", "--street", "xinqi"],
                                  ["dashboard", "--community", "cj-shuiku"], ["sla", "--by", "department"],
                                  ["sla", "--by", "community"]])
def test_until_equals_the_live_view_as_of_that_instant(live: str, tmp_path: Path, view: list[str]) -> None:
    target = str(tmp_path / "until.db")
    result = cli("replay", "--until", T.isoformat(), "--into", target, "--no-progress", db=live)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0 < report["events_applied"] < report["events_read"]  # later events were left out
    then_live = json.loads(cli(*view, "--as-of", T.isoformat(), db=live).stdout)
    then_rebuilt = json.loads(cli(*view, "--as-of", T.isoformat(), db=target).stdout)
    assert then_rebuilt == then_live
    now_live = json.loads(cli(*view, "--as-of", T0.replace(day=20).isoformat(), db=live).stdout)
    assert now_live != then_live  # the scenario did move on after T


def test_until_leaves_out_every_later_event(live: str, tmp_path: Path) -> None:
    target = str(tmp_path / "until.db")
    assert cli("replay", "--until", T.isoformat(), "--into", target, "--no-progress", db=live).exit_code == 0
    runtime = bootstrap(target)
    try:
        with runtime.engine.connect() as conn:
            latest: datetime = conn.execute(select(t.tickets.c.last_at).order_by(t.tickets.c.last_at.desc())).scalar()
            reported_after = conn.execute(select(t.tickets.c.ticket_id).where(t.tickets.c.reported_at > T)).all()
    finally:
        runtime.close()
    assert latest <= T and reported_after == []


def test_verify_lists_the_differing_rows_and_fails(tmp_path: Path) -> None:
    db = str(tmp_path / "tampered.db")
    runtime = run_scenario(db, n=30)
    try:
        catch_up(runtime)
        with runtime.engine.begin() as conn:
            tid = conn.execute(select(t.tickets.c.ticket_id).order_by(t.tickets.c.ticket_id)).scalar()
            conn.execute(update(t.tickets).where(t.tickets.c.ticket_id == tid).values(status="tampered", level="tampered"))
            evaluation = conn.execute(select(t.evaluations.c.ticket_id, t.evaluations.c.version)).first()
            assert evaluation is not None
            conn.execute(delete(t.evaluations).where(t.evaluations.c.ticket_id == evaluation.ticket_id,
                                                     t.evaluations.c.version == evaluation.version))
    finally:
        runtime.close()
    result = cli("replay", "--verify", "--no-progress", db=db)
    assert result.exit_code == 1
    tables = {x["table"]: x for x in json.loads(result.stdout)["verification"]["tables"]}
    [changed] = tables["tickets"]["differences"]
    assert changed["key"] == {"ticket_id": tid} and changed["kind"] == "differs"
    assert set(changed["columns"]) == {"status", "level"}
    assert changed["columns"]["status"]["live"] == "tampered"
    [missing] = tables["evaluations"]["differences"]
    assert missing == {"key": {"ticket_id": evaluation.ticket_id, "version": evaluation.version},
                       "kind": "missing in live"}
    assert tables["calls"]["ok"] and not tables["tickets"]["ok"]
    human = CliRunner().invoke(main, ["--db", db, "replay", "--verify", "--no-progress"])
    assert human.exit_code == 1 and "2 differing rows" in human.stdout and tid in human.stdout


def test_small_pages_give_the_same_projections(live: str, tmp_path: Path) -> None:
    runtime = bootstrap(live)
    try:
        catch_up(runtime)
        source = StoreSource(runtime.app, page_size=7)
        target = open_target(str(tmp_path / "paged.db"), runtime.reference, source="test")
        try:
            result = rebuild(source, target.engine, progress=False)
            assert result.read == runtime.app.recorder.max_notification_id()
            assert compare(runtime.engine, target.engine).ok
        finally:
            target.close()
    finally:
        runtime.close()


def test_a_target_with_projections_or_the_live_database_is_refused(live: str, tmp_path: Path) -> None:
    runtime = bootstrap(live)
    try:
        catch_up(runtime)
        with pytest.raises(DispatchError, match="that no replay made"):
            open_target(live, runtime.reference, source="t")
        with pytest.raises(DispatchError, match="is the live database"):
            open_target(live, runtime.reference, source="t", live=runtime.db)
    finally:
        runtime.close()
    result = cli("replay", "--verify", "--until", T.isoformat(), db=live)
    assert result.exit_code == 2


def test_progress_without_a_terminal_is_plain_lines() -> None:
    stream = io.StringIO()
    with EventProgress(1000, "replay", stream=stream, interval=0) as bar:
        bar.advance(400)
        bar.advance(600)
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith("replay: 1,000 events of 1,000 (100%)")
    assert "events/s" in lines[0] and "ETA" in lines[0]
