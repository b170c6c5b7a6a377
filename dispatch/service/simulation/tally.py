"""``SimulationTally``: what the simulation itself intended, counted from the commands it
emitted (never from the projections), so a dashboard can be checked against it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from dispatch.domain import commands as c
from dispatch.domain.lifecycle import SATISFACTION

__all__ = ["SimulationTally"]


@dataclass
class SimulationTally:
    commands: int = 0
    reported: int = 0
    by_channel: Counter[str] = field(default_factory=Counter)
    by_category: Counter[str] = field(default_factory=Counter)
    by_priority: Counter[str] = field(default_factory=Counter)
    first_contact_closures: int = 0
    accepted: int = 0
    dispatched: int = 0  # tickets dispatched at least once
    dispatches: int = 0  # Dispatch commands, first ones and redispatches
    redispatches: int = 0
    calls: int = 0  # one per department per dispatch
    acknowledged: int = 0
    rejections: int = 0
    late_acks_intended: int = 0  # answers meant to come after the acknowledge deadline
    handled: int = 0
    late_handles_intended: int = 0
    feedback: int = 0
    evaluations: int = 0
    tickets_evaluated: int = 0  # distinct tickets with at least one evaluation
    reopened: int = 0  # Reopen commands
    closed: int = 0  # completed (Close) + first-contact closures
    # the satisfaction of each ticket's latest evaluation (the 三率's valid follow-ups)
    latest_satisfaction: dict[str, str] = field(default_factory=dict)
    latest_resolved: dict[str, bool] = field(default_factory=dict)
    latest_contacted: dict[str, bool] = field(default_factory=dict)
    reopened_tickets: set[str] = field(default_factory=set)

    def count(self, command: Any, *, late: bool = False) -> None:
        """Record one emitted command (``late``: emitted to miss its deadline on purpose)."""
        self.commands += 1
        if isinstance(command, c.Report):
            self.reported += 1
            self.by_channel[command.channel] += 1
            self.by_category[command.category] += 1
            self.by_priority[command.priority] += 1
        elif isinstance(command, c.FirstContact):
            self.first_contact_closures += 1
            self.closed += 1
        elif isinstance(command, c.Accept):
            self.accepted += 1
        elif isinstance(command, c.Dispatch):
            self.dispatches += 1
        elif isinstance(command, c.Acknowledge):
            self.acknowledged += 1
            self.late_acks_intended += late
        elif isinstance(command, c.Reject):
            self.rejections += 1
            self.late_acks_intended += late
        elif isinstance(command, c.Handle):
            self.handled += 1
            self.late_handles_intended += late
        elif isinstance(command, c.Feedback):
            self.feedback += 1
        elif isinstance(command, c.Evaluate):
            tid = str(command.ticket_id)
            self.evaluations += 1
            self.tickets_evaluated += tid not in self.latest_satisfaction
            self.latest_satisfaction[tid] = command.satisfaction
            self.latest_resolved[tid] = command.resolved
            self.latest_contacted[tid] = command.contacted
        elif isinstance(command, c.Reopen):
            self.reopened += 1
            self.reopened_tickets.add(str(command.ticket_id))
        elif isinstance(command, c.Close):
            self.closed += 1

    def count_dispatch(self, calls: int, first: bool) -> None:
        self.calls += calls
        self.dispatched += first
        self.redispatches += not first

    def as_dict(self) -> dict[str, Any]:
        latest = Counter(self.latest_satisfaction.values())
        return {
            "commands": self.commands,
            "reported": self.reported,
            "by_channel": dict(sorted(self.by_channel.items())),
            "by_category": dict(sorted(self.by_category.items())),
            "by_priority": dict(sorted(self.by_priority.items())),
            "first_contact_closures": self.first_contact_closures,
            "accepted": self.accepted,
            "dispatched": self.dispatched,
            "dispatches": self.dispatches,
            "redispatches": self.redispatches,
            "calls": self.calls,
            "acknowledged": self.acknowledged,
            "rejections": self.rejections,
            "late_acks_intended": self.late_acks_intended,
            "handled": self.handled,
            "late_handles_intended": self.late_handles_intended,
            "feedback": self.feedback,
            "evaluations": self.evaluations,
            "evaluated": self.tickets_evaluated,
            "satisfaction": {s: latest[s] for s in SATISFACTION},
            "resolved": sum(self.latest_resolved.values()),
            "contacted": sum(self.latest_contacted.values()),
            "reopened": self.reopened,
            "tickets_reopened": len(self.reopened_tickets),
            "closed": self.closed,
        }
