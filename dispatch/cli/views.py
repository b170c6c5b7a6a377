"""Read commands on single tickets: ``show``, ``history``, and the ``tickets`` list."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.cli.text import Table, local_time, printable
from dispatch.domain.lifecycle import STATUSES
from dispatch.service import queries

__all__: list[str] = []



def _actor(actor: dict[str, str]) -> str:
    where = actor.get("department") or actor.get("grid")
    return printable(f"{actor['role']}:{actor['id']}" + (f"@{where}" if where else ""))


@main.command()
@click.argument("ticket")
@pass_ctx
def history(ctx: Ctx, ticket: str) -> None:
    """Every event of a ticket with its business time and actor."""
    rows = queries.history(ctx.runtime, ticket, ctx.viewer)

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
    data = queries.show(ctx.runtime, ticket, ctx.viewer)
    ref = ctx.runtime.reference

    def human() -> None:
        place = ref.place(data["grid"])
        held = f"  ON HOLD since {data['held_since'].isoformat()}" if data["held_since"] else ""
        click.echo(f"{data['case_no']}  ticket {data['ticket_id']}  [{data['status']}]  level: {data['level']}{held}")
        click.echo(f"  {ref.categories[data['category']].name} ({data['priority']}, {data['channel']}): "
                   f"{printable(data['description'])}")
        click.echo(f"  {place.district.name} / {place.street.name} / {place.community.name} / {place.grid.name}")
        click.echo(f"  reported {data['reported_at'].isoformat()}")
        ended = data["status"] in ("closed", "cancelled", "duplicate")
        for call in data["calls"]:
            # an unanswered call of an ended ticket is closed out: nobody waits for it any more
            answer = call["answer"] or ("closed out, unanswered" if ended else "waiting")
            click.echo(f"  call {call['call_id']} {ref.departments[call['department']].name} ({call['role']}): "
                       f"{answer}; report in by {call['ack_due'].isoformat()}")
        if data["status"] in ("reported", "accepted") and data["dispatch_due"]:
            accept = f"accept by {data['accept_due'].isoformat()}; " if data["status"] == "reported" else ""
            click.echo(f"  centre: {accept}dispatch by {data['dispatch_due'].isoformat()}")
        if data["handle_due"] and data["feedback_due"]:
            click.echo(f"  handle by {data['handle_due'].isoformat()}; feedback by {data['feedback_due'].isoformat()}")
        if data["provisional"]:
            click.echo("  deadlines are provisional: counted Monday–Friday in a year the holiday table does not "
                       "cover yet (dispatch calendar)")
        if data["extension"]:
            e = data["extension"]
            click.echo(f"  extension asked by {ref.departments[e['department']].name}: {e['minutes']} min "
                       f"({printable(e['reason'])}), awaiting the centre")
        if data["closed_via"]:
            how = data["closed_via"] + (f": {printable(data['override'])}" if data["override"] else "")
            click.echo(f"  closed: {how}")

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
    ref = ctx.runtime.reference
    rows = queries.tickets(ctx.runtime, identity=ctx.viewer, status=status, street=street, community=community, grid=grid,
                           category=category, department=department, limit=limit)

    def human() -> None:
        table = Table("case", "ticket", "status", "reported", "community", "grid", "category")
        for r in rows:
            community = ref.communities.get(r["community"])
            category = ref.categories.get(r["category"])
            table.add_row(r["case_no"] or "", str(r["ticket_id"])[:8], r["status"] + (" (held)" if r["held_since"] else ""),
                          r["reported_at"].astimezone(ZoneInfo(ref.timezone)).isoformat(timespec="minutes"),
                          community.name if community else r["community"], r["grid"],
                          category.name if category else r["category"])
        table.echo()
        click.echo(f"{len(rows)} ticket(s)")

    ctx.emit(rows, human)


def _minutes(value: float | None) -> str:
    if value is None:
        return "—"
    sign, value = ("-" if value < 0 else ""), abs(value)
    return f"{sign}{int(value // 60)}h{int(value % 60):02d}"


@main.command()
@click.option("--dept", "department", required=True, help="Department id or name.")
@pass_ctx
def inbox(ctx: Ctx, department: str) -> None:
    """A department's open calls: to report in (报到) or, as lead, to handle (处置), soonest first."""
    rows = queries.inbox(ctx.runtime, department, identity=ctx.viewer)
    ref = ctx.runtime.reference
    tz = ZoneInfo(ref.timezone)

    def human() -> None:
        table = Table("case", "role", "to do", "due", "left", "category", "grid", "description")
        for r in rows:
            category = ref.categories.get(r["category"])
            left = _minutes(r["minutes_left"]) + (" (held)" if r["held"] else "")
            table.add_row(r["case_no"] or str(r["ticket_id"]), r["role"],
                          "report in" if r["state"] == "waiting" else "handle",
                          local_time(r["due"], tz), left, category.name if category else r["category"],
                          r["grid"], printable(r["description"])[:40])
        table.echo()
        click.echo(f"{len(rows)} open call(s)")

    ctx.emit(rows, human)


_DEADLINES = {"accept": "accept (受理)", "dispatch": "dispatch (派遣)", "ack": "report in", "handle": "handle"}


@main.command()
@click.option("--street", help="Street id or name.")
@click.option("--community", help="Community id or name.")
@click.option("--dept", "department", help="Department id or name.")
@pass_ctx
def overdue(ctx: Ctx, street: str | None, community: str | None, department: str | None) -> None:
    """What is late now: the centre's accept and dispatch deadlines, departments' report-in and
    handling deadlines missed, by how much, at which level (held tickets stand still)."""
    rows = queries.overdue(ctx.runtime, identity=ctx.viewer, street=street, community=community, department=department)
    ref = ctx.runtime.reference
    tz = ZoneInfo(ref.timezone)

    def human() -> None:
        table = Table("case", "who", "deadline", "was due", "late", "level", "community")
        for r in rows:
            dept = ref.departments.get(r["department"] or "")
            community_ = ref.communities.get(r["community"])
            table.add_row(r["case_no"] or str(r["ticket_id"]), dept.name if dept else "grid centre",
                          _DEADLINES.get(r["deadline"], r["deadline"]), local_time(r["due"], tz),
                          _minutes(r["minutes_late"]), r["level"],
                          community_.name if community_ else r["community"])
        table.echo()
        click.echo(f"{len(rows)} overdue")

    ctx.emit(rows, human)
