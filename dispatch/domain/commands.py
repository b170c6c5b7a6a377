"""Commands: what field apps, the hotline, departments and the grid centre ask for.

These models *are* the intake wire format (one JSON object per Kafka message,
``type`` says which command). The CLI builds the same objects, so there is one
path from any entry point into the aggregates. ``schemas/`` holds their JSON
Schema, generated from these models by ``dispatch schemas``.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Literal, Union
from uuid import UUID

import orjson
from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError

from dispatch.domain.case_number import CASE_NO
from dispatch.domain.errors import InvalidCommand
from dispatch.domain.lifecycle import FirstContactMode, Satisfaction

__all__ = [
    "CHANNELS",
    "ROLES",
    "Accept",
    "Acknowledge",
    "Actor",
    "Cancel",
    "Close",
    "Command",
    "DecideExtension",
    "Hold",
    "RequestExtension",
    "Resume",
    "TicketRef",
    "Dispatch",
    "Escalate",
    "Evaluate",
    "Feedback",
    "FirstContact",
    "Handle",
    "MarkDuplicate",
    "Reject",
    "Reopen",
    "Report",
    "command_json_schema",
    "parse_command",
]

ROLES = ("supervisor", "hotline", "resident", "centre", "department", "system", "analyst")
CHANNELS = ("patrol", "video", "hotline", "online", "visit", "media", "third_party")
# Ids and names: no control characters at all. Free text: line breaks and tabs, no other
# control character (an escape sequence in a description would drive a terminal).
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Text = Annotated[str, Field(max_length=4000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]
Key = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Only ISO-8601 text is a time on the wire (pydantic alone would read "1700000000" as an epoch)."""
    if isinstance(value, str):
        try:
            if not _ISO.match(value):
                raise ValueError
            return datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("give an ISO-8601 time with its UTC offset, e.g. 2026-11-20T09:30:00+08:00") from None
    return value


BusinessTime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)  # schemas built on first use


class Actor(BaseModel):
    """Who did it: a role, a person or system id, and where they act from."""

    model_config = _STRICT
    role: Literal["supervisor", "hotline", "resident", "centre", "department", "system", "analyst"]
    id: Name
    department: str | None = None
    grid: str | None = None
    on_behalf: Annotated[bool | None, Field(description="a report taken outside the reporter's own grids (代行受理)")] = None
    received_at: Annotated[str | None, Field(
        max_length=40, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$",
        description="when a door (the HTTP API, the CLI) received the step, ISO-8601 with offset: recorded "
                    "beside the business time; the engine logs the outcome of such commands")] = None

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class _Command(BaseModel):
    """Strict, as the published schema is: no type is coerced (``"resolved": "yes"`` or ``1``
    is refused, an epoch number is no time), so the engine accepts exactly what the schema does."""

    model_config = _STRICT
    command_id: Key | None = None
    occurred_at: BusinessTime = Field(description="business time the step happened, ISO-8601 with offset")
    actor: Actor


# A ticket is named by its id or by its case number (工单编号, ``dispatch.adapters.case_register``).
CaseNumber = Annotated[str, Field(pattern=CASE_NO, description="a case number, e.g. XINQI-20261012-00042")]
TicketRef = Union[UUID, CaseNumber]


class _OnTicket(_Command):
    ticket_id: TicketRef


