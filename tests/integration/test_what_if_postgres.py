"""``dispatch what-if`` on PostgreSQL: the tickets whose deadlines never moved are copied from the
live PostgreSQL read model's rows (times formatted by the server), and give the scratch read model
and the answer their rewritten events give."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

import dispatch.service.whatif
from dispatch.bootstrap import Runtime, bootstrap
from dispatch.service.queries import Window, for_reading
from dispatch.service.whatif import export_rules, what_if
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit.test_replay_helpers import T0, run_scenario
from tests.unit.test_what_if import _replayed, _tables_of, counted_as_listed, waiting_at_the_instant

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def live() -> Iterator[Runtime]:
    url = fresh_postgres_database("what_if_live")
    run_scenario(url, n=80).close()
    runtime = bootstrap(url)
    for_reading(runtime)
    yield runtime
    runtime.close()
    drop_postgres_database(url)


def test_rows_copied_from_postgres_equal_the_events_projected(live: Runtime, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    rules = export_rules(live.reference)
    for rule in rules["sla"]:  # report-in doubled, every rule counted in the other time basis
        rule["ack_minutes"] *= 2
        rule["time_basis"] = "working" if rule["time_basis"] == "calendar" else "calendar"
    rules["calendar_overrides"] = {(T0 + timedelta(days=1)).date().isoformat(): "holiday"}
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    period = Window(None, None, T0 + timedelta(days=6))
    monkeypatch.setattr(dispatch.service.whatif, "_CHUNK", 20)  # several chunks, and two workers' shares

    answers, scratches = [], []
    for rows in (False, True):
        monkeypatch.setattr(dispatch.service.whatif, "ROWS_WHEN_UNMOVED", rows)
        scratches.append(_tables_of(_replayed(live, str(path))))
        answers.append([what_if(live, str(path), period=period, by="department", workers=workers)
                        for workers in (1, 2)])
    assert scratches[0] == scratches[1]
    assert scratches[1] != _tables_of(live.engine)  # the rules moved deadlines and durations
    assert answers[0] == answers[1]
    assert answers[1][0] == answers[1][1]  # in one process and in two
    assert answers[1][0]["changed"] > 0 and answers[1][0]["tickets"] >= 60


def test_the_tickets_behind_a_period_counted_on_postgresql_without_listing_them(live: Runtime) -> None:
    """The what-if's count of the tickets behind its figures, by PostgreSQL, as the list has them."""
    assert counted_as_listed(live) > 20


def test_tickets_waiting_at_the_instant_read_by_their_status_then_on_postgres(tmp_path: Path) -> None:
    """Each ticket's status at the instant alone read from PostgreSQL (``DISTINCT ON``): the
    waiting tickets judged as the live read model judges them, under either rules."""
    url = fresh_postgres_database("what_if_waiting")
    try:
        waiting_at_the_instant(url, tmp_path)
    finally:
        drop_postgres_database(url)


@pytest.mark.parametrize("by, per, street, days", [("department", None, None, -1), ("community", "day", None, -1),
                                                   ("category", "week", None, -1), ("community", None, "s1", -1),
                                                   ("department", "day", None, 2)])
def test_deadlines_worked_out_by_postgresql_equal_the_scratch_read_model(
        live: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by: str, per: str | None,
        street: str | None, days: int) -> None:
    """An SLA what-if on PostgreSQL asks the live rows, their deadlines and minutes worked out by
    the database (``projections.derived``): every figure and every changed verdict as the
    scratch read model gives them — report-in doubled, every rule in the other time basis, a
    working day made a holiday, and the working day shortened (deadlines across lunch and days)."""
    rules = export_rules(live.reference)
    for rule in rules["sla"]:
        rule["ack_minutes"] *= 2
        rule["time_basis"] = "working" if rule["time_basis"] == "calendar" else "calendar"
    rules["calendar_overrides"] = {(T0 + timedelta(days=1)).date().isoformat(): "holiday"}
    rules["working_hours"] = ["08:30-11:45", "14:00-17:15"]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    # (from before the story, or from its third day: tickets reported before the period, calls in it)
    period = Window(T0 + timedelta(days=days), T0 + timedelta(days=5), T0 + timedelta(days=4, hours=7))
    with live.engine.connect() as conn:
        streets = conn.exec_driver_sql("SELECT DISTINCT street FROM tickets ORDER BY 1").scalars().all()
    answers, derived = [], []
    chosen = dispatch.service.whatif.in_database

    def noted(*args: Any) -> Any:
        derived.append(chosen(*args))
        return derived[-1]

    monkeypatch.setattr(dispatch.service.whatif, "in_database", noted)
    for in_database in (False, True):
        monkeypatch.setattr(dispatch.service.whatif, "IN_DATABASE", in_database)
        answers.append(what_if(live, str(path), period=period, by=by, per=per,
                               street=streets[0] if street else None))
    assert derived[0] is None and derived[1] is not None  # the scratch's way, then the database's
    assert answers[0] == answers[1]
    assert answers[1]["changed"] > 0 and any(r["delta"] for r in answers[1]["rows"])
    assert answers[1]["changed_tickets"][0]["due_what_if"] != answers[1]["changed_tickets"][0]["due"]


