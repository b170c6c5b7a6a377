"""Read commands on single tickets: ``show``, ``history``, and the ``tickets`` list."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.aggregates import STATUSES
from dispatch.cli.text import printable

__all__: list[str] = []

_SKIP = {"originator_id", "originator_version", "timestamp", "originator_topic", "occurred_at", "actor", "command_id"}


def _actor(actor: dict[str, str]) -> str:
    where = actor.get("department") or actor.get("grid")
    return printable(f"{actor['role']}:{actor['id']}" + (f"@{where}" if where else ""))


def history_rows(ctx: Ctx, ticket: str) -> list[dict[str, Any]]:
    app = ctx.runtime.app
    ticket_id = ctx.ticket_id(ticket)
    app.get_ticket(ticket_id)  # TicketNotFound if absent
    rows = []
    for e in app.events.get(ticket_id):
        state = vars(e)
        rows.append({
            "version": e.originator_version,
            "event": type(e).__name__,
            "occurred_at": state["occurred_at"],
            "actor": state["actor"],
            "details": {k: v for k, v in state.items() if k not in _SKIP and v not in (None, "", [])},
        })
    return rows


@main.command()
@click.argument("ticket")
@pass_ctx
def history(ctx: Ctx, ticket: str) -> None:
    """Every event of a ticket with its business time and actor."""
    rows = history_rows(ctx, ticket)

    def human() -> None:
        for r in rows:
            details = "  ".join(f"{k}={_short(v)}" for k, v in r["details"].items())
            click.echo(f"{r['version']:>3}  {r['occurred_at'].isoformat()}  {r['event']:<20} {_actor(r['actor'])}")
            if details:
                click.echo(f"     {details}")

    ctx.emit({"ticket_id": ticket, "events": rows}, human)


def _short(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[" + ", ".join(v.get("department", "?") for v in value) + "]"
    text = printable(value.isoformat() if hasattr(value, "isoformat") else str(value))
    return text if len(text) <= 40 else text[:37] + "…"


@main.command()
@click.argument("ticket")
@pass_ctx
def show(ctx: Ctx, ticket: str) -> None:
    """A ticket's current state: status, place, calls and deadlines."""
    t = ctx.runtime.app.get_ticket(ctx.ticket_id(ticket))
    ref = ctx.runtime.reference
    data = {
        "ticket_id": str(t.id), "status": t.status, "version": t.version, "level": t.level,
        "grid": t.grid, "community": t.community, "street": t.street, "district": t.district,
        "category": t.category, "priority": t.priority, "channel": t.channel, "description": t.description,
        "external_ref": t.external_ref, "reported_at": t.reported_at, "lead": t.lead,
        "calls": [{k: v for k, v in call.items()} for call in t.calls.values()],
        "handle_due": t.handle_due, "feedback_due": t.feedback_due, "satisfaction": t.satisfaction,
        "duplicate_of": t.duplicate_of, "closed_via": t.closed_via,
    }

    def human() -> None:
        place = ref.place(t.grid)
        click.echo(f"ticket {t.id}  [{t.status}]  level: {t.level}")
        click.echo(f"  {ref.categories[t.category].name} ({t.priority}, {t.channel}): {printable(t.description)}")
        click.echo(f"  {place.district.name} / {place.street.name} / {place.community.name} / {place.grid.name}")
        click.echo(f"  reported {t.reported_at.isoformat()}")
        for call in t.calls.values():
            answer = call["answer"] or "waiting"
            click.echo(f"  call {call['call_id']} {ref.departments[call['department']].name} ({call['role']}): "
                       f"{answer}; report in by {call['ack_due'].isoformat()}")
        if t.handle_due and t.feedback_due:
            click.echo(f"  handle by {t.handle_due.isoformat()}; feedback by {t.feedback_due.isoformat()}")

    ctx.emit(data, human)


@main.command()
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--street")
@click.option("--community")
@click.option("--grid")
@click.option("--category")
@click.option("--dept", "department", help="Tickets with a call to this department.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@pass_ctx
def tickets(ctx: Ctx, status: str | None, street: str | None, community: str | None, grid: str | None,
            category: str | None, department: str | None, limit: int) -> None:
    """List tickets, newest first, with filters."""
    from dispatch.projections import list_tickets

    ref = ctx.runtime.reference
    ctx.catch_up()
    rows = list_tickets(
        ctx.runtime.engine, status=status,
        street=ref.street(street).id if street else None,
        community=ref.community(community).id if community else None,
        grid=ref.grid(grid).id if grid else None,
        category=ref.category(category).id if category else None,
        department=ref.department(department).id if department else None,
        limit=limit,
    )

    def human() -> None:
        table = Table("ticket", "status", "reported", "community", "grid", "category", box=None, highlight=False)
        for r in rows:
            community = ref.communities.get(r["community"])
            category = ref.categories.get(r["category"])
            table.add_row(str(r["ticket_id"]), r["status"],
                          r["reported_at"].astimezone(ZoneInfo(ref.timezone)).isoformat(timespec="minutes"),
                          community.name if community else r["community"], r["grid"],
                          category.name if category else r["category"])
        console = Console()
        (console if console.width >= 140 else Console(width=140)).print(table)
        click.echo(f"{len(rows)} ticket(s)")

    ctx.emit(rows, human)
