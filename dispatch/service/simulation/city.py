"""A city-scale read model for the read-side benchmark: a year of a whole district in minutes.

Running a million tickets through the aggregates takes hours; the read side only needs their
events. So the simulation (its arrival, department and citizen profiles, the watchdog's
escalations) runs once for a short *template* — every street of the district for
``template_days`` days — and the template's events are then laid down again and again, shifted
in time by whole weeks (plus a few hours for the copies within one week) and under fresh ticket
ids, through the real projection code (``apply_batch``) into the read model. Every ticket of a
copy is a ticket of the simulation: its calls, answers, escalations, evaluations and reopens
keep their shapes; only its times and id are new.
"""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from dispatch.projections import catch_up
from dispatch.projections.apply_events import TicketRows, apply_batch
from dispatch.projections.reader import StoreReader
from dispatch.projections.records import DATETIME_FIELDS, EventRecord

__all__ = ["CopiedEvents", "Template", "lay_down", "plan_of", "simulate_template", "variant_places", "with_variants"]

_NS = uuid.UUID("5b0a6f1e-7c3d-4e1a-9a43-0c1d2e3f4a5b")
_TIME_MAPS = frozenset({"dues"})
_ENDS = frozenset({"Closed", "ClosedAtFirstContact", "Cancelled", "MarkedDuplicate"})


@dataclass(frozen=True)
class Template:
    """The events of the tickets reported in the template's first ``week`` (their whole
    history, up to the template's end), in store order, and when that week began."""

    records: list[EventRecord]
    start: datetime
    tickets: int
    unfinished: frozenset[uuid.UUID] = frozenset()  # still open at the template's end
    places: frozenset[str] = frozenset()  # the street, community and grid ids its tickets name


def simulate_template(runtime: Any, *, start: datetime, days: int = 14, per_day: float = 300, seed: int = 11,
                      week: int = 7) -> Template:
    """Simulate every street of ``runtime``'s reference for ``days`` days (``per_day`` tickets
    a day each) and keep the tickets reported in the first ``week`` days (noting those still
    open at the end: only the last week's copies keep them, so the backlog stays what a week's
    tail leaves, not a year of them)."""
    from dispatch.service.simulation import simulate
    from dispatch.service.simulation.runner import run_embedded

    import heapq

    streams = [simulate(runtime.reference, street, days, per_day, seed + i, start)
               for i, street in enumerate(sorted(runtime.reference.streets))]
    merged = heapq.merge(*streams, key=lambda step: step[0])
    run_embedded(runtime, merged, start=start, end=start + timedelta(days=days))
    catch_up(runtime)
    reader, records, position = StoreReader(runtime.app), [], 0
    while True:
        page, last, read = reader.page(position + 1, 20_000)
        if not read:
            break
        records.extend(page)
        position = last
    cut = start + timedelta(days=week)
    kept = {r.ticket_id for r in records if r.type == "Reported" and r.occurred_at < cut}
    chosen = [r for r in records if r.ticket_id in kept]
    ended = {r.ticket_id for r in chosen if r.type in _ENDS}
    places = {r.data[k] for r in chosen if r.type == "Reported" for k in ("street", "community", "grid")}
    return Template(chosen, start, len(kept), frozenset(kept - ended), frozenset(places))


def _shift(value: Any, delta: timedelta, key: str, ids: dict[str, str]) -> Any:
    if isinstance(value, dict):
        if key in _TIME_MAPS:
            return {k: v + delta if isinstance(v, datetime) else v for k, v in value.items()}
        return {k: _shift(v, delta, k, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta, "", ids) for v in value]
    if isinstance(value, datetime) and key in DATETIME_FIELDS:
        return value + delta
    if isinstance(value, str) and value in ids:
        return ids[value]
    return value


_CN = "一二三四五六七八九十"


def with_variants(reference: dict[str, Any], variants: int) -> dict[str, Any]:
    """Reference data (``Reference.to_dict()``) with every street repeated ``variants`` times
    in its district — ``caojing``, ``caojing-2``, … with their communities and grids (ids
    suffixed, names numbered; no boundaries for the repeats): a district of several streets of
    the sample's shape, for copies laid down side by side (``lay_down(variants=)``)."""
    import copy

    out = copy.deepcopy(reference)
    for district in out["districts"]:
        originals = list(district["streets"])
        for v in range(2, variants + 1):
            for street in originals:
                clone = copy.deepcopy(street)
                clone["id"], clone["name"] = f"{street['id']}-{v}", f"{street['name']}{_CN[v - 1]}"
                for community in clone["communities"]:
                    community["id"] = f"{community['id']}-{v}"
                    for grid in community["grids"]:
                        grid["id"] = f"{grid['id']}-{v}"
                district["streets"].append(clone)
    return out


def variant_places(template: Template, variant: int) -> dict[str, str]:
    """The template's street, community and grid ids → those of repeat ``variant`` (1: itself)."""
    return {} if variant <= 1 else {p: f"{p}-{variant}" for p in template.places}


def copies(template: Template, weeks: int, per_week: int) -> Iterator[tuple[int, timedelta]]:
    """(copy number, shift): ``per_week`` copies a week, a few hours apart, for ``weeks`` weeks."""
    for w in range(weeks):
        for k in range(per_week):
            yield w * per_week + k, timedelta(weeks=w, hours=k * 7, minutes=k * 13)


