"""``dispatch replay`` (rebuild, time travel, verification) and ``dispatch export``.

    dispatch replay [--into URL] [--until TIME] [--from-kafka BOOTSTRAP [--topic-prefix P]]
    dispatch replay --verify [--from-kafka …] [--into URL]
    dispatch export tickets|events|sla [--from T] [--to T] [--as-of T] [--format csv|parquet] [--out FILE]
"""

from __future__ import annotations

import sys
from typing import Any

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.domain.errors import DispatchError
from dispatch.service import queries
from dispatch.service.replay import compare, Comparison, default_target, export_rows, EXPORTS, KafkaSource, open_target, scratch, StoreSource, write_csv, write_parquet
from dispatch.service.replay import rebuild
from dispatch.service.replay.sources import PAGE_SIZE

__all__ = ["export", "replay"]


def _source(ctx: Ctx, from_kafka: str | None, prefix: str | None, page_size: int) -> Any:
    if from_kafka:
        return KafkaSource(from_kafka, prefix, page_size=page_size)
    if prefix is not None:
        raise click.UsageError("--topic-prefix goes with --from-kafka")
    return StoreSource(ctx.runtime.app, page_size=page_size)


def _reference_source(ctx: Ctx) -> str:
    return f"copied from {ctx.runtime.db.display} by dispatch replay"


@main.command()
@click.option("--into", "into", metavar="URL", help="Target database (SQLite path or any SQLAlchemy URL) "
              "[default: a new replay-<timestamp>.db here; with --verify a temporary one].")
@click.option("--until", "until", metavar="TIME", help="Apply only events with business time at or before TIME.")
@click.option("--from-kafka", "from_kafka", metavar="BOOTSTRAP", help="Read the ticket-events topic from offset 0.")
@click.option("--topic-prefix", "prefix", metavar="P", help="Topic prefix with --from-kafka [default dispatch.].")
@click.option("--verify", is_flag=True, help="Rebuild, then compare every projection table with the live one; "
              "exit 1 on a difference.")
@click.option("--show", default=20, show_default=True, help="With --verify: differing rows listed per table.")
@click.option("--page-size", default=PAGE_SIZE, show_default=True, help="Events per read and per write.")
@click.option("--progress/--no-progress", default=True, help="Progress on stderr (a bar on a terminal).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Rebuild processes, split by ticket [env DISPATCH_REPLAY_WORKERS; default: the CPU count].")
@pass_ctx
def replay(ctx: Ctx, into: str | None, until: str | None, from_kafka: str | None, prefix: str | None,
           verify: bool, show: int, page_size: int, progress: bool, workers: int | None) -> None:
    """Rebuild every projection from the event store (or Kafka) into a fresh database."""
    if verify and until:
        raise click.UsageError("--verify compares with the live projections; it does not take --until")
    if page_size < 1:
        raise click.UsageError("--page-size must be at least 1")
    instant = ctx.time(until, "--until") if until else None
    rt = ctx.runtime
    if verify:
        ctx.catch_up()  # the live projections as far as the store goes
    source = _source(ctx, from_kafka, prefix, page_size)
    comparison: Comparison | None
    if verify and into is None:
        with scratch(rt.reference, source=_reference_source(ctx)) as target:
            result = rebuild(source, target.engine, progress=progress, label="verify", workers=workers)
            comparison = compare(rt.engine, target.engine, limit=show)
            where = None
    else:
        target = open_target(into or default_target(rt.clock.now()), rt.reference,
                             source=_reference_source(ctx), live=rt.db)
        try:
            result = rebuild(source, target.engine, until=instant, progress=progress, workers=workers)
            target.finish()
            comparison = compare(rt.engine, target.engine, limit=show) if verify else None
            where = target.display
        finally:
            target.close()
    data: dict[str, Any] = {"into": where, **result.to_dict()}
    if comparison is None:
        ctx.emit(data, lambda: _say_rebuilt(data))
        return
    from dispatch.service.holiday_admin import affected_calls

    data["verification"] = comparison.to_dict()
    data["quarantined"] = next((t.live_rows for t in comparison.tables if t.table == "quarantined_events"), 0)
    data["calendar"] = affected_calls(rt)  # the holiday table in force against the one each dispatch used
    ctx.emit(data, lambda: _say_verified(data))
    if not comparison.ok or data["calendar"]["affected_calls"]:
        sys.exit(1)


