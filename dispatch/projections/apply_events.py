"""Apply ticket events to the fact tables: one transaction per batch, position included.

``apply_records`` is the one entry point for live catch-up, the Kafka consumer and a
rebuild. Per batch it reads the touched tickets once, folds the events in memory (times
converted once per event to the stored form) and writes each table once (see ``writer``);
the source position is upserted first in the
same transaction, which also serialises concurrent writers. A record whose
``(ticket_id, version)`` is not newer than the ticket's ``last_version`` is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from dispatch.adapters.logs import get_logger
from sqlalchemy import Connection, Engine, text

from dispatch.domain.case_number import legacy_case_no
from dispatch.domain.lifecycle import fold, new_state
from dispatch.projections import tables as t
from dispatch.projections.decode import paused_gc
from dispatch.projections.durations import Minutes, minutes_for
from dispatch.projections.records import EventRecord
from dispatch.projections.rollups import forget
from dispatch.projections.rows import TicketRows
from dispatch.projections.tables import stored_position
from dispatch.projections.writer import writer_for

__all__ = ["COUNTERS", "PositionMoved", "TicketRows", "apply_batch", "apply_records", "stored_position"]

log = get_logger("dispatch.projections")


_TIDS: dict[UUID, str] = {}  # ticket UUID -> its text form, the read model's key (bounded)


def _tid(ticket_id: UUID) -> str:
    tid = _TIDS.get(ticket_id)
    if tid is None:
        if len(_TIDS) >= 20_000:
            _TIDS.clear()
        tid = _TIDS[ticket_id] = str(ticket_id)
    return tid


class _Batch:
    """In-memory state of one batch: touched tickets and the rows to write, in the database's
    value forms (``writer.db_time``); tuples are in their table's column order."""

    def __init__(self, known: dict[str, dict[str, Any]], db_time: Callable[[Any], Any], minutes: Minutes):
        self.tickets = known  # ticket_id -> row dict (existing ones loaded from the table)
        self.db_time = db_time
        self.minutes = minutes  # a call's durations in its time basis (``durations``)
        self.new_ids: set[str] = set()
        self.dirty: set[str] = set()
        self.states: list[tuple[Any, ...]] = []  # ticket_states
        self.calls: dict[tuple[str, str], dict[str, Any]] = {}  # new calls of this batch
        self.ticket_calls: dict[str, list[dict[str, Any]]] = {}  # the same, per ticket
        self.superseded: list[tuple[Any, ...]] = []  # (superseded_at, ticket_id, dispatch_no)
        self.answers: list[tuple[Any, ...]] = []  # (answer, answered_at, ack_minutes, ticket_id, call_id)
        self.handled: list[tuple[Any, ...]] = []  # (handled_at, handle_minutes, ticket_id, call_id)
        self.evaluations: dict[tuple[str, int], dict[str, Any]] = {}
        self.reopened: list[tuple[Any, ...]] = []  # (reopened_at, ticket_id, version)
        self.next_evaluations: list[tuple[Any, ...]] = []  # (next_at, ticket_id, version)
        self.previous_evaluation: int | None = None
        self.escalations: list[tuple[Any, ...]] = []
        self.reopens: list[tuple[Any, ...]] = []
        self.quarantined: list[tuple[Any, ...]] = []
        self.closed_out: list[tuple[Any, ...]] = []  # (closed_out_at, ticket_id)
        self.due_changes: list[tuple[str, int, dict[str | None, dict[str, Any]]]] = []



# Each effect of ``dispatch.domain.lifecycle.fold`` as rows: (batch, record, ticket row after the fold,
# the event's stored time, the effect's detail). The fold alone decides the ticket's state.
Handler = Callable[[_Batch, EventRecord, dict[str, Any], Any, Any], None]


def _reported(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, detail: Any) -> None:
    d, db_time = r.data, b.db_time
    row["accept_due"], row["dispatch_due"] = db_time(d.get("accept_due")), db_time(d.get("dispatch_due"))
    row["case_no"] = d.get("case_no") or legacy_case_no(row["ticket_id"], d["street"], d["occurred_at"])
    row["reported_by"] = (d.get("actor") or {}).get("id")
    position = d.get("position") or {}
    row["lat"], row["lon"] = position.get("lat"), position.get("lon")
    row["photo"] = next((m for m in d.get("media") or () if m.startswith("file:")), None)
    row["extension_minutes"] = row["ended_at"] = row["dispatched_at"] = row["feedback_due"] = None
    row["deadline_moves"] = 0


def _extension(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, detail: Any) -> None:
    row["extension_minutes"] = (row.get("extension") or {}).get("minutes")


