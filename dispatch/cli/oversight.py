"""``dispatch dashboard``, ``dispatch sla``, ``dispatch timeline``, ``dispatch watchdog``.

Figures are defined in docs/figures.md; ``--json`` prints them under those names.
"""

from __future__ import annotations

import threading
from typing import Any

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.cli.text import Table, cell, console as wide_console, printable
from dispatch.projections.figures import DIMENSIONS, PERIODS, Settings
from dispatch.service import queries

__all__ = ["dashboard", "rollup", "sla", "timeline_command", "watchdog"]

def _settings(min_evaluated: int, basic_weight: float, weights: str) -> Settings:
    try:
        parts = tuple(float(w) for w in weights.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(0 <= w <= 1 for w in parts) or abs(sum(parts) - 1) > 1e-9:
        raise click.UsageError("--weights takes three numbers from 0 to 1 that add up to 1: "
                               "response,resolution,satisfaction (e.g. 0.1,0.5,0.4 or 0.3,0.35,0.35)")
    if not 0 <= basic_weight <= 1:
        raise click.UsageError("--basic-weight is a weight from 0 to 1 (e.g. 0.9)")
    return Settings(basically_satisfied_weight=basic_weight, composite_weights=parts,  # type: ignore[arg-type]
                    min_evaluated=min_evaluated)


def _figure_options(f: Any) -> Any:
    for option in (
        click.option("--from", "start", metavar="TIME", help="Period start (inclusive)."),
        click.option("--to", "end", metavar="TIME", help="Period end (exclusive; a bare date includes that day)."),
        click.option("--as-of", "as_of", metavar="TIME", help="Count only events at or before this instant [default: --to, else now]."),
        click.option("--min-evaluated", default=5, show_default=True, help="Fewest evaluated tickets to be ranked."),
        click.option("--basic-weight", default=0.9, show_default=True, help="Weight of 'basically satisfied' in satisfaction_rate."),
        click.option("--weights", default="0.1,0.5,0.4", show_default=True, help="Composite weights: response,resolution,satisfaction."),
    ):
        f = option(f)
    return f


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1%}" if value <= 1 else f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "—"
    return str(value)


_DASH_COLUMNS = ("open", "reported", "closed", "ack_overdue", "handle_overdue", "escalations", "evaluated",
                 "satisfaction_rate", "composite")


