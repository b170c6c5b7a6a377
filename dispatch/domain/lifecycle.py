"""The ticket lifecycle: the one place that knows what each event does to a ticket.

``LIFECYCLE`` is the transition table: for every event type the statuses a ticket may be
in for the command to happen (``came_from``), the status it leads to, the command verb and
the timeline label. ``fold(state, kind, data, at)`` applies one event to a ticket's state
and returns what changed, as an *effect* the read side turns into rows:

- the aggregate (``dispatch.aggregates.ticket``) folds each event onto itself;
- the projections (``dispatch.projections.apply_events``) fold onto the ticket's row and write
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

from dispatch.domain.ladder import LEVELS

__all__ = ["Call", "Effect", "FIRST_CONTACT_MODES", "FirstContactMode", "LIFECYCLE", "SATISFACTION", "STATUSES",
           "Satisfaction", "Status", "Step", "TERMINAL", "accept_deadline", "ack_deadline", "call_id_for",
           "call_state", "dispatch_deadline", "needs_rework",
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
# "escalate", "close" (the ticket ended: its open calls are closed out), "extension" (a request
# asked or decided), "hold", "deadlines" (the moved due times, by deadline key or field name).
Effect = tuple[str, Any]

# A department may report in on its call until the ticket ends (a cooperating one may be late)
_ANSWERING = (Status.DISPATCHED, Status.IN_PROGRESS, Status.AWAITING_REDISPATCH, Status.HANDLED,
              Status.FEEDBACK_GIVEN, Status.EVALUATED, Status.REOPENED)
_WORKING = (Status.DISPATCHED, Status.IN_PROGRESS)
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
    "Evaluated": Step("evaluate", (Status.FEEDBACK_GIVEN,), Status.EVALUATED, "评价 evaluated"),
    "Reopened": Step("reopen", (Status.EVALUATED,), Status.REOPENED, "返工 reopened"),
    "Escalated": Step("escalate", (), None, "督办 escalated"),
    "MarkedDuplicate": Step("mark_duplicate", (), Status.DUPLICATE, "重复件 marked duplicate"),
    "Cancelled": Step("cancel", (), Status.CANCELLED, "撤销 cancelled"),
    "Closed": Step("close", (Status.EVALUATED,), Status.CLOSED, "办结 closed"),
    "ExtensionRequested": Step("request_extension", _WORKING, None, "申请延期 extension requested"),
    "ExtensionGranted": Step("decide_extension", _WORKING, None, "准予延期 extension granted"),
    "ExtensionRefused": Step("decide_extension", _WORKING, None, "不予延期 extension refused"),
    "Held": Step("hold", (), None, "挂起 put on hold"),
    "Resumed": Step("resume", (), None, "恢复 resumed"),
}


def call_id_for(dispatch_no: int, department: str) -> str:
    return f"{dispatch_no}:{department}"


def dispatch_no_of(call_id: str) -> int:
    """The dispatch a call belongs to: the ``n`` of ``"<n>:<department>"``."""
    return int(call_id.split(":", 1)[0])


# The names of a ticket's SLA deadlines (the timeline's clock, the watchdog's Escalate commands).
def ack_deadline(call_id: str) -> str:
    return f"ack:{call_id}"


def accept_deadline() -> str:
    return "accept"


def dispatch_deadline() -> str:
    return "dispatch"


def handle_deadline(dispatch_no: int) -> str:
    return f"handle:{dispatch_no}"


def feedback_deadline(dispatch_no: int) -> str:
    return f"feedback:{dispatch_no}"


def new_state() -> dict[str, Any]:
    """The state before a ticket's first event (the keys every fold case may read)."""
    return {"status": "", "dispatch_no": 0, "lead": None, "calls": {}, "handled_by": None, "satisfaction": None,
            "level": LEVELS[0], "escalations": [], "closed_at": None, "closed_via": None, "duplicate_of": None,
            "time_basis": None, "handle_due": None, "feedback_due": None, "feedback_at": None,
            "last_eval_version": None, "last_at": None, "resolved": None, "case_no": None, "accept_due": None,
            "dispatch_due": None, "centre_basis": None, "accepted_at": None, "first_dispatched_at": None,
            "provisional": False, "held_since": None, "extension": None, "override": None}


# -- the fold: one function per event type ---------------------------------------------------------

