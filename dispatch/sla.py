"""SLA policy: deadlines per category × priority, in calendar or working time.

Deadlines are computed once, at dispatch, from the event's business time, and
stored in the Dispatched event; a replay never recomputes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from dispatch.calendar import BusinessCalendar, CalendarTime, TimeBasis, parse_working_hours
from dispatch.reference import Reference

__all__ = ["Deadlines", "SlaPolicy"]


@dataclass(frozen=True)
class Deadlines:
    ack_due: datetime
    handle_due: datetime
    feedback_due: datetime
    time_basis: str
    escalate_every_minutes: int


class SlaPolicy:
    def __init__(self, reference: Reference, extra_overrides: dict[date, bool] | None = None):
        self.reference = reference
        overrides = dict(reference.calendar_overrides)
        overrides.update(extra_overrides or {})
        self.bases: dict[str, TimeBasis] = {
            "calendar": CalendarTime(),
            "working": BusinessCalendar(
                tz=ZoneInfo(reference.timezone),
                working_hours=parse_working_hours(reference.working_hours),
                overrides=overrides,
            ),
        }

    def basis(self, name: str) -> TimeBasis:
        return self.bases[name]

    def deadlines(self, category: str, priority: str, dispatched_at: datetime) -> Deadlines:
        rule = self.reference.sla_rule(category, priority)
        basis = self.bases[rule.time_basis]
        return Deadlines(
            ack_due=basis.add_minutes(dispatched_at, rule.ack_minutes),
            handle_due=basis.add_minutes(dispatched_at, rule.handle_minutes),
            feedback_due=basis.add_minutes(dispatched_at, rule.feedback_minutes),
            time_basis=rule.time_basis,
            escalate_every_minutes=rule.escalate_every_minutes,
        )
