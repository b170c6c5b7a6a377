"""Read-model fact tables. Every figure is a query over these with as-of / period filters.

Times are stored as naive UTC (``UtcDateTime``) so SQLite and PostgreSQL behave the
same; they come back timezone-aware (UTC). One row per fact, keyed so that "as of T"
is a filter: a call row keeps when it was answered, handled and superseded, a ticket's
status history is in ``ticket_states``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from sqlalchemy import (Boolean, Column, Engine, Float, Index, Integer, LargeBinary, MetaData, String,
                        Table, select, text)

from dispatch.adapters.database import UtcDateTime

__all__ = ["CALL_COUNTS", "EVALUATION_COUNTS", "METADATA", "ROLLUPS", "UtcDateTime", "calls", "create_tables",
           "escalations", "evaluations", "positions", "quarantined_events", "reopens", "rollup_calls", "rollup_centre",
           "rollup_closed", "rollup_closes", "rollup_days", "rollup_escalations", "rollup_evaluations",
           "rollup_firsts", "rollup_minutes", "rollup_open", "rollup_settles", "rollup_weeks", "stored_position",
           "ticket_states", "tickets"]


METADATA = MetaData()
_Id = String(64)
_T = UtcDateTime

positions = Table(
    "projection_positions", METADATA,
    Column("source", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
)

tickets = Table(
    "tickets", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("status", String(40), nullable=False),
    Column("grid", String(200), nullable=False, index=True),
    Column("community", String(200), nullable=False, index=True),
    Column("street", String(200), nullable=False, index=True),
    Column("district", String(200), nullable=False),
    Column("category", String(200), nullable=False),
    Column("priority", String(200), nullable=False),
    Column("channel", String(40), nullable=False),
    Column("description", String(4000), nullable=False, default=""),
    Column("external_ref", String(200)),
    Column("reported_at", _T, nullable=False, index=True),
    Column("closed_at", _T, index=True),
    Column("last_at", _T, nullable=False),
    Column("level", String(20), nullable=False),
    Column("last_version", Integer, nullable=False),
    Column("dispatch_no", Integer, nullable=False, default=0),
    Column("lead", String(200)),
    Column("handled_by", String(200)),
    Column("time_basis", String(20)),
    Column("satisfaction", String(40)),
    Column("last_eval_version", Integer),
    Column("case_no", String(60), index=True),  # 工单编号 (a legacy number for tickets reported before them)
    Column("accept_due", _T),  # the centre's own deadlines (None: reported before they existed)
    Column("dispatch_due", _T),
    Column("centre_basis", String(20)),
    Column("accepted_at", _T),
    Column("first_dispatched_at", _T),
    Column("closed_via", String(60)),  # completed | override | first_contact:<mode>
    Column("held_since", _T),  # 挂起: the clocks stopped
    Column("provisional", Boolean),  # a deadline counted in a year the holiday table does not cover
    Column("ended_at", _T, index=True),  # when it closed, was cancelled or marked a duplicate ("open as of T")
    Column("extension_minutes", Integer),  # an extension the lead asked for, awaiting the centre
    Column("reported_by", String(200), index=True),  # the reporting actor's id ("my reports")
    Column("dispatched_at", _T),  # when the current dispatch was made (its calls' durations count from it)
    Column("feedback_due", _T),  # the current dispatch's feedback deadline (按时结案 judges by it)
    Column("lat", Float), Column("lon", Float),  # where it was reported (WGS-84), if a position was given
    Column("photo", String(100)),  # the report's first stored photo (file:<sha256>.jpg), for thumbnails
    # how often an extension granted or a resume moved its deadlines (0: never, so every deadline it
    # has is the rules' at its report and dispatches, which a what-if recomputes from its rows;
    # NULL: not known, a row projected before this column)
    Column("deadline_moves", Integer),
)

# Status history: one row whenever a ticket's status changes ("open by state as of T").
ticket_states = Table(
    "ticket_states", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("at", _T, nullable=False),
    Column("state", String(40), nullable=False),
)

# One department's share of one dispatch.
calls = Table(
    "calls", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("call_id", String(300), primary_key=True),
    Column("dispatch_no", Integer, nullable=False),
    Column("department", String(200), nullable=False, index=True),
    Column("role", String(20), nullable=False),
    Column("dispatched_at", _T, nullable=False, index=True),
    Column("ack_due", _T, nullable=False),
    Column("answer", String(20)),  # acknowledged | rejected
    Column("answered_at", _T),
    Column("handle_due", _T),  # lead calls only
    Column("feedback_due", _T),  # lead calls only
    Column("handled_at", _T),  # lead calls only
    Column("superseded_at", _T),  # a later dispatch replaced this call
    Column("closed_out_at", _T),  # the ticket ended while this call was unanswered
    Column("calendar", String(32)),  # fingerprint of the holiday table its deadlines were counted with
    Column("time_basis", String(20), nullable=False),
    Column("escalate_every_minutes", Integer, nullable=False),
    # minutes from the dispatch to the answer / the handling, in the call's time basis
    # (working minutes under the stored calendar: ``dispatch.projections.durations``)
    Column("ack_minutes", Float),
    Column("handle_minutes", Float),
    *(Column(name, String(200)) for name in ("category", "community", "street")),  # the ticket's (see _PLACED)
)

evaluations = Table(
    "evaluations", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("at", _T, nullable=False, index=True),
    Column("satisfaction", String(40), nullable=False),
    Column("resolved", Boolean, nullable=False),
    Column("contacted", Boolean, nullable=False),
    Column("department", String(200)),  # the lead department that handled what was evaluated
    Column("reopened_at", _T),  # a Reopened followed this evaluation
    Column("next_at", _T),  # the ticket's next evaluation: this one is its latest in [at, next_at)
    *(Column(name, String(200)) for name in ("category", "grid", "community", "street")),
)

escalations = Table(
    "escalations", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("at", _T, nullable=False, index=True),
    Column("deadline", String(200), nullable=False),
    Column("rung", Integer, nullable=False),
    Column("from_level", String(20), nullable=False),
    Column("to_level", String(20), nullable=False),
    Column("actor_role", String(40)),
    *(Column(name, String(200)) for name in ("category", "grid", "community", "street")),
)

reopens = Table(
    "reopens", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("at", _T, nullable=False),
    Column("reason", String(4000), nullable=False, default=""),
)

# _PLACED: calls, evaluations and escalations carry their ticket's category and place, so a
# figure of one street or community reads that place's rows of the period through these
# (place, time) indexes, and a figure grouped by place needs no join to tickets
Index("ix_evaluations_street_at", evaluations.c.street, evaluations.c.at)
Index("ix_evaluations_community_at", evaluations.c.community, evaluations.c.at)
Index("ix_escalations_street_at", escalations.c.street, escalations.c.at)
Index("ix_escalations_community_at", escalations.c.community, escalations.c.at)
Index("ix_ticket_states_at", ticket_states.c.at)
Index("ix_tickets_status", tickets.c.status)  # the few tickets the centre still has to accept or dispatch
# a place's tickets reported / closed in a period (one index range, whatever the place's size)
Index("ix_tickets_street_reported", tickets.c.street, tickets.c.reported_at)
Index("ix_tickets_community_reported", tickets.c.community, tickets.c.reported_at)
Index("ix_tickets_street_closed", tickets.c.street, tickets.c.closed_at)
Index("ix_tickets_community_closed", tickets.c.community, tickets.c.closed_at)
Index("ix_tickets_first_dispatched", tickets.c.first_dispatched_at)  # 按时结案: tickets first dispatched in a period
# one place's period (a street's or a community's dashboard page) reads only that place's rows
Index("ix_tickets_street_first_dispatched", tickets.c.street, tickets.c.first_dispatched_at)
Index("ix_tickets_community_first_dispatched", tickets.c.community, tickets.c.first_dispatched_at)
Index("ix_calls_street_dispatched", calls.c.street, calls.c.dispatched_at)
Index("ix_calls_community_dispatched", calls.c.community, calls.c.dispatched_at)
# a place's tickets open at an instant: not ended, or ended after it (``open_work``)
Index("ix_tickets_street_ended", tickets.c.street, tickets.c.ended_at)
Index("ix_tickets_community_ended", tickets.c.community, tickets.c.ended_at)

# Events the projections could not hold (see apply._quarantine): kept with their reason.
quarantined_events = Table(
    "quarantined_events", METADATA,
    Column("ticket_id", _Id, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("occurred_at", String(100), nullable=False),  # as recorded: it may be a time the database cannot hold
    Column("reason", String(500), nullable=False),
)

# -- rollups of settled history (``dispatch.projections.rollups``) ----------------------------------------
# Derived from the tables above, not from events: kept apart (``replay --verify`` compares the
# read model only) and rebuilt by ``dispatch rollup``. A day is one local calendar day of the
# reference data's timezone, "YYYY-MM-DD".
ROLLUPS = MetaData()
_Day = String(10)
_Unit = String(200)


def _rollup(name: str, *keys: Column[Any], counts: tuple[str, ...] = (), extra: tuple[Column[Any], ...] = ()) -> Table:
    # ``settled_day``: the local day by whose end the counted tickets had stopped changing (the
    # row's own day for many): a question as of an instant on a later day takes the row, and
    # reads the rows of the tickets settling later raw (``rollups.raw_rows``); ``*``: the
    # day's rows of every settled day summed (read when all of them are before the instant's day)
    table = Table(name, ROLLUPS, Column("day", _Day, primary_key=True), Column("dim", String(20), primary_key=True),
                  Column("unit", _Unit, primary_key=True), Column("settled_day", _Day, primary_key=True), *keys,
                  *(Column(c, Float if c.endswith("_sum") else Integer, nullable=False) for c in counts), *extra)
    # a question's summed rows (``settled_day = '*'``) of one dimension over a run of days, read
    # without the other dimensions' rows or the days' rows by settled day
    Index(f"ix_{name}_whole", table.c.dim, table.c.settled_day, table.c.day)
    return table


# the days rolled up: valid for an instant at or after ``settled_at`` (every time their rows hold
# is earlier); an event whose business time falls in a day deletes its row here (``forget``)
rollup_days = Table(
    "rollup_days", ROLLUPS,
    Column("day", _Day, primary_key=True),
    Column("day_start", _T, nullable=False, index=True),
    Column("day_end", _T, nullable=False),
    Column("settled_at", _T, nullable=False),
    Column("settled_by", _Day, nullable=False),  # the latest settled_day of its rows
)
# the weeks rolled up (Monday to Sunday, local): each family's rows of a week's seven days, their
# whole rows summed, kept under ``settled_day`` ``week`` and the week's Monday (``rollups.roll_up``):
# a district's quarter reads 13 of them instead of 91 days. Listed here only while all seven days
# are rolled up as they were then (rolling a day again takes its week out)
rollup_weeks = Table(
    "rollup_weeks", ROLLUPS,
    Column("week", _Day, primary_key=True),  # its Monday
    Column("week_start", _T, nullable=False),
    Column("week_end", _T, nullable=False),
    Column("settled_by", _Day, nullable=False),  # the latest settled_by of its days
)


def _ticket_days(name: str, *settles: Column[Any]) -> Table:
    return Table(name, ROLLUPS, Column("day", _Day, primary_key=True), Column("ticket_id", _Id, primary_key=True),
                 Column("day_start", _T, nullable=False), Column("day_end", _T, nullable=False), *settles)


# the tickets not ended when their day was rolled up: their rows of that day are read raw
rollup_open = _ticket_days("rollup_open", Column("settles_at", _T))  # set: ended, but a deadline its
# counts compare with the instant was still ahead (until then)
Index("ix_rollup_open_ticket", rollup_open.c.ticket_id, rollup_open.c.day)
# the rolled-up tickets whose counts still changed after their day ended (most: a ticket takes
# days), with when they stopped: asked as of an earlier instant, their part is worked out again
rollup_settles = _ticket_days("rollup_settles", Column("settles_at", _T, nullable=False),
                              Column("settled_day", _Day, nullable=False))  # the local day of settles_at
# a question's still-settling tickets, day by day, read from the index alone (``rollups.raw_rows``)
Index("ix_rollup_settles_day", rollup_settles.c.day, rollup_settles.c.settles_at, rollup_settles.c.day_start,
      rollup_settles.c.ticket_id)
Index("ix_rollup_settles_ticket", rollup_settles.c.ticket_id, rollup_settles.c.day)
CALL_COUNTS = ("dispatched", "answered", "rejected", "ack_on_time", "ack_waiting_late", "mtta_n", "mtta_sum",
               "lead_calls", "handled", "handle_on_time", "handle_overdue", "mtth_sum")
rollup_calls = _rollup("rollup_calls", Column("role", String(20), primary_key=True), counts=CALL_COUNTS)
# the day's minutes to report in / to handle, sorted float64 (merged exactly for percentiles)
rollup_minutes = _rollup("rollup_minutes", Column("metric", String(20), primary_key=True),
                         extra=(Column("n", Integer, nullable=False), Column("sorted", LargeBinary, nullable=False)))
rollup_closes = _rollup("rollup_closes", counts=("closed_tickets", "close_on_time", "close_waiting_late"))
rollup_centre = _rollup("rollup_centre", counts=("reported", "accept_on_time", "accept_judged", "dispatch_on_time",
                                                 "dispatch_judged"))
rollup_closed = _rollup("rollup_closed", counts=("n",))
rollup_escalations = _rollup("rollup_escalations", Column("level", String(20), primary_key=True), counts=("n",))
EVALUATION_COUNTS = ("evaluated", "satisfied", "basically_satisfied", "unsatisfied", "contacted", "resolved")
rollup_evaluations = _rollup("rollup_evaluations", counts=EVALUATION_COUNTS)
# distinct tickets do not add up over days: each evaluation row is counted with the local day of
# the ticket's previous one of the same unit (kind "evaluated"; "reopened": of the previous reopened
# one), "" for none; a ticket is new to a period when that day is before the period's first
rollup_firsts = _rollup("rollup_firsts", Column("kind", String(20), primary_key=True),
                        Column("prev_day", _Day, primary_key=True), counts=("n",))

# engines whose tables exist; weak, so a new engine at a dead one's address is not taken for it
_created: weakref.WeakSet[Engine] = weakref.WeakSet()


_creating = threading.Lock()  # threads of one process (a web server's) meeting a new database


def create_tables(engine: Engine) -> None:
    """Create the read-model tables if they are missing (idempotent)."""
    from dispatch.adapters.database import create_all, create_indexes

    with _creating:
        if _all_there(engine):  # the usual case, in one query instead of one per table and index
            _created.add(engine)
            return
        create_all(engine, METADATA)
        _drop_older_rollups(engine)
        create_all(engine, ROLLUPS)
        create_indexes(engine, (*METADATA.sorted_tables, *ROLLUPS.sorted_tables))  # a later version's, on tables that exist
        _created.add(engine)


def _all_there(engine: Engine) -> bool:
    """Whether every table and index of this version exists, the rollups in their current shape."""
    tables = [*METADATA.sorted_tables, *ROLLUPS.sorted_tables]
    indexes = [index.name for table in tables for index in table.indexes]
    if not all(isinstance(name, str) for name in indexes):
        return False
    if engine.dialect.name == "sqlite":
        query = "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index')"
    else:
        query = ("SELECT 'table', tablename FROM pg_tables WHERE schemaname = current_schema() UNION ALL "
                 "SELECT 'index', indexname FROM pg_indexes WHERE schemaname = current_schema()")
    with engine.connect() as conn:
        found = {(kind, name) for kind, name in conn.execute(text(query))}
        if not ({("table", t.name) for t in tables} | {("index", name) for name in indexes}) <= found:
            return False
        # the columns the database has (``_drop_older_rollups``' question)
        calls = set(conn.execute(text("SELECT * FROM rollup_calls LIMIT 0")).keys())
        days = set(conn.execute(text("SELECT * FROM rollup_days LIMIT 0")).keys())
    return "settled_day" in calls and "settled_by" in days


def _drop_older_rollups(engine: Engine) -> None:
    """Rollups an earlier version wrote (without ``settled_day``) dropped: derived data, rolled up
    again by ``dispatch rollup`` or the watchdog; until then questions read raw rows."""
    from sqlalchemy import inspect

    with engine.begin() as conn:
        found = inspect(conn)
        for table, column in ((rollup_calls, "settled_day"), (rollup_days, "settled_by")):
            if found.has_table(table.name) and column not in {c["name"] for c in found.get_columns(table.name)}:
                ROLLUPS.drop_all(conn, checkfirst=True)
                return


def ensure_tables(engine: Engine) -> None:
    if engine not in _created:
        create_tables(engine)


def stored_position(engine: Engine, source: str) -> int | None:
    """Where the projection of ``source`` stands (None: it has applied nothing yet)."""
    ensure_tables(engine)
    with engine.connect() as conn:
        value = conn.execute(select(positions.c.position).where(positions.c.source == source)).scalar()
    return None if value is None else int(value)


def add_missing_columns(engine: Engine) -> list[str]:
    """Columns this version's tables have and an older database's lack, added (nullable) and
    named ``table.column``; the caller refills the read model (``dispatch upgrade``)."""
    from sqlalchemy import inspect
    from sqlalchemy.schema import CreateColumn

    added = []
    with engine.begin() as conn:
        existing = inspect(conn)
        for table in METADATA.sorted_tables:
            if not existing.has_table(table.name):
                continue
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    spec = CreateColumn(column).compile(dialect=conn.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN {spec}')
                    added.append(f"{table.name}.{column.name}")
            for index in table.indexes:
                index.create(conn, checkfirst=True)
    return added


def clear(engine: Engine) -> None:
    """Empty every projection table and position (a refill from the event store follows)."""
    with engine.begin() as conn:
        for table in reversed(METADATA.sorted_tables):
            conn.execute(table.delete())