def _say_rebuilt(data: dict[str, Any]) -> None:
    until = f" as of {data['until']}" if data["until"] else ""
    click.echo(f"rebuilt the projections{until} from {data['source']}: {data['events_read']:,} events read, "
               f"{data['events_applied']:,} applied in {data['seconds']:.1f}s ({data['events_per_second']:,}/s)")
    click.echo(f"wrote {data['into']}")
    click.echo(f"  e.g. dispatch --db {data['into']} dashboard --street … --as-of …")


def _say_verified(data: dict[str, Any]) -> None:
    v = data["verification"]
    cal = data["calendar"]
    if cal["affected_calls"]:
        click.echo(f"  DIFF holiday table: {cal['affected_calls']:,} working-time calls were counted with a holiday "
                   f"table that differs from the one in force ({cal['fingerprint']}) between their dispatch and "
                   "their deadlines: their recorded deadlines stand, but working-time figures now count those "
                   "days differently")
    click.echo(f"rebuilt from {data['source']} ({data['events_read']:,} events) and compared with the live "
               f"projections (positions table left out: it differs by source by design)")
    for t in v["tables"]:
        mark = "ok  " if t["ok"] else "DIFF"
        click.echo(f"  {mark} {t['table']:<14} live {t['live_rows']:>8,}  rebuilt {t['rebuilt_rows']:>8,}  "
                   f"sha256 {t['live_checksum'][:12]} / {t['rebuilt_checksum'][:12]}")
        for d in t["differences"]:
            click.echo(f"       {d['kind']}: {d['key']} {d.get('columns', '')}".rstrip())
        if t["differing_rows"] > len(t["differences"]):
            click.echo(f"       … {t['differing_rows'] - len(t['differences'])} more")
    click.echo("zero differences" if v["ok"] else f"{v['differing_rows']} differing rows")
    if data["quarantined"]:
        click.echo(f"{data['quarantined']} event(s) in quarantine: the projections cannot hold them "
                   "(table quarantined_events has each one's reason)")


def _private_file(path: str) -> None:
    """Exports hold residents' reports: a new file is readable by its owner only (0600)."""
    import os

    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
    except OSError as error:
        raise DispatchError(f"cannot write {path}: {error.strerror}") from None


@main.command()
@click.argument("kind", type=click.Choice(EXPORTS))
@click.option("--from", "start", metavar="TIME", help="Period start, inclusive (tickets: reported, events: "
              "occurred, sla: dispatched).")
@click.option("--to", "end", metavar="TIME", help="Period end, exclusive (a bare date includes that day).")
@click.option("--as-of", "as_of", metavar="TIME", help="sla: judge on-time as of this instant [default: now].")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), help="File [default: stdout for csv].")
@click.option("--bom/--no-bom", default=True, show_default=True,
              help="CSV: start with a UTF-8 byte-order mark (Excel then reads Chinese text correctly).")
@pass_ctx
def export(ctx: Ctx, kind: str, start: str | None, end: str | None, as_of: str | None, fmt: str,
           out: str | None, bom: bool) -> None:
    """Tickets, events or SLA rows for your own tools (columns: docs/export-columns.md)."""
    if fmt == "parquet" and not out:
        raise click.UsageError("--format parquet needs --out FILE")
    lo, hi = queries.bounds(ctx.runtime, start, end)
    instant = ctx.time(as_of, "--as-of")
    ctx.catch_up()
    rt = ctx.runtime
    rows = export_rows(kind, rt.engine, rt.reference, start=lo, end=hi, as_of=instant, app=rt.app)
    tz = rt.reference.timezone
    if out:
        _private_file(out)
    if fmt == "parquet":
        count = write_parquet(kind, rows, str(out), tz)
    elif out:
        with open(out, "w", encoding="utf-8", newline="") as stream:
            count = write_csv(kind, rows, stream, tz, bom=bom)
    else:
        stdout: Any = sys.stdout
        if hasattr(stdout, "reconfigure"):
            stdout.reconfigure(encoding="utf-8", newline="")  # Chinese names intact whatever the locale
        count = write_csv(kind, rows, stdout, tz, bom=bom)
    if out:  # on stdout the rows are the output
        ctx.emit({"export": kind, "format": fmt, "rows": count, "out": out}, f"wrote {count:,} {kind} rows to {out}")
