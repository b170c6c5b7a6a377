"""What if the rules had been others: history replayed under another reference file's SLA rules,
routing, calendar and ladder, its figures beside the actual ones (``dispatch what-if``, /analysis).

The events keep every step's business time, so the deadlines the engine would have set under
other rules can be worked out exactly from what happened:

1. **The rules** (``rules_from``): a whole reference file, or one holding only rule sections
   (``sla`` — with each rule's ``escalate_every_minutes``, the ladder's pace —, ``categories``'
   routing, ``working_hours``, ``calendar_overrides``, ``calendar_years``; what ``dispatch reference
   export`` writes) laid over the rules in force. Places, departments, priorities and categories
   must be those in force, else a refusal listing the differences. The holiday table in force
   stays (``calendar_overrides`` move single days on top of it, as in ``init --reference``).
2. **The tickets** behind the period's figures (``projections.verdicts.touched``) and their stored
   events, read in chunks: the cost follows the period asked, not the history.
3. **The rewrite** (``rewrite``): each ticket's events folded in order (``lifecycle.fold``), every
   deadline an event carries set as the command handlers would have set it under the other
   rules at that event's business time — the centre's accept and dispatch deadlines at the
   report, report-in / handling / feedback at each dispatch, an extension granted, a hold's
   resumption — and nothing else changed. What happened stays what happened: who was called,
   who answered when, escalations that were made. Routing is shown as "would have led",
   not re-simulated work.
4. **The figures**: the rewritten events projected into a scratch read model in memory (the
   same projection code, working minutes under the other calendar), and the same questions
   asked of it as of the live read model (``sla`` by department / category / community / street,
   or a street's or community's dashboard). Nothing live is written.
5. **In worker processes** (``workers`` > 1, the CLI's default: one per CPU): each forked worker
   reads, rewrites and projects its share of the tickets into its own scratch file and judges its
   share's verdicts; the files are copied into the scratch read model.

**On PostgreSQL, an SLA question** skips the scratch (``in_database``): the database works the
deadlines and minutes out over the live rows in the statements that ask it
(``projections.derived``), the tickets whose deadlines moved going through their events and
their rows standing in; the figures, the changed verdicts and the count of tickets are asked side
by side. A calendar whose working days differ in length, SQLite and a dashboard's what-if go the
scratch's way; the tests hold both ways to the same answer.

Most tickets never had a deadline moved (``tickets.deadline_moves`` = 0: no extension granted, no
hold resumed). Every deadline such a ticket has is the one the rules gave at its report and at
each dispatch, so its rows say all the rewrite would: they are copied from the live read model
with those deadlines and the calls' durations worked out again under the other rules
(``recompute``: the same ``SlaPolicy`` calls as the rewrite, the same durations as the
projection) — a third of the time its events took to read, fold and project (measured on a
quarter at 100 k tickets); for an SLA question, of its statuses only the one it had at the
instant (``centre_counts`` reads no other; a dashboard's open work reads them all). Only the
others (and a row without the count: NULL) go through their events. The verdicts are judged
in the scratch's own database, beside a copy of the same tickets' live rows
(``verdicts.differing_rows``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import StaticPool

from dispatch.domain.errors import ReferenceDataError
from dispatch.domain.lifecycle import accept_deadline, dispatch_deadline, fold, new_state, open_deadlines
from dispatch.domain.reference import Reference, parse_reference_text, read_reference_data, reference_from_dict
from dispatch.domain.sla_policy import SlaPolicy

__all__ = ["CHANGED_COLUMNS", "SECTIONS", "changed_rows", "compare", "copy_unmoved", "differing", "export_rules",
           "in_database", "recompute", "rewrite", "rules_from", "what_if"]

# ``dispatch reference export --sections``: the keys of a reference file each section holds
SECTIONS: dict[str, tuple[str, ...]] = {
    "sla": ("sla",),
    "ladder": ("sla",),  # the ladder's pace is each SLA rule's escalate_every_minutes
    "routing": ("categories",),
    "calendar": ("working_hours", "calendar_overrides", "calendar_years"),
}
_RULE_KEYS = frozenset({"sample", "sla", "categories", "working_hours", "calendar_overrides", "calendar_years"})
_ROUTING = ("lead_department", "cooperating")
_CHUNK = 2_000  # tickets read, rewritten and projected at a time
NOTE = ("What happened stays what happened: the same reports, calls, answers, handling, evaluations and "
        "escalations, judged against the deadlines the other rules would have set. Routing is shown as "
        "who would have led or cooperated, not as work re-simulated.")


# -- the rules ---------------------------------------------------------------------------------------

def export_rules(reference: Reference, sections: Sequence[str] = tuple(SECTIONS)) -> dict[str, Any]:
    """The rules in force as a what-if file holds them (only ``sections``)."""
    body = reference.to_dict()
    out: dict[str, Any] = {}
    for section in sections:
        for key in SECTIONS[section]:
            if key == "categories":
                out[key] = [{"id": c["id"], "name": c["name"], **{k: c[k] for k in _ROUTING}}
                            for c in body["categories"]]
            elif key in body:
                out[key] = body[key]
    return out


def rules_from(current: Reference, path: str | None = None, *, text: str | None = None,
               name: str = "规则") -> Reference:
    """The reference data in force with the rules of the file at ``path``, or of YAML ``text``
    (named ``name`` in errors), as the module says."""
    if text is not None:
        data = parse_reference_text(text, name)
    else:
        name, data = read_reference_data(path, boundaries=False)
    if not isinstance(data, dict):
        raise ReferenceDataError(name, "", "the file must hold a mapping of sections")
    base = current.to_dict()
    if "districts" in data:  # a whole reference file
        merged = dict(data)
    else:
        for key in data:
            if key not in _RULE_KEYS:
                raise ReferenceDataError(name, str(key), "a rules file holds only sla, categories (their "
                                         "lead_department and cooperating), working_hours, calendar_overrides "
                                         "and calendar_years").saying(why="rules_sections")
        merged = {**base, **{k: v for k, v in data.items() if k != "categories"}}
        if "categories" in data:
            merged["categories"] = _merge_categories(name, base["categories"], data["categories"])
    merged.pop("boundaries", None)  # the places' geometry is the one in force
    other = reference_from_dict(merged, source=name)
    found = list(_differences(_fixed(current), _fixed(other)))
    if found:
        more = f" (and {len(found) - 10} more)" if len(found) > 10 else ""
        raise ReferenceDataError(name, "", "only the SLA rules, routing, calendar and ladder may differ from the "
                                 f"reference data in force; it differs in {'; '.join(found[:10])}{more}"
                                 ).saying(why="rules_differ", count=len(found))
    return replace(other, holidays=current.holidays, boundaries=current.boundaries)


def _merge_categories(name: str, base: list[dict[str, Any]], given: Any) -> list[dict[str, Any]]:
    if not isinstance(given, list):
        raise ReferenceDataError(name, "categories", "a list of categories, each with its id")
    by_id = {c["id"]: dict(c) for c in base}
    for i, item in enumerate(given):
        if not isinstance(item, dict) or item.get("id") not in by_id:
            raise ReferenceDataError(name, f"categories[{i}]", "names no category in force (give its id)"
                                     ).saying(why="rules_category")
        by_id[item["id"]].update(item)
    return list(by_id.values())


def _fixed(reference: Reference) -> dict[str, Any]:
    """What a what-if may not change: the places, departments, priorities and categories."""
    d = reference.to_dict()
    return {"timezone": d["timezone"], "districts": d["districts"], "departments": d["departments"],
            "priorities": d["priorities"],
            "categories": [{k: v for k, v in c.items() if k not in _ROUTING} for c in d["categories"]]}


def _differences(a: Any, b: Any, path: str = "") -> Iterator[str]:
    maps = _as_maps(a, b)
    if maps is None:
        if a != b:
            yield f"{path} ({a!r} in force, {b!r} here)"
        return
    left, right, named = maps
    for key in list(left) + [k for k in right if k not in left]:
        where = named(path, key)
        if key not in right:
            yield f"{where} missing"
        elif key not in left:
            yield f"{where} added"
        else:
            yield from _differences(left[key], right[key], where)


def _as_maps(a: Any, b: Any) -> tuple[dict[Any, Any], dict[Any, Any], Callable[[str, Any], str]] | None:
    """Two mappings to walk side by side (a list of items with ids is one, by id), and how a
    path names an entry; None for two values to compare."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a, b, lambda path, key: f"{path}.{key}" if path else str(key)
    if isinstance(a, list) and isinstance(b, list) and all(isinstance(x, dict) and "id" in x for x in a + b):
        return {x["id"]: x for x in a}, {x["id"]: x for x in b}, lambda path, key: f"{path}[{key}]"
    return None


