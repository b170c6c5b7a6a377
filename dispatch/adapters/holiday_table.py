"""The holiday table in force, kept in the deployment's database.

Working-time deadlines and durations depend on which days are holidays and which weekend
days are 调休 working days. If that came from whatever ``chinese_calendar`` version happens
to be installed, upgrading the package would silently change past figures. So the table is
stored: a new database is filled from the installed package once (``in_force``); changing it
later is explicit (``dispatch calendar --update``, which says what changes and refuses to
rewrite days of covered years without ``--force``). Every table that was ever in force is
kept (``holiday_tables``), and each dispatch records the fingerprint of the table its
deadlines were counted with, so ``replay --verify`` can name the dispatches whose working
time the table in force would count differently (``affected``).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Engine, MetaData, String, Table, select, update

from dispatch.adapters.database import ensure_created
from dispatch.domain.calendar import HolidayTable, package_holidays

__all__ = ["changed_days", "in_force", "load", "store", "table_of", "tables"]

METADATA = MetaData()
holiday_tables = Table(
    "holiday_tables", METADATA,
    Column("fingerprint", String(32), primary_key=True),
    Column("source", String(200), nullable=False),
    Column("body", JSON, nullable=False),  # {"years": [...], "days": {"YYYY-MM-DD": true|false}}
    Column("stored_at", String(40), nullable=False),
    Column("in_force", Boolean, nullable=False),
)


def table_of(row: Any) -> HolidayTable:
    """A stored row of ``holiday_tables`` as a table."""
    body = row.body
    return HolidayTable({date.fromisoformat(d): bool(w) for d, w in body["days"].items()},
                        frozenset(int(y) for y in body["years"]), row.source)


def load(engine: Engine) -> HolidayTable | None:
    """The table in force (None: nothing stored yet)."""
    ensure_created(engine, METADATA)
    with engine.connect() as conn:
        row = conn.execute(select(holiday_tables).where(holiday_tables.c.in_force.is_(True))).first()
    return table_of(row) if row is not None else None


def tables(engine: Engine) -> dict[str, HolidayTable]:
    """Every table ever in force, by fingerprint."""
    ensure_created(engine, METADATA)
    with engine.connect() as conn:
        return {row.fingerprint: table_of(row) for row in conn.execute(select(holiday_tables))}


def store(engine: Engine, table: HolidayTable, now: datetime | None = None) -> None:
    """Put ``table`` in force (the one before it stays on record)."""
    ensure_created(engine, METADATA)
    fingerprint = table.fingerprint()
    body = {"years": sorted(table.years), "days": {d.isoformat(): w for d, w in sorted(table.days.items())}}
    with engine.begin() as conn:
        conn.execute(update(holiday_tables).values(in_force=False))
        if conn.execute(select(holiday_tables.c.fingerprint)
                        .where(holiday_tables.c.fingerprint == fingerprint)).first() is None:
            conn.execute(holiday_tables.insert().values(
                fingerprint=fingerprint, source=table.source, body=body, in_force=True,
                stored_at=(now or datetime.now(timezone.utc)).isoformat()))
        else:
            conn.execute(update(holiday_tables).where(holiday_tables.c.fingerprint == fingerprint)
                         .values(in_force=True))


def in_force(engine: Engine) -> HolidayTable:
    """The stored table; a database without one gets the installed package's, stored now."""
    found = load(engine)
    if found is None:
        found = package_holidays()
        store(engine, found)
    return found


def changed_days(old: HolidayTable, new: HolidayTable) -> list[date]:
    """The days whose status differs between two tables (a year one does not cover counts
    Monday–Friday there, as the calendar does)."""
    days = set(old.days) | set(new.days)
    return sorted(d for d in days if old.days.get(d, d.weekday() < 5) != new.days.get(d, d.weekday() < 5))
