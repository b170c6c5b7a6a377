"""Write commands: one CLI verb per lifecycle step. Each builds the same command
object a Kafka producer would send and hands it to the application."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import click
from dispatch.adapters.logs import get_logger

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx
from dispatch.domain import commands as c
from dispatch.domain.errors import AlreadyReported
from dispatch.domain.lifecycle import FIRST_CONTACT_MODES, SATISFACTION
from dispatch.service.actions import act

__all__: list[str] = []

log = get_logger("dispatch.cli")


def _at(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--by", "by", metavar="NAME",
                     help="Who does it, recorded as the actor (local operator only) [default: local:<your user name>].")(f)
    return click.option("--at", "at", metavar="TIME",
                        help="Business time, ISO-8601 (admins only: a backfill) [default: now].")(f)


def _run(ctx: Ctx, kind: Any, at: str | None, by: str | None, **fields: Any) -> None:
    outcome = act(ctx.runtime, kind, ctx.identity(by), at=ctx.time(at) if at else None, **fields)
    ticket, command = str(outcome.ticket_id), outcome.command
    log.info("command applied", command=command.type, ticket_id=ticket, recorded=outcome.events[0])
    ctx.emit({"ticket_id": ticket, "event": outcome.events[0], "occurred_at": command.occurred_at},
             f"{ticket} {outcome.events[0]} at {command.occurred_at.isoformat()}")


@main.command()
@click.option("--grid", required=True, help="Grid id or name.")
@click.option("--category", required=True, help="Category id or name (e.g. city_appearance, 市容环卫).")
@click.option("--priority", default="normal", show_default=True)
@click.option("--channel", type=click.Choice(c.CHANNELS), default="patrol", show_default=True)
@click.option("--description", "-d", required=True)
@click.option("--location")
@click.option("--ref", "external_ref", help="Outside reference, e.g. a 12345 case number: reporting it twice makes one ticket.")
@click.option("--reporter-name", help="Who to call back (personal data: sealed, shown in full only to call-back roles).")
@click.option("--reporter-phone", help="Their phone number.")
@click.option("--reporter-email", help="Their e-mail.")
@click.option("--role", type=click.Choice(["supervisor", "hotline", "resident", "centre"]), default="supervisor",
              show_default=True, help="Whose report the local operator records (a --as user reports in its own role).")
@_at
@pass_ctx
def report(ctx: Ctx, grid: str, category: str, priority: str, channel: str, description: str, location: str | None,
           external_ref: str | None, reporter_name: str | None, reporter_phone: str | None,
           reporter_email: str | None, role: str, at: str | None, by: str | None) -> None:
    """上报: report an incident. Prints the new ticket id."""
    try:
        outcome = act(ctx.runtime, c.Report, ctx.identity(by), at=ctx.time(at) if at else None, as_role=role,
                      grid=grid, category=category, priority=priority, channel=channel, description=description,
                      location=location, external_ref=external_ref,
                      reporter={k: v for k, v in (("name", reporter_name), ("phone", reporter_phone),
                                                  ("email", reporter_email)) if v} or None)
        ticket = str(outcome.ticket_id)
        log.info("command applied", command="report", ticket_id=ticket, recorded="Reported")
    except AlreadyReported as e:
        click.echo(f"dispatch: note: {e}", err=True)
        ticket = str(e.ticket_id)
    case_no = ctx.runtime.app.get_ticket(UUID(ticket)).case_no
    if case_no and not ctx.as_json:
        click.echo(f"dispatch: case number {case_no}", err=True)  # stdout stays the id, for scripts
    ctx.emit({"ticket_id": ticket, "case_no": case_no}, ticket)


TICKET = click.argument("ticket")


@main.command()
@TICKET
@click.option("--note", default="")
@_at
@pass_ctx
def accept(ctx: Ctx, ticket: str, note: str, at: str | None, by: str | None) -> None:
    """The grid centre accepts the report (受理)."""
    _run(ctx, c.Accept, at, by, ticket_id=ticket, note=note)


@main.command("first-contact")
@TICKET
@click.option("--mode", required=True, type=click.Choice(FIRST_CONTACT_MODES))
@click.option("--note", default="")
@_at
@pass_ctx
def first_contact(ctx: Ctx, ticket: str, mode: str, note: str, at: str | None, by: str | None) -> None:
    """首问接待: close at first contact, recording which of the five ways."""
    _run(ctx, c.FirstContact, at, by, ticket_id=ticket, mode=mode, note=note)


@main.command()
@TICKET
@click.option("--lead", help="Lead department [default: the category's].")
@click.option("--with", "cooperating", multiple=True, help="A cooperating department (repeat).")
@click.option("--reason", default="")
@_at
@pass_ctx
def whistle(ctx: Ctx, ticket: str, lead: str | None, cooperating: tuple[str, ...], reason: str, at: str | None,
            by: str | None) -> None:
    """吹哨: dispatch to a lead department and cooperating ones (again after a rejection or reopen)."""
    _run(ctx, c.Dispatch, at, by, ticket_id=ticket, lead=lead,
         cooperating=list(cooperating) if cooperating or lead else None, reason=reason)


DEPT = click.option("--dept", "department", required=True, help="Department id or name (e.g. chengguan, 城管).")
DISPATCH_NO = click.option("--dispatch-no", type=click.IntRange(1, 10_000), default=None,
                           help="The dispatch this answers (the n of its call n:<dept>); refused unless the ticket "
                                "is at that dispatch.")


@main.command()
@TICKET
@DEPT
@DISPATCH_NO
@_at
@pass_ctx
def ack(ctx: Ctx, ticket: str, department: str, dispatch_no: int | None, at: str | None, by: str | None) -> None:
    """报到: a department reports in on its call."""
    _run(ctx, c.Acknowledge, at, by, ticket_id=ticket, department=department, dispatch_no=dispatch_no)


@main.command()
@TICKET
@DEPT
@click.option("--reason", required=True)
@DISPATCH_NO
@_at
@pass_ctx
def reject(ctx: Ctx, ticket: str, department: str, reason: str, dispatch_no: int | None, at: str | None,
           by: str | None) -> None:
    """退单: not this department's responsibility."""
    _run(ctx, c.Reject, at, by, ticket_id=ticket, department=department, reason=reason, dispatch_no=dispatch_no)