# -- the rewrite -------------------------------------------------------------------------------------

def rewrite(records: Sequence[Any], policy: SlaPolicy) -> list[Any]:
    """One ticket's events (in version order) with every deadline set as the handlers would have
    set it under ``policy``'s rules (``dispatch.service.handlers``: report, dispatch, decide_extension,
    resume), each from the state the rewritten events before it leave."""
    from dispatch.projections.records import EventRecord

    state, out = new_state(), []
    for r in records:
        data = _rewritten(state, r.type, r.data, policy)
        fold(state, r.type, data, data["occurred_at"], r.version)
        out.append(EventRecord(r.position, r.ticket_id, r.version, r.type, data))
    return out


def _rewritten(s: Mapping[str, Any], kind: str, d: dict[str, Any], policy: SlaPolicy) -> dict[str, Any]:
    at = d["occurred_at"]
    try:
        if kind == "Reported" and d.get("accept_due") is not None:  # none: reported before the centre's deadlines
            centre = policy.centre_deadlines(d["category"], d["priority"], at)
            return {**d, "accept_due": centre.accept_due, "dispatch_due": centre.dispatch_due,
                    "centre_basis": centre.time_basis, "provisional": centre.provisional, "calendar": centre.calendar}
        if kind in ("Dispatched", "Redispatched"):
            due = policy.deadlines(s["category"], s["priority"], at)
            return {**d, "calls": [{**c, "ack_due": due.ack_due} for c in d["calls"]], "handle_due": due.handle_due,
                    "feedback_due": due.feedback_due, "time_basis": due.time_basis,
                    "escalate_every_minutes": due.escalate_every_minutes, "provisional": due.provisional,
                    "calendar": due.calendar}
        if kind == "ExtensionGranted" and s["extension"] is not None and s["handle_due"] is not None:
            minutes, basis = s["extension"]["minutes"], s["time_basis"] or "calendar"
            return {**d, "handle_due": policy.extended(basis, s["handle_due"], minutes),
                    "feedback_due": policy.extended(basis, s["feedback_due"] or s["handle_due"], minutes)}
        if kind == "Resumed" and s["held_since"] is not None:
            dues = {}
            for key, due in open_deadlines(s).items():
                basis = (s["centre_basis"] if key in (accept_deadline(), dispatch_deadline()) else s["time_basis"]) \
                    or "calendar"
                moved = policy.resumed(basis, due, s["held_since"], at)
                if moved != due:
                    dues[key] = moved
            return {**d, "dues": dues}
    except OverflowError:  # a time at the calendar's edge: the engine set none either (handlers.report)
        pass
    return d


