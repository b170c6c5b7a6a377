"""Apply ticket events to the fact tables: one transaction per batch, position included.

``apply_records`` is the one entry point for live catch-up, the Kafka consumer and a
rebuild. Per batch it reads the touched tickets once, folds the events in memory and
writes each table once (executemany); the source position is upserted first in the
same transaction, which also serialises concurrent writers. A record whose
``(ticket_id, version)`` is not newer than the ticket's ``last_version`` is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, text

from dispatch.ladder import LEVELS
from dispatch.projections import tables as t
from dispatch.projections.records import EventRecord
from dispatch.projections.writer import load_tickets, write_batch

__all__ = ["apply_records", "stored_position"]

log = structlog.get_logger("dispatch.projections")


class _Batch:
    """In-memory state of one batch: touched tickets and the rows to write."""

    def __init__(self, known: dict[str, dict[str, Any]]):
        self.tickets = known  # ticket_id -> row dict (existing ones loaded from the table)
        self.new_ids: set[str] = set()
        self.dirty: set[str] = set()
        self.states: list[dict[str, Any]] = []
        self.calls: dict[tuple[str, str], dict[str, Any]] = {}  # new calls of this batch
        self.call_updates: dict[str, list[dict[str, Any]]] = {"answer": [], "handled": [], "superseded": []}
        self.evaluations: dict[tuple[str, int], dict[str, Any]] = {}
        self.reopened: list[dict[str, Any]] = []
        self.escalations: list[dict[str, Any]] = []
        self.reopens: list[dict[str, Any]] = []

    def set_status(self, row: dict[str, Any], r: EventRecord, status: str) -> None:
        if row["status"] != status:
            row["status"] = status
            self.states.append({"ticket_id": row["ticket_id"], "version": r.version,
                                "at": r.occurred_at, "state": status})

    def call(self, tid: str, call_id: str, kind: str, **values: Any) -> None:
        new = self.calls.get((tid, call_id))
        if new is not None:
            new.update(values)
        else:
            self.call_updates[kind].append({"b_tid": tid, "b_cid": call_id, **values})


def _reported(b: _Batch, r: EventRecord, tid: str) -> None:
    d = r.data
    row = {"ticket_id": tid, "status": "", "grid": d["grid"], "community": d["community"],
           "street": d["street"], "district": d["district"], "category": d["category"],
           "priority": d["priority"], "channel": d["channel"], "description": d.get("description") or "",
           "external_ref": d.get("external_ref"), "reported_at": r.occurred_at, "closed_at": None,
           "last_at": r.occurred_at, "level": LEVELS[0], "last_version": 0, "dispatch_no": 0, "lead": None,
           "handled_by": None, "time_basis": None, "satisfaction": None, "last_eval_version": None}
    b.tickets[tid] = row
    b.new_ids.add(tid)
    b.set_status(row, r, "reported")


def _dispatched(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    d, tid = r.data, row["ticket_id"]
    previous = row["dispatch_no"]
    if previous:
        for key, call in b.calls.items():
            if key[0] == tid and call["dispatch_no"] == previous and call["superseded_at"] is None:
                call["superseded_at"] = r.occurred_at
        b.call_updates["superseded"].append({"b_tid": tid, "b_no": previous, "superseded_at": r.occurred_at})
    for c in d["calls"]:
        lead = c["role"] == "lead"
        b.calls[(tid, c["call_id"])] = {
            "ticket_id": tid, "call_id": c["call_id"], "dispatch_no": d["dispatch_no"],
            "department": c["department"], "role": c["role"], "dispatched_at": r.occurred_at,
            "ack_due": c["ack_due"], "answer": None, "answered_at": None,
            "handle_due": d["handle_due"] if lead else None, "feedback_due": d["feedback_due"] if lead else None,
            "handled_at": None, "superseded_at": None, "time_basis": d["time_basis"],
            "escalate_every_minutes": d["escalate_every_minutes"]}
    row.update(dispatch_no=d["dispatch_no"], lead=d["lead"], handled_by=None, time_basis=d["time_basis"])
    b.set_status(row, r, "dispatched")


def _answered(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    d = r.data
    answer = "acknowledged" if r.type == "Acknowledged" else "rejected"
    b.call(row["ticket_id"], d["call_id"], "answer", answer=answer, answered_at=r.occurred_at)
    if d["department"] == row["lead"]:
        b.set_status(row, r, "in_progress" if answer == "acknowledged" else "awaiting_redispatch")


def _handled(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    dept = r.data["department"]
    b.call(row["ticket_id"], f"{row['dispatch_no']}:{dept}", "handled", handled_at=r.occurred_at)
    row["handled_by"] = dept
    b.set_status(row, r, "handled")


def _evaluated(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    d = r.data
    b.evaluations[(row["ticket_id"], r.version)] = {
        "ticket_id": row["ticket_id"], "version": r.version, "at": r.occurred_at,
        "satisfaction": d["satisfaction"], "resolved": bool(d["resolved"]), "contacted": bool(d["contacted"]),
        "department": row["handled_by"] or row["lead"], "reopened_at": None}
    row.update(satisfaction=d["satisfaction"], last_eval_version=r.version)
    b.set_status(row, r, "evaluated")


def _reopened(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    tid, ev = row["ticket_id"], row["last_eval_version"]
    if (tid, ev) in b.evaluations:
        b.evaluations[(tid, ev)]["reopened_at"] = r.occurred_at
    elif ev is not None:
        b.reopened.append({"b_tid": tid, "b_v": ev, "reopened_at": r.occurred_at})
    b.reopens.append({"ticket_id": tid, "version": r.version, "at": r.occurred_at,
                      "reason": r.data.get("reason") or ""})
    row["satisfaction"] = None
    b.set_status(row, r, "reopened")


def _escalated(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
    d = r.data
    b.escalations.append({"ticket_id": row["ticket_id"], "version": r.version, "at": r.occurred_at,
                          "deadline": d["deadline"], "rung": d["rung"], "from_level": d["from_level"],
                          "to_level": d["to_level"], "actor_role": (d.get("actor") or {}).get("role")})
    row["level"] = d["to_level"]


def _status(status: str, closes: bool = False) -> Callable[[_Batch, EventRecord, dict[str, Any]], None]:
    def apply(b: _Batch, r: EventRecord, row: dict[str, Any]) -> None:
        if closes:
            row["closed_at"] = r.occurred_at
        b.set_status(row, r, status)
    return apply


_APPLY: dict[str, Callable[[_Batch, EventRecord, dict[str, Any]], None]] = {
    "Accepted": _status("accepted"), "ClosedAtFirstContact": _status("closed", closes=True),
    "Dispatched": _dispatched, "Redispatched": _dispatched, "Acknowledged": _answered, "Rejected": _answered,
    "Handled": _handled, "FeedbackGiven": _status("feedback_given"), "Evaluated": _evaluated,
    "Reopened": _reopened, "Escalated": _escalated, "MarkedDuplicate": _status("duplicate"),
    "Cancelled": _status("cancelled"), "Closed": _status("closed", closes=True),
}


def _fold(b: _Batch, records: Sequence[EventRecord]) -> int:
    applied = 0
    for r in records:
        tid = str(r.ticket_id)
        row = b.tickets.get(tid)
        if row is not None and r.version <= row["last_version"]:
            continue  # already applied: a redelivery has no second effect
        if r.type == "Reported":
            if row is not None:
                continue
            _reported(b, r, tid)
            row = b.tickets[tid]
        elif row is None:
            log.warning("event for an unknown ticket skipped", ticket_id=tid, version=r.version, type=r.type)
            continue
        else:
            handler = _APPLY.get(r.type)
            if handler is not None:
                handler(b, r, row)
        row["last_version"], row["last_at"] = r.version, r.occurred_at
        b.dirty.add(tid)
        applied += 1
    return applied


def _claim(conn: Connection, source: str, position: int) -> None:
    """Upsert the position first: it takes the write lock before the tickets are read."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
        conn.execute(text("SELECT pg_advisory_xact_lock(48151623)"))
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(t.positions).values(source=source, position=position)
    conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_={"position": position}))


def apply_records(engine: Engine, records: list[EventRecord], *, source: str, position: int) -> int:
    """Apply ``records`` to every projection and store ``position`` for ``source``, atomically."""
    t.ensure_tables(engine)
    with engine.begin() as conn:
        _claim(conn, source, position)
        b = _Batch(load_tickets(conn, sorted({str(r.ticket_id) for r in records})))
        applied = _fold(b, records)
        write_batch(conn, b)
    return applied


def stored_position(engine: Engine, source: str) -> int | None:
    t.ensure_tables(engine)
    with engine.connect() as conn:
        value = conn.execute(select(t.positions.c.position).where(t.positions.c.source == source)).scalar()
    return None if value is None else int(value)
