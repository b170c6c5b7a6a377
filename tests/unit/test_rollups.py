"""Rollups of settled days give the very figures of the raw rows — every count, rate, mean and
percentile equal, not close — for periods, buckets, groupings and instants, including instants
before a day settled, periods that start mid-day and questions of one street; an event in a
rolled-up day (a backfill) takes that day out until it is rolled up again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain.clock import SimulatedClock
from dispatch.domain.commands import parse_command
from dispatch.projections import catch_up, measures, rollups, sla_stats
from dispatch.projections import tables as t
from dispatch.projections.measures import Question
from dispatch.service.simulation import simulate
from dispatch.service.simulation.runner import run_embedded
from tests.unit.test_simulation import START

DAYS = 16
END = START + timedelta(days=DAYS)


@pytest.fixture(autouse=True)
def every_run_of_days(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rollups read for a run of any length here (a short history; the exactness is the point)."""
    monkeypatch.setattr(rollups, "MIN_PREFIX", timedelta(days=1))


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = bootstrap(str(tmp_path_factory.mktemp("rollups") / "r.db"), clock=SimulatedClock(START))
    run_embedded(runtime, simulate(runtime.reference, "xinqi", DAYS, 50, 7, START), start=START, end=END)
    yield runtime
    runtime.close()


def _days(days: float | None) -> datetime | None:
    return None if days is None else START + timedelta(days=days)  # (to the microsecond)


QUESTIONS = [  # (start, end, as-of) in days after START
    (0, DAYS, DAYS), (0, 10, 12), (2, 9, 5.5), (0, DAYS, 7.25), (3, 4, 15), (1, None, DAYS), (0, 7, 7),
    (0.5, 9, 12),  # a start that is no local midnight: raw rows only
    (0, DAYS, 7 - 1e-6 / 86400),  # a microsecond before a midnight: the prefix's last day ends then
]