# -- the tickets whose deadlines never moved: from their rows -----------------------------------------

ROWS_WHEN_UNMOVED = True  # False: every ticket through its events (the tests compare the two ways)
_AS_THEY_ARE = ("ticket_states", "evaluations", "escalations", "reopens")  # rows no rule changes


def copy_unmoved(live: Any, scratch: Any, tickets: Sequence[list[Any]], calls: Sequence[list[Any]],
                 policy: SlaPolicy, minutes: Callable[[str | None, Any, Any], float | None],
                 states_at: datetime | None = None) -> list[str]:
    """Of ``tickets`` and ``calls`` (rows of the live read model ``live``, SQLite or PostgreSQL, as
    ``_read`` gives them: changed here), the tickets whose deadlines never moved copied into the
    scratch read model (``scratch``, SQLite) with their deadlines and durations under ``policy``
    (``recompute``), their other rows read and copied as they are (with ``states_at``, of their
    statuses only the one each had at that instant: ``_copy``); the other tickets' ids, in
    order (their events decide)."""
    from dispatch.projections import tables as t

    moves = _index(t.tickets)["deadline_moves"]
    unmoved = {row[0]: row for row in tickets if row[moves] == 0}
    if not unmoved:
        return sorted(row[0] for row in tickets)
    theirs: dict[str, list[list[Any]]] = {}
    for call in calls:
        if call[0] in unmoved:
            theirs.setdefault(call[0], []).append(call)
    for tid, row in unmoved.items():
        recompute(row, theirs.get(tid, ()), policy, minutes)
    _insert(scratch, t.tickets, unmoved.values())
    _insert(scratch, t.calls, (call for rows in theirs.values() for call in rows))
    chosen = sorted(unmoved)
    for name in _AS_THEY_ARE:
        _copy(live, scratch, t.METADATA.tables[name], chosen, states_at if name == "ticket_states" else None)
    return sorted(row[0] for row in tickets if row[0] not in unmoved)


def recompute(ticket: list[Any], calls: Sequence[list[Any]], policy: SlaPolicy,
              minutes: Callable[[str | None, Any, Any], float | None]) -> None:
    """A ticket's row and its calls' rows (in the scratch read model's stored form, changed in
    place) with the deadlines ``policy`` gives at its report and at each dispatch — what
    ``_rewritten`` sets in its Reported and Dispatched events — and the calls' minutes to report
    in and to handle in the basis of those (``minutes``, as the projection counts them)."""
    from dispatch.projections import tables as t
    from dispatch.projections.durations import aware
    from dispatch.projections.writer import db_time_for_sqlite

    T, C = _index(t.tickets), _index(t.calls)
    category, priority = ticket[T["category"]], ticket[T["priority"]]
    if ticket[T["accept_due"]] is not None:  # none: reported before the centre's deadlines
        try:
            centre = policy.centre_deadlines(category, priority, aware(ticket[T["reported_at"]]))
        except OverflowError:  # at the calendar's edge: the engine set none either (handlers.report)
            pass
        else:
            ticket[T["accept_due"]] = db_time_for_sqlite(centre.accept_due)
            ticket[T["dispatch_due"]] = db_time_for_sqlite(centre.dispatch_due)
            ticket[T["centre_basis"]] = centre.time_basis
            if not ticket[T["dispatch_no"]]:  # a dispatch's replaces the report's (below)
                ticket[T["provisional"]] = centre.provisional
    dues: dict[int, Any] = {}
    for call in calls:
        no, at = call[C["dispatch_no"]], aware(call[C["dispatched_at"]])
        if no not in dues:
            try:
                dues[no] = policy.deadlines(category, priority, at)
            except OverflowError:
                dues[no] = None
        due = dues[no]
        if due is not None:
            lead = call[C["role"]] == "lead"
            call[C["ack_due"]] = db_time_for_sqlite(due.ack_due)
            call[C["handle_due"]] = db_time_for_sqlite(due.handle_due) if lead else None
            call[C["feedback_due"]] = db_time_for_sqlite(due.feedback_due) if lead else None
            call[C["time_basis"]], call[C["escalate_every_minutes"]] = due.time_basis, due.escalate_every_minutes
            call[C["calendar"]] = due.calendar
        basis = call[C["time_basis"]]
        call[C["ack_minutes"]] = minutes(basis, at, call[C["answered_at"]])
        call[C["handle_minutes"]] = minutes(basis, at, call[C["handled_at"]])
    last = dues.get(ticket[T["dispatch_no"]])
    if last is not None:  # the current dispatch's (none: at the calendar's edge, kept as it was)
        ticket[T["time_basis"]], ticket[T["provisional"]] = last.time_basis, last.provisional
        ticket[T["feedback_due"]] = db_time_for_sqlite(last.feedback_due)


_INDEXES: dict[str, dict[str, int]] = {}


def _index(table: Any) -> dict[str, int]:
    """Each column's place in ``table``'s rows as ``_read`` gives them."""
    found = _INDEXES.get(table.name)
    if found is None:
        found = _INDEXES[table.name] = {c.name: i for i, c in enumerate(table.columns)}
    return found


