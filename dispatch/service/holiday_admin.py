"""The business calendar as the people who keep it see it: which years are known, what a year
holds, a warning ahead of an uncovered year, an explicit update of the holiday table, and
the dispatches a table change would count differently (``replay --verify``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from dispatch.adapters import holiday_table
from dispatch.domain.calendar import HolidayTable, package_holidays
from dispatch.domain.errors import DispatchError
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.projections import catch_up
from dispatch.projections import tables as t
from dispatch.projections import durations

__all__ = ["WARN_DAYS", "affected_calls", "describe", "update"]

WARN_DAYS = 60  # how long before a year begins its missing holiday table is warned about


def _coverage(runtime: Any, year: int) -> str:
    if year in runtime.reference.holidays.years:
        return "holiday table"
    if year in runtime.reference.calendar_years:
        return "reference file"
    return ""


def describe(runtime: Any, year: int | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The table in force, one year's days off on weekdays and working weekend days (with the
    reference file's overrides), and warnings: the next year uncovered within ``WARN_DAYS``."""
    now = now or runtime.clock.now()
    policy = SlaPolicy(runtime.reference)
    cal, table = policy.calendar, runtime.reference.holidays
    today = now.astimezone(cal.tz).date()
    year = year or today.year
    days = [date(year, 1, 1) + timedelta(days=n) for n in range((date(year + 1, 1, 1) - date(year, 1, 1)).days)]
    exceptions = [{"day": d.isoformat(), "working": cal.is_working_day(d),
                   "from": "reference file" if d in cal.overrides else "holiday table"}
                  for d in days if cal.is_working_day(d) != (d.weekday() < 5)]
    warnings = []
    upcoming = today.year + 1
    if not _coverage(runtime, upcoming) and (date(upcoming, 1, 1) - today).days <= WARN_DAYS:
        warnings.append(f"{upcoming} is not covered: working-time deadlines reaching into it are counted "
                        "Monday–Friday and marked provisional. Add its holidays and 调休 days to the reference "
                        f"file (calendar_overrides, calendar_years: [{upcoming}]) or run `dispatch calendar "
                        "--update` once the chinese_calendar package covers it.")
    if not _coverage(runtime, year):
        warnings.append(f"{year} is not covered: Monday–Friday is assumed and such deadlines are provisional.")
    return {"year": year, "covered_by": _coverage(runtime, year) or None, "table": table.source,
            "fingerprint": table.fingerprint(), "years": _span(sorted(table.years)),
            "reference_years": sorted(runtime.reference.calendar_years),
            "working_days": sum(1 for d in days if cal.is_working_day(d)), "exceptions": exceptions,
            "warnings": warnings}


def _span(years: list[int]) -> str:
    return f"{years[0]}–{years[-1]}" if years else "none"


def update(runtime: Any, *, force: bool = False, table: HolidayTable | None = None) -> dict[str, Any]:
    """Put the installed package's table (or ``table``) in force. Adding years is safe; changing
    a day of a year already covered changes past working-time figures and needs ``force``."""
    new = table or package_holidays()
    old = runtime.reference.holidays
    added = sorted(new.years - old.years)
    rewritten = [d for d in holiday_table.changed_days(old, new) if d.year in old.years]
    if rewritten and not force:
        shown = ", ".join(d.isoformat() for d in rewritten[:8]) + (" …" if len(rewritten) > 8 else "")
        raise DispatchError(f"the new holiday table changes {len(rewritten)} day(s) of years already in force "
                            f"({shown}): past working-time figures would change; give --force to accept that, "
                            "then `dispatch replay --verify` names the dispatches it affects")
    changed = new.fingerprint() != old.fingerprint()
    recounted = 0
    if changed:
        holiday_table.store(runtime.engine, new, runtime.clock.now())
        # the read model's working-time durations were counted with the old table: count them again
        durations.forget(runtime.engine)
        t.ensure_tables(runtime.engine)
        t.clear(runtime.engine)
        recounted = catch_up(runtime)
    return {"changed": changed, "source": new.source, "fingerprint": new.fingerprint(),
            "years_added": added, "days_rewritten": [d.isoformat() for d in rewritten],
            "events_reprojected": recounted}


def affected_calls(runtime: Any) -> dict[str, Any]:
    """Working-time calls whose deadlines were counted with a holiday table that differs from
    the one in force on a day between their dispatch and their last deadline."""
    catch_up(runtime)
    current = holiday_table.load(runtime.engine) or runtime.reference.holidays
    known = holiday_table.tables(runtime.engine)
    c = t.calls.c
    t.ensure_tables(runtime.engine)
    affected, unknown = 0, 0
    changed: dict[str, list[date]] = {}
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(c.calendar, c.dispatched_at, c.ack_due, c.handle_due, c.feedback_due)
                            .where(c.time_basis == "working", c.calendar.is_not(None),
                                   c.calendar != current.fingerprint()))
        for fp, dispatched, *dues in rows:
            if fp not in known:
                unknown += 1
                continue
            days = changed.setdefault(fp, holiday_table.changed_days(known[fp], current))
            last = max(d for d in dues if d is not None)
            if any(dispatched.date() - timedelta(days=1) <= d <= last.date() + timedelta(days=1) for d in days):
                affected += 1
    return {"fingerprint": current.fingerprint(), "affected_calls": affected, "unknown_tables": unknown}
