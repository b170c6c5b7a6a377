"""Database commands: ``init`` (create, or change the reference data with consent),
``check`` (SQLite's integrity check) and ``upgrade`` (explicit schema upgrades)."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from sqlalchemy import text

from dispatch.adapters.config import resolve_db
from dispatch.adapters.dberrors import translate_db_errors
from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.domain.errors import DatabaseNotFound, WouldOrphanTickets
from dispatch.domain.reference import Reference, load_reference

__all__: list[str] = []

_SHOWN = 10  # names listed per kind in a refusal


def _in_use(ctx: Ctx) -> dict[str, set[str]]:
    """Ids the recorded tickets use, from the read model (brought up to date first)."""
    ctx.catch_up()
    with ctx.runtime.engine.connect() as conn:
        def ids(sql: str) -> set[str]:
            return {row[0] for row in conn.execute(text(sql)) if row[0] is not None}
        return {
            "grids": ids("SELECT DISTINCT grid FROM tickets"),
            "categories": ids("SELECT DISTINCT category FROM tickets"),
            "priorities": ids("SELECT DISTINCT priority FROM tickets"),
            "departments": ids("SELECT DISTINCT department FROM calls"),
        }


def orphaned(in_use: dict[str, set[str]], new: Reference) -> dict[str, list[str]]:
    """What ``new`` would remove that recorded tickets still use."""
    tables: dict[str, dict[str, Any]] = {"grids": new.grids, "categories": new.categories,
                                         "priorities": new.priorities, "departments": new.departments}
    removed = {kind: sorted(used - tables[kind].keys()) for kind, used in in_use.items()}
    return {kind: names for kind, names in removed.items() if names}


@main.command()
@click.option("--reference", "reference_file", type=click.Path(dir_okay=False), help="Your reference-data YAML/JSON.")
@click.option("--force", is_flag=True, help="Replace the reference data even where recorded tickets use what it "
              "removes (the change is recorded).")
@pass_ctx
def init(ctx: Ctx, reference_file: str | None, force: bool) -> None:
    """Create the database and store the reference data (the bundled sample by default)."""
    new = load_reference(reference_file) if reference_file else None  # validated before touching anything
    from dispatch.bootstrap import bootstrap

    ctx._runtime = bootstrap(ctx.db_url, create=True)
    rt = ctx.runtime
    if new is not None and new.to_dict() != rt.reference.to_dict():
        removed = orphaned(_in_use(ctx), new)
        if removed and not force:
            listed = "; ".join(f"{kind}: {', '.join(names[:_SHOWN])}" + (f" (+{len(names) - _SHOWN} more)"
                                                                        if len(names) > _SHOWN else "")
                               for kind, names in removed.items())
            raise WouldOrphanTickets(f"{reference_file} would remove what recorded tickets use ({listed}); "
                                     "nothing was changed (--force replaces it anyway and records the change)",
                                     removed)
        from dispatch.adapters.database import record_reference_change, store_reference
        from dispatch.projections import durations

        with translate_db_errors(rt.db):
            store_reference(rt.engine, str(reference_file), new.to_dict())
            durations.forget(rt.engine)  # counted under the stored calendar
            if removed:
                record_reference_change(rt.engine, str(reference_file), removed, rt.clock.now())
        rt.reference = rt.app.reference = new
    ref = rt.reference
    summary = {"database": rt.db.display, "sample": ref.sample, "streets": len(ref.streets),
               "communities": len(ref.communities), "grids": len(ref.grids), "departments": len(ref.departments),
               "categories": len(ref.categories)}
    ctx.emit(summary, f"initialised {summary['database']}: {summary['grids']} grids in {summary['communities']} "
                      f"communities, {summary['departments']} departments, {summary['categories']} categories"
                      + (" (sample data)" if ref.sample else ""))


@main.command()
@pass_ctx
def check(ctx: Ctx) -> None:
    """Run the database's integrity check (SQLite: PRAGMA integrity_check); exit 1 on damage."""
    import sqlite3

    db = resolve_db(ctx.db_url)
    if not db.is_sqlite:
        ctx.emit({"database": db.display, "ok": True, "problems": []},
                 f"{db.display}: PostgreSQL checks its own pages; nothing to do here")
        return
    path = db.url.database or ""
    if not os.path.exists(path):
        raise DatabaseNotFound(f"no database file at {path}")
    problems: list[str]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    problems = [p for p in problems if p != "ok"]
    data: dict[str, Any] = {"database": path, "ok": not problems, "problems": problems[:50]}
    ctx.emit(data, f"{path}: ok" if not problems else f"{path}: damaged ({len(problems)} problem(s)): "
             + "; ".join(problems[:5]))
    if problems:
        sys.exit(1)