def _read(live: Any, table: Any, ids: Sequence[str], states_at: datetime | None = None) -> list[list[Any]]:
    """``table``'s rows of the tickets ``ids``, every column in order, in SQLite's stored form
    (on PostgreSQL, its times formatted so by the server: the same text, made in C); with
    ``states_at`` (``ticket_states`` only), each ticket's status at that instant alone."""
    from sqlalchemy import bindparam, text

    from dispatch.projections import tables as t

    if live.dialect.name == "sqlite":
        query = text(f"SELECT {', '.join(c.name for c in table.columns)} FROM {table.name} "
                     f"WHERE ticket_id IN :ids{_latest_only(table.name, states_at)}"
                     ).bindparams(bindparam("ids", expanding=True))
        return [list(r) for r in live.execute(query, {"ids": list(ids), "at": _stored(states_at)}).all()]
    names = ", ".join(f"to_char({c.name}, 'YYYY-MM-DD HH24:MI:SS.US')" if isinstance(c.type, t.UtcDateTime)
                      else c.name for c in table.columns)
    # the ids as one text split by the server (a bound array is quoted id by id in Python), the
    # rows straight from the driver's cursor (SQLAlchemy's rows would be made for nothing: a
    # quarter at 1.27 M reads 4 M of them)
    where = "ticket_id = ANY(string_to_array(%(ids)s, ','))"
    if states_at is not None:
        names, where = f"DISTINCT ON (ticket_id) {names}", f"{where} AND at <= %(at)s ORDER BY ticket_id, version DESC"
    with live.connection.driver_connection.cursor() as cursor:
        cursor.execute(f"SELECT {names} FROM {table.name} WHERE {where}", {"ids": ",".join(ids), "at": states_at})
        return [list(r) for r in cursor.fetchall()]


def _latest_only(table: str, states_at: datetime | None, live: str = "", at: str = ":at") -> str:
    """SQLite: the condition keeping, of ``table``'s (``ticket_states``') rows, each ticket's
    latest at or before the instant bound by the placeholder ``at`` (what ``measures``' status as
    of the instant reads); nothing without ``states_at``."""
    if states_at is None:
        return ""
    if table != "ticket_states":
        raise ValueError("only ticket_states are read as of an instant")
    return (f" AND version = (SELECT max(s.version) FROM {live}ticket_states s "
            f"WHERE s.ticket_id = {live}ticket_states.ticket_id AND s.at <= {at})")


def _stored(at: datetime | None) -> Any:
    from dispatch.projections.writer import db_time_for_sqlite

    return db_time_for_sqlite(at) if at is not None else None


def attach_live(live: Engine, scratch: Any) -> None:
    """A live SQLite file attached to the scratch connection as ``live`` (``_copy`` then copies
    rows in one statement, no row passing through Python; nothing is written there); a no-op
    for PostgreSQL or a database in memory. Before any transaction of ``scratch``."""
    path = live.url.database
    if live.dialect.name == "sqlite" and path not in (None, "", ":memory:"):
        scratch.exec_driver_sql("ATTACH DATABASE ? AS live", (path,))
        scratch.commit()


def _attached(scratch: Any) -> list[str]:
    """The databases ``_project`` attached to ``scratch``."""
    return [row[1] for row in scratch.exec_driver_sql("PRAGMA database_list") if row[1] in ("live", "actual")]


def _attach_copies(scratch: Any, path: str) -> None:
    """A database at ``path`` attached to ``scratch`` as ``actual``, with empty tables of the live
    tickets' and calls' rows, of the columns a verdict reads (``verdicts.JUDGED``; no secondary
    index: ``verdicts`` reads them by ticket)."""
    from sqlalchemy.schema import CreateTable

    scratch.exec_driver_sql("ATTACH DATABASE ? AS actual", (path,))
    for pragma in ("journal_mode=OFF", "synchronous=OFF"):  # scratch: thrown away with the what-if
        scratch.exec_driver_sql(f"PRAGMA actual.{pragma}")
    for table, _ in _copies_to_judge():
        scratch.execute(CreateTable(table))
    scratch.commit()


@cache
def _copies_to_judge() -> tuple[tuple[Any, Any], ...]:
    """The tables of the copy to judge (tickets, calls: ``verdicts.judged_tables``), each with
    what takes its columns out of a row as ``_read`` gives it."""
    from operator import itemgetter

    from sqlalchemy import MetaData

    from dispatch.projections import tables as t
    from dispatch.projections import verdicts as v

    return tuple((narrow, itemgetter(*[_index(table)[c.name] for c in narrow.columns]))
                 for narrow, table in zip(v.judged_tables(MetaData(), "actual"), (t.tickets, t.calls)))


def _copy_to_judge(scratch: Any, tickets: list[list[Any]], calls: list[list[Any]]) -> None:
    """The live rows of a chunk's tickets and calls into the copy to judge (``_attach_copies``)."""
    for (table, columns), rows in zip(_copies_to_judge(), (tickets, calls)):
        _insert(scratch, table, list(map(columns, rows)), "actual")


def _copy(live: Any, scratch: Any, table: Any, ids: Sequence[str], states_at: datetime | None = None) -> None:
    """``table``'s rows of the tickets ``ids`` copied as they are from the live read model into
    the scratch (``attach_live``: by one statement); with ``states_at``, of ``ticket_states``
    each ticket's latest at or before it only (``_read``)."""
    if "live" not in _attached(scratch):
        _insert(scratch, table, _read(live, table, ids, states_at))
        return
    names = ", ".join(c.name for c in table.columns)
    latest = _latest_only(table.name, states_at, "live.", "?")
    for i in range(0, len(ids), 900):  # SQLite's bound values a statement
        part = ids[i:i + 900]
        scratch.exec_driver_sql(f"INSERT INTO main.{table.name} ({names}) SELECT {names} FROM live.{table.name} "
                                f"WHERE ticket_id IN ({', '.join('?' * len(part))}){latest}",
                                (*part, *([_stored(states_at)] if latest else [])))


