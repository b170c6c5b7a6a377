"""Analysts' exports: tickets, events and SLA rows as CSV or Parquet, streamed.

Personal data never leaves: the reporter's sealed contact is not exported, and phone numbers,
ID-card numbers and e-mail addresses typed into free text are masked (``vault.scrub``).
Columns are documented in docs/export-columns.md (keep the two in step). Ids come
with the human names from the reference data next to them (``community`` and
``community_name`` …). Times are ISO-8601 in the reference data's timezone in CSV,
timezone-aware timestamps in Parquet. ``tickets`` and ``sla`` read the projections,
``events`` the event store's notification log (in pages, with one ticket lookup per page).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from dispatch.adapters.vault import FREE_TEXT, scrub
from dispatch.domain.errors import DispatchError
from dispatch.domain.reference import Reference
from dispatch.domain.sla_policy import SlaPolicy
from dispatch.projections.decode import records_from_notifications
from dispatch.projections.tables import calls, tickets

__all__ = ["COLUMNS", "EXPORTS", "export_rows", "write_csv", "write_parquet"]

Row = tuple[Any, ...]
S, I, B, T, F, D = "string", "int", "bool", "time", "float", "degrees"  # degrees: WGS-84, 6 decimals in CSV
_PLACE = [("district", S), ("district_name", S), ("street", S), ("street_name", S),
          ("community", S), ("community_name", S), ("grid", S), ("grid_name", S)]
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "tickets": [("ticket_id", S), ("external_ref", S), ("status", S), ("reported_at", T), ("closed_at", T),
                ("last_at", T), *_PLACE, ("category", S), ("category_name", S), ("priority", S),
                ("priority_name", S), ("channel", S), ("level", S), ("dispatch_no", I), ("lead", S),
                ("lead_name", S), ("handled_by", S), ("handled_by_name", S), ("time_basis", S),
                ("satisfaction", S), ("description", S), ("case_no", S), ("closed_via", S),
                ("first_contact_mode", S), ("accept_due", T), ("accepted_at", T), ("dispatch_due", T),
                ("first_dispatched_at", T), ("provisional", B), ("held_since", T), ("lat", D), ("lon", D)],
    "events": [("position", I), ("ticket_id", S), ("version", I), ("type", S), ("occurred_at", T),
               ("actor_role", S), ("actor_id", S), ("department", S), ("department_name", S),
               ("community", S), ("community_name", S), ("category", S), ("category_name", S), ("data", S)],
    "sla": [("ticket_id", S), ("call_id", S), ("dispatch_no", I), ("role", S), ("department", S),
            ("department_name", S), ("community", S), ("community_name", S), ("category", S), ("category_name", S),
            ("priority", S), ("time_basis", S), ("dispatched_at", T), ("ack_due", T), ("answer", S),
            ("answered_at", T), ("ack_on_time", B), ("minutes_to_answer", F), ("handle_due", T),
            ("handled_at", T), ("handle_on_time", B), ("minutes_to_handle", F), ("feedback_due", T),
            ("superseded_at", T), ("closed_out_at", T)],
}
EXPORTS = tuple(COLUMNS)
_PAGE = 5000


class _Names:
    def __init__(self, reference: Reference):
        self.r = reference

    def __call__(self, kind: str, key: str | None) -> str | None:
        if key is None:
            return None
        item = getattr(self.r, kind).get(key)
        return item.name if item is not None else None


def _in(at: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    return at is not None and (start is None or at >= start) and (end is None or at < end)


def _tickets(engine: Engine, ref: Reference, start: datetime | None, end: datetime | None,
             **_: Any) -> Iterator[Row]:
    n, c = _Names(ref), tickets.c
    query = select(tickets).order_by(c.reported_at, c.ticket_id)
    if start is not None:
        query = query.where(c.reported_at >= start)
    if end is not None:
        query = query.where(c.reported_at < end)
    with engine.connect() as conn:
        for r in conn.execution_options(stream_results=True, yield_per=_PAGE).execute(query):
            yield (r.ticket_id, r.external_ref, r.status, r.reported_at, r.closed_at, r.last_at,
                   r.district, n("districts", r.district), r.street, n("streets", r.street),
                   r.community, n("communities", r.community), r.grid, n("grids", r.grid),
                   r.category, n("categories", r.category), r.priority, n("priorities", r.priority), r.channel,
                   r.level, r.dispatch_no, r.lead, n("departments", r.lead), r.handled_by,
                   n("departments", r.handled_by), r.time_basis, r.satisfaction, scrub(r.description), r.case_no,
                   r.closed_via, (r.closed_via or "").partition("first_contact:")[2] or None, r.accept_due,
                   r.accepted_at, r.dispatch_due, r.first_dispatched_at,
                   None if r.provisional is None else bool(r.provisional), r.held_since, r.lat, r.lon)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _events(engine: Engine, ref: Reference, start: datetime | None, end: datetime | None, *,
            app: Any, **_: Any) -> Iterator[Row]:
    n, c, position = _Names(ref), tickets.c, 0
    upto = app.recorder.max_notification_id() or 0
    while position < upto:
        notifications = app.recorder.select_notifications(position + 1, _PAGE, stop=upto)
        if not notifications:
            break
        position = notifications[-1].id
        records = [r for r in records_from_notifications(notifications, app.mapper) if _in(r.occurred_at, start, end)]
        ids = sorted({str(r.ticket_id) for r in records})
        with engine.connect() as conn:  # one lookup per page: where each ticket is and what it is about
            known = {row.ticket_id: row for row in conn.execute(
                select(c.ticket_id, c.community, c.category).where(c.ticket_id.in_(ids)))} if ids else {}
        for r in records:
            d, tid = r.data, str(r.ticket_id)
            actor = d.get("actor") or {}
            dept = d.get("department") or d.get("lead") or actor.get("department")
            where = known.get(tid)
            community = d.get("community") or (where.community if where else None)
            category = d.get("category") or (where.category if where else None)
            # the reporter's contact (sealed) is personal data: never exported
            rest = {k: scrub(v) if k in FREE_TEXT and isinstance(v, str) else v
                    for k, v in d.items() if k not in ("occurred_at", "actor", "reporter")}
            yield (r.position, tid, r.version, r.type, r.occurred_at, actor.get("role"), actor.get("id"),
                   dept, n("departments", dept), community, n("communities", community), category,
                   n("categories", category), json.dumps(rest, ensure_ascii=False, default=_plain, sort_keys=True))


def _on_time(done: datetime | None, due: datetime | None, as_of: datetime) -> bool | None:
    if due is None:
        return None
    if done is not None:
        return done <= due
    return False if due < as_of else None  # not done and not yet due: pending


def _sla(engine: Engine, ref: Reference, start: datetime | None, end: datetime | None, *,
         as_of: datetime, **_: Any) -> Iterator[Row]:
    n, policy, k, tk = _Names(ref), SlaPolicy(ref), calls.c, tickets.c
    query = (select(calls, tk.community, tk.category, tk.priority).join(tickets, tk.ticket_id == k.ticket_id)
             .where(k.dispatched_at <= as_of).order_by(k.dispatched_at, k.ticket_id, k.call_id))
    if start is not None:
        query = query.where(k.dispatched_at >= start)
    if end is not None:
        query = query.where(k.dispatched_at < end)
    with engine.connect() as conn:
        for r in conn.execution_options(stream_results=True, yield_per=_PAGE).execute(query):
            basis = policy.basis(r.time_basis)
            answered = r.answered_at if r.answered_at is not None and r.answered_at <= as_of else None
            handled = r.handled_at if r.handled_at is not None and r.handled_at <= as_of else None
            superseded = r.superseded_at if r.superseded_at is not None and r.superseded_at <= as_of else None
            yield (r.ticket_id, r.call_id, r.dispatch_no, r.role, r.department, n("departments", r.department),
                   r.community, n("communities", r.community), r.category, n("categories", r.category),
                   r.priority, r.time_basis, r.dispatched_at, r.ack_due, r.answer if answered else None, answered,
                   _on_time(answered, r.ack_due, as_of),
                   basis.minutes_between(r.dispatched_at, answered) if answered else None,
                   r.handle_due, handled, _on_time(handled, r.handle_due, as_of),
                   basis.minutes_between(r.dispatched_at, handled) if handled else None,
                   r.feedback_due, superseded,
                   r.closed_out_at if r.closed_out_at is not None and r.closed_out_at <= as_of else None)


_PRODUCERS: dict[str, Callable[..., Iterator[Row]]] = {"tickets": _tickets, "events": _events, "sla": _sla}


def export_rows(kind: str, engine: Engine, reference: Reference, *, start: datetime | None = None,
                end: datetime | None = None, as_of: datetime, app: Any = None) -> Iterator[Row]:
    """The rows of one export, in the order of ``COLUMNS[kind]``; window ``[start, end)``."""
    if kind not in _PRODUCERS:
        raise DispatchError(f"unknown export {kind!r}; one of {', '.join(EXPORTS)}")
    return _PRODUCERS[kind](engine, reference, start, end, app=app, as_of=as_of)


def _csv_value(value: Any, tz: ZoneInfo) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and value[:1] in _FORMULA_PREFIXES:
        return "'" + value  # OWASP: a cell that starts like a formula is shown as text, never run
    return value


_FORMULA_PREFIXES = frozenset("=+-@\t\r")
BOM = "\ufeff"


def write_csv(kind: str, rows: Iterator[Row], stream: IO[str], timezone: str, *, bom: bool = True,
              columns: list[tuple[str, str]] | None = None) -> int:
    """Header + rows; returns the number of rows. Text that starts with ``= + - @`` TAB or CR is
    prefixed with ``'`` (formula injection in Excel/WPS); a field with CR or LF is quoted (RFC 4180
    line ends); a UTF-8 byte-order mark first, so Chinese Excel reads UTF-8 (``bom=False`` omits it).
    ``columns``: another table's (name, kind) list than ``COLUMNS[kind]``."""
    tz, count = ZoneInfo(timezone), 0
    if bom:
        stream.write(BOM)
    writer = csv.writer(stream, lineterminator="\r\n")
    columns = columns or COLUMNS[kind]
    writer.writerow([name for name, _ in columns])
    degrees = [k == D for _, k in columns]
    for row in rows:
        writer.writerow([f"{v:.6f}" if deg and v is not None else _csv_value(v, tz) for v, deg in zip(row, degrees)])
        count += 1
    return count


def write_parquet(kind: str, rows: Iterator[Row], path: str, timezone: str) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DispatchError("Parquet needs pyarrow: pip install 'dispatch[parquet]' (or use --format csv)") from None
    types = {S: pa.string(), I: pa.int64(), B: pa.bool_(), F: pa.float64(), D: pa.float64(),
             T: pa.timestamp("us", tz=timezone)}
    schema = pa.schema([(name, types[kind_]) for name, kind_ in COLUMNS[kind]])
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in _chunks(rows, _PAGE):
            columns = list(zip(*chunk))
            writer.write_batch(pa.record_batch([pa.array(col, type=f.type) for col, f in zip(columns, schema)],
                                               schema=schema))
            count += len(chunk)
    return count


def _chunks(rows: Iterator[Row], size: int) -> Iterator[Sequence[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