class Reporter(BaseModel):
    """Who to call back (回访): personal data, sealed before it is stored (``dispatch.adapters.vault``)
    and shown in full only to the roles that call back."""

    model_config = _STRICT
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")] | None = None
    phone: Annotated[str, Field(max_length=30, pattern=r"^\+?[0-9][0-9 -]{4,28}$")] | None = None
    email: Annotated[str, Field(max_length=200, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None


class Position(BaseModel):
    """Where a report was made: latitude and longitude in the system it was given in (``WGS84``,
    a phone's GPS; ``GCJ02``, a Chinese web map), and the accuracy in metres the phone gave."""

    model_config = _STRICT
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    crs: Literal["WGS84", "GCJ02"] = "WGS84"
    accuracy: Annotated[float, Field(ge=0, le=100_000)] | None = None


class Report(_Command):
    """上报: an incident in a grid. ``external_ref`` (e.g. a 12345 case number) makes
    a resubmitted report reach the same ticket."""

    type: Literal["report"] = "report"
    grid: Name
    category: Name
    priority: Name = "normal"
    channel: Literal["patrol", "video", "hotline", "online", "visit", "media", "third_party"]
    description: Text
    location: Text | None = None
    position: Position | None = Field(default=None, description="where it was reported (the grid must hold it)")
    external_ref: Key | None = None
    reporter: Reporter | None = None
    media: Annotated[list[Annotated[str, Field(min_length=1, max_length=500,
                                               pattern=r"^(file:[0-9a-f]{64}\.jpg|https?://[^\s]+)$")]],
                     Field(max_length=10, description="photos: file:<sha256>.jpg (stored by dispatch web) "
                                                     "or an http(s) URL (Open311 media_url)")] | None = None


class Accept(_OnTicket):
    type: Literal["accept"] = "accept"
    note: Text = ""


class FirstContact(_OnTicket):
    """首问接待: closed by whoever first received it, in one of the five ways."""

    type: Literal["first_contact"] = "first_contact"
    mode: FirstContactMode
    note: Text = ""


class Dispatch(_OnTicket):
    """吹哨: a lead department and cooperating ones. Omit ``lead`` to route by category."""

    type: Literal["dispatch"] = "dispatch"
    lead: Name | None = None
    cooperating: list[Name] | None = None
    reason: Text = ""


DispatchNo = Annotated[int, Field(ge=1, le=10_000, description=(
    "the dispatch (吹哨) this answers: the n of the call's call_id \"<n>:<department>\". Optional; when given, "
    "an answer to a dispatch a later one replaced is refused, and one to a dispatch not yet applied waits for it "
    "(the Kafka engine parks it) or is refused (other doors)"))]


class Acknowledge(_OnTicket):
    """报到: a department reports in on its call."""

    type: Literal["acknowledge"] = "acknowledge"
    department: Name
    dispatch_no: DispatchNo | None = None


class Reject(_OnTicket):
    """退单: not this department's responsibility."""

    type: Literal["reject"] = "reject"
    department: Name
    dispatch_no: DispatchNo | None = None
    reason: Annotated[str, Field(min_length=1, max_length=4000,
                                 pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]


class Handle(_OnTicket):
    type: Literal["handle"] = "handle"
    department: Name
    dispatch_no: DispatchNo | None = None
    result: Text = ""


class Feedback(_OnTicket):
    type: Literal["feedback"] = "feedback"
    message: Text = ""
    contacted: bool = True


class Evaluate(_OnTicket):
    type: Literal["evaluate"] = "evaluate"
    satisfaction: Satisfaction
    resolved: bool
    contacted: bool = True
    comment: Text = ""
    method: Literal["callback", "sms", "online", "in_person"] = Field(
        "callback", description="how the verdict was collected: hotline call-back, SMS, online, in person")


class Reopen(_OnTicket):
    type: Literal["reopen"] = "reopen"
    reason: Text = ""


class Escalate(_OnTicket):
    """督办: the ticket one rung up. The watchdog names the missed deadlines and the rung."""

    type: Literal["escalate"] = "escalate"
    deadline: Key = "manual"
    deadlines: Annotated[list[Key], Field(min_length=1, max_length=50)] | None = None
    rung: Annotated[int, Field(ge=1, le=3)] | None = None
    reason: Text = ""


class MarkDuplicate(_OnTicket):
    type: Literal["mark_duplicate"] = "mark_duplicate"
    original_id: TicketRef


_Reason = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]


class RequestExtension(_OnTicket):
    """延期申请: the lead department asks for more time to handle, in the dispatch's time basis."""

    type: Literal["request_extension"] = "request_extension"
    department: Name
    dispatch_no: DispatchNo | None = None
    minutes: Annotated[int, Field(ge=1, le=366 * 24 * 60)]
    reason: _Reason


class DecideExtension(_OnTicket):
    """The centre grants (new handling and feedback deadlines) or refuses (with a reason) an extension."""

    type: Literal["decide_extension"] = "decide_extension"
    approve: bool
    reason: Text = ""


class Hold(_OnTicket):
    """挂起: the centre stops the ticket's clocks (the work cannot go on for now)."""

    type: Literal["hold"] = "hold"
    reason: _Reason


class Resume(_OnTicket):
    """恢复: the clocks run again; every deadline still open moves by the time held."""

    type: Literal["resume"] = "resume"
    note: Text = ""


class Cancel(_OnTicket):
    type: Literal["cancel"] = "cancel"
    reason: Annotated[str, Field(min_length=1, max_length=4000,
                                 pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$")]


class Close(_OnTicket):
    """办结. ``override``: the centre's reason to close a result the reporter found unsatisfactory
    or unresolved without the rework (返工) the loop asks for."""

    type: Literal["close"] = "close"
    note: Text = ""
    override: Text = ""


Command = Annotated[
    Union[
        Report, Accept, FirstContact, Dispatch, Acknowledge, Reject, Handle,
        Feedback, Evaluate, Reopen, Escalate, MarkDuplicate, Cancel, Close, RequestExtension, DecideExtension,
        Hold, Resume,
    ],
    Field(discriminator="type"),
]


_BUILDING = threading.Lock()


@cache
def _adapter() -> TypeAdapter[Any]:
    """Built on first use (a CLI command that only reads never pays for it), once: a web
    process's first concurrent requests wait for one build rather than each making its own."""
    with _BUILDING:
        return _built()


@cache
def _built() -> TypeAdapter[Any]:
    return TypeAdapter(Command)


def _describe(error: ValidationError) -> str:
    problems = []
    for e in error.errors()[:3]:
        where = ".".join(str(p) for p in e["loc"] if not isinstance(p, str) or p not in _TYPES) or "message"
        message = "contains a control character (a line break in an id, an escape sequence, …)" \
            if e["type"] == "string_pattern_mismatch" else e["msg"]
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


_TYPES = {"report", "accept", "first_contact", "dispatch", "acknowledge", "reject", "handle", "feedback",
          "evaluate", "reopen", "escalate", "mark_duplicate", "cancel", "close", "request_extension",
          "decide_extension", "hold", "resume"}


def parse_command(data: bytes | str | dict[str, Any]) -> Any:
    """Validate one command (a JSON document or a dict). Raises ``InvalidCommand``.

    A dict is validated as the JSON it stands for (times and ids as their JSON text), so
    every door — CLI, Kafka intake, HTTP — goes through the same strict JSON rules."""
    try:
        if isinstance(data, dict):
            try:
                data = orjson.dumps(data)
            except TypeError as error:
                raise InvalidCommand(f"message: not JSON data ({error})") from None
        return _adapter().validate_json(data)
    except ValidationError as e:
        raise InvalidCommand(_describe(e)) from None


def command_json_schema() -> dict[str, Any]:
    schema = _adapter().json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dispatch intake command"
    return schema


def command_to_json(command: Any) -> bytes:
    return json.dumps(command.model_dump(mode="json", exclude_none=True), ensure_ascii=False).encode()
