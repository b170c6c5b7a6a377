"""Drawing case numbers (``dispatch.caseno`` says their form).

``CaseNumbers.allocate`` draws the next sequence of a street and day from a counter row with
one atomic upsert — every engine process on the database draws from the same row, so no
number is given twice — and records which ticket it was drawn for. The number is then
stored in the ``Reported`` event, so a replay reproduces it and never draws again. A report
refused after its number was drawn leaves a gap.

``lookup`` finds a ticket by its number: a drawn one here, a legacy one (``X…``) in the
read model's tickets.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import Column, Engine, Integer, MetaData, String, Table, inspect, select, text

from dispatch.caseno import case_prefix
from dispatch.store import ensure_created

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

    def __init__(self, engine: Engine):
        self.engine = engine

    def allocate(self, street_id: str, reported_at: datetime, tz: str, ticket_id: UUID) -> str:
        ensure_created(self.engine, METADATA)
        prefix = case_prefix(street_id, reported_at, tz)
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
        stmt = insert(case_counters).values(prefix=prefix, last=1)
        stmt = stmt.on_conflict_do_update(index_elements=["prefix"], set_={"last": case_counters.c.last + 1})
        with self.engine.begin() as conn:
            sequence = conn.execute(stmt.returning(case_counters.c.last)).scalar_one()
            case_no = f"{prefix}-{sequence:05d}"
            conn.execute(case_tickets.insert().values(case_no=case_no, ticket_id=str(ticket_id)))
        return case_no

    def lookup(self, case_no: str) -> UUID | None:
        """The ticket a number belongs to (None: no such number)."""
        ensure_created(self.engine, METADATA)
        wanted = case_no.upper()
        with self.engine.connect() as conn:
            found = conn.execute(select(case_tickets.c.ticket_id).where(case_tickets.c.case_no == wanted)).scalar()
            if found is None and inspect(conn).has_table("tickets"):
                found = conn.execute(text("SELECT ticket_id FROM tickets WHERE case_no = :n"), {"n": wanted}).scalar()
        return UUID(found) if found else None
