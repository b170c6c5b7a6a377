"""The ticket lifecycle: the one place that knows what each event does to a ticket.

``LIFECYCLE`` is the transition table: for every event type the statuses a ticket may be
in for the command to happen (``came_from``), the status it leads to, the command verb and
the timeline label. ``fold(state, kind, data, at)`` applies one event to a ticket's state
and returns what changed, as an *effect* the read side turns into rows:

- the aggregate (``dispatch.aggregates.ticket``) folds each event onto itself;
- the projections (``dispatch.projections.apply``) fold onto the ticket's row and write
  rows from the effect; the timeline folds a fresh state and lists ``open_deadlines``;
- the relay publishes each department's call states (``call_state``) for the desks.

A state is anything with item access (``state["status"]``): a projection's row dict, or
the aggregate (which maps items to its attributes). ``at`` is the event's business time
in the caller's own form (a ``datetime``, or the database's stored form in a projection);
the fold only stores it and compares it with the state's own times.

Adding a step: add the event to the aggregate, a row here, a ``_FOLD`` case (and its
effect to the projection if it has a new one), a command verb and a wire schema entry —
``tests/unit/test_lifecycle.py`` fails until every part is there (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypedDict, get_args

from dispatch.ladder import LEVELS

__all__ = ["Call", "Effect", "FIRST_CONTACT_MODES", "FirstContactMode", "LIFECYCLE", "SATISFACTION", "STATUSES",
           "Satisfaction", "Status", "Step", "TERMINAL", "ack_deadline", "call_id_for", "call_state",
           "feedback_deadline", "fold", "handle_deadline", "new_state", "open_deadlines"]


class Status(StrEnum):
    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    AWAITING_REDISPATCH = "awaiting_redispatch"
    HANDLED = "handled"
    FEEDBACK_GIVEN = "feedback_given"
    EVALUATED = "evaluated"
    REOPENED = "reopened"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    DUPLICATE = "duplicate"


# Every status a ticket can be in, in lifecycle order; the last three end it.
STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
TERMINAL: tuple[str, ...] = (Status.CLOSED.value, Status.CANCELLED.value, Status.DUPLICATE.value)
# 首问接待: the five ways whoever first receives a request deals with it.
FirstContactMode = Literal["on_the_spot", "forward_and_accept", "accept_on_behalf", "tell_the_path", "explain"]
FIRST_CONTACT_MODES: tuple[str, ...] = get_args(FirstContactMode)
# The reporter's verdict (评价), best first.
Satisfaction = Literal["satisfied", "basically_satisfied", "unsatisfied"]
SATISFACTION: tuple[str, ...] = get_args(Satisfaction)


class Call(TypedDict):
    """A department's call on one dispatch (吹哨), as a ticket's state holds it."""

    call_id: str  # "<dispatch_no>:<department>"
    department: str
    role: str  # "lead" or "cooperating"
    ack_due: Any
    dispatched_at: Any
    answer: str | None  # None, "acknowledged" or "rejected"
    answered_at: Any


State = MutableMapping[str, Any]
# What an event changed, for the read side: (kind, detail). Kinds: "report", "status",
# "dispatch" (detail: the superseded dispatch number, 0 for none), "answer" (the call),
# "handle" (the call id), "evaluate", "reopen" (the reopened evaluation's version or None),
# "escalate", "close".
Effect = tuple[str, Any]

_ANSWERING = (Status.DISPATCHED, Status.IN_PROGRESS, Status.AWAITING_REDISPATCH, Status.HANDLED,
              Status.FEEDBACK_GIVEN)
_OPEN = tuple(s for s in STATUSES if s not in TERMINAL)


@dataclass(frozen=True)
class Step:
    """One event type: the command that records it, where it may come from, where it goes."""

    verb: str  # the command's ``type`` on the intake wire
    came_from: tuple[str, ...]  # statuses the ticket may be in; () = any open status
    to: str | None  # the status after it (None: unchanged, or decided by the event's data)
    label: str  # the timeline's words for it


LIFECYCLE: dict[str, Step] = {
    "Reported": Step("report", (), Status.REPORTED, "上报 reported"),
    "Accepted": Step("accept", (Status.REPORTED,), Status.ACCEPTED, "受理 accepted"),
    "ClosedAtFirstContact": Step("first_contact", (Status.REPORTED, Status.ACCEPTED), Status.CLOSED,
                                 "首问办结 closed at first contact"),
    "Dispatched": Step("dispatch", (Status.ACCEPTED, Status.REOPENED, Status.AWAITING_REDISPATCH),
                       Status.DISPATCHED, "吹哨 dispatched"),
    "Redispatched": Step("dispatch", (Status.ACCEPTED, Status.REOPENED, Status.AWAITING_REDISPATCH),
                         Status.DISPATCHED, "再派 redispatched"),
    "Acknowledged": Step("acknowledge", _ANSWERING, None, "报到 acknowledged"),
    "Rejected": Step("reject", _ANSWERING, None, "退单 rejected"),
    "Handled": Step("handle", (Status.DISPATCHED, Status.IN_PROGRESS), Status.HANDLED, "处置 handled"),
    "FeedbackGiven": Step("feedback", (Status.HANDLED, Status.FEEDBACK_GIVEN), Status.FEEDBACK_GIVEN,
                          "反馈 feedback given"),
    "Evaluated": Step("evaluate", (Status.HANDLED, Status.FEEDBACK_GIVEN), Status.EVALUATED, "评价 evaluated"),
    "Reopened": Step("reopen", (Status.EVALUATED,), Status.REOPENED, "返工 reopened"),
    "Escalated": Step("escalate", (), None, "督办 escalated"),
    "MarkedDuplicate": Step("mark_duplicate", (), Status.DUPLICATE, "重复件 marked duplicate"),
    "Cancelled": Step("cancel", (), Status.CANCELLED, "撤销 cancelled"),
    "Closed": Step("close", (Status.EVALUATED,), Status.CLOSED, "办结 closed"),
}


def call_id_for(dispatch_no: int, department: str) -> str:
    return f"{dispatch_no}:{department}"


# The names of a ticket's SLA deadlines (the timeline's clock, the watchdog's Escalate commands).
def ack_deadline(call_id: str) -> str:
    return f"ack:{call_id}"


def handle_deadline(dispatch_no: int) -> str:
    return f"handle:{dispatch_no}"


def feedback_deadline(dispatch_no: int) -> str:
    return f"feedback:{dispatch_no}"


def new_state() -> dict[str, Any]:
    """The state before a ticket's first event (the keys every fold case may read)."""
    return {"status": "", "dispatch_no": 0, "lead": None, "calls": {}, "handled_by": None, "satisfaction": None,
            "level": LEVELS[0], "escalations": [], "closed_at": None, "closed_via": None, "duplicate_of": None,
            "time_basis": None, "handle_due": None, "feedback_due": None, "feedback_at": None,
            "last_eval_version": None, "last_at": None}


