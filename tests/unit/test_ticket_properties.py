"""Random command sequences never break the lifecycle's invariants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.aggregates import Ticket
from dispatch.domain.errors import DispatchError
from tests.unit.test_ticket import CENTRE, T0, dept, new_ticket

DEPTS = ("chengguan", "huanwei", "shizheng")
ACTIONS = ("accept", "first_contact", "dispatch", "ack", "reject", "handle", "feedback", "evaluate", "reopen",
           "escalate", "duplicate", "cancel", "close")
# Steps that end a ticket are drawn rarely, so sequences get deep into the lifecycle.
WEIGHTED = [a for a in ACTIONS for _ in range(1 if a in ("first_contact", "duplicate", "cancel", "escalate") else 25)]

# What each event needs the ticket to have been in just before (an independent model of the lifecycle).
ALLOWED_FROM = {
    "Accepted": {"reported"},
    "ClosedAtFirstContact": {"reported", "accepted"},
    "Dispatched": {"accepted"},
    "Redispatched": {"reopened", "awaiting_redispatch"},
    "Handled": {"in_progress"},
    "FeedbackGiven": {"handled", "feedback_given"},
    "Evaluated": {"feedback_given"},  # 上报—处理—反馈—评价: no evaluation without feedback
    "Reopened": {"evaluated"},
    "Closed": {"evaluated"},
}
TERMINAL_EVENTS = {"Closed", "ClosedAtFirstContact", "Cancelled", "MarkedDuplicate"}


def apply(t: Ticket, action: str, department: str, minutes: int, lead: str) -> None:
    when = t.last_at + timedelta(minutes=minutes)
    act = dept(department)
    calls: dict[str, Any] = {
        "accept": lambda: t.accept(occurred_at=when, actor=CENTRE),
        "first_contact": lambda: t.close_at_first_contact(occurred_at=when, actor=CENTRE, mode="explain"),
        "dispatch": lambda: t.dispatch(occurred_at=when, actor=CENTRE, lead=lead,
                                       cooperating=[d for d in DEPTS if d not in (lead, department)][:1],
                                       ack_due=when + timedelta(minutes=30), handle_due=when + timedelta(hours=8),
                                       feedback_due=when + timedelta(hours=9), time_basis="calendar",
                                       escalate_every_minutes=60),
        "ack": lambda: t.acknowledge(occurred_at=when, actor=act, department=department),
        "reject": lambda: t.reject(occurred_at=when, actor=act, department=department, reason="不属于"),
        "handle": lambda: t.handle(occurred_at=when, actor=act, department=department, result="ok"),
        "feedback": lambda: t.give_feedback(occurred_at=when, actor=CENTRE, message="", contacted=True),
        "evaluate": lambda: t.evaluate(occurred_at=when, actor=CENTRE, satisfaction="unsatisfied",
                                       resolved=False, contacted=True),
        "reopen": lambda: t.reopen(occurred_at=when, actor=CENTRE, reason="again"),
        "escalate": lambda: t.escalate(occurred_at=when, actor=CENTRE),
        "duplicate": lambda: t.mark_duplicate(occurred_at=when, actor=CENTRE, original_id="other",
                                              original_status="reported"),
        "cancel": lambda: t.cancel(occurred_at=when, actor=CENTRE, reason="void"),
        "close": lambda: t.close(occurred_at=when, actor=CENTRE, override="中心研判办结" if minutes % 2 else ""),
    }
    calls[action]()


# Mostly the usual lead, mostly forward in time: deep sequences, with the odd wrong department or time.
steps = st.lists(
    st.tuples(st.sampled_from(WEIGHTED), st.sampled_from(DEPTS + ("chengguan",) * 3),
              st.integers(min_value=-2, max_value=120), st.sampled_from(DEPTS + ("chengguan",) * 3)),
    min_size=10,
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_random_command_sequences_keep_the_lifecycle_invariants(sequence: list[tuple[str, str, int, str]]) -> None:
    t = new_ticket()
    for action, department, minutes, lead in sequence:
        before = len(t.pending_events)
        try:
            apply(t, action, department, minutes, lead)
        except DispatchError:
            assert len(t.pending_events) == before  # a refused command records nothing
    events = t.pending_events
    names = [type(e).__name__ for e in events]

    # Versions are contiguous from 1; business times never go backwards.
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    # Business times: every step comes at or after the latest time seen, except a
    # department's answer, which only has to follow its own call.
    latest, called = events[0].occurred_at, events[0].occurred_at
    for e in events[1:]:
        if type(e).__name__ in ("Acknowledged", "Rejected"):
            assert e.occurred_at >= called
        else:
            assert e.occurred_at >= latest
        if type(e).__name__ in ("Dispatched", "Redispatched"):
            called = e.occurred_at
        latest = max(latest, e.occurred_at)

    # Replaying the events gives the same state (rules are not re-checked on replay).
    replayed: Any = None
    for e in events:
        replayed = e.mutate(replayed)
    assert replayed.status == t.status and replayed.level == t.level and replayed.calls == t.calls

    # The state machine never skips a step, and nothing follows a terminal event.
    status = "reported"
    acked: set[tuple[int, str]] = set()
    dispatch_no = 0
    model: Any = None
    for e, name in zip(events, names):
        if name in ALLOWED_FROM:
            assert status in ALLOWED_FROM[name], f"{name} after {status}"
        if name in ("Dispatched", "Redispatched"):
            dispatch_no += 1
        if name == "Acknowledged":
            acked.add((dispatch_no, e.department))
        if name == "Handled":  # each department's report-in precedes its handling
            assert (dispatch_no, e.department) in acked
        model = e.mutate(model)
        status = model.status
        if name in TERMINAL_EVENTS:
            assert e is events[-1]
