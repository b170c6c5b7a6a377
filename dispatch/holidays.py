"""The holiday table in force, kept in the deployment's database.

Working-time deadlines and durations depend on which days are holidays and which weekend
days are 调休 working days. If that came from whatever ``chinese_calendar`` version happens
to be installed, upgrading the package would silently change past figures. So the table is
stored: a new database is filled from the installed package once (``in_force``); changing it
later is explicit (``dispatch calendar --update``, which says what changes), and the read
model remembers the fingerprint of the table it was built with (``replay --verify`` reports
a mismatch; a rebuild settles it).

Two tables: ``holiday_years`` (each covered year and where its days came from) and
``holiday_days`` (the days that differ from Monday–Friday in those years).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Boolean, Column, Engine, Integer, MetaData, String, Table, delete, insert, select

from dispatch.calendar import HolidayTable, package_holidays
from dispatch.store import ensure_created

__all__ = ["changes", "in_force", "load", "store"]

METADATA = MetaData()
holiday_years = Table(
    "holiday_years", METADATA,
    Column("year", Integer, primary_key=True),
    Column("source", String(200), nullable=False),
)
holiday_days = Table(
    "holiday_days", METADATA,
    Column("day", String(10), primary_key=True),
    Column("working", Boolean, nullable=False),
)


def load(engine: Engine) -> HolidayTable | None:
    """The stored table (None: nothing stored yet)."""
    ensure_created(engine, METADATA)
    with engine.connect() as conn:
        years: dict[int, str] = {int(y): str(src) for y, src in conn.execute(
            select(holiday_years.c.year, holiday_years.c.source))}
        if not years:
            return None
        days = {date.fromisoformat(d): bool(w) for d, w in conn.execute(select(holiday_days))}
    sources = sorted(set(years.values()))
    return HolidayTable(days, frozenset(years), ", ".join(sources))


def store(engine: Engine, table: HolidayTable) -> None:
    """Replace the stored table with ``table``."""
    ensure_created(engine, METADATA)
    with engine.begin() as conn:
        conn.execute(delete(holiday_days))
        conn.execute(delete(holiday_years))
        conn.execute(insert(holiday_years), [{"year": y, "source": table.source} for y in sorted(table.years)])
        if table.days:
            conn.execute(insert(holiday_days), [{"day": d.isoformat(), "working": w}
                                                for d, w in sorted(table.days.items())])


def in_force(engine: Engine) -> HolidayTable:
    """The stored table; a database without one gets the installed package's, stored now."""
    found = load(engine)
    if found is None:
        found = package_holidays()
        store(engine, found)
    return found


def changes(old: HolidayTable, new: HolidayTable) -> dict[str, list[str]]:
    """What replacing ``old`` with ``new`` would do: years added or dropped, and the days of
    years both cover whose status differs (those change past figures)."""
    both = old.years & new.years
    changed = sorted({d for d in set(old.days) | set(new.days) if d.year in both
                      and old.days.get(d, d.weekday() < 5) != new.days.get(d, d.weekday() < 5)})
    return {"years_added": [str(y) for y in sorted(new.years - old.years)],
            "years_dropped": [str(y) for y in sorted(old.years - new.years)],
            "days_changed": [d.isoformat() for d in changed]}