def _reported(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    for key in ("grid", "community", "street", "district", "category", "priority", "channel"):
        s[key] = d[key]
    s["description"], s["location"], s["external_ref"] = d.get("description") or "", d.get("location"), \
        d.get("external_ref")
    s["position"] = d.get("position")
    s["reported_at"] = s["last_at"] = at
    s["status"] = Status.REPORTED.value
    s["case_no"], s["accept_due"], s["dispatch_due"] = d.get("case_no"), d.get("accept_due"), d.get("dispatch_due")
    s["centre_basis"], s["provisional"] = d.get("centre_basis"), bool(d.get("provisional"))
    return ("report", None)


def _accepted(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["accepted_at"] = Status.ACCEPTED.value, at
    return ("status", None)


def _closed_at_first_contact(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["closed_via"], s["closed_at"] = Status.CLOSED.value, f"first_contact:{d['mode']}", at
    return ("close", None)


def _closed(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["closed_at"] = Status.CLOSED.value, at
    s["closed_via"] = "override" if d.get("override") else "completed"
    s["override"] = d.get("override")
    return ("close", None)


def _marked_duplicate(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["duplicate_of"] = Status.DUPLICATE.value, d["original_id"]
    return ("close", None)


def _cancelled(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"] = Status.CANCELLED.value
    return ("close", None)


def _dispatched(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    superseded = s["dispatch_no"]
    s["calls"] = {c["call_id"]: Call(call_id=c["call_id"], department=c["department"], role=c["role"],
                                     ack_due=c["ack_due"], dispatched_at=at, answer=None, answered_at=None)
                  for c in d["calls"]}
    s["status"], s["dispatch_no"], s["lead"] = Status.DISPATCHED.value, d["dispatch_no"], d["lead"]
    s["handle_due"], s["feedback_due"], s["time_basis"] = d["handle_due"], d["feedback_due"], d["time_basis"]
    s["handled_by"] = s["feedback_at"] = s["extension"] = None
    s["provisional"] = bool(d.get("provisional"))
    if s["first_dispatched_at"] is None:
        s["first_dispatched_at"] = at
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
    s["extension"] = None  # handled: an extension still asked for is moot
    return ("handle", call_id)


def _feedback_given(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["feedback_at"] = Status.FEEDBACK_GIVEN.value, at
    return ("status", None)


def _evaluated(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["satisfaction"], s["last_eval_version"] = Status.EVALUATED.value, d["satisfaction"], version
    s["resolved"] = d["resolved"]
    return ("evaluate", s["handled_by"] or s["lead"])


def _reopened(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["status"], s["satisfaction"], s["resolved"] = Status.REOPENED.value, None, None
    return ("reopen", s["last_eval_version"])


def _escalated(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    """A ticket's level only ever rises: an Escalated event recorded before per-ticket
    supervision may name a level the ticket already had (it then changes nothing)."""
    for deadline in d.get("deadlines") or [d["deadline"]]:
        s["escalations"].append(f"{deadline}#{d['rung']}")
    if LEVELS.index(d["to_level"]) > LEVELS.index(s["level"]):
        s["level"] = d["to_level"]
    return ("escalate", None)


def _extension_requested(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["extension"] = {"department": d["department"], "minutes": d["minutes"], "reason": d["reason"],
                      "requested_at": at}
    return ("extension", None)


def _extension_granted(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["extension"] = None
    s["handle_due"], s["feedback_due"] = d["handle_due"], d["feedback_due"]
    return ("deadlines", {"handle_due": d["handle_due"], "feedback_due": d["feedback_due"]})


def _extension_refused(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["extension"] = None
    return ("extension", None)


def _held(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    s["held_since"] = at
    return ("hold", None)


def _resumed(s: State, d: Mapping[str, Any], at: Any, version: int) -> Effect:
    """Every deadline still open when the hold began moves by the time held (``dues``)."""
    s["held_since"] = None
    dues = d["dues"]
    for call in s["calls"].values():
        key = ack_deadline(call["call_id"])
        if key in dues:
            call["ack_due"] = dues[key]
    for key, name in ((handle_deadline(s["dispatch_no"]), "handle_due"),
                      (feedback_deadline(s["dispatch_no"]), "feedback_due"),
                      (accept_deadline(), "accept_due"), (dispatch_deadline(), "dispatch_due")):
        if key in dues:
            s[name] = dues[key]
    return ("deadlines", dues)


_FOLD: dict[str, Callable[[State, Mapping[str, Any], Any, int], Effect]] = {
    "Reported": _reported,
    "Accepted": _accepted,
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
    "Cancelled": _cancelled,
    "Closed": _closed,
    "ExtensionRequested": _extension_requested,
    "ExtensionGranted": _extension_granted,
    "ExtensionRefused": _extension_refused,
    "Held": _held,
    "Resumed": _resumed,
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
    """The SLA deadlines still open (key -> due): before the first whistle the centre's own
    (``accept`` while reported, ``dispatch``); then each unanswered call's acknowledgement
    (``ack:<call_id>``), the lead's handling (``handle:<n>``) and the feedback
    (``feedback:<n>``) of the current dispatch ``n``. A lead's rejection closes both."""
    status = state["status"]
    if status in TERMINAL:
        return {}
    if not state["dispatch_no"]:  # the centre's own deadlines, until its first whistle
        centre = {}
        if status == Status.REPORTED and state["accept_due"] is not None:
            centre[accept_deadline()] = state["accept_due"]
        if state["dispatch_due"] is not None:
            centre[dispatch_deadline()] = state["dispatch_due"]
        return centre
    no = state["dispatch_no"]
    due = {ack_deadline(c["call_id"]): c["ack_due"] for c in state["calls"].values() if c["answer"] is None}
    if status in (Status.DISPATCHED, Status.IN_PROGRESS):
        due[handle_deadline(no)] = state["handle_due"]
    if state["feedback_at"] is None and status != Status.AWAITING_REDISPATCH:
        due[feedback_deadline(no)] = state["feedback_due"]
    return due


def needs_rework(state: Mapping[str, Any]) -> bool:
    """The last evaluation found the result unsatisfactory or the issue unresolved (返工)."""
    return state["satisfaction"] == "unsatisfied" or state["resolved"] is False


def call_state(role: str, answer: str | None, handled: bool = False) -> str:
    """Where a department's call stands on its desk: ``waiting`` for an answer,
    ``to_handle`` (a lead that reported in), or ``done``."""
    if handled or answer in ("rejected", "closed_out") or (answer == "acknowledged" and role != "lead"):
        return "done"
    return "to_handle" if answer == "acknowledged" else "waiting"
