"""The engine's metric definitions (docs/figures.md, domain.md): figures formed from the counts
the database returns (``dispatch.projections.measures``).

A rate with an empty denominator is ``None``; means are sums over counts; percentiles come from
the database, nearest-rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatch.domain.lifecycle import FIRST_CONTACT_MODES, SATISFACTION

__all__ = ["DIMENSIONS", "PERIODS", "Settings", "Window", "call_figures", "centre_figures", "close_figures", "evaluation_figures",
           "first_contact_figures", "rate"]

# what SLA figures are grouped by, and the periods they may be broken down into
DIMENSIONS = ("department", "category", "community", "street")
PERIODS = ("day", "week", "month")


@dataclass(frozen=True)
class Settings:
    """Configurable weights: 'basically satisfied' in the satisfaction rate, the composite's
    (response, resolution, satisfaction) weights, and the minimum sample for a ranking."""

    basically_satisfied_weight: float = 0.9
    composite_weights: tuple[float, float, float] = (0.1, 0.5, 0.4)
    min_evaluated: int = 5


@dataclass(frozen=True)
class Window:
    """A period ``[start, end)``; an open side is unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def contains(self, at: datetime) -> bool:
        return (self.start is None or at >= self.start) and (self.end is None or at < self.end)


def rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


_CALL_COUNTS = ("dispatched", "answered", "rejected", "ack_on_time", "ack_waiting_late", "mtta_n", "mtta_sum",
                "lead_calls", "handled", "handle_on_time", "handle_overdue", "mtth_sum")


def add_counts(parts: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """Call counts of several roles (or units) together (a loop, not a ``sum`` per count: a
    district's quarter week by week adds up ~1,400 groups; 3 µs a group instead of 6). One
    part is its own total, as given: the database's counts (``measures``, ``rollups``) carry
    every count, none NULL."""
    if len(parts) == 1:
        return parts[0]
    out = dict.fromkeys(_CALL_COUNTS, 0)
    for p in parts:
        for k in _CALL_COUNTS:
            value = p.get(k)
            if value:
                out[k] += value
    return out


def _mean(total: float, n: int) -> float | None:
    """A mean of minutes, to a millionth of a minute: a sum of floats depends on the order it was
    added up in (the last bits), and the figures are the same however the rows were summed —
    by the database in one pass, or day by day from rollups."""
    return round(total / n, 6) if n else None


def call_figures(n: Mapping[str, Any], pct: Mapping[str, float | None]) -> dict[str, Any]:
    """Report-in (报到) and handling (处置) figures of one group's calls dispatched in the period."""
    dispatched, answered, rejected, on_time = n["dispatched"], n["answered"], n["rejected"], n["ack_on_time"]
    judged = answered + n["ack_waiting_late"]
    handled, h_on_time = n["handled"], n["handle_on_time"]
    h_judged = handled + n["handle_overdue"]
    return {
        "dispatched": dispatched, "answered": answered, "acknowledged": answered - rejected,
        "rejected": rejected, "ack_on_time": on_time, "ack_late": judged - on_time,
        "ack_pending": dispatched - judged, "ack_on_time_rate": rate(on_time, judged),
        "rejection_rate": rate(rejected, answered),
        "dispatch_accuracy": None if not dispatched else 1 - rejected / dispatched,
        "mtta_minutes_mean": _mean(n["mtta_sum"], n["mtta_n"]),
        "mtta_minutes_p50": pct.get("mtta_minutes_p50"), "mtta_minutes_p90": pct.get("mtta_minutes_p90"),
        "lead_calls": n["lead_calls"], "handled": handled, "handle_on_time": h_on_time,
        "handle_late": h_judged - h_on_time, "handle_pending": n["lead_calls"] - h_judged,
        "handle_on_time_rate": rate(h_on_time, h_judged),
        "mtth_minutes_mean": _mean(n["mtth_sum"], handled),
        "mtth_minutes_p50": pct.get("mtth_minutes_p50"), "mtth_minutes_p90": pct.get("mtth_minutes_p90"),
    }


def close_figures(n: Mapping[str, int]) -> dict[str, Any]:
    """按时结案率 over the tickets first dispatched in the period."""
    closed, on_time = n.get("closed_tickets", 0), n.get("close_on_time", 0)
    judged = closed + n.get("close_waiting_late", 0)
    return {"closed_tickets": closed, "close_on_time": on_time, "close_late": judged - on_time,
            "close_on_time_rate": rate(on_time, judged)}


def centre_figures(n: Mapping[str, int]) -> dict[str, Any]:
    """按时立案率 / 按时派遣率 over the tickets reported in the period."""
    a_on, a_judged = n.get("accept_on_time", 0), n.get("accept_judged", 0)
    d_on, d_judged = n.get("dispatch_on_time", 0), n.get("dispatch_judged", 0)
    return {"accept_on_time": a_on, "accept_late": a_judged - a_on, "accept_on_time_rate": rate(a_on, a_judged),
            "dispatch_on_time": d_on, "dispatch_late": d_judged - d_on,
            "dispatch_on_time_rate": rate(d_on, d_judged)}


def first_contact_figures(reported: int, modes: Mapping[str, int]) -> dict[str, Any]:
    """首问办结 among the tickets reported in the period, by mode, and their share."""
    by_mode = {m: modes.get(m, 0) for m in FIRST_CONTACT_MODES} | dict(modes)
    total = sum(by_mode.values())
    return {"first_contact": total, "first_contact_rate": rate(total, reported), "first_contact_by_mode": by_mode}


def evaluation_figures(n: Mapping[str, int], settings: Settings) -> dict[str, Any]:
    """三率 over the latest evaluations in the period; the reopen rate over tickets evaluated in it."""
    evaluated = n.get("evaluated", 0)
    count = {s: n.get(s, 0) for s in SATISFACTION}
    response, resolution = rate(n.get("contacted", 0), evaluated), rate(n.get("resolved", 0), evaluated)
    satisfaction = None if not evaluated else (count["satisfied"] + settings.basically_satisfied_weight
                                               * count["basically_satisfied"]) / evaluated
    w = settings.composite_weights
    composite = (None if response is None or resolution is None or satisfaction is None
                 else w[0] * response + w[1] * resolution + w[2] * satisfaction)
    reopened, tickets = n.get("reopened", 0), n.get("tickets_evaluated", 0)
    return {"evaluated": evaluated, **count, "contacted": n.get("contacted", 0), "resolved": n.get("resolved", 0),
            "response_rate": response, "resolution_rate": resolution, "satisfaction_rate": satisfaction,
            "composite": composite, "tickets_evaluated": tickets, "reopened": reopened,
            "reopen_rate": rate(reopened, tickets)}
