"""The reference (the Python path the SQL replaced, kept to hold ``dispatch.projections.measures``
to it). The engine's metric definitions (docs/figures.md, domain.md) as pure functions of facts.

Every function takes facts already cut at the instant (``load_facts``) and a period
``Window``; a rate with an empty denominator is ``None``; percentiles are nearest-rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatch.domain.lifecycle import FIRST_CONTACT_MODES, SATISFACTION
from tests.reference.facts import CallFact, EvalFact, Facts, TicketFact
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.projections.figures import Settings, Window, rate

__all__ = ["CloseItem", "Settings", "Window", "call_figures", "centre_figures", "close_figures", "close_items",
           "first_contact_figures",
           "evaluation_figures", "handle_figures", "latest_evaluations", "nearest_rank", "on_or_before", "rate"]


def on_or_before(at: datetime | None, deadline: datetime | None, *, strict: bool = False) -> bool:
    """``at`` is at or before (``strict``: before) ``deadline``; False when either is missing."""
    if at is None or deadline is None:
        return False
    return at < deadline if strict else at <= deadline


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    """The ⌈p·n⌉-th smallest value (nearest-rank percentile); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def _minutes(prefix: str, values: list[float]) -> dict[str, float | None]:
    # to a millionth of a minute, as docs/figures.md gives means
    return {f"{prefix}_mean": round(math.fsum(values) / len(values), 6) if values else None,
            f"{prefix}_p50": nearest_rank(values, 0.5), f"{prefix}_p90": nearest_rank(values, 0.9)}


def _owed(c: CallFact) -> bool:
    """A call closed out (its ticket ended unanswered) before its report-in deadline was never
    owed: it leaves both parts of the rate. One closed out after it stays late."""
    return c.closed_out_at is None or c.closed_out_at > c.ack_due


def call_figures(calls: Iterable[CallFact], window: Window, as_of: datetime, policy: SlaPolicy) -> dict[str, Any]:
    """Acknowledgement figures over the calls dispatched in the window (all roles)."""
    mine = [c for c in calls if window.contains(c.dispatched_at) and _owed(c)]
    answered = [c for c in mine if c.answered_at is not None]
    rejected = sum(1 for c in answered if c.answer == "rejected")
    on_time = sum(1 for c in answered if on_or_before(c.answered_at, c.ack_due))
    judged = len(answered) + sum(1 for c in mine if c.answered_at is None and c.ack_due < as_of)
    mtta = [policy.basis(c.time_basis).minutes_between(c.dispatched_at, c.answered_at)  # type: ignore[arg-type]
            for c in answered if c.answer == "acknowledged"]
    return {
        "dispatched": len(mine), "answered": len(answered), "acknowledged": len(answered) - rejected,
        "rejected": rejected, "ack_on_time": on_time, "ack_late": judged - on_time,
        "ack_pending": len(mine) - judged, "ack_on_time_rate": rate(on_time, judged),
        "rejection_rate": rate(rejected, len(answered)),
        "dispatch_accuracy": None if not mine else 1 - rejected / len(mine),
        **_minutes("mtta_minutes", mtta),
    }


def handle_figures(calls: Iterable[CallFact], window: Window, as_of: datetime, policy: SlaPolicy) -> dict[str, Any]:
    """Handling figures over the lead calls dispatched in the window. A lead call rejected
    (as of the instant) has no handling obligation and counts in neither part."""
    leads = [c for c in calls if c.role == "lead" and c.answer != "rejected" and window.contains(c.dispatched_at)]
    handled = [c for c in leads if c.handled_at is not None]
    on_time = sum(1 for c in handled if on_or_before(c.handled_at, c.handle_due))
    overdue = sum(1 for c in leads if c.handled_at is None and on_or_before(c.handle_due, as_of, strict=True))
    judged = len(handled) + overdue
    mtth = [policy.basis(c.time_basis).minutes_between(c.dispatched_at, c.handled_at)  # type: ignore[arg-type]
            for c in handled]
    return {"lead_calls": len(leads), "handled": len(handled), "handle_on_time": on_time,
            "handle_late": judged - on_time, "handle_pending": len(leads) - judged,
            "handle_on_time_rate": rate(on_time, judged), **_minutes("mtth_minutes", mtth)}


@dataclass(frozen=True, slots=True)
class CloseItem:
    ticket: TicketFact
    department: str  # lead of the latest dispatch
    first_dispatched_at: datetime
    deadline: datetime  # feedback deadline of the latest dispatch


def close_items(facts: Facts) -> list[CloseItem]:
    """One item per dispatched ticket: its first dispatch and its latest dispatch's deadline."""
    first: dict[str, datetime] = {}
    latest: dict[str, CallFact] = {}
    for c in facts.calls:
        if c.role != "lead":
            continue
        first[c.ticket_id] = min(first.get(c.ticket_id, c.dispatched_at), c.dispatched_at)
        if c.ticket_id not in latest or c.dispatch_no > latest[c.ticket_id].dispatch_no:
            latest[c.ticket_id] = c
    return [CloseItem(facts.tickets[tid], c.department, first[tid], c.feedback_due)  # type: ignore[arg-type]
            for tid, c in latest.items()]


