"""Drawing case numbers (``dispatch.domain.case_number`` says their form).

``CaseNumbers.reserve`` draws a block of sequences per street and day from counter rows,
one atomic upsert each, all in one short transaction per batch of commands — every engine
process on the database draws from the same rows, so no number is given twice (on PostgreSQL
one statement for the whole batch, whose commit does not wait for the disk: see ``_draw_postgres``). Each number
is stored in its ``Reported`` event, so a replay reproduces it and never draws again.
The index number → ticket is written in the transaction that stores the batch's events when
both live in one database (``with_events``: ``dispatch.adapters.eventstore.WithOutcomes.numbered``),
else by ``record`` once they are stored. A report refused after its number was drawn, or a
batch that failed, leaves a gap (allowed).

``lookup`` finds a ticket by its number: a drawn one here, a legacy one (``X…``) in the
read model's tickets.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, inspect, select, text

from dispatch.adapters.database import ensure_created

__all__ = ["CaseNumbers"]

METADATA = MetaData()
case_counters = Table(
    "case_counters", METADATA,
    Column("prefix", String(40), primary_key=True),
    Column("last", Integer, nullable=False),
)
case_tickets = Table(
    "case_tickets", METADATA,
    Column("case_no", String(60), primary_key=True),
    Column("ticket_id", String(36), nullable=False),
)


class CaseNumbers:
    """The counters and the number → ticket index, in the deployment's database."""

    def __init__(self, engine: Engine, *, with_events: bool = False):
        self.engine = engine
        self.with_events = with_events  # the event store is in this database: index in its transaction

    def reserve(self, wanted: dict[str, int]) -> dict[str, list[str]]:
        """``wanted[prefix]`` numbers per prefix (``dispatch.domain.case_number.case_prefix``), drawn now."""
        ensure_created(self.engine, METADATA)
        if not wanted:
            return {}
        if self.engine.dialect.name == "postgresql":
            lasts = self._draw_postgres(wanted)
        else:
            from sqlalchemy.dialects.sqlite import insert

            lasts = {}
            with self.engine.begin() as conn:
                for prefix, n in sorted(wanted.items()):  # one order in every process: no deadlock
                    stmt = insert(case_counters).values(prefix=prefix, last=n)
                    stmt = stmt.on_conflict_do_update(index_elements=["prefix"], set_={"last": case_counters.c.last + n})
                    lasts[prefix] = conn.execute(stmt.returning(case_counters.c.last)).scalar_one()
        return {prefix: [f"{prefix}-{seq:05d}" for seq in range(lasts[prefix] - n + 1, lasts[prefix] + 1)]
                for prefix, n in wanted.items()}

    def _draw_postgres(self, wanted: dict[str, int]) -> dict[str, int]:
        """Every prefix's counter moved on in one statement, its own transaction (one round trip a
        batch, not a BEGIN, a SET, an upsert per prefix and a COMMIT), the rows locked in one
        order in every process (no deadlock). Its commit does not wait for the disk: numbers
        matter only once a batch's events store them, and that commit's flush writes every
        earlier commit's record too (WAL is one sequence), so a crash loses a draw only when no
        event used it — a gap, never a number twice."""
        prefixes = sorted(wanted)
        draw = text(
            "INSERT INTO case_counters (prefix, last) "
            "SELECT w.prefix, w.n FROM unnest(CAST(:prefixes AS varchar[]), CAST(:ns AS integer[])) AS w(prefix, n) "
            "CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS no_wait "
            "ORDER BY w.prefix "
            "ON CONFLICT (prefix) DO UPDATE SET last = case_counters.last + excluded.last "
            "RETURNING prefix, last")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            rows = conn.execute(draw, {"prefixes": prefixes, "ns": [wanted[p] for p in prefixes]}).all()
        return {prefix: last for prefix, last in rows}

    def record(self, numbered: list[tuple[str, UUID]]) -> None:
        """Index the numbers of tickets whose Reported events are stored."""
        if not numbered:
            return
        ensure_created(self.engine, METADATA)
        with self.engine.begin() as conn:
            conn.execute(case_tickets.insert(), [{"case_no": n, "ticket_id": str(t)} for n, t in numbered])

    def lookup(self, case_no: str) -> UUID | None:
        """The ticket a number belongs to (None: no such number)."""
        ensure_created(self.engine, METADATA)
        wanted = case_no.upper()
        with self.engine.connect() as conn:
            found = conn.execute(select(case_tickets.c.ticket_id).where(case_tickets.c.case_no == wanted)).scalar()
            if found is None and inspect(conn).has_table("tickets"):
                found = conn.execute(text("SELECT ticket_id FROM tickets WHERE case_no = :n"), {"n": wanted}).scalar()
        return UUID(found) if found else None
