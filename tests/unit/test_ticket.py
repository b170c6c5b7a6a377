"""The Ticket aggregate: every transition, every guard. No database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from dispatch.aggregates import Ticket, ticket_id_for
from dispatch.domain.errors import (
    AlreadyEscalated,
    CallAlreadyAnswered,
    DuplicateCommand,
    IllegalTransition,
    NotLeadDepartment,
    NotYourWhistle,
    TicketClosed,
    TicketNotDispatched,
    TicketNotEvaluated,
    TicketNotHandled,
    TimeGoesBackwards,
    TopOfLadder,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone(timedelta(hours=8)))
CENTRE = {"role": "centre", "id": "c1"}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def new_ticket(**kw: object) -> Ticket:
    fields = dict(id=uuid4(), occurred_at=T0, actor={"role": "supervisor", "id": "w1"}, command_id=None,
                  grid="g1", community="c1", street="s1", district="d1", category="city_appearance",
                  priority="normal", channel="patrol", description="垃圾焚烧",
                  location=None, external_ref=None, reporter=None, media=None, case_no=None, accept_due=None, dispatch_due=None,
                  centre_basis=None, provisional=False, calendar=None, position=None)
    fields.update(kw)
    return Ticket(**fields)  # type: ignore[arg-type]


def dispatch(t: Ticket, minutes: int, lead: str = "chengguan", cooperating: tuple[str, ...] = ("huanwei",), **kw: object) -> None:
    t.dispatch(occurred_at=at(minutes), actor=CENTRE, lead=lead, cooperating=list(cooperating),
               ack_due=at(minutes + 30), handle_due=at(minutes + 600), feedback_due=at(minutes + 900),
               time_basis="calendar", escalate_every_minutes=60, **kw)  # type: ignore[arg-type]


def dept(name: str) -> dict[str, str]:
    return {"role": "department", "id": "d", "department": name}


def through_handling(t: Ticket) -> None:
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    t.acknowledge(occurred_at=at(10), actor=dept("chengguan"), department="chengguan")
    t.handle(occurred_at=at(60), actor=dept("chengguan"), department="chengguan", result="done")


def events(t: Ticket) -> list[str]:
    return [type(e).__name__ for e in t.pending_events]


def test_the_whole_loop_records_one_event_per_step_with_business_times() -> None:
    t = new_ticket()
    through_handling(t)
    t.give_feedback(occurred_at=at(70), actor=CENTRE, message="已处理", contacted=True)
    t.evaluate(occurred_at=at(80), actor={"role": "resident", "id": "r"}, satisfaction="satisfied", resolved=True, contacted=True)
    t.close(occurred_at=at(90), actor=CENTRE)
    assert events(t) == ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled", "FeedbackGiven",
                         "Evaluated", "Closed"]
    assert [e.occurred_at for e in t.pending_events] == [T0] + [at(m) for m in (1, 2, 10, 60, 70, 80, 90)]
    assert t.status == "closed" and t.closed_via == "completed"


def test_a_report_with_an_outside_reference_always_gets_the_same_id() -> None:
    a = ticket_id_for(external_ref="12345-0001", channel="hotline")
    assert a == ticket_id_for(external_ref="12345-0001", channel="hotline")
    assert a != ticket_id_for(external_ref="12345-0002", channel="hotline")
    assert ticket_id_for(command_id="m-1") == ticket_id_for(command_id="m-1")


def test_acknowledging_before_dispatch_is_refused_and_records_nothing() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    with pytest.raises(TicketNotDispatched):
        t.acknowledge(occurred_at=at(2), actor=dept("chengguan"), department="chengguan")
    assert events(t) == ["Reported", "Accepted"]


def test_a_department_without_a_call_cannot_act_on_the_ticket() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    for action in (
        lambda: t.acknowledge(occurred_at=at(3), actor=dept("xiaofang"), department="xiaofang"),
        lambda: t.reject(occurred_at=at(3), actor=dept("xiaofang"), department="xiaofang", reason="x"),
        lambda: t.handle(occurred_at=at(3), actor=dept("xiaofang"), department="xiaofang", result=""),
    ):
        with pytest.raises(NotYourWhistle):
            action()
    assert events(t)[-1] == "Dispatched"


def test_only_the_lead_handles_and_only_after_reporting_in() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    with pytest.raises(IllegalTransition, match="acknowledge"):
        t.handle(occurred_at=at(5), actor=dept("chengguan"), department="chengguan", result="")
    t.acknowledge(occurred_at=at(6), actor=dept("huanwei"), department="huanwei")
    with pytest.raises(NotLeadDepartment):
        t.handle(occurred_at=at(7), actor=dept("huanwei"), department="huanwei", result="")
    with pytest.raises(CallAlreadyAnswered):
        t.acknowledge(occurred_at=at(8), actor=dept("huanwei"), department="huanwei")


def test_a_rejected_lead_call_waits_for_a_redispatch_with_new_calls() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    t.reject(occurred_at=at(5), actor=dept("chengguan"), department="chengguan", reason="不属于城管职责")
    assert t.status == "awaiting_redispatch"
    with pytest.raises(IllegalTransition):
        t.reject(occurred_at=at(6), actor=dept("huanwei"), department="huanwei", reason="  ")
    dispatch(t, 10, lead="shizheng", cooperating=(), reason="转市政")
    assert events(t)[-1] == "Redispatched"
    assert [c["call_id"] for c in t.calls.values()] == ["2:shizheng"]
    with pytest.raises(NotYourWhistle):  # the old call is gone with the old dispatch
        t.acknowledge(occurred_at=at(11), actor=dept("huanwei"), department="huanwei")


def test_evaluating_before_handling_is_refused() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    with pytest.raises(TicketNotHandled):
        t.evaluate(occurred_at=at(3), actor=CENTRE, satisfaction="satisfied", resolved=True, contacted=True)
    with pytest.raises(TicketNotHandled):
        t.give_feedback(occurred_at=at(3), actor=CENTRE, message="", contacted=True)


def test_an_unsatisfied_evaluation_reopens_for_another_dispatch() -> None:
    t = new_ticket()
    through_handling(t)
    t.give_feedback(occurred_at=at(70), actor=CENTRE, message="已处理", contacted=True)
    t.evaluate(occurred_at=at(80), actor=CENTRE, satisfaction="unsatisfied", resolved=False, contacted=True)
    t.reopen(occurred_at=at(81), actor=CENTRE, reason="垃圾仍在")
    assert t.status == "reopened"
    dispatch(t, 82)
    assert events(t)[-3:] == ["Evaluated", "Reopened", "Redispatched"]


def test_reopen_and_close_need_an_evaluation() -> None:
    t = new_ticket()
    through_handling(t)
    with pytest.raises(TicketNotEvaluated):
        t.reopen(occurred_at=at(70), actor=CENTRE, reason="")
    with pytest.raises(TicketNotEvaluated):
        t.close(occurred_at=at(70), actor=CENTRE)


@pytest.mark.parametrize("ending", ["close", "cancel", "duplicate", "first_contact"])
def test_nothing_happens_after_a_ticket_ends(ending: str) -> None:
    t = new_ticket()
    if ending == "close":
        through_handling(t)
        t.give_feedback(occurred_at=at(70), actor=CENTRE, message="已处理", contacted=True)
        t.evaluate(occurred_at=at(80), actor=CENTRE, satisfaction="satisfied", resolved=True, contacted=True)
        t.close(occurred_at=at(90), actor=CENTRE)
    elif ending == "cancel":
        t.cancel(occurred_at=at(5), actor=CENTRE, reason="误报")
    elif ending == "duplicate":
        t.mark_duplicate(occurred_at=at(5), actor=CENTRE, original_id=str(uuid4()), original_status="reported")
    else:
        t.close_at_first_contact(occurred_at=at(5), actor=CENTRE, mode="tell_the_path")
    before = events(t)
    with pytest.raises(TicketClosed):
        t.accept(occurred_at=at(100), actor=CENTRE)
    with pytest.raises(TicketClosed):
        t.escalate(occurred_at=at(100), actor=CENTRE)
    assert events(t) == before


def test_first_contact_needs_one_of_the_five_modes() -> None:
    t = new_ticket()
    with pytest.raises(IllegalTransition, match="first-contact mode"):
        t.close_at_first_contact(occurred_at=at(1), actor=CENTRE, mode="ignore")
    t.close_at_first_contact(occurred_at=at(1), actor=CENTRE, mode="on_the_spot")
    assert t.closed_via == "first_contact:on_the_spot"


def test_escalation_climbs_one_rung_per_deadline_and_stops_at_the_district() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    t.escalate(occurred_at=at(40), actor=CENTRE, deadline="ack:1:chengguan", rung=1)
    assert t.level == "community"
    with pytest.raises(AlreadyEscalated):
        t.escalate(occurred_at=at(41), actor=CENTRE, deadline="ack:1:chengguan", rung=1)
    t.escalate(occurred_at=at(100), actor=CENTRE, deadline="ack:1:chengguan", rung=2)
    t.escalate(occurred_at=at(160), actor=CENTRE, deadline="ack:1:chengguan", rung=3)
    assert t.level == "district"
    with pytest.raises(TopOfLadder):
        t.escalate(occurred_at=at(200), actor=CENTRE)


def test_business_time_never_goes_backwards_within_a_ticket() -> None:
    t = new_ticket()
    with pytest.raises(TimeGoesBackwards):
        t.accept(occurred_at=T0 - timedelta(seconds=1), actor=CENTRE)
    t.accept(occurred_at=T0, actor=CENTRE)  # the same instant is fine


def test_a_cooperating_department_may_report_in_after_the_lead_handled_earlier_in_business_time() -> None:
    # Desks answer independently: 环卫's report-in at 09:20 reaches the engine after
    # 城管's handling at 10:00 was recorded. It is accepted; nothing before the call is.
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(t, 2)
    t.acknowledge(occurred_at=at(10), actor=dept("chengguan"), department="chengguan")
    t.handle(occurred_at=at(60), actor=dept("chengguan"), department="chengguan", result="done")
    t.acknowledge(occurred_at=at(20), actor=dept("huanwei"), department="huanwei")
    assert t.calls["1:huanwei"]["answered_at"] == at(20)
    with pytest.raises(TimeGoesBackwards):
        t.give_feedback(occurred_at=at(30), actor=CENTRE, message="", contacted=True)  # before the handling
    other = new_ticket()
    other.accept(occurred_at=at(1), actor=CENTRE)
    dispatch(other, 5)
    with pytest.raises(TimeGoesBackwards):
        other.acknowledge(occurred_at=at(3), actor=dept("huanwei"), department="huanwei")  # before the call


def test_a_command_id_seen_before_has_no_second_effect() -> None:
    t = new_ticket(command_id="m-1")
    t.accept(occurred_at=at(1), actor=CENTRE, command_id="m-2")
    with pytest.raises(DuplicateCommand):
        t.accept(occurred_at=at(2), actor=CENTRE, command_id="m-2")
    with pytest.raises(DuplicateCommand):
        dispatch(t, 3, command_id="m-1")
    assert events(t) == ["Reported", "Accepted"]


def test_lead_and_cooperating_must_differ() -> None:
    t = new_ticket()
    t.accept(occurred_at=at(1), actor=CENTRE)
    with pytest.raises(IllegalTransition):
        dispatch(t, 2, lead="chengguan", cooperating=("chengguan",))