def _insert(scratch: Any, table: Any, rows: Any, schema: str = "main") -> None:
    values = rows if isinstance(rows, list) else list(rows)
    if values:  # by the driver: it binds a list's items as a tuple's (SQLAlchemy would ask for tuples)
        if not scratch.in_transaction():
            scratch.begin()  # (so the scratch's commit commits these rows too)
        names, marks = ", ".join(c.name for c in table.columns), ", ".join("?" for _ in table.columns)
        scratch.connection.driver_connection.executemany(
            f"INSERT INTO {schema}.{table.name} ({names}) VALUES ({marks})", values)


# -- the figures -------------------------------------------------------------------------------------

def _scratch() -> Engine:
    from dispatch.projections import tables as t

    engine = create_engine("sqlite://", poolclass=StaticPool)
    t.ensure_tables(engine)
    return engine


def _events(app: Any, ids: Sequence[str]) -> list[list[Any]]:
    """The stored events of the tickets ``ids``, decoded as the projections read them, per ticket."""
    from eventsourcing.persistence import Notification

    from dispatch.adapters.eventstore import stored_events
    from dispatch.projections.decode import records_from_notifications

    found = stored_events(app.recorder, [UUID(i) for i in ids])
    out = []
    for events in found.values():
        notes = [Notification(originator_id=e.originator_id, originator_version=e.originator_version, topic=e.topic,
                              state=e.state, id=e.originator_version) for e in events]
        out.append(records_from_notifications(notes, app.mapper))
    return out


def replayed(runtime: Any, ids: Sequence[str], reference: Reference,
             advance: Callable[[int], None] = lambda n: None, events: Any = None, workers: int = 1) -> Engine:
    """A scratch read model of the tickets ``ids`` under ``reference``'s rules (``events``: where
    their events come from, ``ids -> [[record, …] per ticket]``; the event store by default).
    ``workers`` > 1: that many forked processes, each projecting its share of the tickets into a
    scratch file, copied into the scratch read model at the end (a ticket's rows are its own, as
    in a parallel rebuild: ``replay.parallel``)."""
    return _replay(runtime, ids, reference, advance, events, workers, None)[0]


