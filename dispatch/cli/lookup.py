"""The reference data, visible: ``places``, ``departments``, ``categories``, ``sla-rules``
(tables, or ``--json``). Read-only; ``init --reference`` changes it."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.table import Table

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.cli.text import cell
from dispatch.service import queries

__all__: list[str] = []


def _table(*columns: str) -> Table:
    return Table(*columns, box=None, highlight=False)


def _print(table: Table, count: int, what: str) -> None:
    Console().print(table)
    click.echo(f"{count} {what}")


@main.command()
@click.option("--street", help="Only this street (id or name).")
@click.option("--community", help="Only this community (id or name), with its grids.")
@pass_ctx
def places(ctx: Ctx, street: str | None, community: str | None) -> None:
    """Districts, streets, communities and grids (ids beside names: give either to a command)."""
    rows = queries.places(ctx.runtime, street=street, community=community)

    def human() -> None:
        table = _table("district", "street", "community", "grids")
        for r in rows:
            grids = r["grids"]
            shown = (", ".join(f"{g['id']} {g['name']}" for g in grids) if community
                     else f"{len(grids)} ({grids[0]['id']} … {grids[-1]['id']})" if grids else "0")
            table.add_row(cell(r["district_name"]), f"{cell(r['street_name'])} ({r['street']})",
                          f"{cell(r['community_name'])} ({r['community']})", cell(shown))
        _print(table, len(rows), "communit(y/ies)")

    ctx.emit(rows, human)


@main.command()
@pass_ctx
def departments(ctx: Ctx) -> None:
    """Departments, with the categories each leads or cooperates on."""
    ref = ctx.runtime.reference
    rows = queries.departments(ctx.runtime)

    def human() -> None:
        table = _table("id", "name", "leads", "cooperates on")
        for r in rows:
            table.add_row(r["id"], cell(r["name"]), ", ".join(ref.categories[c].name for c in r["leads"]),
                          ", ".join(ref.categories[c].name for c in r["cooperates"]))
        _print(table, len(rows), "department(s)")

    ctx.emit(rows, human)


@main.command()
@pass_ctx
def categories(ctx: Ctx) -> None:
    """Categories with their routing (lead and cooperating departments) and the priorities."""
    ref = ctx.runtime.reference
    data = queries.categories(ctx.runtime)
    rows = data["categories"]

    def human() -> None:
        table = _table("id", "name", "kind", "lead", "cooperating")
        for r in rows:
            table.add_row(r["id"], cell(r["name"]), r["kind"], cell(ref.departments[r["lead_department"]].name),
                          cell(", ".join(ref.departments[d].name for d in r["cooperating"])))
        _print(table, len(rows), "categor(y/ies)")
        click.echo("priorities: " + ", ".join(f"{p['id']} {p['name']}" for p in data["priorities"]))

    ctx.emit(data, human)


@main.command("sla-rules")
@pass_ctx
def sla_rules(ctx: Ctx) -> None:
    """SLA rules per category × priority (the centre's accept and dispatch minutes count from the
    report, the departments' from the dispatch; the most specific rule wins)."""
    ref = ctx.runtime.reference
    rows = queries.sla_rules(ctx.runtime)

    def name(table: dict[str, Any], key: str) -> str:
        return "*" if key == "*" else cell(table[key].name)

    def human() -> None:
        table = _table("category", "priority", "accept", "dispatch", "report in", "handle", "feedback", "basis",
                       "escalate every")
        for r in rows:
            table.add_row(name(ref.categories, r["category"]), name(ref.priorities, r["priority"]),
                          str(r["accept_minutes"]), str(r["dispatch_minutes"]),
                          str(r["ack_minutes"]), str(r["handle_minutes"]), str(r["feedback_minutes"]),
                          r["time_basis"], str(r["escalate_every_minutes"]))
        _print(table, len(rows), "rule(s)")
        click.echo(f"working hours {', '.join(ref.working_hours)} ({ref.timezone}); minutes")

    ctx.emit(rows, human)


@main.group("reference")
def reference_group() -> None:
    """The rules in force (SLA, routing, calendar) as a file to edit for a what-if: reference export."""


@reference_group.command("export")
@click.option("--sections", default="sla,routing,calendar", show_default=True, metavar="LIST",
              help="Comma-separated: sla, routing, calendar, ladder (the ladder's pace is each SLA rule's "
                   "escalate_every_minutes, so it comes with sla).")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), help="File [default: stdout].")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@pass_ctx
def reference_export(ctx: Ctx, sections: str, out: str | None, force: bool) -> None:
    """Write the rules in force as YAML, to copy and edit for 'dispatch what-if --reference'."""
    import os

    import yaml

    from dispatch.domain.errors import DispatchError
    from dispatch.service.whatif import SECTIONS, export_rules

    wanted = [s.strip() for s in sections.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown or not wanted:
        raise click.UsageError(f"--sections: one or more of {', '.join(SECTIONS)}")
    body = export_rules(ctx.runtime.reference, wanted)
    text = ("# the rules in force, from dispatch reference export; edit a copy and give it to\n"
            "# dispatch what-if --reference FILE (places and departments stay those in force)\n"
            + yaml.safe_dump(body, allow_unicode=True, sort_keys=False))
    if out is None:
        click.echo(text, nl=False)
        return
    if os.path.exists(out) and not force:
        raise DispatchError(f"{out} exists: give --force to replace it, or another --out")
    with open(out, "w", encoding="utf-8") as stream:
        stream.write(text)
    click.echo(f"wrote {', '.join(wanted)} to {out}", err=True)
