"""A department desk's automatic answers and inbox (no broker needed)."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta, timezone
from uuid import uuid4

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from consumers.department import AutoPolicy, Inbox

AT = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=8)))


def _call(role: str = "lead", dept: str = "chengguan", ticket=None) -> dict:
    return {"kind": "call", "ticket_id": ticket or uuid4(), "version": 3, "call_id": f"1:{dept}", "department": dept,
            "role": role, "dispatch_no": 1, "lead": "chengguan", "dispatched_at": AT,
            "ack_due": AT + timedelta(hours=2), "handle_due": AT + timedelta(days=1), "time_basis": "working",
            "ticket": {}}


def test_the_lead_acknowledges_then_handles_at_dispatch_time_plus_the_delays():
    ack, handle = AutoPolicy(ack_delay_minutes=10, handle_delay_minutes=60).answers("chengguan", _call())
    assert (ack.type, ack.occurred_at) == ("acknowledge", AT + timedelta(minutes=10))
    assert (handle.type, handle.occurred_at) == ("handle", AT + timedelta(minutes=70))
    assert ack.actor.role == "department" and ack.actor.department == "chengguan"


def test_a_cooperating_department_only_acknowledges():
    [ack] = AutoPolicy().answers("huanwei", _call("cooperating", "huanwei"))
    assert ack.type == "acknowledge" and ack.department == "huanwei"


def test_rejections_follow_the_rate_and_the_seed_not_the_order():
    calls = [_call() for _ in range(400)]
    policy = AutoPolicy(reject_rate=0.25, seed=7)
    first = [policy.answers("chengguan", c)[0].type for c in calls]
    again = [policy.answers("chengguan", c)[0].type for c in reversed(calls)][::-1]
    assert first == again
    assert 60 < first.count("reject") < 140
    assert all(policy.answers("chengguan", c)[0].reason for c in calls if first[calls.index(c)] == "reject")


def test_a_redelivered_call_gets_the_same_command_ids():
    call = _call()
    assert [a.command_id for a in AutoPolicy().answers("chengguan", call)] == \
           [a.command_id for a in AutoPolicy().answers("chengguan", dict(call))]


def test_the_inbox_keeps_calls_until_answered_and_lead_calls_until_handled():
    inbox, lead, coop = Inbox(), uuid4(), uuid4()
    inbox.add(_call("lead", ticket=lead))
    inbox.add(_call("cooperating", ticket=coop))
    inbox.add(_call("lead", ticket=lead))  # redelivered
    assert len(inbox.pending()) == 2
    inbox.add({"kind": "answer", "ticket_id": lead, "call_id": "1:chengguan", "answer": "acknowledged"})
    inbox.add({"kind": "answer", "ticket_id": coop, "call_id": "1:chengguan", "answer": "acknowledged"})
    assert [(c["ticket_id"], c["state"]) for c in inbox.pending()] == [(lead, "to_handle")]
    inbox.add({"kind": "answer", "ticket_id": lead, "answer": "handled"})
    assert inbox.pending() == []