def _replay(runtime: Any, ids: Sequence[str], reference: Reference, advance: Callable[[int], None], events: Any,
            workers: int, period: Any, states_at: datetime | None = None) -> tuple[Engine, list[dict[str, Any]]]:
    """``replayed``, and with a ``period`` the deadlines whose verdict changed (``_changed``),
    each worker judging its own share. ``states_at``: of the statuses of the tickets copied from
    their rows, only the one each had at that instant (all an SLA question asks of them)."""
    from dispatch.projections.bulk import bulk_load

    engine = _scratch()
    workers = max(1, min(workers, len(ids) // _CHUNK))
    changed: list[dict[str, Any]] = []
    with bulk_load(engine, indexes=False) as conn:  # a fresh scratch, asked about nearly all its rows
        if workers > 1:
            changed = _project_in_workers(conn, runtime, ids, reference, advance, events, workers, period, states_at)
        else:
            changed = _project(conn, runtime, ids, reference, advance, events, period, states_at=states_at)
    changed.sort(key=_in_order)
    return engine, changed


def _judged(scratch: Any, ids: Sequence[str], period: Any) -> list[dict[str, Any]]:
    """The deadlines of ``ids`` whose verdict differs between the live read model (its tickets' and
    calls' rows copied as they are into the database attached to ``scratch`` as ``actual``: all a
    verdict reads) and the scratch one, judged in one database: only the differing ones leave it."""
    from dispatch.projections import verdicts as v

    return _changed(*v.differing_rows(scratch, ids, period.as_of, schema="actual", start=period.start,
                                      end=period.end))


def _project(conn: Any, runtime: Any, ids: Sequence[str], reference: Reference, advance: Callable[[int], None],
             events: Any, period: Any = None, copies: str = ":memory:",
             states_at: datetime | None = None) -> list[dict[str, Any]]:
    """The tickets ``ids`` read, rewritten and projected onto ``conn``, a chunk at a time; with a
    ``period``, their deadlines whose verdict changed (``_judged``: their live tickets' and calls'
    rows copied as they are into a database at ``copies`` attached as ``actual``)."""
    from dispatch.projections import tables as t
    from dispatch.projections.apply_events import TicketRows, apply_batch
    from dispatch.projections.durations import minutes_from

    policy = SlaPolicy(reference)
    minutes = minutes_from(policy)
    attach_live(runtime.engine, conn)
    if period is not None:
        _attach_copies(conn, copies)
    try:
        for n, i in enumerate(range(0, len(ids), _CHUNK)):
            chunk = ids[i:i + _CHUNK]
            with conn.begin():  # every ticket whole in its chunk: no position, nothing kept between
                with runtime.engine.connect() as live:
                    tickets, calls = _read(live, t.tickets, chunk), _read(live, t.calls, chunk)
                    if period is not None:
                        _copy_to_judge(conn, tickets, calls)
                    moved = copy_unmoved(live, conn, tickets, calls, policy, minutes, states_at) \
                        if ROWS_WHEN_UNMOVED else chunk
                if moved:
                    found = events(moved) if events is not None else _events(runtime.store, moved)
                    records = [r for ticket in found for r in rewrite(ticket, policy)]
                    apply_batch(conn, records, source="what-if", position=n, rows=TicketRows(), claim=False,
                                minutes=minutes)
            advance(len(chunk))
        return _judged(conn, ids, period) if period is not None else []
    finally:
        conn.rollback()  # the judging's reads: every chunk is committed
        for name in _attached(conn):
            conn.exec_driver_sql(f"DETACH DATABASE {name}")


def _project_in_workers(conn: Any, runtime: Any, ids: Sequence[str], reference: Reference,
                        advance: Callable[[int], None], events: Any, workers: int,
                        period: Any, states_at: datetime | None) -> list[dict[str, Any]]:
    import multiprocessing
    import shutil
    import tempfile
    from pathlib import Path

    from dispatch.service.replay.parallel import collect, merge_sqlite, stop

    ctx = multiprocessing.get_context("fork")
    folder = tempfile.mkdtemp(prefix="dispatch-what-if-")
    paths = [str(Path(folder) / f"w{i}.db") for i in range(workers)]
    results, counter = ctx.Queue(), ctx.Value("q", 0)
    procs = [ctx.Process(target=_child, args=(results, i, runtime, ids[i::workers], reference, paths[i], events,
                                              counter, period, states_at), name=f"what-if-{i}", daemon=True)
             for i in range(workers)]
    try:
        judged, _ = collect(procs, results, counter, advance, "what-if")
        merge_sqlite(conn, paths, None)
    finally:
        stop(procs)
        shutil.rmtree(folder, ignore_errors=True)
    return [row for i in range(workers) for row in judged[i]]


def _child(results: Any, index: int, runtime: Any, ids: Sequence[str], reference: Reference, path: str,
           events: Any, counter: Any, period: Any, states_at: datetime | None) -> None:
    """A forked worker: its share projected into its own scratch file (and, with a ``period``,
    its share's changed verdicts)."""
    from dispatch.service.replay.parallel import scratch_engine

    try:
        runtime.forget_connections()  # the parent's stay the parent's
        engine = scratch_engine(path)
        with engine.connect() as conn:
            for pragma in ("journal_mode=OFF", "synchronous=OFF"):
                conn.exec_driver_sql(f"PRAGMA {pragma}")
            conn.commit()

            def advance(n: int) -> None:
                with counter.get_lock():
                    counter.value += n

            judged = _project(conn, runtime, ids, reference, advance, events, period, f"{path}-actual", states_at)
        engine.dispose()
        results.put((index, judged, None))
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        results.put((index, None, str(error) or type(error).__name__))


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _flat(prefix: str, data: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flat(f"{prefix}{key}.", value)
        elif _number(value):
            yield f"{prefix}{key}", value


def _sla_units(data: Mapping[str, Any]) -> dict[tuple[str, str | None], tuple[str, dict[str, Any]]]:
    by = data["by"]
    skip = {by, "name", "period", "period_start", "period_end"}
    return {(row[by], row.get("period")): (row.get("name") or row[by],
                                           dict(_flat("", {k: v for k, v in row.items() if k not in skip})))
            for row in data["rows"]}


def _dashboard_units(data: Mapping[str, Any]) -> dict[tuple[str, str | None], tuple[str, dict[str, Any]]]:
    unit = str(data.get("street") or data.get("community"))
    parts = {k: v for k, v in data.items() if k not in ("communities", "grids", "ranking", "unranked")}
    out: dict[tuple[str, str | None], tuple[str, dict[str, Any]]] = {
        (unit, None): (str(data.get("name") or unit), dict(_flat("", parts)))}
    for kind in ("communities", "grids"):
        for item in data.get(kind) or []:
            key = item["community" if kind == "communities" else "grid"]
            out[(key, None)] = (item.get("name") or key, dict(_flat("", item)))
    return out


def _delta(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    delta = b - a
    return round(delta, 6) if isinstance(delta, float) else delta


def compare(actual: Mapping[tuple[str, str | None], tuple[str, dict[str, Any]]],
            other: Mapping[tuple[str, str | None], tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every figure of every unit (and period): actual, what-if, difference."""
    rows = []
    for key in sorted(set(actual) | set(other), key=lambda k: (k[0], k[1] or "")):
        name, a = actual.get(key, (None, {}))
        other_name, b = other.get(key, (None, {}))
        for figure in list(a) + [f for f in b if f not in a]:
            av, bv = a.get(figure), b.get(figure)
            row = {"unit": key[0], "name": name or other_name, "figure": figure, "actual": av, "what_if": bv,
                   "delta": _delta(av, bv)}
            if key[1] is not None:
                row["period"] = key[1]
            rows.append(row)
    return rows


def _changed(live: Mapping[tuple[str, str], dict[str, Any]],
             other: Mapping[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for key in sorted(set(live) | set(other)):
        a, b = live.get(key), other.get(key)
        if (a or {}).get("verdict") == (b or {}).get("verdict"):
            continue
        base = a or b or {}
        out.append({"ticket_id": key[0], "case_no": base.get("case_no"), "deadline": key[1],
                    "department": base.get("department") or None,
                    "due": (a or {}).get("due"), "due_what_if": (b or {}).get("due"), "done_at": base.get("done"),
                    "verdict": (a or {}).get("verdict"), "verdict_what_if": (b or {}).get("verdict")})
    return out


def _in_order(changed: Mapping[str, Any]) -> tuple[str, str, str]:
    """How the changed deadlines are listed: by case number, ticket, deadline."""
    return changed["case_no"] or "", changed["ticket_id"], changed["deadline"]


_CHANGED_KEYS = ("ticket_id", "case_no", "deadline", "department", "due", "due_what_if", "done_at", "verdict",
                 "verdict_what_if")  # a changed deadline's (``_changed``; ``verdicts.changed_derived``'s order)
CHANGED_COLUMNS = [("case_no", "string"), ("ticket_id", "string"), ("deadline", "string"), ("department", "string"),
                   ("due", "time"), ("due_what_if", "time"), ("done_at", "time"), ("verdict", "string"),
                   ("verdict_what_if", "string")]


def changed_rows(result: Mapping[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The changed deadlines of a ``what_if`` result as rows of ``CHANGED_COLUMNS`` (for CSV)."""
    for r in result["changed_tickets"]:
        yield tuple(r[name] for name, _ in CHANGED_COLUMNS)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _routing(current: Reference, other: Reference, leads: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
    """The categories routed otherwise, with the period's dispatches and who led them."""
    out = []
    for cid, now in current.categories.items():
        then = other.categories[cid]
        if (now.lead_department, tuple(now.cooperating)) == (then.lead_department, tuple(then.cooperating)):
            continue
        led = {dept: n for (category, dept), n in sorted(leads.items()) if category == cid}
        out.append({"category": cid, "name": now.name, "lead": now.lead_department,
                    "cooperating": list(now.cooperating), "lead_what_if": then.lead_department,
                    "cooperating_what_if": list(then.cooperating), "dispatches": sum(led.values()), "led_by": led})
    return out


def what_if(runtime: Any, path: str | None, *, period: Any, text: str | None = None, by: str | None = None, per: str | None = None,
            street: str | None = None, community: str | None = None, dashboard: bool = False,
            settings: Any = None, identity: Any = None, progress: bool = False, events: Any = None,
            workers: int = 1) -> dict[str, Any]:
    """The figures of ``dispatch sla`` (``by``, ``per``) or of a dashboard (``dashboard``, of
    ``street`` or ``community``) for ``period`` (a ``queries.Window``), actual and under the
    rules of the file at ``path`` (or of YAML ``text``), with the deadlines whose verdict changed and the routing
    that differs. Read-only; ``identity`` limits it as the same view would be. ``workers``: processes
    projecting the tickets (``replayed``)."""
    from dispatch.adapters.database import SERIAL_PLANS
    from dispatch.projections import measures as m
    from dispatch.projections import verdicts as v
    from dispatch.projections.dashboard import community_dashboard, street_dashboard
    from dispatch.projections.figures import Settings
    from dispatch.projections.side_by_side import side_by_side
    from dispatch.projections.sla_stats import sla_statistics
    from dispatch.service import queries
    from dispatch.service.replay.progress import EventProgress

    settings = settings or Settings()
    other = rules_from(runtime.reference, path, text=text)
    if dashboard:
        actual = queries.dashboard(runtime, street=street, community=community, period=period, settings=settings,
                                   identity=identity)
        street, community = actual.get("street") if "communities" in actual else None, \
            actual.get("community") if "grids" in actual else None
    else:
        if by is None:
            raise ValueError("what_if needs ``by`` or ``dashboard``")
        actual = queries.sla(runtime, identity=identity, by=by, per=per, period=period, settings=settings,
                             street=street, community=community)
        scope = actual.get("scope") or {}
        street, community = scope.get("street"), scope.get("community")
    q = m.Question(period.as_of, period.start, period.end, street=street, community=community)

    # the lead calls beside the moved tickets' look-up (a core each)
    readers: dict[str, Callable[[Any], Any]] = {"leads": lambda c: v.lead_calls(c, q)}
    if not dashboard:
        readers["derived"] = lambda c: in_database(c, other, q, lambda ids: _moved_rows(runtime, ids, other, events))
    with runtime.engine.connect() as conn:
        got = side_by_side(runtime.engine, conn, readers)
    leads, derived = got["leads"], got.get("derived")
    if derived is not None:
        # its statements read side by side, planned without parallel workers to contend with
        engine = runtime.engine.execution_options(**{SERIAL_PLANS: True})
        theirs, changed, count = _asked_in_database(engine, derived, q, progress, lambda: sla_statistics(
            engine, other, by=by or "", period=per, as_of=period.as_of, start=period.start,
            end=period.end, settings=settings, street=street, community=community, adapt=derived.adapt))
        rows = compare(_sla_units(actual), _sla_units(theirs))
        return _result(dashboard, by, per, street, community, period, path, count, rows, changed,
                       _routing(runtime.reference, other, leads))
    with runtime.engine.connect() as conn:
        ids = v.touched(conn, q, open_too=dashboard)
    with EventProgress(len(ids), "what-if", enabled=progress, unit="tickets") as bar:
        # an SLA question reads of a ticket's statuses only the one it had at the instant
        # (``measures.centre_counts``); a dashboard's open work reads them all
        scratch, changed = _replay(runtime, ids, other, bar.advance, events, workers, period,
                                   None if dashboard else period.as_of)
    try:
        if dashboard:
            make = street_dashboard if street else community_dashboard
            theirs = make(scratch, other, street or community or "", as_of=period.as_of, start=period.start,
                          end=period.end, settings=settings)
            rows = compare(_dashboard_units(actual), _dashboard_units(theirs))
        else:
            theirs = sla_statistics(scratch, other, by=by or "", period=per, as_of=period.as_of, start=period.start,
                                    end=period.end, settings=settings, street=street, community=community)
            rows = compare(_sla_units(actual), _sla_units(theirs))
    finally:
        scratch.dispose()
    return _result(dashboard, by, per, street, community, period, path, len(ids), rows, changed,
                   _routing(runtime.reference, other, leads))


def _asked_in_database(engine: Any, derived: Any, q: Any, progress: bool,
                       figures: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The what-if's ``figures``, its changed verdicts and the number of tickets behind them, asked
    of the live rows as ``derived`` works them out, side by side — each on a connection and a
    thread of its own, so PostgreSQL works on one while this process shapes another's rows."""
    from concurrent.futures import ThreadPoolExecutor

    from dispatch.projections import verdicts as v
    from dispatch.service.replay.progress import EventProgress

    def verdicts() -> list[dict[str, Any]]:
        with engine.connect() as conn:
            found = [dict(zip(_CHANGED_KEYS, row)) for row in v.changed_derived(conn, q, derived, engine)]
        found.sort(key=_in_order)
        return found

    def count() -> int:
        with engine.connect() as conn:
            return v.touched_count(conn, q)

    with EventProgress(3, "what-if", enabled=progress, unit="parts") as bar, ThreadPoolExecutor(2) as pool:
        changed, counted = pool.submit(verdicts), pool.submit(count)
        theirs = figures()
        bar.advance(1)
        found = changed.result()
        bar.advance(1)
        number = counted.result()
        bar.advance(1)
        return theirs, found, number


def _result(dashboard: bool, by: str | None, per: str | None, street: str | None, community: str | None,
            period: Any, path: str | None, tickets: int, rows: list[dict[str, Any]],
            changed: list[dict[str, Any]], routing: list[dict[str, Any]]) -> dict[str, Any]:
    return {"question": {"view": "dashboard" if dashboard else "sla", "by": None if dashboard else by, "period": per,
                         "street": street, "community": community, "as_of": period.as_of.isoformat(),
                         "from": _iso(period.start), "to": _iso(period.end)},
            "reference": str(path) if path is not None else "规则", "tickets": tickets, "rows": rows,
            "changed": len(changed), "changed_tickets": changed, "routing": routing, "note": NOTE}


# -- in the database -----------------------------------------------------------------------------------

IN_DATABASE = True  # False: PostgreSQL's what-ifs too through the scratch read model (the tests compare)


def in_database(conn: Any, other: Reference, q: Any,
                moved_rows: Callable[[Sequence[str]], dict[str, list[dict[str, Any]]]]) -> Any:
    """The live rows as ``other``'s rules would have them, for PostgreSQL to ask an SLA question
    of (``projections.derived.Derived``), when it can: on PostgreSQL, with a working calendar
    whose working days are alike over the span. The tickets behind the question whose deadlines
    moved (an extension, a hold: their events decide) go through their events
    (``moved_rows(ids)``: their rows of ``derived.MOVED``'s columns, by table) and their rows
    are taken as those give them. None otherwise (the scratch read model's way)."""
    from datetime import timedelta

    from sqlalchemy import func, or_, select

    from dispatch.projections import tables as t
    from dispatch.projections import verdicts as v
    from dispatch.projections.derived import Calendar, Derived

    if not IN_DATABASE or conn.dialect.name != "postgresql":
        return None
    tk = t.tickets.c
    first = q.start or conn.execute(select(func.min(tk.reported_at))).scalar()
    if first is None:
        return None
    # a ticket's closing is judged by its latest dispatch's feedback deadline, made after the instant
    # too: the calendar reaches the latest dispatch there is (one look at the calls' time index)
    last = max(q.as_of, conn.execute(select(func.max(t.calls.c.dispatched_at))).scalar() or q.as_of)
    policy = SlaPolicy(other)
    tz = policy.calendar.tz
    most = max(max(r.ack_minutes, r.handle_minutes, r.feedback_minutes, r.accept_minutes, r.dispatch_minutes)
               for r in other.sla_rules)
    calendar = Calendar.of(policy.calendar, first.astimezone(tz).date() - timedelta(days=1),
                           last.astimezone(tz).date() + timedelta(days=1), most)
    if calendar is None:
        return None
    # (the moved tickets first, then whether the question reads them: cost follows their number)
    # (sorted here: ordered by the database, a planner may walk the whole key index for it)
    moved = sorted(conn.execute(select(tk.ticket_id).where(or_(tk.deadline_moves.is_(None), tk.deadline_moves != 0),
                                                           v.touches(q))).scalars())
    return Derived(other, calendar, moved_rows(moved) if moved else {}, since=q.start)  # (no question of it reads earlier)


def _moved_rows(runtime: Any, ids: Sequence[str], reference: Reference, events: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows the rules change (``derived.MOVED``' columns) of the tickets ``ids``, as their
    events rewritten under ``reference``'s rules make them (``replayed``)."""
    from sqlalchemy import select

    from dispatch.projections import tables as t
    from dispatch.projections.derived import MOVED

    scratch = replayed(runtime, ids, reference, events=events)
    try:
        with scratch.connect() as conn:
            return {name: [dict(row._mapping) for row in conn.execute(select(*[table.c[c] for c in MOVED[name]]))]
                    for name, table in (("tickets", t.tickets), ("calls", t.calls))}
    finally:
        scratch.dispose()


def differing(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The rows whose figure moved."""
    return [r for r in rows if r["actual"] != r["what_if"] and not _same_float(r["actual"], r["what_if"])]


def _same_float(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=0, abs_tol=1e-9)