@main.command()
@TICKET
@DEPT
@click.option("--result", default="")
@DISPATCH_NO
@_at
@pass_ctx
def handle(ctx: Ctx, ticket: str, department: str, result: str, dispatch_no: int | None, at: str | None,
           by: str | None) -> None:
    """处置: the lead department records the handling."""
    _run(ctx, c.Handle, at, by, ticket_id=ticket, department=department, result=result, dispatch_no=dispatch_no)


@main.command()
@TICKET
@click.option("--message", default="")
@click.option("--contacted/--not-contacted", default=True, show_default=True)
@_at
@pass_ctx
def feedback(ctx: Ctx, ticket: str, message: str, contacted: bool, at: str | None, by: str | None) -> None:
    """反馈: tell the reporter the result."""
    _run(ctx, c.Feedback, at, by, ticket_id=ticket, message=message, contacted=contacted)


@main.command()
@TICKET
@click.option("--satisfaction", required=True, type=click.Choice(SATISFACTION))
@click.option("--resolved/--unresolved", default=True, show_default=True)
@click.option("--contacted/--not-contacted", default=True, show_default=True)
@click.option("--comment", default="")
@click.option("--method", type=click.Choice(["callback", "sms", "online", "in_person"]), default="callback",
              show_default=True, help="How the verdict was collected (hotline call-back, SMS, online, in person).")
@_at
@pass_ctx
def evaluate(ctx: Ctx, ticket: str, satisfaction: str, resolved: bool, contacted: bool, comment: str, method: str,
             at: str | None, by: str | None) -> None:
    """评价: the reporter's verdict."""
    _run(ctx, c.Evaluate, at, by, ticket_id=ticket, satisfaction=satisfaction, resolved=resolved,
         contacted=contacted, comment=comment, method=method)