def _dash_table(title: str, key: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for col in (key, *_DASH_COLUMNS):
        table.add_column(_SHORT.get(col, col), justify="left" if col == key else "right")
    for row in rows:
        table.add_row(row.get("name") or row[key], *(_fmt(row[c]) for c in _DASH_COLUMNS))
    return table


def _show_dashboard(data: dict[str, Any]) -> None:
    unit = "street" if "communities" in data else "community"
    click.echo(click.style(printable(data["name"]), bold=True) + f" ({data[unit]}) as of {data['as_of']}"
               f"  period {data['from'] or '…'} → {data['to'] or '…'}")
    for label in ("open_by_state", "by_category", "by_channel", "escalations_by_level"):
        click.echo(f"  {label}: {_fmt(data[label])}")
    for label in ("response_rate", "resolution_rate", "satisfaction_rate", "composite", "reopen_rate"):
        click.echo(f"  {label}: {_fmt(data[label])}")
    click.echo()
    if unit == "street":
        _dash_table("communities", "community", data["communities"]).echo()
        ranks = ", ".join(f"{r['rank']}. {r['name']} {r['composite']:.3f}" for r in data["ranking"]) or "—"
        click.echo(printable(f"ranking (≥ {data['min_evaluated']} evaluated): {ranks}"))
    else:
        _dash_table("grids", "grid", data["grids"]).echo()


@main.command()
@click.option("--street", help="Street (街道/镇) id or name.")
@click.option("--community", help="Community (社区/村) id or name.")
@_figure_options
@pass_ctx
def dashboard(ctx: Ctx, street: str | None, community: str | None, start: str | None, end: str | None,
              as_of: str | None, min_evaluated: int, basic_weight: float, weights: str) -> None:
    """A street's or a community's dashboard: open work, overdue, escalations, satisfaction."""
    if (street is None) == (community is None):
        raise click.UsageError("give exactly one of --street or --community")
    settings = _settings(min_evaluated, basic_weight, weights)
    period = queries.window(ctx.runtime, start, end, as_of)
    data = queries.dashboard(ctx.runtime, street=street, community=community, period=period, settings=settings,
                           identity=ctx.viewer)
    ctx.emit(data, lambda: _show_dashboard(data))


_SLA_COLUMNS = ("dispatched", "ack_on_time_rate", "handle_on_time_rate", "close_on_time_rate", "rejection_rate",
                "dispatch_accuracy", "reopen_rate", "mtta_minutes_mean", "mtth_minutes_mean", "evaluated",
                "satisfaction_rate", "composite")


_SHORT = {"dispatched": "calls", "ack_on_time_rate": "ack ok", "handle_on_time_rate": "handle ok",
          "close_on_time_rate": "close ok", "rejection_rate": "reject", "dispatch_accuracy": "accuracy",
          "reopen_rate": "reopen", "mtta_minutes_mean": "MTTA", "mtth_minutes_mean": "MTTH", "evaluated": "eval",
          "satisfaction_rate": "satisf", "composite": "score", "ack_overdue": "ack late", "handle_overdue": "handle late",
          "escalations": "escal", "reported": "reported"}


def _show_sla(data: dict[str, Any]) -> None:
    by = data["by"]
    table = Table(title=f"SLA by {by} as of {data['as_of']}")
    table.add_column(by)
    if data["period"]:
        table.add_column("period")
    for col in _SLA_COLUMNS:
        table.add_column(_SHORT.get(col, col), justify="right")
    for row in data["rows"]:
        lead = [row.get("name") or row[by]] + ([row["period"]] if data["period"] else [])
        table.add_row(*lead, *(f"{row[c]:.1f}" if "minutes" in c and row[c] is not None else _fmt(row[c])
                               for c in _SLA_COLUMNS))
    table.echo()
    if "ranking" in data:
        ranks = ", ".join(f"{r['rank']}. {r['name']} {r['composite']:.3f}" for r in data["ranking"]) or "—"
        click.echo(printable(f"scorecard (≥ {data['settings']['min_evaluated']} evaluated): {ranks}"))


@main.command()
@click.option("--by", "by", type=click.Choice(DIMENSIONS), required=True, help="Group by.")
@click.option("--period", type=click.Choice(PERIODS), help="Break down per day, week or month.")
@click.option("--street", help="Only this street's tickets (id or name).")
@click.option("--community", help="Only this community's tickets (id or name).")
@_figure_options
@pass_ctx
def sla(ctx: Ctx, by: str, period: str | None, street: str | None, community: str | None, start: str | None,
        end: str | None, as_of: str | None, min_evaluated: int, basic_weight: float, weights: str) -> None:
    """SLA statistics (on-time rates, MTTA/MTTH, 三率) and the scorecard ranking."""
    settings = _settings(min_evaluated, basic_weight, weights)
    window = queries.window(ctx.runtime, start, end, as_of)
    data = queries.sla(ctx.runtime, identity=ctx.viewer, by=by, per=period, period=window, settings=settings, street=street,
                       community=community)
    ctx.emit(data, lambda: _show_sla(data))


def _show_timeline(data: dict[str, Any]) -> None:
    from rich.table import Table as Wrapping  # its clock column wraps to the terminal

    table = Wrapping(title=f"ticket {data['ticket_id']}")
    for col in ("#", "event", "at", "actor", "SLA clock (minutes left)"):
        table.add_column(col)
    for e in data["events"]:
        actor = e["actor"] or {}
        who = f"{actor.get('role', '')}:{actor.get('id', '')}"
        clock = ", ".join(f"{s['deadline']} {s['minutes_left']:+.0f}" for s in e["sla"]) or "—"
        table.add_row(str(e["version"]), e["label"], e["occurred_at"], cell(who), clock)
    wide_console().print(table)


@main.command("timeline")
@click.argument("ticket")
@pass_ctx
def timeline_command(ctx: Ctx, ticket: str) -> None:
    """Every event of TICKET with business time, actor and the SLA clock at that moment."""
    data = queries.timeline(ctx.runtime, ticket, ctx.viewer)
    ctx.emit(data, lambda: _show_timeline(data))


@main.command()
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option("--at", "at", metavar="TIME", help="With --once: the pass as of this business time (backfills) [default: now].")
@click.option("--interval", default=60.0, show_default=True, help="Seconds between passes.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="DISPATCH_METRICS_PORT",
              help="Serve /metrics, /healthz and /readyz on this port (127.0.0.1) [env DISPATCH_METRICS_PORT].")
@click.option("--kafka", metavar="HOST:PORT", envvar="DISPATCH_KAFKA",
              help="Kafka mode: send the escalations to the watchdog's intake for the engine [env DISPATCH_KAFKA; "
                   "security: DISPATCH_KAFKA_*].")
@click.option("--topic-prefix", metavar="P", help="Topic name prefix [env DISPATCH_TOPIC_PREFIX].")
@pass_ctx
def watchdog(ctx: Ctx, once: bool, at: str | None, interval: float, metrics_port: int | None, kafka: str | None,
             topic_prefix: str | None) -> None:
    """Escalate missed acknowledgement and handling deadlines up the ladder (督办)."""
    from dispatch.service.watchdog import Watchdog

    if at and not once:
        raise click.UsageError("--at is for one pass: give --once too")
    submit = None
    if kafka:
        from consumers.escalator import kafka_submit
        from dispatch.adapters.kafka import KafkaSettings

        submit = kafka_submit(KafkaSettings.from_env(kafka, topic_prefix))
    dog = Watchdog(ctx.runtime, submit=submit)
    if not once:
        from consumers.engine import stop_on_signals
        from consumers.escalator import watch

        watch(dog, interval, stop_on_signals(), metrics_port=metrics_port)
        return
    outcomes = dog.tick(ctx.time(at) if at else None)
    done = [o for o in outcomes if o.error is None]
    data = {"escalated": [{"ticket_id": str(o.ticket_id), "deadline": o.command.deadline, "rung": o.command.rung}
                          for o in done], "refused": len(outcomes) - len(done)}
    ctx.emit(data, f"escalated {len(done)} (refused {data['refused']})")


@main.command()
@click.option("--limit", type=click.IntRange(1), help="Roll up at most this many days in this run.")
@pass_ctx
def rollup(ctx: Ctx, limit: int | None) -> None:
    """Roll up settled days for fast SLA figures over long periods (the watchdog keeps them too)."""
    from dispatch.projections.rollups import roll_up

    ctx.catch_up()
    rt = ctx.runtime
    result = roll_up(rt.engine, rt.reference.timezone, rt.clock.now(), limit=limit).to_dict()
    ctx.emit(result, f"rolled up {result['built']} day(s); {result['days']} in all, "
                     f"{result['open_tickets']} ticket-day(s) still read raw (not ended when rolled up)")