# -- the fold: one function per event type ---------------------------------------------------------

def _reported(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    for key in ("grid", "community", "street", "district", "category", "priority", "channel"):
        s[key] = d[key]
    s["description"], s["location"], s["external_ref"] = d.get("description") or "", d.get("location"), \
        d.get("external_ref")
    s["reported_at"] = s["last_at"] = at
    s["status"] = Status.REPORTED.value
    return ("report", None)


def _to(status: Status, effect: str = "status") -> Callable[[State, Mapping[str, Any], Any, int], Effect]:
    value = status.value

    def step(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
        s["status"] = value
        return (effect, None)
    return step


def _closed_at_first_contact(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["closed_via"], s["closed_at"] = Status.CLOSED.value, f"first_contact:{d['mode']}", at
    return ("close", None)


def _closed(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["closed_via"], s["closed_at"] = Status.CLOSED.value, "completed", at
    return ("close", None)


def _marked_duplicate(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["duplicate_of"] = Status.DUPLICATE.value, d["original_id"]
    return ("status", None)


def _dispatched(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    superseded = s["dispatch_no"]
    s["calls"] = {c["call_id"]: Call(call_id=c["call_id"], department=c["department"], role=c["role"],
                                     ack_due=c["ack_due"], dispatched_at=at, answer=None, answered_at=None)
                  for c in d["calls"]}
    s["status"], s["dispatch_no"], s["lead"] = Status.DISPATCHED.value, d["dispatch_no"], d["lead"]
    s["handle_due"], s["feedback_due"], s["time_basis"] = d["handle_due"], d["feedback_due"], d["time_basis"]
    s["handled_by"] = s["feedback_at"] = None
    return ("dispatch", superseded)


def _answered(answer: str, lead_status: Status) -> Callable[[State, Mapping[str, Any], Any, int], Effect]:
    value = lead_status.value

    def step(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
        call = s["calls"].get(d["call_id"])  # a projection holds only the calls it has seen
        if call is not None:
            call["answer"], call["answered_at"] = answer, at
        if d["department"] == s["lead"]:
            s["status"] = value
        return ("answer", (d["call_id"], answer))
    return step


def _handled(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    # events before Handled v2 do not name the call: it is the department's on the current dispatch
    call_id = d.get("call_id") or call_id_for(s["dispatch_no"], d["department"])
    s["status"], s["handled_by"] = Status.HANDLED.value, d["department"]
    return ("handle", call_id)


def _feedback_given(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["feedback_at"] = Status.FEEDBACK_GIVEN.value, at
    return ("status", None)


def _evaluated(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["satisfaction"], s["last_eval_version"] = Status.EVALUATED.value, d["satisfaction"], version
    return ("evaluate", s["handled_by"] or s["lead"])


def _reopened(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["satisfaction"] = Status.REOPENED.value, None
    return ("reopen", s["last_eval_version"])


def _escalated(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["escalations"].append(f"{d['deadline']}#{d['rung']}")
    s["level"] = d["to_level"]
    return ("escalate", None)


_FOLD: dict[str, Callable[[State, Mapping[str, Any], Any, int], Effect]] = {
    "Reported": _reported,
    "Accepted": _to(Status.ACCEPTED),
    "ClosedAtFirstContact": _closed_at_first_contact,
    "Dispatched": _dispatched,
    "Redispatched": _dispatched,
    "Acknowledged": _answered("acknowledged", Status.IN_PROGRESS),
    "Rejected": _answered("rejected", Status.AWAITING_REDISPATCH),
    "Handled": _handled,
    "FeedbackGiven": _feedback_given,
    "Evaluated": _evaluated,
    "Reopened": _reopened,
    "Escalated": _escalated,
    "MarkedDuplicate": _marked_duplicate,
    "Cancelled": _to(Status.CANCELLED),
    "Closed": _closed,
}


def fold(state: State, kind: str, data: Mapping[str, Any], at: Any, version: int = 0) -> Effect:
    """Apply one event (``kind``, its ``data``, its time ``at``) to ``state``; return its effect.

    An event type without a case is an error, never silently skipped."""
    try:
        step = _FOLD[kind]
    except KeyError:
        raise ValueError(f"no lifecycle step for an event of type {kind!r}") from None
    effect = step(state, data, at, version)
    last = state["last_at"]
    if last is None or at > last:  # an answer may come earlier in business time than the last step
        state["last_at"] = at
    return effect


# -- what follows from a state ----------------------------------------------------------------------

def open_deadlines(state: Mapping[str, Any]) -> dict[str, Any]:
    """The SLA deadlines still open (key -> due): each unanswered call's acknowledgement
    (``ack:<call_id>``), the lead's handling (``handle:<n>``) and the feedback
    (``feedback:<n>``) of the current dispatch ``n``. A lead's rejection closes both."""
    status = state["status"]
    if status in TERMINAL or not state["dispatch_no"]:
        return {}
    no = state["dispatch_no"]
    due = {ack_deadline(c["call_id"]): c["ack_due"] for c in state["calls"].values() if c["answer"] is None}
    if status in (Status.DISPATCHED, Status.IN_PROGRESS):
        due[handle_deadline(no)] = state["handle_due"]
    if state["feedback_at"] is None and status != Status.AWAITING_REDISPATCH:
        due[feedback_deadline(no)] = state["feedback_due"]
    return due


def call_state(role: str, answer: str | None, handled: bool = False) -> str:
    """Where a department's call stands on its desk: ``waiting`` for an answer,
    ``to_handle`` (a lead that reported in), or ``done``."""
    if handled or answer == "rejected" or (answer == "acknowledged" and role != "lead"):
        return "done"
    return "to_handle" if answer == "acknowledged" else "waiting"