def _not_foreign(path: str) -> None:
    """Another tool's file, or one that is no database, is refused before a byte of it changes."""
    from dispatch.adapters.database import examine_file
    from dispatch.domain.errors import NotADispatchDatabase

    found = examine_file(path)
    if found.what == "unreadable":
        raise NotADispatchDatabase(f"{path} is not a database dispatch can read ({found.reason})")
    if found.what == "foreign":
        raise NotADispatchDatabase(f"{path} is not a dispatch database; dispatch will not write into it")


@main.command()
@pass_ctx
def upgrade(ctx: Ctx) -> None:
    """Upgrade a database made by an earlier dispatch to this version's schema (explicit, once):
    new read-model columns are added and the read model is refilled from the event store."""
    from dispatch.adapters.database import SCHEMA_VERSION, create_read_engine, examine, write_marker
    from dispatch.projections import tables

    db = resolve_db(ctx.db_url)
    if db.is_sqlite and not os.path.exists(db.url.database or ""):
        raise DatabaseNotFound(f"no database file at {db.url.database}")
    if db.is_sqlite:
        _not_foreign(db.url.database or "")
    engine = create_read_engine(db)
    try:
        with translate_db_errors(db):
            found = examine(engine)
            if found.what == "legacy" or (found.what == "dispatch" and found.version < SCHEMA_VERSION):
                added = tables.add_missing_columns(engine)
                write_marker(engine, found.kind or "live")
                refilled = _refill(ctx, engine) if added else 0
                ctx.emit({"database": db.display, "upgraded": True, "schema_version": SCHEMA_VERSION,
                          "columns_added": added, "events_reprojected": refilled},
                         f"{db.display}: upgraded to schema {SCHEMA_VERSION}"
                         + (f"; {len(added)} read-model columns added and the read model refilled from "
                            f"{refilled:,} events" if added else ""))
            elif found.what == "dispatch":
                ctx.emit({"database": db.display, "upgraded": False, "schema_version": found.version},
                         f"{db.display}: already at schema {found.version}")
            else:
                raise DatabaseNotFound(f"{db.display} is not a dispatch database; nothing to upgrade")
    finally:
        engine.dispose()


@main.command()
@click.option("--year", type=click.IntRange(2000, 2100), help="The year to show [default: this year].")
@click.option("--update", is_flag=True, help="Put the installed chinese_calendar's holiday table in force "
                                             "(adds the years it newly covers).")
@click.option("--force", is_flag=True, help="With --update: also rewrite days of years already in force.")
@pass_ctx
def calendar(ctx: Ctx, year: int | None, update: bool, force: bool) -> None:
    """The business calendar: the holiday table in force (stored in the database), a year's
    holidays and 调休 days, and a warning before a year it does not cover."""
    from dispatch.service import holiday_admin

    if update:
        done = holiday_admin.update(ctx.runtime, force=force)
        added = ", ".join(map(str, done["years_added"])) or "no new year"
        ctx.emit(done, f"holiday table {'updated' if done['changed'] else 'unchanged'}: {done['source']}, {added}"
                       + (f"; working-time durations recounted from {done['events_reprojected']:,} events"
                          if done["changed"] else ""))
        return
    data = holiday_admin.describe(ctx.runtime, year)

    def human() -> None:
        covered = f"covered by the {data['covered_by']}" if data["covered_by"] else "NOT covered (Monday–Friday)"
        click.echo(f"{data['year']}: {covered}; {data['working_days']} working days")
        click.echo(f"holiday table in force: {data['table']}, years {data['years']} (fingerprint "
                   f"{data['fingerprint']})" + (f"; the reference file adds {data['reference_years']}"
                                                if data["reference_years"] else ""))
        for e in data["exceptions"]:
            kind = "working day (调休)" if e["working"] else "day off"
            click.echo(f"  {e['day']}  {kind}  [{e['from']}]")
        for w in data["warnings"]:
            click.echo(f"dispatch: warning: {w}", err=True)

    ctx.emit(data, human)


def _refill(ctx: Ctx, engine: Any) -> int:
    """The read model emptied and projected again from the event store (the new columns of old
    tickets filled in); a Kafka projector on this database starts its topic again and skips
    what it finds applied."""
    from dispatch.projections import catch_up, tables

    tables.clear(engine)
    return int(catch_up(ctx.runtime) or 0)
