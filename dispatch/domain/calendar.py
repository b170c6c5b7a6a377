"""Time bases for SLA deadlines: plain calendar time, or Chinese working time.

Working time is time inside the working hours on a working day. A day is a
working day if a user override says so; otherwise the holiday table in force decides
(public holidays off, 调休 make-up days on: a ``HolidayTable``, which a deployment keeps in
its database, first filled from the ``chinese_calendar`` package); for years the table does
not cover, Monday–Friday — such a deadline is *provisional* (``covers``). Working hours are
wall-clock times in the calendar's timezone.

``BusinessCalendar.add_minutes(start, n)``:

* ``n == 0`` returns ``start`` unchanged, even outside working time.
* ``n > 0`` from outside working time starts counting at the next period start.
* When the n-th minute ends exactly at a period end, that period end is returned.
* The result carries ``start``'s tzinfo.

``minutes_between(start, end)`` counts working minutes in ``[start, end)`` (negated
if ``end < start``); it is additive and the exact inverse of ``add_minutes``.
Neither method reads the machine's clock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import cache
from types import MappingProxyType
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo


__all__ = [
    "BusinessCalendar",
    "HolidayTable",
    "package_holidays",
    "CalendarTime",
    "DEFAULT_TZ",
    "DEFAULT_WORKING_HOURS",
    "TimeBasis",
    "parse_working_hours",
]

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
DEFAULT_WORKING_HOURS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(13, 30), time(17, 30)),
)

_MINUTE = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)
_PERIOD_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_Period = tuple[datetime, datetime]


@runtime_checkable
class TimeBasis(Protocol):
    """What an SLA policy needs from a time basis."""

    def add_minutes(self, start: datetime, minutes: int) -> datetime: ...

    def minutes_between(self, start: datetime, end: datetime) -> float: ...


def _require_aware(*moments: datetime) -> None:
    for moment in moments:
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"datetime must be timezone-aware, got naive {moment.isoformat()}")


class CalendarTime:
    """Plain elapsed time: every minute counts."""

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        _require_aware(start)
        return start + timedelta(minutes=minutes)

    def minutes_between(self, start: datetime, end: datetime) -> float:
        _require_aware(start, end)
        return (end - start).total_seconds() / 60


def _validate_hours(periods: Sequence[tuple[time, time]]) -> tuple[tuple[time, time], ...]:
    """Return the periods sorted; raise ValueError if empty, inverted or overlapping."""
    if not periods:
        raise ValueError("working hours must contain at least one period")
    for start, end in periods:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise ValueError("working hours must be naive wall-clock times")
        if end <= start:
            raise ValueError(f"working period {start:%H:%M}-{end:%H:%M} must end after it starts")
    ordered = tuple(sorted(periods))
    for (_, prev_end), (next_start, next_end) in zip(ordered, ordered[1:]):
        if next_start < prev_end:
            raise ValueError(
                f"working period {next_start:%H:%M}-{next_end:%H:%M} overlaps one ending at {prev_end:%H:%M}"
            )
    return ordered


def parse_working_hours(spec: Sequence[str]) -> tuple[tuple[time, time], ...]:
    """Parse ``["08:30-12:00", "13:30-17:30"]`` into sorted ``(start, end)`` pairs."""
    if isinstance(spec, str):
        raise ValueError(f"working hours must be a list of 'HH:MM-HH:MM' strings, not the string {spec!r}")
    periods: list[tuple[time, time]] = []
    for item in spec:
        match = _PERIOD_RE.match(item) if isinstance(item, str) else None
        if match is None:
            raise ValueError(f"bad working period {item!r}: expected 'HH:MM-HH:MM'")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            periods.append((time(h1, m1), time(h2, m2)))
        except ValueError:
            raise ValueError(f"bad working period {item!r}: not a valid time of day") from None
    return _validate_hours(periods)


@dataclass(frozen=True)
class HolidayTable:
    """The days that differ from Monday–Friday (True: a working day, e.g. a 调休 Saturday;
    False: a day off, e.g. a holiday on a Tuesday) for the ``years`` it covers."""

    days: Mapping[date, bool]
    years: frozenset[int]
    source: str = ""

    def fingerprint(self) -> str:
        """Changes whenever a covered year or a day changes (``replay --verify`` compares it)."""
        text = ";".join(sorted(str(y) for y in self.years)) + "|" + ";".join(
            f"{d.isoformat()}={int(on)}" for d, on in sorted(self.days.items()))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def covers(self, year: int) -> bool:
        return year in self.years


def package_holidays() -> HolidayTable:
    """The installed ``chinese_calendar``'s holidays and 调休 days, every year it covers (read
    when a database's holiday table is first filled; reads use the stored one)."""
    import chinese_calendar
    import chinese_calendar.constants

    holidays = {d: False for d in chinese_calendar.constants.holidays if d.weekday() < 5}
    workdays = {d: True for d in chinese_calendar.constants.workdays if d.weekday() >= 5}
    known = list(chinese_calendar.constants.holidays) + list(chinese_calendar.constants.workdays)
    years = frozenset(range(min(d.year for d in known), max(d.year for d in known) + 1))
    return HolidayTable({**holidays, **workdays}, years, f"chinese_calendar {chinese_calendar.__version__}")


