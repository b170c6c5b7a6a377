"""Working-time durations, computed when events are projected.

The mean and percentiles of the time to report in (MTTA) and to handle (MTTH) are counted in
each call's time basis: plain minutes, or working minutes under the deployment's calendar
(working hours, 调休 days, the holiday table in force). The figures are computed in the
database, which knows no calendar, so the projection stores each call's minutes beside the
answer and the handling (``calls.ack_minutes``, ``calls.handle_minutes``).

The calendar comes from the database the read model is in: the stored reference data and the
holiday table in force (``dispatch.adapters.holiday_table``), the same ones every process of a deployment
uses. A calendar change therefore means a rebuild of the read model (``dispatch calendar
--update`` says so; ``replay --verify`` names the calls the new table counts differently).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, Engine, inspect, select

__all__ = ["Minutes", "aware", "forget", "minutes_for", "minutes_from"]

Minutes = Callable[[str | None, Any, Any], float | None]
"""``(time basis, start, end) -> minutes`` with times in the read model's stored form (naive
UTC text on SQLite, naive UTC datetimes on PostgreSQL) or aware datetimes; None when a time is
missing."""

_UTC = timezone.utc
_cache: weakref.WeakKeyDictionary[Engine, Minutes] = weakref.WeakKeyDictionary()


def aware(value: Any) -> datetime:
    """A time in the read model's stored form (or already aware) as an aware datetime."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=_UTC)  # type: ignore[no-any-return]


def minutes_from(policy: Any) -> Minutes:
    """The durations of an ``SlaPolicy``."""
    bases = policy.bases

    def minutes(basis: str | None, start: Any, end: Any) -> float | None:
        if start is None or end is None:
            return None
        a, b = aware(start), aware(end)
        if basis == "working":
            return float(bases["working"].minutes_between(a, b))
        return (b - a).total_seconds() / 60

    return minutes


def minutes_for(conn: Connection) -> Minutes:
    """The durations under the calendar of the database ``conn`` is on (built once per engine)."""
    engine = conn.engine
    found = _cache.get(engine)
    if found is None:
        inside = conn.in_transaction()
        found = _cache[engine] = minutes_from(_policy(conn))
        if not inside:  # leave the caller's connection as it was (no transaction begun by reading)
            conn.rollback()
    return found


def forget(engine: Engine) -> None:
    """The stored reference data or holiday table of ``engine`` changed: build them again."""
    _cache.pop(engine, None)


def _policy(conn: Connection) -> Any:
    from dataclasses import replace

    from dispatch.adapters import holiday_table
    from dispatch.adapters.database import reference_data
    from dispatch.domain.calendar import package_holidays
    from dispatch.domain.reference import load_reference, reference_from_dict
    from dispatch.domain.sla_policy import SlaPolicy

    existing = inspect(conn)
    reference = None
    if existing.has_table(reference_data.name):
        row = conn.execute(select(reference_data.c.source, reference_data.c.body)
                           .where(reference_data.c.id == 1)).first()
        if row is not None:
            reference = reference_from_dict(row.body, source=row.source)
    if reference is None:  # a database bootstrap has not seen: the bundled sample, as bootstrap gives it
        reference = load_reference(None)
    table = None
    if existing.has_table(holiday_table.holiday_tables.name):
        row = conn.execute(select(holiday_table.holiday_tables)
                           .where(holiday_table.holiday_tables.c.in_force.is_(True))).first()
        table = holiday_table.table_of(row) if row is not None else None
    return SlaPolicy(replace(reference, holidays=table or package_holidays()))