def _both(runtime: Runtime, **question: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    fast = sla_stats.sla_statistics(runtime.engine, runtime.reference, **question)
    raw = sla_stats.sla_statistics(runtime.engine, runtime.reference, use_rollups=False, **question)
    return fast, raw


def _local_day(at: datetime) -> str:
    return at.astimezone(START.tzinfo).date().isoformat()


def _prefix_days(runtime: Runtime, start: datetime | None, end: datetime | None, as_of: datetime) -> int:
    from zoneinfo import ZoneInfo

    with runtime.engine.connect() as conn:
        found = rollups.prefix(conn, Question(as_of, start, end), ZoneInfo(runtime.reference.timezone))
    if found is None:
        return 0
    return (datetime.fromisoformat(found.last) - datetime.fromisoformat(found.first)).days + 1


def test_rolled_up_figures_equal_the_raw_rows_exactly(history: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    built = rollups.roll_up(history.engine, history.reference.timezone, END)
    assert built.days == DAYS and built.open_tickets > 0  # some tickets still open: their rows read raw
    assert built.weeks == DAYS // 7  # the history starts on a Monday: its whole weeks summed
    read_weeks: list[str] = []
    weeks_of = rollups._weeks
    monkeypatch.setattr(rollups, "_weeks", lambda *a: read_weeks.extend(weeks_of(*a)) or weeks_of(*a))
    used = 0
    for s, e, a in QUESTIONS:
        start, end, as_of = _days(s), _days(e), _days(a)
        assert as_of is not None
        used += _prefix_days(history, start, end, as_of)
        for by in ("department", "category", "community", "street"):
            for period in (None, "day", "week"):
                fast, raw = _both(history, by=by, period=period, as_of=as_of, start=start, end=end)
                assert fast == raw, (by, period, s, e, a)
    d = t.rollup_days.c  # as of noon on a day some earlier day's last tickets settled on
    with history.engine.connect() as conn:
        by = conn.execute(select(d.settled_by).where(d.settled_by > d.day, d.settled_by < _local_day(END))
                          .order_by(d.day)).scalars().first()
    assert by is not None
    noon = datetime.fromisoformat(by).replace(hour=12, tzinfo=START.tzinfo)
    for by_ in ("department", "community"):
        for period in (None, "week"):
            fast, raw = _both(history, by=by_, period=period, as_of=noon, start=START, end=END)
            assert fast == raw, (by_, period, noon)
    scoped = _both(history, by="department", street="xinqi", as_of=END, start=START, end=END)
    assert scoped[0] == scoped[1]
    assert used > 30  # the questions above did read rollups, not only raw rows
    assert len(set(read_weeks)) == 2 and len(read_weeks) > 20  # and summed weeks among them
    s = t.rollup_settles.c  # and some asked as of an instant before rolled-up tickets had settled
    with history.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(s.settles_at > _days(7.25), s.day_end <= _days(7.25))
                            ).scalar()


def test_a_statement_built_once_answers_every_question_of_its_shape(history: Runtime,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Each family's statement is built once per shape of question and asked again with each
    question's own times, days and tickets: questions asked one after the other, most of them of
    a shape asked before, get the very figures they get with every statement built for them."""
    rollups.roll_up(history.engine, history.reference.timezone, END)
    measures._MADE.clear()
    built, wanted, made = [], [], measures.statement

    def counting(conn: Any, key: Any, build: Any) -> Any:
        wanted.append(key)
        return made(conn, key, lambda: built.append(key) or build())
    monkeypatch.setattr(measures, "statement", counting)
    asked = []
    for s, e, a in [*QUESTIONS, (0, DAYS, 9.5), (0, DAYS, 12.75), (0, 10, 10.5)]:
        for by in ("department", "community"):
            for period in (None, "week"):
                question = {"by": by, "period": period, "as_of": _days(a), "start": _days(s), "end": _days(e)}
                asked.append((question, sla_stats.sla_statistics(history.engine, history.reference, **question)))
    assert 0 < len(built) * 5 < len(wanted) * 3  # some 2 in 5 were built before, for another question
    monkeypatch.setattr(measures, "statement", lambda conn, key, build: build())  # each built for its question
    for question, answer in asked:
        assert sla_stats.sla_statistics(history.engine, history.reference, **question) == answer, question


def test_an_event_in_a_rolled_up_day_takes_it_out_until_it_is_rolled_up_again(history: Runtime) -> None:
    rollups.roll_up(history.engine, history.reference.timezone, END)
    before = _both(history, by="community", as_of=END, start=START, end=END)
    assert before[0] == before[1]
    day = START + timedelta(days=2, hours=10)  # a backfilled report in a rolled-up day
    admin = {"role": "supervisor", "id": "sup-backfill"}
    history.app.execute(parse_command({"type": "report", "occurred_at": day.isoformat(), "grid": "xq-baihe-g01",
                                       "category": "city_appearance", "channel": "patrol", "description": "补录",
                                       "actor": admin, "command_id": "backfill-1"}))
    catch_up(history)
    d = t.rollup_days.c
    local = day.astimezone(START.tzinfo).date().isoformat()
    with history.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(d.day == local)).scalar() == 0
    after = _both(history, by="community", as_of=END, start=START, end=END)
    assert after[0] == after[1] and after[0] != before[0]  # the backfill counts, raw or rolled
    rollups.roll_up(history.engine, history.reference.timezone, END)
    with history.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(d.day == local)).scalar() == 1
    assert _both(history, by="community", as_of=END, start=START, end=END)[0] == after[0]


def test_a_day_is_rolled_up_again_once_its_open_tickets_end(history: Runtime) -> None:
    rollups.roll_up(history.engine, history.reference.timezone, END)
    o, tk = t.rollup_open.c, t.tickets.c
    with history.engine.connect() as conn:
        day, ticket = conn.execute(select(o.day, o.ticket_id).join(t.tickets, tk.ticket_id == o.ticket_id)
                                   .where(tk.status.in_(("reported", "accepted"))).limit(1)).one()
    history.app.execute(parse_command({"type": "cancel", "ticket_id": ticket, "reason": "撤销",
                                       "occurred_at": END.isoformat(), "actor": {"role": "centre", "id": "c-1"},
                                       "command_id": "cancel-open-1"}))
    catch_up(history)
    w = t.rollup_weeks.c
    with history.engine.begin() as conn:  # a day rolled again takes its week out, summed again after
        rollups._build_day(conn, day, *rollups._day_bounds(date.fromisoformat(day), START.tzinfo), END)
        assert conn.execute(select(func.count()).where(w.week == rollups._monday(day))).scalar() == 0
    again = rollups.roll_up(history.engine, history.reference.timezone, END + timedelta(days=1))
    assert again.built >= 1
    if date.fromisoformat(day) < (START + timedelta(days=14)).date():
        assert again.weeks_built >= 1 and again.weeks == 2
    with history.engine.connect() as conn:
        assert conn.execute(select(func.count()).where(o.day == day, o.ticket_id == ticket)).scalar() == 0
    fast, raw = _both(history, by="department", period="week", as_of=END + timedelta(hours=1), start=START,
                      end=END + timedelta(days=1))
    assert fast == raw


def test_a_short_run_of_days_is_read_raw(history: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rollups, "MIN_PREFIX", timedelta(days=14))
    rollups.roll_up(history.engine, history.reference.timezone, END)
    assert _prefix_days(history, START, START + timedelta(days=7), END) == 0
    assert _prefix_days(history, START, END, END) == DAYS


def test_rollups_an_earlier_version_wrote_are_dropped_and_rolled_again(tmp_path: Any) -> None:
    """Rollups without the day their tickets settled by cannot be read: the tables are made again
    (derived data; the read model and the event store are not touched)."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE rollup_calls (day VARCHAR(10), dim VARCHAR(20), unit VARCHAR(200), "
                             "role VARCHAR(20), dispatched INTEGER, PRIMARY KEY (day, dim, unit, role))")
        conn.exec_driver_sql("INSERT INTO rollup_calls VALUES ('2025-01-06', 'street', 'xinqi', 'lead', 3)")
        conn.exec_driver_sql("CREATE TABLE rollup_days (day VARCHAR(10) PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO rollup_days VALUES ('2025-01-06')")
    t.create_tables(engine)
    with engine.connect() as conn:
        assert "settled_day" in {c["name"] for c in inspect(conn).get_columns("rollup_calls")}
        assert conn.execute(select(func.count()).select_from(t.rollup_calls)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(t.rollup_days)).scalar() == 0  # rolled again
    engine.dispose()


def test_the_families_are_read_side_by_side_and_a_failure_reaches_the_asker(history: Runtime) -> None:
    """A quarter's families are read on several connections at once (each reader here waits for
    the others: read one after the other, they would never meet); a reader that fails makes the
    question fail with its error, not a partial answer."""
    import threading

    from dispatch.projections.side_by_side import SIDE_BY_SIDE, side_by_side

    meet = threading.Barrier(SIDE_BY_SIDE, timeout=10)

    def reader(conn: Any) -> int:
        meet.wait()
        return id(conn.connection.dbapi_connection)

    with history.engine.connect() as conn:
        answers = side_by_side(history.engine, conn, {n: reader for n in range(SIDE_BY_SIDE)})
        assert len(set(answers.values())) == SIDE_BY_SIDE  # a connection each

        def failing(conn: Any) -> None:
            raise LookupError("a table went missing")

        readers = {"calls": lambda c: c.exec_driver_sql("SELECT count(*) FROM calls").scalar(), "evaluations": failing}
        with pytest.raises(LookupError, match="went missing"):
            side_by_side(history.engine, conn, readers)


def test_with_no_connection_to_spare_the_asker_reads_everything_itself(history: Runtime) -> None:
    """A pool with one connection (a busy server's): the question is answered on the asker's
    connection, not after the helpers' wait for one."""
    import threading

    from sqlalchemy import create_engine

    from dispatch.projections.side_by_side import side_by_side

    engine = create_engine(history.engine.url, pool_size=1, max_overflow=0, pool_timeout=300)
    readers = {n: (lambda c, n=n: c.exec_driver_sql(f"SELECT {n} + count(*) * 0 FROM calls").scalar())
               for n in range(5)}
    answers: dict[Any, Any] = {}

    def ask() -> None:
        with engine.connect() as conn:
            answers.update(side_by_side(engine, conn, readers))

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout=60)  # a deadline well inside the helpers' five minutes of waiting
    assert answers == {n: n for n in range(5)}
    engine.dispose()


def test_a_part_read_raw_is_bucketed_over_the_buckets_it_reaches_alone() -> None:
    """A part of a period read raw (``span``) is put in buckets by the same rule as the whole —
    the first bucket ending after a row's time — written over the buckets the part overlaps; a
    part inside one bucket is that bucket."""
    from dispatch.projections.figures import Window

    week = [Window(START + timedelta(days=7 * i), START + timedelta(days=7 * (i + 1))) for i in range(4)]
    whole = Question(END, week[0].start, week[-1].end, tuple(week))
    assert whole.reached() == (0, 3)
    inside = Question(END, week[0].start, week[-1].end, tuple(week), span=Window(_days(22), _days(24)))
    assert inside.reached() == (3, 3)
    assert str(inside.bucket(t.calls.c.dispatched_at)) == "3"
    edge = Question(END, week[0].start, week[-1].end, tuple(week), span=Window(_days(7), _days(14)))
    assert edge.reached() == (1, 1)  # [7, 14) lies in the second week alone
    across = Question(END, week[0].start, week[-1].end, tuple(week), span=Window(_days(6), _days(15)))
    assert across.reached() == (0, 2)
    assert str(across.bucket(t.calls.c.dispatched_at)).count("WHEN") == 2