class BusinessCalendar:
    """Working time per the holiday table, working hours and overrides."""

    def __init__(
        self,
        *,
        tz: ZoneInfo = DEFAULT_TZ,
        working_hours: Sequence[tuple[time, time]] = DEFAULT_WORKING_HOURS,
        overrides: Mapping[date, bool] | None = None,
        table: HolidayTable | None = None,
        extra_years: frozenset[int] = frozenset(),
    ) -> None:
        self.tz = tz
        self.working_hours = _validate_hours(working_hours)
        self.overrides: Mapping[date, bool] = MappingProxyType(dict(overrides or {}))
        self.table = table if table is not None else _default_table()
        self.years = self.table.years | extra_years  # the reference file may supply whole years
        self._cache: dict[date, tuple[_Period, ...]] = {}
        self._totals: dict[date, timedelta] = {}  # a day's working time (``add_minutes`` skips whole days)

    def covers(self, day: date) -> bool:
        """Whether the holiday table (or the reference file) knows ``day``'s year."""
        return day.year in self.years

    def is_working_day(self, day: date) -> bool:
        """Override first, then the holiday table; Mon–Fri otherwise (and for uncovered years)."""
        if day in self.overrides:
            return self.overrides[day]
        known = self.table.days.get(day)
        return known if known is not None else day.weekday() < 5

    def _periods(self, day: date) -> tuple[_Period, ...]:
        """The day's working periods as UTC instants (empty on a day off)."""
        cached = self._cache.get(day)
        if cached is None:
            cached = ()
            if self.is_working_day(day):
                spans = (
                    (
                        datetime.combine(day, s, tzinfo=self.tz).astimezone(timezone.utc),
                        datetime.combine(day, e, tzinfo=self.tz).astimezone(timezone.utc),
                    )
                    for s, e in self.working_hours
                )
                cached = tuple((s, e) for s, e in spans if e > s)
            self._cache[day] = cached
        return cached

    def working_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The local ``day``'s working periods, each (start, end) as UTC instants; none on a day off."""
        return self._periods(day)

    def add_minutes(self, start: datetime, minutes: int) -> datetime:
        """The instant at which ``minutes`` working minutes have elapsed since ``start``."""
        _require_aware(start)
        if minutes < 0:
            raise ValueError(f"minutes must be >= 0, got {minutes}")
        if minutes == 0:
            return start
        remaining = minutes * _MINUTE
        cursor = start.astimezone(timezone.utc)
        day = start.astimezone(self.tz).date()
        while True:
            periods = self._periods(day)
            if periods and cursor <= periods[0][0]:
                day_total = self._totals.get(day)
                if day_total is None:
                    day_total = self._totals[day] = sum((e - s for s, e in periods), timedelta())
                if remaining > day_total:  # skip the whole day arithmetically
                    remaining -= day_total
                    day += _ONE_DAY
                    continue
            for period_start, period_end in periods:
                if period_end <= cursor:
                    continue
                begin = max(period_start, cursor)
                available = period_end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
            day += _ONE_DAY

    def minutes_between(self, start: datetime, end: datetime) -> float:
        """Working minutes in ``[start, end)``; negative if ``end < start``."""
        _require_aware(start, end)
        if end < start:
            return -self.minutes_between(end, start)
        lo, hi = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        day, last = start.astimezone(self.tz).date(), end.astimezone(self.tz).date()
        total = timedelta()
        while day <= last:
            for period_start, period_end in self._periods(day):
                overlap = min(period_end, hi) - max(period_start, lo)
                if overlap > timedelta():
                    total += overlap
            day += _ONE_DAY
        return total / _MINUTE


@cache
def _default_table() -> HolidayTable:
    return package_holidays()
