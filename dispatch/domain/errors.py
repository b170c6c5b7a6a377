"""The exception tree. Every error a user can cause is a ``DispatchError``.

    DispatchError                 a user-caused problem: one clear line, exit 1
    ├── ReferenceDataError        a reference file is malformed (file, path, problem)
    ├── UnknownReference          no such grid / department / category / …
    │   ├── UnknownGrid, UnknownCommunity, UnknownStreet, UnknownDistrict
    │   ├── UnknownDepartment, UnknownCategory, UnknownPriority
    ├── TicketNotFound            no ticket with that id
    │   └── HiddenTicket          one the identity may not see: answered as TicketNotFound
    ├── InvalidCommand            a command's fields are missing or mistyped
    ├── DuplicateCommand          a command id seen before: no second effect
    ├── AlreadyReported           the same outside reference (e.g. 12345 case) again
    ├── ConcurrentChange          another process changed the ticket meanwhile; retry
    ├── BusinessTimeOutOfRange    a business time outside the accepted window
    ├── DatabaseError             the database cannot be used as asked
    │   ├── DatabaseNotFound      no such database (only init and demo create one)
    │   ├── NotADispatchDatabase  the file or database belongs to something else
    │   ├── DatabaseNeedsUpgrade  made by an older dispatch: ``dispatch upgrade``
    │   ├── DatabaseUnavailable   cannot be opened or reached (path, host, reason)
    │   └── UnsafeTarget          a write that would overwrite or mix with data it did not make
    ├── Refused                   the engine refused a command (Kafka mode): carries its code
    ├── WouldOrphanTickets        a reference change would remove places/departments in use
    ├── Unauthenticated           no valid sign-in: a missing, wrong, expired or revoked token
    │   └── AccountLocked         too many failed sign-ins in a row: wait
    ├── Forbidden                 signed in, but this role or scope may not do that
    │   └── BackfillNotAllowed    only an admin may set a business time
    ├── UnknownUser               no such user or token
    ├── UserExists                a user of that name exists already
    ├── CommandNotFound           no outcome of that command id (Kafka mode status URL)
    ├── PositionOutsideGrids      a report's position lies in no grid
    ├── NotWaitingToBePlaced      no report waits under that token (placed already, or none)
    └── TransitionError           the lifecycle refuses this step; nothing recorded
        ├── TicketClosed          anything after Closed / Cancelled / Duplicate
        ├── IllegalTransition     the step is not allowed in the ticket's state
        │   ├── TicketNotDispatched, TicketNotHandled, FeedbackNotGiven, …
        ├── NotYourWhistle        a department acting on a call that is not its own
        ├── CallAlreadyAnswered   a second acknowledge / reject of the same call
        ├── NotLeadDepartment     only the lead department may record the handling
        ├── AlreadyEscalated      this rung was already reached for this deadline
        ├── TopOfLadder           nothing above the district
        ├── ReworkRequired        closing an unsatisfied/unresolved result without a centre override
        ├── ReopenNeedsReason     reopening a satisfied, resolved result without a centre reason
        ├── DuplicateOfEnded      a duplicate of a cancelled or duplicate ticket (no chains, no cycles)
        ├── ExtensionPending      a second extension request while one awaits the centre
        ├── NoExtensionPending    deciding an extension nobody asked for
        ├── AlreadyOnHold, NotOnHold   hold twice, resume what is not held
        └── TimeGoesBackwards     a business time earlier than the ticket's last event

Each error's ``code`` is a stable machine-readable name (used in ``--json`` output
and in dead-letter reasons); ``docs/errors.md`` is the catalogue of every code, and a
unit test keeps it complete.
"""

from __future__ import annotations

