"""SLA policy: deadlines per category × priority, in calendar or working time.

Deadlines are computed once, at dispatch, from the event's business time, and
stored in the Dispatched event; a replay never recomputes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dispatch.domain.calendar import BusinessCalendar, CalendarTime, TimeBasis, parse_working_hours
from dispatch.domain.reference import Reference

__all__ = ["CentreDeadlines", "Deadlines", "SlaPolicy"]


@dataclass(frozen=True)
class Deadlines:
    ack_due: datetime
    handle_due: datetime
    feedback_due: datetime
    time_basis: str
    escalate_every_minutes: int
    provisional: bool = False  # a working-time deadline counted in a year the holiday table lacks
    calendar: str = ""  # the fingerprint of the holiday table it was counted with


@dataclass(frozen=True)
class CentreDeadlines:
    """The grid centre's own: accept (受理) and dispatch (派遣), counted from the report."""

    accept_due: datetime
    dispatch_due: datetime
    time_basis: str
    provisional: bool = False
    calendar: str = ""


class SlaPolicy:
    def __init__(self, reference: Reference, extra_overrides: dict[date, bool] | None = None):
        self.reference = reference
        overrides = dict(reference.calendar_overrides)
        overrides.update(extra_overrides or {})
        self.calendar = BusinessCalendar(
            tz=ZoneInfo(reference.timezone),
            working_hours=parse_working_hours(reference.working_hours),
            overrides=overrides,
            table=reference.holidays,
            extra_years=reference.calendar_years,
        )
        self.bases: dict[str, TimeBasis] = {"calendar": CalendarTime(), "working": self.calendar}
        self.fingerprint = self.calendar.table.fingerprint()

    def basis(self, name: str) -> TimeBasis:
        return self.bases[name]

    def deadlines(self, category: str, priority: str, dispatched_at: datetime) -> Deadlines:
        rule = self.reference.sla_rule(category, priority)
        basis = self.bases[rule.time_basis]
        feedback_due = basis.add_minutes(dispatched_at, rule.feedback_minutes)
        return Deadlines(
            ack_due=basis.add_minutes(dispatched_at, rule.ack_minutes),
            handle_due=basis.add_minutes(dispatched_at, rule.handle_minutes),
            feedback_due=feedback_due,
            time_basis=rule.time_basis,
            escalate_every_minutes=rule.escalate_every_minutes,
            provisional=self.provisional(rule.time_basis, dispatched_at, feedback_due),
            calendar=self.fingerprint,
        )

    def centre_deadlines(self, category: str, priority: str, reported_at: datetime) -> CentreDeadlines:
        rule = self.reference.sla_rule(category, priority)
        basis = self.bases[rule.time_basis]
        dispatch_due = basis.add_minutes(reported_at, rule.dispatch_minutes)
        return CentreDeadlines(accept_due=basis.add_minutes(reported_at, rule.accept_minutes),
                               dispatch_due=dispatch_due, time_basis=rule.time_basis,
                               provisional=self.provisional(rule.time_basis, reported_at, dispatch_due),
                               calendar=self.fingerprint)

    def provisional(self, time_basis: str, start: datetime, end: datetime) -> bool:
        """A working-time span touching a year the holiday table does not cover: its deadline
        assumed Monday–Friday and may move once that year's schedule is known."""
        if time_basis != "working":
            return False
        tz = self.calendar.tz
        first, last = start.astimezone(tz).year, end.astimezone(tz).year
        return any(not self.calendar.covers(date(year, 1, 1)) for year in range(first, last + 1))

    def extended(self, time_basis: str, due: datetime, minutes: int) -> datetime:
        """``due`` moved ``minutes`` later in ``time_basis`` (an extension)."""
        return self.bases[time_basis].add_minutes(due, minutes)

    def resumed(self, time_basis: str, due: datetime, held_from: datetime, held_to: datetime) -> datetime:
        """A deadline after a hold: moved by the time held, counted in its own basis; a
        deadline already missed when the hold began stays where it was."""
        if due <= held_from:
            return due
        basis = self.bases[time_basis]
        return basis.add_minutes(due, round(basis.minutes_between(held_from, held_to)))
