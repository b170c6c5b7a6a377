"""PostgreSQL works out a what-if's deadlines and minutes (``projections.derived``) to the
microsecond of the Python calendar (``SlaPolicy``, ``durations``): calls dispatched at and around
every edge of the working day — a period's start and end, the lunch break, midnight, a weekend,
a holiday — under rules whose deadlines use up a period, a day and two days exactly; in a zone of
one offset (the local day found by shifting the time) and in one whose clocks go forward on the
weekend (found through the zone's rules)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from dataclasses import replace
from sqlalchemy import Boolean, Float, Integer, create_engine, insert, select

from dispatch.domain.reference import load_reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.projections import tables as t
from dispatch.projections.derived import Calendar, Derived
from dispatch.projections.durations import minutes_from
from dispatch.service.whatif import rules_from
from tests.integration.servers import drop_postgres_database, fresh_postgres_database

pytestmark = pytest.mark.integration

# (zone, a Friday: then a weekend, and the Monday after made a holiday); Berlin's clocks go
# forward at 02:00 on Sunday 29 March 2026
ZONES = [("Asia/Shanghai", date(2026, 3, 6)), ("Europe/Berlin", date(2026, 3, 27))]
RULES = {
    "working_hours": ["09:00-12:00", "13:30-18:00"],  # 180 + 270 working minutes a day
    "sla": [
        # report-in the morning's length, handling a working day, feedback two: each ends exactly
        # at a period's end when dispatched at a period's start
        {"category": "*", "priority": "*", "ack_minutes": 180, "handle_minutes": 450, "feedback_minutes": 900,
         "time_basis": "working", "escalate_every_minutes": 60},
        {"category": "*", "priority": "urgent", "ack_minutes": 15, "handle_minutes": 270, "feedback_minutes": 1440,
         "time_basis": "calendar", "escalate_every_minutes": 30},
    ],
}
CLOCKS = [time(0, 0), time(8, 59, 59, 999999), time(9, 0), time(9, 0, 0, 1), time(10, 30),
          time(11, 59, 59, 999999), time(12, 0), time(12, 45), time(13, 30), time(15, 0),
          time(17, 59, 59, 999999), time(18, 0), time(23, 59, 59, 999999)]


def _filled(table: Any, row: dict[str, Any], at: datetime) -> dict[str, Any]:
    """``row`` with every other required column of ``table`` given a plain value."""
    out = dict(row)
    for col in table.columns:
        if col.name in out or col.nullable:
            continue
        kind = col.type
        out[col.name] = at if isinstance(kind, t.UtcDateTime) else 0 if isinstance(kind, Integer) \
            else 0.0 if isinstance(kind, Float) else False if isinstance(kind, Boolean) else "x"
    return out


@pytest.mark.parametrize("zone,friday", ZONES)
def test_deadlines_and_minutes_worked_out_by_postgresql_equal_the_calendars(zone: str, friday: date) -> None:
    TZ = ZoneInfo(zone)
    FRIDAY = friday
    reference = replace(load_reference(None), timezone=zone)
    rules = {**RULES, "calendar_overrides": {(friday + timedelta(days=3)).isoformat(): "holiday"}}
    other = rules_from(reference, text=yaml.safe_dump(rules))
    policy = SlaPolicy(other)
    minutes = minutes_from(policy)
    category = next(iter(other.categories))
    url = fresh_postgres_database("derived_deadlines")
    engine = create_engine(url)
    try:
        t.ensure_tables(engine)
        expected = {}
        tickets, calls = [], []
        n = 0
        for day in range(5):  # Friday to Tuesday
            for clock in CLOCKS:
                at = datetime.combine(FRIDAY + timedelta(days=day), clock, tzinfo=TZ)
                for priority in ("normal", "urgent"):
                    n += 1
                    tid = f"00000000-0000-0000-0000-{n:012d}"
                    answered, handled = at + timedelta(hours=7, minutes=13), at + timedelta(days=2, seconds=1)
                    tickets.append(_filled(t.tickets, {"ticket_id": tid, "category": category, "priority": priority,
                                                       "reported_at": at, "dispatched_at": at, "dispatch_no": 1,
                                                       "accept_due": at, "dispatch_due": at}, at))
                    calls.append(_filled(t.calls, {"ticket_id": tid, "call_id": "c", "dispatch_no": 1,
                                                   "department": "d", "role": "lead", "dispatched_at": at,
                                                   "ack_due": at, "answer": "acknowledged", "answered_at": answered,
                                                   "handled_at": handled, "category": category}, at))
                    # (as the engine has them: a time given with its offset, elapsed time counted
                    # as it passes — not on a zone's wall clock)
                    at_, answered_, handled_ = (x.astimezone(timezone.utc) for x in (at, answered, handled))
                    due = policy.deadlines(category, priority, at_)
                    expected[tid] = (due.ack_due, due.handle_due, due.feedback_due,
                                     minutes(due.time_basis, at_, answered_), minutes(due.time_basis, at_, handled_))
        with engine.begin() as conn:
            conn.execute(insert(t.tickets), tickets)
            conn.execute(insert(t.calls), calls)
        calendar = Calendar.of(policy.calendar, FRIDAY - timedelta(days=1), FRIDAY + timedelta(days=7), 900)
        assert calendar is not None
        # the local day found by shifting the time where the zone keeps one offset, else by its rules
        assert (calendar.offset is None) == (zone == "Europe/Berlin")
        derived = Derived(other, calendar).table(t.calls)
        with engine.connect() as conn:
            found = {row[0]: tuple(row[1:]) for row in conn.execute(select(
                derived.c.ticket_id, derived.c.ack_due, derived.c.handle_due, derived.c.feedback_due,
                derived.c.ack_minutes, derived.c.handle_minutes))}
        assert found == expected
        # the edges are there: a deadline that uses up the morning ends at noon, not at 13:30
        friday_nine = datetime.combine(FRIDAY, time(9, 0), tzinfo=TZ)
        assert policy.deadlines(category, "normal", friday_nine).ack_due == friday_nine.replace(hour=12)
    finally:
        engine.dispose()
        drop_postgres_database(url)
