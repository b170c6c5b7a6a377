"""``TicketRows``: the ticket rows a rebuild keeps between pages (see ``apply_batch``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from dispatch.aggregates.ticket import TERMINAL

__all__ = ["TicketRows"]


class TicketRows:
    """Ticket rows a rebuild keeps between its pages, so a page reads from the target only the
    tickets it has not seen lately. Valid only while the holder is the target's one writer
    and every page it applied was committed (a rebuild stops at the first error). Bounded:
    past ``limit`` rows, those the last page did not touch go, closed tickets first."""

    def __init__(self, limit: int = 10_000):
        self.rows: dict[str, dict[str, Any]] = {}
        self.limit = limit

    def known(self, writer: Any, conn: Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self.rows
        found = {i: rows[i] for i in ids if i in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            found.update(writer.load_tickets(conn, missing))
        return found

    def keep(self, touched: dict[str, dict[str, Any]]) -> None:
        rows = self.rows
        rows.update(touched)
        if len(rows) > self.limit:
            for tid in [i for i, row in rows.items() if i not in touched and row["status"] in TERMINAL]:
                del rows[tid]
        if len(rows) > self.limit:
            self.rows = {i: rows[i] for i in touched}