def _closed(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, detail: Any) -> None:
    """The ticket ended: its unanswered calls are closed out (they leave every work list)."""
    tid = row["ticket_id"]
    row["ended_at"], row["extension_minutes"] = at, None
    for call in b.ticket_calls.get(tid, ()):
        if call["superseded_at"] is None and call["answer"] is None and call["closed_out_at"] is None:
            call["closed_out_at"] = at
    b.closed_out.append((at, tid))


def _deadlines(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, dues: Any) -> None:
    """An extension or a resume moved deadlines: the calls of the current dispatch follow."""
    tid, no, db_time = row["ticket_id"], row["dispatch_no"], b.db_time
    row["extension_minutes"] = None  # a granted extension is decided
    row["deadline_moves"] = (row.get("deadline_moves") or 0) + 1
    for name in ("accept_due", "dispatch_due"):
        if name in dues or name.replace("_due", "") in dues:
            row[name] = db_time(dues.get(name) or dues.get(name.replace("_due", "")))
    changes: dict[str | None, dict[str, Any]] = {}
    for key, due in dues.items():
        if key.startswith("ack:"):
            changes.setdefault(key[4:], {})["ack_due"] = due
        elif key in ("handle_due", "feedback_due"):
            changes.setdefault(None, {})[key] = due
        elif key.startswith(("handle:", "feedback:")):
            changes.setdefault(None, {})[key.split(":")[0] + "_due"] = due
    row["feedback_due"] = _stored(b, row.get("feedback_due"))  # the fold moved it with the extension or resume
    if not changes or not no:
        return
    for call in b.ticket_calls.get(tid, ()):  # a call of this batch: changed in memory
        if call["dispatch_no"] != no:
            continue
        for call_id, columns in changes.items():
            if call_id == call["call_id"] or (call_id is None and call["role"] == "lead"):
                call.update({k: db_time(v) for k, v in columns.items()})
    b.due_changes.append((tid, no, changes))


def _dispatched(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, previous: Any) -> None:
    d, tid, db_time = r.data, row["ticket_id"], b.db_time
    row["extension_minutes"] = None  # a new dispatch: a new handling deadline
    row["dispatched_at"] = at
    if previous:
        for call in b.ticket_calls.get(tid, ()):
            if call["dispatch_no"] == previous and call["superseded_at"] is None:
                call["superseded_at"] = at
        b.superseded.append((at, tid, previous))
    handle_due, feedback_due = db_time(d["handle_due"]), db_time(d["feedback_due"])
    row["feedback_due"] = feedback_due
    mine = b.ticket_calls.setdefault(tid, [])
    for c in d["calls"]:
        lead = c["role"] == "lead"
        call = {
            "ticket_id": tid, "call_id": c["call_id"], "dispatch_no": d["dispatch_no"],
            "department": c["department"], "role": c["role"], "dispatched_at": at,
            "ack_due": db_time(c["ack_due"]), "answer": None, "answered_at": None,
            "handle_due": handle_due if lead else None, "feedback_due": feedback_due if lead else None,
            "handled_at": None, "superseded_at": None, "closed_out_at": None, "calendar": d.get("calendar"),
            "time_basis": d["time_basis"],
            "escalate_every_minutes": d["escalate_every_minutes"], "ack_minutes": None, "handle_minutes": None,
            "category": row["category"], "community": row["community"], "street": row["street"]}
        old = b.calls.get((tid, c["call_id"]))
        if old is not None:
            mine.remove(old)
        b.calls[(tid, c["call_id"])] = call
        mine.append(call)


def _stored(b: _Batch, value: Any) -> Any:
    """A time the fold set from an event (aware) in the stored form; a stored one as it is."""
    return b.db_time(value) if isinstance(value, datetime) and value.tzinfo is not None else value


def _since_dispatch(b: _Batch, row: dict[str, Any], call_id: str, at: Any) -> float | None:
    """Minutes from the current dispatch to ``at`` in its time basis (a call is answered and
    handled only while its dispatch is the current one)."""
    if not call_id.startswith(f"{row['dispatch_no']}:"):
        return None
    return b.minutes(row["time_basis"], row.get("dispatched_at"), at)


def _answered(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, detail: Any) -> None:
    call_id, answer = detail
    tid = row["ticket_id"]
    new = b.calls.get((tid, call_id))
    if new is not None:
        new["answer"], new["answered_at"] = answer, at
        new["ack_minutes"] = b.minutes(new["time_basis"], new["dispatched_at"], at)
    else:
        b.answers.append((answer, at, _since_dispatch(b, row, call_id, at), tid, call_id))