def close_figures(items: Iterable[CloseItem], window: Window, as_of: datetime) -> dict[str, Any]:
    """按时结案率: tickets first dispatched in the window, closed by the latest feedback deadline."""
    mine = [i for i in items if window.contains(i.first_dispatched_at) and i.ticket.state not in ("cancelled", "duplicate")]
    closed = [i for i in mine if i.ticket.closed_at is not None]
    on_time = sum(1 for i in closed if on_or_before(i.ticket.closed_at, i.deadline))
    judged = len(closed) + sum(1 for i in mine if i.ticket.closed_at is None and i.deadline < as_of)
    return {"closed_tickets": len(closed), "close_on_time": on_time, "close_late": judged - on_time,
            "close_on_time_rate": rate(on_time, judged)}


def centre_figures(tickets: Iterable[TicketFact], window: Window, as_of: datetime) -> dict[str, Any]:
    """按时立案率 / 按时派遣率 over the tickets reported in the window that carry the centre's
    deadlines. Accepted = the Accepted step, or a closure at first contact (which deals with
    the report without one). A ticket not yet accepted (dispatched) is late once its deadline
    has passed while it still waits; one that ended without needing the step (cancelled, a
    duplicate, closed at first contact) before its deadline counts in neither part."""
    mine = [tk for tk in tickets if window.contains(tk.reported_at)]
    accept_on_time = accept_judged = dispatch_on_time = dispatch_judged = 0
    for tk in mine:
        if tk.accept_due is not None:
            fc = tk.closed_at if (tk.closed_via or "").startswith("first_contact") else None
            accepted = tk.accepted_at or fc
            if accepted is not None:
                accept_judged += 1
                accept_on_time += accepted <= tk.accept_due
            elif tk.state == "reported" and tk.accept_due < as_of:
                accept_judged += 1
        if tk.dispatch_due is not None:
            if tk.first_dispatched_at is not None:
                dispatch_judged += 1
                dispatch_on_time += tk.first_dispatched_at <= tk.dispatch_due
            elif tk.state in ("reported", "accepted") and tk.dispatch_due < as_of:
                dispatch_judged += 1
    return {"accept_on_time": accept_on_time, "accept_late": accept_judged - accept_on_time,
            "accept_on_time_rate": rate(accept_on_time, accept_judged),
            "dispatch_on_time": dispatch_on_time, "dispatch_late": dispatch_judged - dispatch_on_time,
            "dispatch_on_time_rate": rate(dispatch_on_time, dispatch_judged)}


def first_contact_figures(tickets: Iterable[TicketFact], window: Window) -> dict[str, Any]:
    """首问办结: tickets reported in the window and closed at first contact, by mode, and their
    share of the tickets reported in the window."""
    mine = [tk for tk in tickets if window.contains(tk.reported_at)]
    modes = {m: 0 for m in FIRST_CONTACT_MODES}
    for tk in mine:
        if (tk.closed_via or "").startswith("first_contact:"):
            mode = tk.closed_via.split(":", 1)[1]  # type: ignore[union-attr]
            modes[mode] = modes.get(mode, 0) + 1
    total = sum(modes.values())
    return {"first_contact": total, "first_contact_rate": rate(total, len(mine)),
            "first_contact_by_mode": modes}


def latest_evaluations(evaluations: Iterable[EvalFact]) -> list[EvalFact]:
    latest: dict[str, EvalFact] = {}
    for e in evaluations:
        if e.ticket_id not in latest or e.version > latest[e.ticket_id].version:
            latest[e.ticket_id] = e
    return list(latest.values())


def evaluation_figures(latest: Iterable[EvalFact], every: Iterable[EvalFact], window: Window,
                       settings: Settings) -> dict[str, Any]:
    """三率 over tickets whose latest evaluation is in the window; reopen rate over tickets
    evaluated in the window (reopened = one of those evaluations was followed by a Reopened)."""
    valid = [e for e in latest if window.contains(e.at)]
    n = len(valid)
    count = {s: sum(1 for e in valid if e.satisfaction == s) for s in SATISFACTION}
    response = rate(sum(e.contacted for e in valid), n)
    resolution = rate(sum(e.resolved for e in valid), n)
    satisfaction = None if not n else (count["satisfied"] + settings.basically_satisfied_weight
                                       * count["basically_satisfied"]) / n
    w = settings.composite_weights
    composite = (None if response is None or resolution is None or satisfaction is None
                 else w[0] * response + w[1] * resolution + w[2] * satisfaction)
    evaluated_any: dict[str, bool] = {}
    for e in every:
        if window.contains(e.at):
            evaluated_any[e.ticket_id] = evaluated_any.get(e.ticket_id, False) or e.reopened_at is not None
    reopened = sum(evaluated_any.values())
    return {"evaluated": n, **count, "contacted": sum(e.contacted for e in valid),
            "resolved": sum(e.resolved for e in valid), "response_rate": response,
            "resolution_rate": resolution, "satisfaction_rate": satisfaction, "composite": composite,
            "tickets_evaluated": len(evaluated_any), "reopened": reopened,
            "reopen_rate": rate(reopened, len(evaluated_any))}