@main.command()
@TICKET
@click.option("--reason", default="")
@_at
@pass_ctx
def reopen(ctx: Ctx, ticket: str, reason: str, at: str | None, by: str | None) -> None:
    """返工: send an evaluated ticket back for another dispatch."""
    _run(ctx, c.Reopen, at, by, ticket_id=ticket, reason=reason)


@main.command()
@TICKET
@click.option("--reason", default="")
@_at
@pass_ctx
def escalate(ctx: Ctx, ticket: str, reason: str, at: str | None, by: str | None) -> None:
    """督办: move the ticket one rung up (grid → community → street → district)."""
    _run(ctx, c.Escalate, at, by, ticket_id=ticket, reason=reason)


@main.command()
@TICKET
@click.option("--of", "original", required=True, help="The original ticket's id or case number.")
@_at
@pass_ctx
def duplicate(ctx: Ctx, ticket: str, original: str, at: str | None, by: str | None) -> None:
    """重复件: mark a ticket as repeating an earlier one."""
    _run(ctx, c.MarkDuplicate, at, by, ticket_id=ticket, original_id=original)


@main.command()
@TICKET
@click.option("--reason", required=True)
@_at
@pass_ctx
def cancel(ctx: Ctx, ticket: str, reason: str, at: str | None, by: str | None) -> None:
    """Void a ticket, with a reason."""
    _run(ctx, c.Cancel, at, by, ticket_id=ticket, reason=reason)


@main.command()
@TICKET
@click.option("--note", default="")
@_at
@pass_ctx
@click.option("--override", default="", metavar="REASON",
              help="Close an unsatisfied or unresolved result without rework: the centre's reason, recorded.")
def close(ctx: Ctx, ticket: str, note: str, override: str, at: str | None, by: str | None) -> None:
    """办结: close an evaluated ticket (after an unsatisfied or unresolved evaluation: reopen it, or --override)."""
    _run(ctx, c.Close, at, by, ticket_id=ticket, note=note, override=override)


@main.command()
@TICKET
@click.option("--dept", "--department", "department", required=True, help="The lead department (id or name).")
@click.option("--minutes", type=click.IntRange(1, 366 * 24 * 60), required=True,
              help="How much more time to handle, in the dispatch's time basis (working minutes for working time).")
@click.option("--reason", required=True)
@_at
@pass_ctx
def extend(ctx: Ctx, ticket: str, department: str, minutes: int, reason: str, at: str | None, by: str | None) -> None:
    """延期申请: the lead department asks the centre for more time to handle."""
    _run(ctx, c.RequestExtension, at, by, ticket_id=ticket, department=department, minutes=minutes, reason=reason)


@main.command()
@TICKET
@click.option("--approve/--refuse", required=True, help="Grant the extension asked for, or refuse it.")
@click.option("--reason", default="", help="Why (required to refuse).")
@_at
@pass_ctx
def extension(ctx: Ctx, ticket: str, approve: bool, reason: str, at: str | None, by: str | None) -> None:
    """The centre decides an extension: granted, the handling and feedback deadlines move."""
    _run(ctx, c.DecideExtension, at, by, ticket_id=ticket, approve=approve, reason=reason)


@main.command()
@TICKET
@click.option("--reason", required=True)
@_at
@pass_ctx
def hold(ctx: Ctx, ticket: str, reason: str, at: str | None, by: str | None) -> None:
    """挂起: stop the ticket's clocks (nothing escalates or counts late while it is held)."""
    _run(ctx, c.Hold, at, by, ticket_id=ticket, reason=reason)


@main.command()
@TICKET
@click.option("--note", default="")
@_at
@pass_ctx
def resume(ctx: Ctx, ticket: str, note: str, at: str | None, by: str | None) -> None:
    """恢复: the clocks run again; every open deadline moves by the time held."""
    _run(ctx, c.Resume, at, by, ticket_id=ticket, note=note)
