"""``simulate()``: a street's reports and every step that follows, as timed commands.

A pure generator: the same reference data, street, volume, seed and start give the same
commands in the same order, whatever machine runs it. Reports arrive per day (fewer on
weekends and public holidays, per the business calendar) and per hour (each channel has
its own rhythm); each ticket's story is drawn at once from its own random stream and
merged into one business-time order. Nothing reads the machine's clock.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dispatch.domain.calendar import BusinessCalendar
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.service.simulation.profile import DEFAULT_PROFILE, Profile
from dispatch.service.simulation.story import Step, TicketPlan, ticket_steps
from dispatch.service.simulation.tally import SimulationTally

__all__ = ["DEFAULT_START", "simulate"]

DEFAULT_START = "2025-09-22"  # a Monday; 30 days take in the National Day holiday and its 调休 days


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class _Arrivals:
    """When and where reports come in, day by day."""

    def __init__(self, reference: Reference, street: str, profile: Profile, rng: random.Random):
        self.reference, self.profile, self.rng = reference, profile, rng
        sid = reference.street(street).id
        self.grids = sorted(g.id for c in reference.communities_of_street(sid) for g in reference.grids_of_community(c.id))
        if not self.grids:
            raise ValueError(f"street {street!r} has no grids")
        # some grids are busier than others (markets, old estates): a fixed activity per grid
        self.grid_weights = [math.exp(0.6 * rng.gauss(0.0, 1.0)) for _ in self.grids]
        self.channels = list(profile.channels)
        self.channel_weights = [profile.channels[ch][0] for ch in self.channels]
        self.categories: dict[str, tuple[list[str], list[int]]] = {}
        for kind, weights in profile.categories.items():
            known = {k: w for k, w in weights.items() if k in reference.categories}
            if not known:  # other reference data: every category of that kind, evenly
                known = {k: 1 for k, cat in reference.categories.items() if cat.kind == kind}
            if known:
                self.categories[kind] = (list(known), list(known.values()))
        self.every_category = (list(reference.categories), [1] * len(reference.categories))
        self.priorities = [p for p in profile.priorities if p in reference.priorities] or list(reference.priorities)[:1]
        self.priority_weights = [profile.priorities.get(p, 1.0) for p in self.priorities]

    def day(self, day: date, mean: float, tz: ZoneInfo) -> list[tuple[datetime, str, str, str, str]]:
        rng, out = self.rng, []
        for _ in range(_poisson(rng, mean)):
            channel = rng.choices(self.channels, self.channel_weights)[0]
            _, rhythm, kind = self.profile.channels[channel]
            hour = rng.choices(range(24), rhythm)[0]
            at = datetime.combine(day, time(hour, rng.randrange(60), rng.randrange(60)), tzinfo=tz)
            cats, weights = self.categories.get(kind) or self.categories.get("grid") or self.every_category
            out.append((at, rng.choices(self.grids, self.grid_weights)[0], channel,
                        rng.choices(cats, weights)[0], rng.choices(self.priorities, self.priority_weights)[0]))
        out.sort()
        return out


def simulate(
    reference: Reference,
    street: str,
    days: int,
    tickets_per_day: float,
    seed: int,
    start: datetime | None = None,
    *,
    profile: Profile = DEFAULT_PROFILE,
    tally: SimulationTally | None = None,
) -> Iterator[tuple[datetime, Any]]:
    """Yield ``(business_time, command)`` in business-time order for ``days`` days from
    ``start`` (default: midnight of ``DEFAULT_START`` in the reference timezone).

    Steps that would fall after the end are left out (those tickets are still open).
    ``tally`` counts every command as it is yielded: what the simulation intended."""
    tz = ZoneInfo(reference.timezone)
    start = start or datetime.combine(date.fromisoformat(DEFAULT_START), time(), tzinfo=tz)
    end = start + timedelta(days=days)
    sla = SlaPolicy(reference)
    calendar = sla.basis("working")
    rng = random.Random(f"arrivals:{seed}")
    arrivals = _Arrivals(reference, street, profile, rng)
    first_day, last_day = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    span = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    factor = [1.0 if not isinstance(calendar, BusinessCalendar) or calendar.is_working_day(d)
              else profile.rest_day_volume for d in span]
    scale = tickets_per_day * days / sum(factor) if sum(factor) else 0.0
    prefix = f"sim{seed}"
    heap: list[tuple[datetime, int, Step]] = []
    seq = number = 0

    def emit(step: Step) -> tuple[datetime, Any]:
        if tally is not None:
            tally.count(step.command, late=step.late)
            if step.calls:
                tally.count_dispatch(step.calls, step.first)
        return step.at, step.command

    for day, f in zip(span, factor):
        for at, grid, channel, category, priority in arrivals.day(day, scale * f, tz):
            if not start <= at < end:
                continue
            while heap and heap[0][0] <= at:
                yield emit(heapq.heappop(heap)[2])
            number += 1
            plan = TicketPlan(number, at, grid, channel, category, priority)
            story_rng = random.Random(f"ticket:{seed}:{number}")
            for step in ticket_steps(plan, reference, sla, profile, story_rng, prefix):
                if step.at >= end:
                    break
                heapq.heappush(heap, (step.at, seq, step))
                seq += 1
    while heap:
        yield emit(heapq.heappop(heap)[2])