def _handled(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, call_id: Any) -> None:
    tid = row["ticket_id"]
    row["extension_minutes"] = None
    new = b.calls.get((tid, call_id))
    if new is not None:
        new["handled_at"] = at
        new["handle_minutes"] = b.minutes(new["time_basis"], new["dispatched_at"], at)
    else:
        b.handled.append((at, _since_dispatch(b, row, call_id, at), tid, call_id))


def _evaluated(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, department: Any) -> None:
    d, tid, previous = r.data, row["ticket_id"], b.previous_evaluation
    if previous is not None and previous != r.version:  # the ticket's latest evaluation until now
        if (tid, previous) in b.evaluations:
            b.evaluations[(tid, previous)]["next_at"] = at
        else:
            b.next_evaluations.append((at, tid, previous))
    b.evaluations[(row["ticket_id"], r.version)] = {
        "ticket_id": row["ticket_id"], "version": r.version, "at": at,
        "satisfaction": d["satisfaction"], "resolved": bool(d["resolved"]), "contacted": bool(d["contacted"]),
        "department": department, "reopened_at": None, "next_at": None, "category": row["category"],
        "grid": row["grid"],
        "community": row["community"], "street": row["street"]}


def _reopened(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, ev: Any) -> None:
    tid = row["ticket_id"]
    if (tid, ev) in b.evaluations:
        b.evaluations[(tid, ev)]["reopened_at"] = at
    elif ev is not None:
        b.reopened.append((at, tid, ev))
    b.reopens.append((tid, r.version, at, r.data.get("reason") or ""))


def _escalated(b: _Batch, r: EventRecord, row: dict[str, Any], at: Any, detail: Any) -> None:
    d = r.data
    deadlines = ",".join(d.get("deadlines") or [d["deadline"]])[:200]
    b.escalations.append((row["ticket_id"], r.version, at, deadlines, d["rung"], d["from_level"],
                          d["to_level"], (d.get("actor") or {}).get("role"), row["category"], row["grid"],
                          row["community"], row["street"]))


EFFECTS: dict[str, Handler | None] = {  # None: the ticket row (written anyway) is all it changes
    "report": _reported, "status": None, "close": _closed, "dispatch": _dispatched, "answer": _answered,
    "handle": _handled, "evaluate": _evaluated, "reopen": _reopened, "escalate": _escalated,
    "extension": _extension, "hold": None, "deadlines": _deadlines,
}


# A kept row's calls: none (the fold only ever replaces this dict, never fills it)
_NO_CALLS: dict[str, Any] = {}


def _restore(row: dict[str, Any]) -> None:
    """A ticket row read back from the table, as a lifecycle state: the parts of the state the
    table does not keep start empty (the fold only needs its current dispatch and lead)."""
    if "calls" not in row:
        row.update(calls={}, escalations=[], duplicate_of=None, handle_due=None, extension=None, resolved=None,
                   override=None, feedback_at=None, location=None)


def _fold(b: _Batch, records: Sequence[EventRecord], tids: Sequence[str]) -> int:
    applied = 0
    tickets, dirty, db_time, effects, states = b.tickets, b.dirty, b.db_time, EFFECTS, b.states
    for r, tid in zip(records, tids):
        row = tickets.get(tid)
        if row is not None and r.version <= row["last_version"]:
            continue  # already applied: a redelivery has no second effect
        try:
            at = db_time(r.data["occurred_at"])
            if r.type == "Reported":
                if row is not None:
                    continue
                row = {"ticket_id": tid, "last_version": 0, **new_state()}
                kind, detail = fold(row, "Reported", r.data, at, r.version)
                tickets[tid] = row
                b.new_ids.add(tid)
                states.append((tid, r.version, at, row["status"]))
            elif row is None:
                log.warning("event for an unknown ticket skipped", ticket_id=tid, version=r.version, type=r.type)
                continue
            else:
                before = row["status"]
                if r.type == "Evaluated":  # the evaluation this one follows (its interval ends here)
                    b.previous_evaluation = row.get("last_eval_version")
                kind, detail = fold(row, r.type, r.data, at, r.version)
                if row["status"] != before:
                    states.append((tid, r.version, at, row["status"]))
            handler = effects[kind]
            if handler is not None:
                handler(b, r, row, at, detail)
        except Exception as error:  # noqa: BLE001 - one bad event must not stop every view
            _quarantine(b, r, tid, error)
            continue
        row["last_version"] = r.version
        dirty.add(tid)
        applied += 1
    return applied


