"""What goes on the wire besides the intake commands themselves (docs/wire-format.md).

- intake: the key of a command (``intake_key``), so one ticket's commands share a partition;
- whistle: one message per call of a (re)dispatch, and one per answer, keyed by department;
- dead letters: the original key, value and headers, plus ``dispatch.*`` headers saying
  where the message came from and why it was refused (``DeadLetter``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from dispatch.aggregates import ticket_id_for
from dispatch.domain.lifecycle import call_id_for, call_state

__all__ = [
    "DEAD_LETTER_HEADERS",
    "DeadLetter",
    "intake_key",
    "whistle_from_json",
    "whistle_messages",
]

DEAD_LETTER_HEADERS = (
    "dispatch.error.code",
    "dispatch.error.message",
    "dispatch.source.topic",
    "dispatch.source.partition",
    "dispatch.source.offset",
    "dispatch.source.timestamp",
)
_MESSAGE_LIMIT = 2000


def intake_key(command: Any) -> bytes:
    """The recommended intake key: the ticket id. A report has none yet; its key is the
    id it *will* get (uuid5, from its external_ref or command_id: ``ticket_id_for``), so
    the report and every later command of the ticket share one partition and keep order."""
    ticket_id = getattr(command, "ticket_id", None)
    if ticket_id is None:
        if not (command.external_ref or command.command_id):
            raise ValueError("a report needs an external_ref or a command_id to have a stable key")
        ticket_id = ticket_id_for(
            external_ref=command.external_ref, channel=command.channel, command_id=command.command_id
        )
    return str(ticket_id).encode()


@dataclass(frozen=True)
class DeadLetter:
    """A refused message: its original bytes, where it came from, and why."""

    code: str  # the error's machine-readable code: invalid_command, unknown_grid, oversized, …
    message: str
    topic: str
    partition: int
    offset: int
    timestamp: int | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    ticket_id: str | None = field(default=None, compare=False)  # for log lines only; not on the wire

    @classmethod
    def of(cls, record: Any, code: str, message: str, *, ticket_id: Any = None) -> DeadLetter:
        """From a kafka-python ``ConsumerRecord``; ``ticket_id`` defaults to the record's key."""
        if ticket_id is None and record.key:
            ticket_id = record.key.decode(errors="replace") if isinstance(record.key, bytes) else record.key
        return cls(
            ticket_id=None if ticket_id is None else str(ticket_id),
            code=code,
            message=message,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((k, v) for k, v in (record.headers or []) if not k.startswith("dispatch.")),
        )

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        ours = [
            ("dispatch.error.code", self.code),
            ("dispatch.error.message", self.message[:_MESSAGE_LIMIT]),
            ("dispatch.source.topic", self.topic),
            ("dispatch.source.partition", str(self.partition)),
            ("dispatch.source.offset", str(self.offset)),
            ("dispatch.source.timestamp", "" if self.timestamp is None else str(self.timestamp)),
        ]
        return [*self.headers, *((k, v.encode()) for k, v in ours)]

    @classmethod
    def from_record(cls, record: Any) -> DeadLetter:
        """Read one message of the dead-letter topic back."""
        ours = {k: v.decode() for k, v in (record.headers or []) if k.startswith("dispatch.")}
        others = tuple((k, v) for k, v in (record.headers or []) if not k.startswith("dispatch."))
        stamp = ours.get("dispatch.source.timestamp", "")
        return cls(
            code=ours.get("dispatch.error.code", "unknown"),
            message=ours.get("dispatch.error.message", ""),
            topic=ours.get("dispatch.source.topic", ""),
            partition=int(ours.get("dispatch.source.partition", -1)),
            offset=int(ours.get("dispatch.source.offset", -1)),
            timestamp=int(stamp) if stamp else None,
            key=record.key,
            value=record.value,
            headers=others,
        )


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class StoredEvent(Protocol):
    """What the whistle needs of a stored ticket event (``dispatch.projections.EventRecord`` is one)."""

    @property
    def ticket_id(self) -> UUID: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> dict[str, Any]: ...


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def whistle_messages(record: StoredEvent, summary: dict[str, Any] | None = None,
                     state: Any = None) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs for the whistle topic: a call per department of a (re)dispatch,
    an answer per acknowledgement, rejection or handling, a closed-out answer per open call of an
    ended ticket, new due times per open call when deadlines move. Other events: none.

    ``state``: the ticket's lifecycle state after the event (``dispatch.domain.lifecycle.fold``);
    with it, each message says where its call now stands on the department's desk."""
    d = record.data
    base = {"ticket_id": str(record.ticket_id), "version": record.version}
    out: list[dict[str, Any]] = []
    if record.type in ("Dispatched", "Redispatched"):
        for call in d["calls"]:
            out.append(base | {
                "kind": "call",
                "call_id": call["call_id"],
                "department": call["department"],
                "role": call["role"],
                "dispatch_no": d["dispatch_no"],
                "lead": d["lead"],
                "dispatched_at": _iso(d["occurred_at"]),
                "ack_due": _iso(call["ack_due"]),
                "handle_due": _iso(d["handle_due"]),
                "time_basis": d["time_basis"],
                "ticket": summary or {},
                "state": call_state(call["role"], None),
            })
    elif record.type in ("Acknowledged", "Rejected", "Handled"):
        answer = {"Acknowledged": "acknowledged", "Rejected": "rejected", "Handled": "handled"}[record.type]
        body = base | {"kind": "answer", "department": d["department"], "answer": answer,
                       "answered_at": _iso(d["occurred_at"])}
        if d.get("call_id"):
            body["call_id"] = d["call_id"]
        if state is not None:
            handled = answer == "handled"
            call = state["calls"].get(d.get("call_id") or call_id_for(state["dispatch_no"], d["department"]))
            role = call["role"] if call else ("lead" if d["department"] == state["lead"] else "cooperating")
            body["state"] = call_state(role, None if handled else answer, handled=handled)
        out.append(body)
    elif record.type in ("ExtensionGranted", "Resumed") and state is not None:
        # deadlines moved (延期 granted, or the clocks resumed after a hold): each desk still
        # holding a call of the current dispatch hears its new due times
        for call in state["calls"].values():
            if call["answer"] is None or (call["role"] == "lead" and not state["handled_by"]):
                body = base | {"kind": "deadline", "department": call["department"], "call_id": call["call_id"],
                               "ack_due": _iso(call["ack_due"])}
                if call["role"] == "lead" and state["handle_due"] is not None:
                    body["handle_due"] = _iso(state["handle_due"])
                out.append(body)
    elif record.type in _ENDINGS and state is not None:
        # the ticket ended: every call still on a desk is closed out and leaves it
        for call in state["calls"].values():
            open_ = call["answer"] is None or (call["role"] == "lead" and call["answer"] == "acknowledged"
                                               and not state["handled_by"])
            if open_:
                out.append(base | {"kind": "answer", "department": call["department"], "call_id": call["call_id"],
                                   "answer": "closed_out", "answered_at": _iso(d["occurred_at"]),
                                   "state": call_state(call["role"], "closed_out")})
    return [(m["department"].encode(), _json(m)) for m in out]


_ENDINGS = ("Closed", "Cancelled", "MarkedDuplicate", "ClosedAtFirstContact")


def whistle_from_json(raw: bytes | str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(raw)
    for key in ("dispatched_at", "ack_due", "handle_due", "answered_at"):
        if isinstance(body.get(key), str):
            body[key] = datetime.fromisoformat(body[key])
    body["ticket_id"] = UUID(body["ticket_id"])
    return body