__all__ = [
    "AccountLocked",
    "AlreadyEscalated",
    "AlreadyOnHold",
    "DuplicateOfEnded",
    "ExtensionPending",
    "NoExtensionPending",
    "NotOnHold",
    "ReopenNeedsReason",
    "ReworkRequired",
    "BackfillNotAllowed",
    "FeedbackNotGiven",
    "Forbidden",
    "HiddenTicket",
    "Unauthenticated",
    "UnknownUser",
    "UserExists",
    "BusinessTimeOutOfRange",
    "DatabaseError",
    "DatabaseNeedsUpgrade",
    "DatabaseNotFound",
    "DatabaseUnavailable",
    "NotADispatchDatabase",
    "UnsafeTarget",
    "WouldOrphanTickets",
    "AlreadyReported",
    "CallAlreadyAnswered",
    "ConcurrentChange",
    "CommandNotFound",
    "PositionOutsideGrids",
    "DispatchError",
    "Refused",
    "error_class",
    "DuplicateCommand",
    "IllegalTransition",
    "InvalidCommand",
    "NotLeadDepartment",
    "NotWaitingToBePlaced",
    "NotYourWhistle",
    "ReferenceDataError",
    "TicketClosed",
    "TicketNotDispatched",
    "TicketNotEvaluated",
    "TicketNotFound",
    "TicketNotHandled",
    "TimeGoesBackwards",
    "TopOfLadder",
    "TransitionError",
    "UnknownCategory",
    "UnknownCommunity",
    "UnknownDepartment",
    "UnknownDistrict",
    "UnknownGrid",
    "UnknownPriority",
    "UnknownReference",
    "UnknownStreet",
]


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


class DispatchError(Exception):
    """A problem the user caused. ``str(error)`` is one readable line; ``words`` are what a
    translation of it may name (``dispatch.domain.messages``: the time a lock ends, what was wrong)."""

    words: dict[str, object] = {}

    def saying(self, **words: object) -> DispatchError:
        """This error, carrying ``words`` for its translations; returns itself (``raise e.saying(…)``)."""
        self.words = {**self.words, **words}
        return self

    @property
    def code(self) -> str:
        return _snake(type(self).__name__)


def error_class(code: str) -> type[DispatchError] | None:
    """The error class whose code is ``code`` (None for a code of the wire alone)."""
    stack: list[type[DispatchError]] = [DispatchError]
    while stack:
        cls = stack.pop()
        if _snake(cls.__name__) == code:
            return cls
        stack.extend(cls.__subclasses__())
    return None


class Refused(DispatchError):
    """A command the engine refused (Kafka mode), as the command log recorded it: its code is
    the refusal's own (``kind`` is that code's class, when there is one)."""

    def __init__(self, message: str, refusal_code: str | None = None):
        self.refusal_code = refusal_code
        self.kind = error_class(refusal_code) if refusal_code else None
        super().__init__(message)

    @property
    def code(self) -> str:
        return self.refusal_code or "refused"


class ReferenceDataError(DispatchError):
    """A reference-data file is malformed: names the file, the path inside it, the problem."""

    limit: str | None = None  # the size limit it hit, if that was the problem ("depth", "grids", …)

    def __init__(self, file: str, path: str, problem: str):
        self.file, self.path, self.problem = file, path, problem
        where = f"{file}: {path}" if path else file
        super().__init__(f"{where}: {problem}")


class UnknownReference(DispatchError):
    kind = "reference"

    def __init__(self, key: str, detail: str = ""):
        self.key = key
        super().__init__(f"unknown {self.kind}: {key!r}" + (f" ({detail})" if detail else ""))


class UnknownGrid(UnknownReference):
    kind = "grid"


class UnknownCommunity(UnknownReference):
    kind = "community"


class UnknownStreet(UnknownReference):
    kind = "street"


class UnknownDistrict(UnknownReference):
    kind = "district"


class UnknownDepartment(UnknownReference):
    kind = "department"


class UnknownCategory(UnknownReference):
    kind = "category"


class UnknownPriority(UnknownReference):
    kind = "priority"


class TicketNotFound(DispatchError):
    def __init__(self, ticket_id: object):
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {ticket_id}")


class HiddenTicket(TicketNotFound):
    """A ticket the identity may not see: said exactly as one that does not exist (its code is
    ``ticket_not_found``, its sentence the same), so nobody learns what exists outside their
    scope; the refusal is still audited as a forbidden attempt."""

    @property
    def code(self) -> str:
        return "ticket_not_found"


class InvalidCommand(DispatchError):
    """A command is malformed: a missing or mistyped field, a bad time, an unknown type."""


