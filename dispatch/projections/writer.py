"""Bulk writes of one projection batch: each table once, executemany straight to the driver."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, bindparam, select

from dispatch.projections import tables as t

__all__ = ["load_tickets", "write_batch"]

_TICKET_MUTABLE = ("status", "closed_at", "last_at", "level", "last_version", "dispatch_no", "lead",
                   "handled_by", "time_basis", "satisfaction", "last_eval_version")
_CHUNK = 500


def load_tickets(conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    known: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(t.tickets).where(t.tickets.c.ticket_id.in_(ids[i:i + _CHUNK])))
        known.update({row.ticket_id: dict(row._mapping) for row in rows})
    return known


def _bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """executemany straight to the driver: SQLAlchemy's per-row parameter processing costs more
    than the insert itself at rebuild speed. Times go through ``UtcDateTime``'s own conversion."""
    dialect = conn.dialect
    names = [c.name for c in table.columns]
    to_db = [c.type.process_bind_param if isinstance(c.type, t.UtcDateTime) else None for c in table.columns]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
           f"({', '.join(dialect.identifier_preparer.quote(n) for n in names)}) "
           f"VALUES ({', '.join(mark for _ in names)})")
    memo: dict[Any, Any] = {None: None}  # the same instants recur across a batch's rows

    def db(value: Any, convert: Any) -> Any:
        if value in memo:
            return memo[value]
        memo[value] = out = convert(value, dialect)
        return out

    pairs = list(zip(names, to_db))
    conn.exec_driver_sql(sql, [tuple(row.get(n) if f is None else db(row.get(n), f) for n, f in pairs)
                               for row in rows])


def write_batch(conn: Connection, b: Any) -> None:
    new = [b.tickets[i] for i in b.dirty if i in b.new_ids]
    old = [{"b_tid": i, **{k: b.tickets[i][k] for k in _TICKET_MUTABLE}} for i in b.dirty if i not in b.new_ids]
    if new:
        _bulk_insert(conn, t.tickets, new)
    if old:
        conn.execute(t.tickets.update().where(t.tickets.c.ticket_id == bindparam("b_tid")), old)
    c = t.calls.c
    updates = b.call_updates
    if updates["superseded"]:
        conn.execute(t.calls.update().where(c.ticket_id == bindparam("b_tid"), c.dispatch_no == bindparam("b_no"),
                                            c.superseded_at.is_(None)), updates["superseded"])
    if b.calls:
        _bulk_insert(conn, t.calls, list(b.calls.values()))
    for kind in ("answer", "handled"):
        if updates[kind]:
            conn.execute(t.calls.update().where(c.ticket_id == bindparam("b_tid"), c.call_id == bindparam("b_cid")),
                         updates[kind])
    for table, rows in ((t.ticket_states, b.states), (t.evaluations, list(b.evaluations.values())),
                        (t.escalations, b.escalations), (t.reopens, b.reopens)):
        if rows:
            _bulk_insert(conn, table, rows)
    if b.reopened:
        e = t.evaluations.c
        conn.execute(t.evaluations.update().where(e.ticket_id == bindparam("b_tid"), e.version == bindparam("b_v")),
                     b.reopened)
