"""``dispatch what-if``: the figures under another reference file's rules, beside the actual ones
(``dispatch.service.whatif``); ``dispatch reference export`` writes the rules in force to start from."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import click
from rich import box
from rich.console import Console
from rich.table import Table

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.cli.oversight import _figure_options, _fmt, _settings
from dispatch.cli.text import cell, local_time
from dispatch.projections.figures import DIMENSIONS, PERIODS
from dispatch.service import queries

__all__ = ["what_if_command"]


def _value(figure: str, value: Any) -> str:
    if isinstance(value, float) and "minutes" in figure:
        return f"{value:.1f}"
    return _fmt(value)


def _delta(figure: str, delta: Any) -> str:
    """A difference in the unit its figure is shown in: minutes as minutes, a rate (shown as a
    percentage) in percentage points — never a share of one beside two percentages."""
    if delta is None or delta == 0:
        return ""
    if not isinstance(delta, float):
        return f"{delta:+d}"
    if "minutes" in figure:
        return f"{delta:+.1f}"
    return f"{delta * 100:+.1f} pp"


def _show(data: dict[str, Any], show_all: bool, tz: ZoneInfo) -> None:
    from dispatch.service.whatif import differing

    console = Console()
    q = data["question"]
    what = f"SLA by {q['by']}" if q["view"] == "sla" else f"dashboard of {q['street'] or q['community']}"
    rows = data["rows"] if show_all else differing(data["rows"])
    as_of = datetime.fromisoformat(q["as_of"]).astimezone(tz).isoformat(timespec="minutes")
    table = Table(title=f"what if: {data['reference']} — {what} as of {as_of}", box=box.SIMPLE_HEAD,
                  pad_edge=False, highlight=False)
    for column in ("unit", *(["period"] if q["period"] else []), "figure"):
        table.add_column(column)
    for column in ("actual", "what-if", "Δ"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(cell(r["name"] or r["unit"]), *([r.get("period") or ""] if q["period"] else []), r["figure"],
                      _value(r["figure"], r["actual"]), _value(r["figure"], r["what_if"]),
                      _delta(r["figure"], r["delta"]))
    console.print(table)
    unchanged = len(data["rows"]) - len(differing(data["rows"]))
    if not show_all:
        console.print(f"{len(rows)} figure(s) differ; {unchanged} unchanged (--all shows them)")
    listed = "changed_tickets" in data
    console.print(f"{data['changed']} deadline verdict(s) changed over {data['tickets']} ticket(s)"
                  + ("" if data["changed"] == 0 or listed else " (--changed lists them)"))
    if listed:
        # (a case number is what a desk looks a ticket up by: never cut short; times are local)
        listing = Table(box=box.SIMPLE_HEAD, pad_edge=False, highlight=False)
        listing.add_column("case", no_wrap=True)
        for column in ("deadline", "department", "due → what if", "met at", "verdict → what if"):
            listing.add_column(column)
        for r in data["changed_tickets"]:
            due, other = local_time(r["due"], tz), local_time(r["due_what_if"], tz)
            if due[:5] == other[:5]:  # the same day: its time only
                other = other[6:]
            listing.add_row(r["case_no"] or r["ticket_id"][:8], _deadline(r["deadline"]), r["department"] or "",
                            f"{due} → {other}", local_time(r["done_at"], tz),
                            f"{r['verdict'] or '—'} → {r['verdict_what_if'] or '—'}")
        console.print(listing)
    for r in data["routing"]:
        console.print(f"routing: {cell(r['name'])} would be led by {r['lead_what_if']} (now {r['lead']}), "
                      f"cooperating {', '.join(r['cooperating_what_if']) or '—'}; {r['dispatches']} dispatch(es) in "
                      f"the period, led by " + (", ".join(f"{d} {n}" for d, n in r["led_by"].items()) or "—"))
    if data.get("out"):
        console.print(f"wrote {data['changed']} changed deadline(s) to {data['out']}")
    console.print(data["note"], style="dim")


def _deadline(key: str) -> str:
    """A deadline's name without the department its row shows already: ``ack:1:huanwei`` → ``ack #1``
    (report-in on dispatch 1), ``handle:2`` → ``handle #2``, ``accept``."""
    kind, _, rest = key.partition(":")
    return f"{kind} #{rest.split(':', 1)[0]}" if rest else kind


@main.command("what-if")
@click.option("--reference", "reference_file", required=True, metavar="FILE",
              help="The other rules: a reference file, or one with only sla / categories / working_hours / "
                   "calendar_overrides / calendar_years (see 'dispatch reference export').")
@click.option("--by", "by", type=click.Choice(DIMENSIONS), help="SLA figures grouped by.")
@click.option("--period", type=click.Choice(PERIODS), help="With --by: per day, week or month.")
@click.option("--dashboard", is_flag=True, help="A dashboard's figures (of --street or --community) instead.")
@click.option("--street", help="Only this street's tickets (id or name).")
@click.option("--community", help="Only this community's tickets (id or name).")
@click.option("--changed", is_flag=True, help="List the deadlines whose on-time verdict changed.")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True),
              help="Write the changed deadlines to this CSV file.")
@click.option("--all", "show_all", is_flag=True, help="Show every figure, not only those that differ.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Processes rewriting and projecting the tickets [env DISPATCH_REPLAY_WORKERS; default: the "
                   "number of CPUs].")
@_figure_options
@pass_ctx
def what_if_command(ctx: Ctx, reference_file: str, by: str | None, period: str | None, dashboard: bool,
                    street: str | None, community: str | None, changed: bool, out: str | None, show_all: bool,
                    workers: int | None, start: str | None, end: str | None, as_of: str | None, min_evaluated: int, basic_weight: float,
                    weights: str) -> None:
    """What the figures would have been under other SLA rules, routing, calendar or ladder."""
    from dispatch.service.replay.parallel import default_workers
    from dispatch.service.whatif import CHANGED_COLUMNS, changed_rows, what_if

    if (by is None) == (not dashboard):
        raise click.UsageError("give --by DIMENSION for SLA figures, or --dashboard")
    if dashboard and (street is None) == (community is None):
        raise click.UsageError("--dashboard needs exactly one of --street or --community")
    if period and not by:
        raise click.UsageError("--period goes with --by")
    window = queries.window(ctx.runtime, start, end, as_of)
    data = what_if(ctx.runtime, reference_file, period=window, by=by, per=period, street=street,
                   community=community, dashboard=dashboard, settings=_settings(min_evaluated, basic_weight, weights),
                   identity=ctx.viewer, progress=not ctx.as_json and sys.stderr.isatty(),
                   workers=workers or default_workers())
    if out:
        from dispatch.cli.replay import _private_file
        from dispatch.service.replay.export import write_csv

        _private_file(out)
        with open(out, "w", encoding="utf-8", newline="") as stream:
            write_csv("what-if", changed_rows(data), stream, ctx.runtime.reference.timezone, columns=CHANGED_COLUMNS)
        data["out"] = out
    if not changed:  # the count stays; the list only when asked
        data = {k: v for k, v in data.items() if k != "changed_tickets"}
    ctx.emit(data, lambda: _show(data, show_all, ZoneInfo(ctx.runtime.reference.timezone)))