class DuplicateCommand(DispatchError):
    """A command id that was already applied; it has no second effect."""


class AlreadyReported(DispatchError):
    """The same outside reference was reported before; ``ticket_id`` is that ticket."""

    def __init__(self, ticket_id: object, external_ref: str):
        self.ticket_id, self.external_ref = ticket_id, external_ref
        super().__init__(f"{external_ref} was already reported as ticket {ticket_id}")


class ConcurrentChange(DispatchError):
    """Another process recorded events for the same ticket first; nothing was recorded."""


class BusinessTimeOutOfRange(DispatchError):
    """A business time before the earliest accepted instant or too far past the runtime's clock."""


class DatabaseError(DispatchError):
    """The database cannot be used as asked; the message names it."""


class DatabaseNotFound(DatabaseError):
    pass


class NotADispatchDatabase(DatabaseError):
    pass


class DatabaseNeedsUpgrade(DatabaseError):
    pass


class DatabaseUnavailable(DatabaseError):
    pass


class UnsafeTarget(DatabaseError):
    pass


class WouldOrphanTickets(DispatchError):
    """A new reference file lacks places, departments, categories or priorities that
    recorded tickets use; ``removed`` lists them."""

    def __init__(self, message: str, removed: dict[str, list[str]]):
        self.removed = removed
        super().__init__(message)


class Unauthenticated(DispatchError):
    """No valid sign-in. The sentence never says which part was wrong (user, password, token)."""


class AccountLocked(Unauthenticated):
    pass


class Forbidden(DispatchError):
    """The identity is known, but its role or scope does not allow this."""


class BackfillNotAllowed(Forbidden):
    pass


class ForgedDepartment(Forbidden):
    """A message on a department's own answers topic that claims another department or role."""


class ForgedActor(Forbidden):
    """A message on a writer's own intake (the hotline's, the watchdog's) claiming what that writer may not."""


class NotAnAnswer(Forbidden):
    """A message on a department's answers topic that is not one of a department's answers."""


class UnknownUser(DispatchError):
    pass


class PositionOutsideGrids(DispatchError):
    """A position no grid boundary holds (or no boundaries are configured)."""


class NotWaitingToBePlaced(DispatchError):
    """No report waits to be placed (待定位) under that token: placed already, or never sent."""


class CommandNotFound(DispatchError):
    pass


class UserExists(DispatchError):
    pass


class TransitionError(DispatchError):
    """The ticket's lifecycle refuses this step. Nothing was recorded."""


class TicketClosed(TransitionError):
    pass


class IllegalTransition(TransitionError):
    pass


class TicketNotDispatched(IllegalTransition):
    pass


class TicketNotHandled(IllegalTransition):
    pass


class TicketNotEvaluated(IllegalTransition):
    pass


class FeedbackNotGiven(IllegalTransition):
    """Evaluating a handled ticket whose result nobody has fed back to the reporter yet (反馈 first)."""


class NotYourWhistle(TransitionError):
    pass


class CallAlreadyAnswered(TransitionError):
    pass


class AwaitingDispatch(TransitionError):
    """An answer to a dispatch (吹哨) the ticket has not reached yet. The Kafka engine parks it
    until the ticket reaches that dispatch (``dispatch.service.parking``); any other door refuses it."""


class CallReplaced(TransitionError):
    """An answer to a dispatch a later one has replaced: its call is no longer open."""


class ParkingFull(DispatchError):
    """Too many answers already wait for their dispatch (per ticket, or in all)."""


class Oversized(DispatchError):
    """A message over the engine's size limit."""


class NotLeadDepartment(TransitionError):
    pass


class AlreadyEscalated(TransitionError):
    pass


class TopOfLadder(TransitionError):
    pass


class ReworkRequired(IllegalTransition):
    pass


class ReopenNeedsReason(IllegalTransition):
    pass


class DuplicateOfEnded(IllegalTransition):
    pass


class ExtensionPending(IllegalTransition):
    pass


class NoExtensionPending(IllegalTransition):
    pass


class AlreadyOnHold(IllegalTransition):
    pass


class NotOnHold(IllegalTransition):
    pass


class TimeGoesBackwards(TransitionError):
    pass
