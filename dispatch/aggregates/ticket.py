"""The Ticket: one incident's work order, from report to close (上报—处理—反馈—评价).

Command methods check the rules and raise a named error before anything happens, then
``trigger_event`` one of the event classes below, which only declare each event's fields (the
report's, ``Reported``, through the ``@event`` constructor): what an event does to the
ticket is ``dispatch.domain.lifecycle.fold``, applied by ``Ticket.Event.apply`` to every event
(the read side folds the same events with the same function). A replay therefore never
re-checks a rule, and a refused command leaves the ticket exactly as it was.

Every event carries ``occurred_at`` (the business time, given by the caller),
``actor`` (who did it) and ``command_id`` (so a redelivered command is refused).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from dispatch.domain.errors import (
    AlreadyEscalated,
    AlreadyOnHold,
    AwaitingDispatch,
    CallReplaced,
    DuplicateOfEnded,
    FeedbackNotGiven,
    ExtensionPending,
    NoExtensionPending,
    NotOnHold,
    ReopenNeedsReason,
    ReworkRequired,
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
from dispatch.domain.ladder import LEVELS, TOP_RUNG
from dispatch.domain.lifecycle import (FIRST_CONTACT_MODES, Call, LIFECYCLE, SATISFACTION, STATUSES, TERMINAL, fold,
                                       needs_rework, new_state)
from dispatch.domain.upcasting import (EVALUATION_METHODS, upcast_closed_v1_v2, upcast_dispatched_v1_v2,
                                       upcast_escalated_v1_v2, upcast_evaluated_v1_v2, upcast_handled_v1_v2,
                                       upcast_reported_v1_v2, upcast_reported_v2_v3, upcast_reported_v3_v4, position_in_text)

__all__ = ["FIRST_CONTACT_MODES", "SATISFACTION", "STATUSES", "TERMINAL", "Ticket", "ticket_id_for"]
_NAMESPACE = uuid5(NAMESPACE_URL, "https://dispatch.example/tickets")

Actor = dict[str, Any]


def ticket_id_for(*, external_ref: str | None = None, channel: str = "", command_id: str | None = None) -> UUID:
    """A report's ticket id: deterministic from an outside key, so a resubmitted
    report (same 12345 case number, or the same intake message) reaches the same ticket."""
    if external_ref:
        return uuid5(_NAMESPACE, f"ref:{channel}:{external_ref}")
    if command_id:
        return uuid5(_NAMESPACE, f"cmd:{command_id}")
    return uuid4()


class Ticket(Aggregate):
    # v2: the lifecycle state gained ``feedback_at`` (snapshots taken before it: ``upcast_v1_v2``)
    # v3: ``resolved``, the case number, the centre's deadlines, holds, extensions, overrides
    # v4: ``position``, the report's position as data (``upcast_v3_v4``)
    class_version = 4

    class Event(Aggregate.Event):
        def apply(self, aggregate: Any) -> None:
            data = self.__dict__
            # the aggregate's attributes are its state: fold into them directly
            fold(aggregate.__dict__, type(self).__name__, data, data["occurred_at"], self.originator_version)
            command_id = data.get("command_id")
            if command_id:
                aggregate.command_ids.append(command_id)

    if TYPE_CHECKING:  # the state the fold keeps (``dispatch.domain.lifecycle.new_state`` and ``_reported``)
        grid: str
        community: str
        street: str
        district: str
        category: str
        priority: str
        channel: str
        description: str
        location: str | None
        position: dict[str, Any] | None
        external_ref: str | None
        reported_at: datetime
        last_at: datetime
        status: str
        dispatch_no: int
        lead: str | None
        calls: dict[str, Call]
        handle_due: datetime | None
        feedback_due: datetime | None
        feedback_at: datetime | None
        time_basis: str | None
        handled_by: str | None
        satisfaction: str | None
        last_eval_version: int | None
        escalations: list[str]
        level: str
        closed_at: datetime | None
        closed_via: str | None
        duplicate_of: str | None
        resolved: bool | None
        case_no: str | None
        accept_due: datetime | None
        dispatch_due: datetime | None
        centre_basis: str | None
        accepted_at: datetime | None
        first_dispatched_at: datetime | None
        provisional: bool
        held_since: datetime | None
        extension: dict[str, Any] | None
        override: str | None
        command_ids: list[str]

    # a ticket is a lifecycle state by item too (the relay folds onto one it loaded)
    def __getitem__(self, key: str) -> Any:
        return self.__dict__[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.__dict__[key] = value

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        """A snapshot taken before v2: no feedback time known (the feedback deadline counts as open)."""
        state.setdefault("feedback_at", None)

    @staticmethod
    def upcast_v2_v3(state: dict[str, Any]) -> None:
        """A snapshot taken before v3: the new state keys at their starting values (a ticket
        reported before v3 has no case number in its events: ``dispatch.adapters.case_register``)."""
        for key, value in new_state().items():
            state.setdefault(key, value)

    @staticmethod
    def upcast_v3_v4(state: dict[str, Any]) -> None:
        """A snapshot taken before v4: the position as its report's event upcaster finds it."""
        state.setdefault("position", position_in_text(state.get("location")))

    # ------------------------------------------------------------------ report
    class Reported(Aggregate.Created, Event):
        """v2 added ``reporter``: the reporter's contact, sealed (``dispatch.adapters.vault``: ``{"key",
        "data"}``) or None; and ``media``: the report's photos (``file:<sha256>.jpg`` kept by
        ``dispatch web``, or URLs) or None. The lifecycle state holds neither (snapshots are unchanged).
        v3 added ``case_no``, ``accept_due``/``dispatch_due`` in ``centre_basis`` and ``provisional``.
        v4 added ``position``: ``{"lat", "lon", "given_in", "accuracy"}`` in WGS-84, or None."""

        class_version = 4
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        grid: str
        community: str
        street: str
        district: str
        category: str
        priority: str
        channel: str
        description: str
        location: str | None
        external_ref: str | None
        reporter: dict[str, str] | None
        media: list[str] | None
        case_no: str | None
        accept_due: datetime | None
        dispatch_due: datetime | None
        centre_basis: str | None
        provisional: bool
        calendar: str | None
        position: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_reported_v1_v2(state)

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            upcast_reported_v2_v3(state)

        @staticmethod
        def upcast_v3_v4(state: dict[str, Any]) -> None:
            upcast_reported_v3_v4(state)

    @event(Reported)
    def __init__(
        self,
        *,
        id: UUID,
        occurred_at: datetime,
        actor: Actor,
        command_id: str | None,
        grid: str,
        community: str,
        street: str,
        district: str,
        category: str,
        priority: str,
        channel: str,
        description: str,
        location: str | None,
        external_ref: str | None,
        reporter: dict[str, str] | None,
        media: list[str] | None,
        case_no: str | None,
        accept_due: datetime | None,
        dispatch_due: datetime | None,
        centre_basis: str | None,
        provisional: bool,
        calendar: str | None,
        position: dict[str, Any] | None,
    ) -> None:
        self.__dict__.update(new_state())  # the fold (``Event.apply``, after this) fills it in
        self.command_ids: list[str] = []

    # ------------------------------------------------------------------ guards
    def _check(self, occurred_at: datetime, command_id: str | None, *, answer: bool = False) -> None:
        """Refuse a repeated command, anything after the end, and time running backwards.

        A department's answer (报到 or 退单) only has to come after its own call: desks
        answer independently, so a cooperating department's report-in may arrive after
        the lead's handling that happened later in business time. Every other step comes
        at or after the latest business time the ticket has seen."""
        if command_id and command_id in self.command_ids:
            raise DuplicateCommand(f"command {command_id} was already applied to ticket {self.id}")
        if self.status in TERMINAL:
            raise TicketClosed(f"ticket {self.id} is {self.status}; nothing more can happen to it")
        if not answer and occurred_at < self.last_at:
            raise TimeGoesBackwards(
                f"{occurred_at.isoformat()} is before the ticket's last event at {self.last_at.isoformat()}"
            )

    def _require(self, kind: str, error: type[IllegalTransition], step: str) -> None:
        """The ticket is in a status the lifecycle table lets event ``kind`` come from."""
        if self.status not in LIFECYCLE[kind].came_from:
            raise error(f"cannot {step} ticket {self.id}: it is {self.status}")

    def _at_dispatch(self, dispatch_no: int | None) -> None:
        """An answer that names its dispatch (the ``n`` of its call ``n:<department>``) answers
        that dispatch only: not one still to come, not one a later dispatch replaced."""
        if dispatch_no is None or dispatch_no == self.dispatch_no:
            return
        if dispatch_no > self.dispatch_no:
            now = f"it is at dispatch {self.dispatch_no}" if self.dispatch_no else "it has not been dispatched"
            raise AwaitingDispatch(f"ticket {self.id} has not reached dispatch {dispatch_no} yet ({now})")
        raise CallReplaced(f"dispatch {dispatch_no} of ticket {self.id} was replaced by dispatch {self.dispatch_no}; "
                           "its calls are closed")

    def _open_call(self, department: str, occurred_at: datetime) -> Call:
        if self.status not in LIFECYCLE["Acknowledged"].came_from:
            raise TicketNotDispatched(f"cannot answer for ticket {self.id}: it is {self.status}, no whistle is open")
        for call in self.calls.values():
            if call["department"] == department:
                if call["answer"] is not None:
                    raise CallAlreadyAnswered(
                        f"{department} already {call['answer']} the call on ticket {self.id}"
                    )
                if occurred_at < call["dispatched_at"]:
                    raise TimeGoesBackwards(
                        f"{occurred_at.isoformat()} is before {department} was called at "
                        f"{call['dispatched_at'].isoformat()}"
                    )
                return call
        raise NotYourWhistle(f"{department} has no call on ticket {self.id}")

    # ------------------------------------------------------------------ commands
    def accept(self, *, occurred_at: datetime, actor: Actor, command_id: str | None = None, note: str = "") -> None:
        self._check(occurred_at, command_id)
        self._require("Accepted", IllegalTransition, "accept")
        self.trigger_event(self.Accepted, occurred_at=occurred_at, actor=actor, command_id=command_id, note=note)

    def close_at_first_contact(
        self, *, occurred_at: datetime, actor: Actor, mode: str, command_id: str | None = None, note: str = ""
    ) -> None:
        self._check(occurred_at, command_id)
        self._require("ClosedAtFirstContact", IllegalTransition, "close at first contact")
        if mode not in FIRST_CONTACT_MODES:
            raise IllegalTransition(f"unknown first-contact mode {mode!r}; one of {', '.join(FIRST_CONTACT_MODES)}")
        self.trigger_event(self.ClosedAtFirstContact, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           mode=mode, note=note)

    def dispatch(
        self,
        *,
        occurred_at: datetime,
        actor: Actor,
        lead: str,
        cooperating: list[str],
        ack_due: datetime,
        handle_due: datetime,
        feedback_due: datetime,
        time_basis: str,
        escalate_every_minutes: int,
        command_id: str | None = None,
        reason: str = "",
        provisional: bool = False,
        calendar: str | None = None,
    ) -> None:
        """Blow the whistle: a call to the lead department and each cooperating one.
        ``provisional``: a working-time deadline falls in a year the holiday table does not cover."""
        self._check(occurred_at, command_id)
        self._require("Dispatched", IllegalTransition, "dispatch")
        if lead in cooperating:
            raise IllegalTransition(f"{lead} cannot be both lead and cooperating department")
        if len(set(cooperating)) != len(cooperating):
            raise IllegalTransition("a cooperating department is named twice")
        no = self.dispatch_no + 1
        calls = [
            {"call_id": f"{no}:{dept}", "department": dept, "role": role, "ack_due": ack_due}
            for dept, role in [(lead, "lead")] + [(d, "cooperating") for d in cooperating]
        ]
        kwargs: dict[str, Any] = dict(
            occurred_at=occurred_at,
            actor=actor,
            command_id=command_id,
            dispatch_no=no,
            lead=lead,
            cooperating=list(cooperating),
            calls=calls,
            handle_due=handle_due,
            feedback_due=feedback_due,
            time_basis=time_basis,
            escalate_every_minutes=escalate_every_minutes,
            provisional=provisional,
            calendar=calendar,
        )
        if no == 1:
            self.trigger_event(self.Dispatched, **kwargs)
        else:
            self.trigger_event(self.Redispatched, reason=reason, **kwargs)

    def acknowledge(self, *, occurred_at: datetime, actor: Actor, department: str, command_id: str | None = None,
                    dispatch_no: int | None = None) -> None:
        """报到: the department reports in on its call."""
        self._check(occurred_at, command_id, answer=True)
        self._at_dispatch(dispatch_no)
        call = self._open_call(department, occurred_at)
        self.trigger_event(self.Acknowledged, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           call_id=call["call_id"], department=department)

    def reject(
        self, *, occurred_at: datetime, actor: Actor, department: str, reason: str, command_id: str | None = None,
        dispatch_no: int | None = None,
    ) -> None:
        """退单: "not our responsibility". A rejected lead call waits for a redispatch."""
        self._check(occurred_at, command_id, answer=True)
        self._at_dispatch(dispatch_no)
        call = self._open_call(department, occurred_at)
        if not reason.strip():
            raise IllegalTransition("a rejection needs a reason")
        self.trigger_event(self.Rejected, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           call_id=call["call_id"], department=department, reason=reason)

    def handle(self, *, occurred_at: datetime, actor: Actor, department: str, result: str, command_id: str | None = None,
               dispatch_no: int | None = None) -> None:
        """处置: the lead department records that the issue is dealt with."""
        self._check(occurred_at, command_id)
        self._at_dispatch(dispatch_no)
        if self.status not in LIFECYCLE["Handled"].came_from:
            raise TicketNotDispatched(f"cannot handle ticket {self.id}: it is {self.status}")
        call = next((c for c in self.calls.values() if c["department"] == department), None)
        if call is None:
            raise NotYourWhistle(f"{department} has no call on ticket {self.id}")
        if call["role"] != "lead":
            raise NotLeadDepartment(f"only the lead department {self.lead} records the handling of ticket {self.id}")
        if call["answer"] != "acknowledged":
            raise IllegalTransition(f"{department} must report in (acknowledge) before handling ticket {self.id}")
        self.trigger_event(self.Handled, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           department=department, result=result, call_id=call["call_id"])

    def give_feedback(
        self, *, occurred_at: datetime, actor: Actor, message: str, contacted: bool, command_id: str | None = None
    ) -> None:
        """反馈: the result is reported back to the reporter."""
        self._check(occurred_at, command_id)
        self._require("FeedbackGiven", TicketNotHandled, "give feedback on")
        self.trigger_event(self.FeedbackGiven, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           message=message, contacted=contacted)

    def evaluate(
        self,
        *,
        occurred_at: datetime,
        actor: Actor,
        satisfaction: str,
        resolved: bool,
        contacted: bool,
        comment: str = "",
        command_id: str | None = None,
        method: str = "callback",
    ) -> None:
        """评价: the reporter's verdict on the result, and how it was collected (``method``)."""
        self._check(occurred_at, command_id)
        if self.status == "handled":  # handled, but the reporter has not been told: feedback first
            raise FeedbackNotGiven(f"cannot evaluate ticket {self.id}: its result has not been fed back to the "
                                   "reporter yet (give the feedback first)")
        self._require("Evaluated", TicketNotHandled, "evaluate")
        if satisfaction not in SATISFACTION:
            raise IllegalTransition(f"unknown satisfaction {satisfaction!r}; one of {', '.join(SATISFACTION)}")
        if method not in EVALUATION_METHODS:
            raise IllegalTransition(f"unknown evaluation method {method!r}; one of {', '.join(EVALUATION_METHODS)}")
        self.trigger_event(self.Evaluated, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           satisfaction=satisfaction, resolved=resolved, contacted=contacted, comment=comment,
                           method=method)

    def reopen(self, *, occurred_at: datetime, actor: Actor, reason: str, command_id: str | None = None) -> None:
        """返工: an unsatisfactory or unresolved result goes back for another dispatch; a result
        the reporter accepted is reopened only with the centre's reason."""
        self._check(occurred_at, command_id)
        self._require("Reopened", TicketNotEvaluated, "reopen")
        if not needs_rework(self) and not reason.strip():  # type: ignore[arg-type]
            raise ReopenNeedsReason(f"ticket {self.id} was evaluated {self.satisfaction} and resolved; "
                                    "reopening it needs the centre's reason")
        self.trigger_event(self.Reopened, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           reason=reason)

    def escalate(
        self,
        *,
        occurred_at: datetime,
        actor: Actor,
        deadline: str = "manual",
        deadlines: list[str] | None = None,
        rung: int | None = None,
        reason: str = "",
        command_id: str | None = None,
    ) -> None:
        """督办: the ticket one rung up the ladder (grid → community → street → district),
        never two at once and never past the top. ``deadlines``: every missed deadline that
        caused it (the watchdog's); ``rung`` (optional) is the rung asked for, refused when the
        ticket is already there."""
        self._check(occurred_at, command_id)
        current = LEVELS.index(self.level)
        if rung is not None and rung <= current:
            raise AlreadyEscalated(f"ticket {self.id} is already at the {LEVELS[current]}")
        if current >= TOP_RUNG:
            raise TopOfLadder(f"ticket {self.id} is already at the {LEVELS[TOP_RUNG]}")
        if rung is not None and rung != current + 1:
            raise IllegalTransition(f"ticket {self.id} is at the {LEVELS[current]}: the next rung is the "
                                    f"{LEVELS[current + 1]}, not the {LEVELS[min(rung, TOP_RUNG)]}")
        named = list(deadlines) if deadlines else [deadline]
        self.trigger_event(self.Escalated, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           deadline=named[0], deadlines=named, rung=current + 1, from_level=self.level,
                           to_level=LEVELS[current + 1], reason=reason)

    def mark_duplicate(self, *, occurred_at: datetime, actor: Actor, original_id: str, original_status: str,
                       command_id: str | None = None) -> None:
        """重复件: this report repeats an earlier ticket, which must itself be live or done —
        not cancelled and not a duplicate (so there are no chains and no cycles)."""
        self._check(occurred_at, command_id)
        if original_id == str(self.id):
            raise IllegalTransition("a ticket cannot duplicate itself")
        if original_status in ("cancelled", "duplicate"):
            raise DuplicateOfEnded(f"ticket {original_id} is {original_status}: mark this one a duplicate of "
                                   "the ticket that carries the work")
        self.trigger_event(self.MarkedDuplicate, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           original_id=original_id)

    def cancel(self, *, occurred_at: datetime, actor: Actor, reason: str, command_id: str | None = None) -> None:
        self._check(occurred_at, command_id)
        if not reason.strip():
            raise IllegalTransition("a cancellation needs a reason")
        self.trigger_event(self.Cancelled, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           reason=reason)

    def close(self, *, occurred_at: datetime, actor: Actor, note: str = "", override: str = "",
              command_id: str | None = None) -> None:
        """办结. After an unsatisfied or unresolved evaluation the loop says 返工 (reopen); closing
        anyway takes the centre's ``override`` reason, recorded in the event."""
        self._check(occurred_at, command_id)
        self._require("Closed", TicketNotEvaluated, "close")
        rework = needs_rework(self)  # type: ignore[arg-type]  # a ticket is a state by item
        if rework and not override.strip():
            raise ReworkRequired(f"ticket {self.id} was evaluated {self.satisfaction}"
                                 f"{'' if self.resolved is not False else ', unresolved'}: reopen it (返工), or "
                                 "close it with the centre's override and its reason")
        if override.strip() and not rework:
            raise IllegalTransition(f"ticket {self.id} was evaluated {self.satisfaction} and resolved: "
                                    "close it without an override")
        self.trigger_event(self.Closed, occurred_at=occurred_at, actor=actor, command_id=command_id, note=note,
                           override=override.strip() or None)

    def request_extension(self, *, occurred_at: datetime, actor: Actor, department: str, minutes: int, reason: str,
                          command_id: str | None = None, dispatch_no: int | None = None) -> None:
        """延期申请: the lead department asks for ``minutes`` more (in the dispatch's time basis)."""
        self._check(occurred_at, command_id)
        self._at_dispatch(dispatch_no)
        self._require("ExtensionRequested", TicketNotDispatched, "extend")
        if department != self.lead:
            raise NotLeadDepartment(f"only the lead department {self.lead} asks to extend ticket {self.id}")
        if self.extension is not None:
            raise ExtensionPending(f"{self.extension['department']} already asked to extend ticket {self.id}; "
                                   "the centre has not decided yet")
        if minutes <= 0 or not reason.strip():
            raise IllegalTransition("an extension needs a positive number of minutes and a reason")
        self.trigger_event(self.ExtensionRequested, occurred_at=occurred_at, actor=actor, command_id=command_id,
                           department=department, minutes=minutes, reason=reason)

    def decide_extension(self, *, occurred_at: datetime, actor: Actor, approve: bool, reason: str = "",
                         handle_due: datetime | None = None, feedback_due: datetime | None = None,
                         command_id: str | None = None) -> None:
        """The centre grants an extension (new handling and feedback deadlines) or refuses it."""
        self._check(occurred_at, command_id)
        if self.extension is None:
            raise NoExtensionPending(f"nobody asked to extend ticket {self.id}")
        self._require("ExtensionGranted", TicketNotDispatched, "extend")
        if approve:
            if handle_due is None or feedback_due is None:
                raise IllegalTransition("a granted extension needs its new deadlines")
            self.trigger_event(self.ExtensionGranted, occurred_at=occurred_at, actor=actor, command_id=command_id,
                               minutes=self.extension["minutes"], handle_due=handle_due, feedback_due=feedback_due,
                               reason=reason)
        else:
            if not reason.strip():
                raise IllegalTransition("refusing an extension needs a reason")
            self.trigger_event(self.ExtensionRefused, occurred_at=occurred_at, actor=actor, command_id=command_id,
                               reason=reason)

    def hold(self, *, occurred_at: datetime, actor: Actor, reason: str, command_id: str | None = None) -> None:
        """挂起: the centre stops the clocks (the work cannot go on for now)."""
        self._check(occurred_at, command_id)
        if self.held_since is not None:
            raise AlreadyOnHold(f"ticket {self.id} is on hold since {self.held_since.isoformat()}")
        if not reason.strip():
            raise IllegalTransition("a hold needs a reason")
        self.trigger_event(self.Held, occurred_at=occurred_at, actor=actor, command_id=command_id, reason=reason)

    def resume(self, *, occurred_at: datetime, actor: Actor, dues: dict[str, datetime], note: str = "",
               command_id: str | None = None) -> None:
        """恢复: the clocks run again; ``dues`` are the open deadlines moved by the time held."""
        self._check(occurred_at, command_id)
        if self.held_since is None:
            raise NotOnHold(f"ticket {self.id} is not on hold")
        self.trigger_event(self.Resumed, occurred_at=occurred_at, actor=actor, command_id=command_id, dues=dues,
                           note=note)

    # ------------------------------------------------------------------ events
    # Each class declares one event's fields, in the order they are stored; ``Event.apply`` folds it
    # (``dispatch.domain.lifecycle``). Triggered directly, not through ``@event`` methods: eventsourcing's
    # decorator sorts a call's arguments to the method's signature twice (when the event is made
    # and when it is applied), about half of what an event cost the engine.
    class Accepted(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        note: str

    class ClosedAtFirstContact(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        mode: str
        note: str

    class Dispatched(Event):
        """v2 added ``provisional`` (a working-time deadline in a year the holiday table does not cover)."""

        class_version = 2
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        dispatch_no: int
        lead: str
        cooperating: list[str]
        calls: list[dict[str, Any]]
        handle_due: datetime
        feedback_due: datetime
        time_basis: str
        escalate_every_minutes: int
        provisional: bool
        calendar: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_dispatched_v1_v2(state)

    class Redispatched(Dispatched):
        """v2 added ``provisional``, as ``Dispatched``."""

        class_version = 2
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_dispatched_v1_v2(state)

    class Acknowledged(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        call_id: str
        department: str

    class Rejected(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        call_id: str
        department: str
        reason: str

    class Handled(Event):
        """v2 names the call it answers (``call_id``); a v1 event's call is worked out by the fold."""

        class_version = 2
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        department: str
        result: str
        call_id: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_handled_v1_v2(state)

    class FeedbackGiven(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        message: str
        contacted: bool

    class Evaluated(Event):
        """v2 added ``method`` (see ``dispatch.domain.upcasting``); stored v1 events are upcast on read."""

        class_version = 2
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        satisfaction: str
        resolved: bool
        contacted: bool
        comment: str
        method: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_evaluated_v1_v2(state)

    class Reopened(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        reason: str

    class Escalated(Event):
        """v2 names every missed deadline that caused it (``deadlines``)."""

        class_version = 2
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        deadline: str
        deadlines: list[str]
        rung: int
        from_level: str
        to_level: str
        reason: str

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_escalated_v1_v2(state)

    class MarkedDuplicate(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        original_id: str

    class Cancelled(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        reason: str

    class Closed(Event):
        """v2 added ``override``: the centre's reason for closing without the rework the
        evaluation asked for (None: an ordinary close)."""

        class_version = 2
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        note: str
        override: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            upcast_closed_v1_v2(state)

    class ExtensionRequested(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        department: str
        minutes: int
        reason: str

    class ExtensionGranted(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        minutes: int
        handle_due: datetime
        feedback_due: datetime
        reason: str

    class ExtensionRefused(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        reason: str

    class Held(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        reason: str

    class Resumed(Event):
        occurred_at: datetime
        actor: Actor
        command_id: str | None
        dues: dict[str, datetime]
        note: str