def copy_records(template: Template, number: int, delta: timedelta, *, unfinished: bool = True,
                 places: dict[str, str] | None = None) -> list[EventRecord]:
    """The template's events as copy ``number``: new ticket ids, times moved by ``delta``, the
    places renamed by ``places`` (``unfinished=False``: without the tickets still open at the
    template's end)."""
    ids = {str(r.ticket_id): str(uuid.uuid5(_NS, f"{r.ticket_id}:{number}")) for r in template.records
           if r.type == "Reported"}
    ids.update(places or {})
    out = []
    for r in template.records:
        if not unfinished and r.ticket_id in template.unfinished:
            continue
        data = _shift(r.data, delta, "", ids)
        if r.type == "Reported" and data.get("case_no"):
            data["case_no"] = f"{data['case_no']}-{number}"
        out.append(replace(r, ticket_id=uuid.UUID(ids[str(r.ticket_id)]), data=data))
    return out


def lay_down(engine: Engine, template: Template, *, weeks: int, per_week: int = 1, first_week: int = 0,
             workers: int = 1, variants: int = 1, on_progress: Callable[[int], None] | None = None) -> int:
    """Project ``weeks`` × ``per_week`` copies of the template into ``engine``'s read model
    (weeks ``first_week`` … counted from the template's start); returns the tickets laid down.
    With ``variants`` > 1 the copies of a week go round the repeated streets (``with_variants``).
    With ``workers`` > 1, forked processes take every n-th copy (PostgreSQL)."""
    plan = plan_of(template, weeks=weeks, per_week=per_week, first_week=first_week, variants=variants)
    last = max(d for _, d, _ in plan) - timedelta(weeks=1) if plan else timedelta()
    if workers <= 1:
        _lay(engine, template, plan, last, on_progress)
    else:
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_child, args=(engine, template, plan[i::workers], last)) for i in range(workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            if p.exitcode != 0:
                raise RuntimeError(f"a copy worker failed (exit {p.exitcode})")
    return sum(template.tickets - (0 if d > last else len(template.unfinished)) for _, d, _ in plan)


def _child(engine: Engine, template: Template, plan: list[tuple[int, timedelta, int]], last: timedelta) -> None:
    engine.dispose(close=False)
    _lay(engine, template, plan, last, None)


def _lay(engine: Engine, template: Template, plan: list[tuple[int, timedelta, int]], last: timedelta,
         on_progress: Callable[[int], None] | None) -> None:
    """Lay the copies of ``plan`` down; those after ``last`` (the final week's) keep the tickets
    still open at the template's end."""
    from dispatch.projections import tables as t
    from dispatch.projections.durations import minutes_for

    t.ensure_tables(engine)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET synchronous_commit = off")
        minutes = minutes_for(conn)
        conn.commit()
        for number, delta, variant in plan:
            records = copy_records(template, number, delta, unfinished=delta > last,
                                   places=variant_places(template, variant))
            rows = TicketRows()
            with conn.begin():
                for i in range(0, len(records), 10_000):
                    apply_batch(conn, records[i:i + 10_000], source="city", position=0, claim=False,
                                rows=rows, minutes=minutes)
            if on_progress is not None:
                on_progress(template.tickets)


class CopiedEvents:
    """The events of laid-down copies, by ticket id, made again from the template (a city-scale
    read model has no event store behind it): what ``dispatch.service.whatif`` reads for the benchmark.
    ``plan`` as ``lay_down`` makes it: (copy number, shift, street variant)."""

    def __init__(self, template: Template, plan: list[tuple[int, timedelta, int]]):
        self.template = template
        self.by_ticket: dict[uuid.UUID, list[EventRecord]] = {}
        for r in template.records:
            self.by_ticket.setdefault(r.ticket_id, []).append(r)
        self.copies: dict[str, tuple[uuid.UUID, int]] = {}  # copy id -> (template ticket, plan index)
        self.plan = plan
        for index, (number, _, _) in enumerate(plan):
            for tid in self.by_ticket:
                self.copies[str(uuid.uuid5(_NS, f"{tid}:{number}"))] = (tid, index)
        self._ids: dict[int, dict[str, str]] = {}

    def _names(self, index: int) -> dict[str, str]:
        found = self._ids.get(index)
        if found is None:
            number, _, variant = self.plan[index]
            found = {str(tid): str(uuid.uuid5(_NS, f"{tid}:{number}")) for tid in self.by_ticket}
            found.update(variant_places(self.template, variant))
            self._ids = {index: found}  # one copy's names at a time: memory
        return found

    def __call__(self, ids: list[str]) -> list[list[EventRecord]]:
        out = []
        for cid in sorted(ids, key=lambda i: self.copies[i][1] if i in self.copies else -1):
            if cid not in self.copies:
                continue
            tid, index = self.copies[cid]
            names, delta = self._names(index), self.plan[index][1]
            out.append([replace(r, ticket_id=uuid.UUID(cid), data=_shift(r.data, delta, "", names))
                        for r in self.by_ticket[tid]])
        return out


def plan_of(template: Template, *, weeks: int, per_week: int = 1, first_week: int = 0,
            variants: int = 1) -> list[tuple[int, timedelta, int]]:
    """The copies ``lay_down`` lays with these arguments."""
    return [(n, d + timedelta(weeks=first_week), n % per_week % variants + 1)
            for n, d in copies(template, weeks, per_week)]