COUNTERS = {"quarantined": 0}  # events this process put in quarantine (for log lines and metrics)


def _quarantine(b: _Batch, r: EventRecord, tid: str, error: Exception) -> None:
    """An event the projections cannot hold (e.g. a business time outside what the database
    can store): kept aside with its position and reason; the projection goes on. The reason
    depends only on the event, so a replay quarantines the same ones."""
    reason = " ".join(str(error).split()) or "cannot be applied"
    occurred: Any = r.data.get("occurred_at")
    shown = occurred.isoformat() if isinstance(occurred, datetime) else str(occurred)
    b.quarantined.append((tid, r.version, r.position, r.type, shown, reason[:500]))
    COUNTERS["quarantined"] += 1
    log.warning("event quarantined", ticket_id=tid, version=r.version, type=r.type, position=r.position,
                reason=reason)


class PositionMoved(Exception):
    """Another catch-up stored this source's position first; this batch rolled back."""


_ANY = -1


def _claim(conn: Connection, source: str, position: int, expected: int | None = _ANY,
           also: Mapping[str, int] | None = None) -> None:
    """Upsert the position first: it takes the write lock before the tickets are read. With
    ``expected`` (the position this batch continues from; None: no position yet) it is a
    compare-and-set, so two catch-ups at once (a web server and a CLI command on one
    database) never apply the same events twice: the later one raises ``PositionMoved``.
    ``also``: more sources' positions, stored by the same statement (not with ``expected``)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
        conn.execute(text("SELECT pg_advisory_xact_lock(48151623)"))
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    if expected == _ANY:  # every source's position in one statement
        many = insert(t.positions).values([{"source": source, "position": position},
                                           *({"source": s, "position": p} for s, p in (also or {}).items())])
        conn.execute(many.on_conflict_do_update(index_elements=["source"], set_={"position": many.excluded.position}))
        return
    if also:
        raise ValueError("positions of several sources are stored without a compare-and-set")
    stmt = insert(t.positions).values(source=source, position=position)
    if expected is None:
        claimed = stmt.on_conflict_do_nothing(index_elements=["source"]).returning(t.positions.c.source)
        if conn.execute(claimed).first() is None:
            raise PositionMoved(source)
    elif conn.execute(t.positions.update().where(t.positions.c.source == source,
                                                 t.positions.c.position == expected)
                      .values(position=position).returning(t.positions.c.source)).first() is None:
        raise PositionMoved(source)


def apply_records(engine: Engine, records: list[EventRecord], *, source: str, position: int,
                  expected: int | None = _ANY) -> int:
    """Apply ``records`` to every projection and store ``position`` for ``source``, atomically
    (``expected``: see ``_claim``)."""
    t.ensure_tables(engine)
    with engine.begin() as conn:
        return apply_batch(conn, records, source=source, position=position, expected=expected)


def apply_batch(conn: Connection, records: list[EventRecord], *, source: str, position: int,
                rows: TicketRows | None = None, claim: bool = True, expected: int | None = _ANY,
                minutes: Minutes | None = None, also: Mapping[str, int] | None = None) -> int:
    """``apply_records`` inside the caller's transaction on ``conn`` (a rebuild keeps one
    connection, and its ``TicketRows``). ``claim=False`` (a rebuild worker writing its own
    tickets, see ``dispatch.service.replay.parallel``) stores no position and takes no lock.
    ``minutes``: the calls' durations (default: under the calendar stored in ``conn``'s
    database, ``durations.minutes_for``). ``also``: more sources whose records are among
    ``records`` and their positions (a consumer's partitions of one poll: one statement each
    for the tickets, rows and positions of them all; a ticket's events stay in one source)."""
    tids = [_tid(r.ticket_id) for r in records]
    with paused_gc():
        if claim:
            _claim(conn, source, position, expected, also)
        writer = writer_for(conn)
        ids = sorted(set(tids))
        known = writer.load_tickets(conn, ids) if rows is None else rows.known(writer, conn, ids)
        for row in known.values():
            _restore(row)
        b = _Batch(known, writer.db_time, minutes or minutes_for(conn))
        applied = _fold(b, records, tids)
        writer.write(conn, b)
        if applied and claim:  # a day these events fall in can change: its rollup goes (``rollups``;
            # a rebuild worker writes a fresh target of its own, which has none)
            forget(conn, [r.data.get("occurred_at") for r in records])
        if rows is not None:
            for row in b.tickets.values():  # kept rows forget their calls (see _restore): memory
                row["calls"] = _NO_CALLS
            rows.keep(b.tickets)
    return applied