def test_tickets_whose_deadlines_moved_go_through_their_events_beside_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hold and an extension moved three tickets' deadlines: on PostgreSQL those go through their
    rewritten events and their rows stand in for the database's arithmetic, the others' deadlines
    worked out by the database — and the answer is the scratch read model's, figure for figure and
    verdict for verdict."""
    from tests.unit.test_what_if import PERIOD, REFERENCE, Story, _rules, _write, play_holds_and_extensions

    url = fresh_postgres_database("what_if_moved")
    runtime = bootstrap(url, reference_file=_write(tmp_path / "ref.yaml", REFERENCE))
    try:
        play_holds_and_extensions(runtime)  # three tickets whose deadlines moved
        plain = Story(runtime)  # and three whose did not
        plain.n = 1_000
        for name in ("P1", "P2", "P3"):
            plain.intake(name, "10-12 08:40", "ca-g01", "sanitation", "patrol", "10-12 09:00")
        plain.do("P1", "acknowledge", "10-12 10:30", department="huanwei")
        plain.do("P1", "handle", "10-14 09:00", department="huanwei")
        plain.do("P2", "acknowledge", "10-12 09:20", department="huanwei")
        for_reading(runtime)
        path = _write(tmp_path / "other.yaml", {**_rules(ack_minutes=90, handle_minutes=470, feedback_minutes=960),
                                                "calendar_overrides": {"2026-10-13": "holiday"}})
        derived: list[Any] = []
        chosen = dispatch.service.whatif.in_database

        def noted(*args: Any) -> Any:
            derived.append(chosen(*args))
            return derived[-1]

        monkeypatch.setattr(dispatch.service.whatif, "in_database", noted)
        answers = []
        for in_database in (False, True):
            monkeypatch.setattr(dispatch.service.whatif, "IN_DATABASE", in_database)
            answers.append([what_if(runtime, path, period=PERIOD, by=by) for by in ("department", "street")])
        assert derived[0] is None and len(derived[-1].moved["calls"]) >= 3  # T1, T2, T3 through their events
        assert answers[0] == answers[1]
        assert answers[1][0]["changed"] > 0 and any(r["delta"] for r in answers[1][0]["rows"])
    finally:
        runtime.close()
        drop_postgres_database(url)


def test_a_what_ifs_statements_are_planned_without_parallel_workers_and_leave_the_connection_as_it_was(
        live: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its statements are read several at a time already: each is planned with no parallel
    workers of its own (``SERIAL_PLANS``), for its transaction only — a connection back in the
    pool plans as before."""
    from sqlalchemy import event

    from dispatch.adapters.database import SERIAL_PLANS

    def workers(engine: Any) -> str:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar())

    before = workers(live.engine)
    assert before != "0"
    assert workers(live.engine.execution_options(**{SERIAL_PLANS: True})) == "0"
    assert workers(live.engine) == before

    seen: list[str] = []  # what each statement of a what-if was planned with
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(export_rules(live.reference), allow_unicode=True), encoding="utf-8")

    def planned(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "max_parallel" not in statement:
            seen.append(str(conn.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()))

    event.listen(live.engine, "after_cursor_execute", planned)
    try:
        what_if(live, str(path), period=Window(None, None, T0 + timedelta(days=6)), by="department")
    finally:
        event.remove(live.engine, "after_cursor_execute", planned)
    assert "0" in seen and workers(live.engine) == before
