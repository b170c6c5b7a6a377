"""Behaviour of the SLA time bases: calendar time and Chinese working time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.domain.calendar import (
    BusinessCalendar,
    CalendarTime,
    TimeBasis,
    parse_working_hours,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = BusinessCalendar()


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# --- the holiday facts the tests rely on, checked against chinese_calendar itself ---


def test_facts_national_day_2026_is_off_and_saturday_oct_10_is_a_make_up_working_day() -> None:
    for offset in range(7):
        assert chinese_calendar.is_holiday(date(2026, 10, 1) + timedelta(days=offset))
    make_up = date(2026, 10, 10)
    assert make_up.weekday() == 5  # Saturday
    assert chinese_calendar.is_workday(make_up)
    assert chinese_calendar.is_holiday(date(2026, 10, 11))  # the Sunday after is an ordinary rest day
    assert chinese_calendar.is_workday(date(2026, 11, 20))
    assert chinese_calendar.is_workday(date(2026, 11, 23))
    assert date(2026, 11, 23).weekday() == 0


# --- working days ---


def test_national_day_holidays_are_not_working_days() -> None:
    assert not any(CAL.is_working_day(date(2026, 10, d)) for d in range(1, 8))
    assert CAL.is_working_day(date(2026, 10, 8))


def test_make_up_saturday_is_a_working_day() -> None:
    assert CAL.is_working_day(date(2026, 10, 10))


def test_make_up_saturday_counts_as_working_time() -> None:
    # Fri 2026-10-09 17:00 -> 30 min Friday + 30 min on the make-up Saturday.
    assert CAL.add_minutes(at(2026, 10, 9, 17), 60) == at(2026, 10, 10, 9)
    assert CAL.minutes_between(at(2026, 10, 10, 0), at(2026, 10, 11, 0)) == 450


def test_override_turns_a_weekday_off_and_a_sunday_on() -> None:
    weekday, sunday = date(2026, 11, 18), date(2026, 11, 22)
    cal = BusinessCalendar(overrides={weekday: False, sunday: True})
    assert not cal.is_working_day(weekday)
    assert cal.is_working_day(sunday)
    assert cal.minutes_between(at(2026, 11, 18), at(2026, 11, 19)) == 0
    assert cal.add_minutes(at(2026, 11, 20, 16, 30), 120) == at(2026, 11, 22, 9, 30)


def test_override_beats_a_public_holiday() -> None:
    cal = BusinessCalendar(overrides={date(2026, 10, 1): True})
    assert cal.is_working_day(date(2026, 10, 1))


def test_years_chinese_calendar_does_not_cover_fall_back_to_monday_to_friday() -> None:
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2099, 1, 1))
    assert CAL.is_working_day(date(2099, 1, 2))  # Friday
    assert not CAL.is_working_day(date(2099, 1, 3))  # Saturday


# --- add_minutes ---


def test_deadline_over_a_weekend_lands_on_monday_morning() -> None:
    assert CAL.add_minutes(at(2026, 11, 20, 16, 30), 120) == at(2026, 11, 23, 9, 30)


def test_zero_minutes_outside_working_time_returns_start_unchanged() -> None:
    start = at(2026, 11, 21, 22, 15)  # Saturday night
    assert CAL.add_minutes(start, 0) == start


def test_counting_from_outside_working_time_starts_at_next_period() -> None:
    assert CAL.add_minutes(at(2026, 11, 20, 7), 10) == at(2026, 11, 20, 8, 40)
    assert CAL.add_minutes(at(2026, 11, 20, 12, 30), 10) == at(2026, 11, 20, 13, 40)
    assert CAL.add_minutes(at(2026, 11, 20, 19), 10) == at(2026, 11, 23, 8, 40)


def test_deadline_ending_exactly_at_period_end_returns_period_end() -> None:
    assert CAL.add_minutes(at(2026, 11, 20, 11), 60) == at(2026, 11, 20, 12)
    assert CAL.add_minutes(at(2026, 11, 20, 8, 30), 450) == at(2026, 11, 20, 17, 30)


def test_long_deadline_skips_whole_days_including_holidays() -> None:
    # Wed 2026-09-30 08:30 + 2 working days: Sep 30, then Oct 1-7 off, then Thu Oct 8.
    assert CAL.add_minutes(at(2026, 9, 30, 8, 30), 900) == at(2026, 10, 8, 17, 30)
    # Ten full working days from Mon 2026-11-02 end on Fri 2026-11-13 at close.
    assert CAL.add_minutes(at(2026, 11, 2, 8, 30), 4500) == at(2026, 11, 13, 17, 30)


def test_result_keeps_the_tzinfo_of_start() -> None:
    start_utc = datetime(2026, 11, 20, 8, 30, tzinfo=timezone.utc)  # 16:30 Shanghai
    result = CAL.add_minutes(start_utc, 120)
    assert result.tzinfo is timezone.utc
    assert result == datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)


def test_custom_timezone_applies_working_hours_in_that_zone() -> None:
    cal = BusinessCalendar(tz=ZoneInfo("UTC"))
    start = datetime(2026, 11, 20, 16, 30, tzinfo=timezone.utc)
    assert cal.add_minutes(start, 120) == datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)


def test_negative_minutes_and_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError):
        CAL.add_minutes(at(2026, 11, 20, 9), -1)
    with pytest.raises(ValueError):
        CAL.add_minutes(datetime(2026, 11, 20, 9), 10)
    with pytest.raises(ValueError):
        CAL.minutes_between(datetime(2026, 11, 20, 9), at(2026, 11, 20, 10))


# --- minutes_between ---


def test_minutes_between_counts_only_working_time() -> None:
    assert CAL.minutes_between(at(2026, 11, 20, 16, 30), at(2026, 11, 23, 9, 30)) == 120
    assert CAL.minutes_between(at(2026, 11, 20, 0), at(2026, 11, 21, 0)) == 450
    assert CAL.minutes_between(at(2026, 11, 21, 0), at(2026, 11, 23, 0)) == 0


def test_minutes_between_is_negative_when_end_precedes_start() -> None:
    assert CAL.minutes_between(at(2026, 11, 23, 9, 30), at(2026, 11, 20, 16, 30)) == -120


def test_minutes_between_counts_fractional_minutes() -> None:
    start = at(2026, 11, 20, 9)
    a_minute_and_a_half_later = start + timedelta(seconds=90)
    assert CAL.minutes_between(start, a_minute_and_a_half_later) == 1.5


# --- calendar time ---


def test_calendar_time_is_plain_elapsed_time() -> None:
    basis = CalendarTime()
    start = at(2026, 11, 20, 16, 30)
    assert basis.add_minutes(start, 120) == at(2026, 11, 20, 18, 30)
    assert basis.minutes_between(start, at(2026, 11, 21, 16, 30)) == 1440
    assert basis.minutes_between(at(2026, 11, 21, 16, 30), start) == -1440


def test_both_bases_satisfy_the_time_basis_protocol() -> None:
    assert isinstance(CalendarTime(), TimeBasis)
    assert isinstance(CAL, TimeBasis)


# --- parse_working_hours ---


def test_parse_working_hours_reads_periods_in_order() -> None:
    assert parse_working_hours(["13:30-17:30", "08:30-12:00"]) == (
        (time(8, 30), time(12, 0)),
        (time(13, 30), time(17, 30)),
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["08:30-12:00", "11:00-14:00"], "overlaps"),
        (["12:00-08:30"], "must end after"),
        (["09:00-09:00"], "must end after"),
        (["0830-1200"], "expected 'HH:MM-HH:MM'"),
        (["25:00-26:00"], "not a valid time"),
        ([], "at least one period"),
        ("08:30-12:00", "not the string"),
    ],
)
def test_parse_working_hours_rejects_bad_input_clearly(spec: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_working_hours(spec)


def test_calendar_rejects_overlapping_working_hours() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        BusinessCalendar(working_hours=((time(8), time(12)), (time(11), time(13))))


# --- properties ---

_HOLIDAYS = [d for d in chinese_calendar.get_holidays(date(2024, 1, 1), date(2026, 12, 31))]
_days = st.one_of(
    st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31)),
    st.sampled_from(_HOLIDAYS),
)
_starts = st.builds(
    lambda day, minute_of_day, second, zone: datetime.combine(
        day, time(minute_of_day // 60, minute_of_day % 60, second), tzinfo=SH
    ).astimezone(zone),
    _days,
    st.integers(0, 24 * 60 - 1),
    st.integers(0, 59),
    st.sampled_from([SH, timezone.utc, ZoneInfo("Europe/Berlin")]),
)
_minutes = st.integers(min_value=0, max_value=20_000)


@settings(max_examples=200, deadline=None)
@given(start=_starts, minutes=_minutes)
def test_minutes_between_inverts_add_minutes(start: datetime, minutes: int) -> None:
    end = CAL.add_minutes(start, minutes)
    assert end >= start
    assert end.tzinfo is start.tzinfo
    assert CAL.minutes_between(start, end) == minutes


@settings(max_examples=200, deadline=None)
@given(start=_starts, minutes=st.integers(min_value=1, max_value=20_000))
def test_positive_deadline_falls_inside_working_time(start: datetime, minutes: int) -> None:
    local = CAL.add_minutes(start, minutes).astimezone(SH)
    assert CAL.is_working_day(local.date())
    assert any(s < local.time() <= e for s, e in CAL.working_hours)


@settings(max_examples=200, deadline=None)
@given(points=st.lists(_starts, min_size=3, max_size=3))
def test_minutes_between_is_additive(points: list[datetime]) -> None:
    a, b, c = sorted(points)
    assert CAL.minutes_between(a, b) + CAL.minutes_between(b, c) == pytest.approx(
        CAL.minutes_between(a, c), abs=1e-9
    )
    assert CAL.minutes_between(c, a) == -CAL.minutes_between(a, c)
