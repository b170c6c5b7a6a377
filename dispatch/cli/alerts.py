"""``dispatch notify``: who hears what (channels, reminder minutes), the notifier process, and
what it could not deliver. Secrets are named (``env:NAME``, ``file:/path``), never given."""

from __future__ import annotations

import click

from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx

__all__: list[str] = []


@main.group()
def notify() -> None:
    """Notifications: whistle calls, deadlines ahead, escalations — by e-mail, 企业微信, 钉钉 or webhook."""


@notify.command("add")
@click.argument("owner", metavar="OWNER")
@click.option("--email", "email", metavar="ADDRESS", help="An e-mail address (the SMTP server: DISPATCH_SMTP_*).")
@click.option("--wecom", metavar="URL", help="A 企业微信 group robot's webhook URL.")
@click.option("--dingtalk", metavar="URL", help="A 钉钉 group robot's webhook URL.")
@click.option("--webhook", metavar="URL", help="Any receiver (an SMS gateway …): signed JSON.")
@click.option("--secret", metavar="env:NAME|file:PATH",
              help="Where the robot's 加签 secret or the webhook's HMAC key is (never the secret itself).")
@click.option("--no-quiet-hours", is_flag=True, help="Wake this channel at night for working-time matters too.")
@click.option("--label", default="", help="What the channel is (e.g. 城管值班群).")
@pass_ctx
def add(ctx: Ctx, owner: str, email: str | None, wecom: str | None, dingtalk: str | None, webhook: str | None,
        secret: str | None, no_quiet_hours: bool, label: str) -> None:
    """A channel for OWNER: department:<id or name> (its desk group, its duty phone), user:<name>, or a
    level of the ladder — community:, street:, district:<id or name> (its supervision group; a
    street's is the grid centre's)."""
    from dispatch.service import notifier

    given = [(k, v) for k, v in (("email", email), ("wecom", wecom), ("dingtalk", dingtalk), ("webhook", webhook))
             if v]
    if len(given) != 1:
        raise click.UsageError("give one of --email, --wecom, --dingtalk, --webhook")
    (kind, target), = given
    made = notifier.add_channel(ctx.runtime, ctx.identity(), owner=owner, kind=kind, target=target, secret=secret,
                                quiet=not no_quiet_hours, label=label)
    ctx.emit(made, f"channel {made['id']}: {made['owner']} by {kind} ({made['target']})")


@notify.command("list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """Every channel: its owner, kind, target (robots' tokens hidden), quiet hours."""
    from dispatch.service import notifier

    rows = notifier.list_channels(ctx.runtime, ctx.identity())

    def human() -> None:
        for r in rows:
            quiet = "quiet hours" if r["quiet"] else "any hour"
            click.echo(f"{r['id']}\t{r['owner']}\t{r['kind']}\t{r['target']}\t{quiet}\t{r['label']}")

    ctx.emit(rows, human)


@notify.command("remove")
@click.argument("channel_id", type=int)
@pass_ctx
def remove(ctx: Ctx, channel_id: int) -> None:
    """Remove a channel."""
    from dispatch.service import notifier

    if not notifier.remove_channel(ctx.runtime, ctx.identity(), channel_id):
        raise click.ClickException(f"no channel {channel_id}")
    ctx.emit({"removed": channel_id}, f"removed channel {channel_id}")


@notify.command("remind")
@click.option("--minutes", type=click.IntRange(1, 1440), help="Minutes before a deadline (default 10).")
@click.option("--category", help="Only for this category (else for all).")
@click.option("--priority", help="Only for this priority (else for all).")
@click.option("--default", "reset", is_flag=True, help="Back to the rule below (the default: 10 minutes).")
@pass_ctx
def remind(ctx: Ctx, minutes: int | None, category: str | None, priority: str | None, reset: bool) -> None:
    """How long before a report-in or handling deadline its department is reminded, per SLA rule
    (category × priority; the most specific wins)."""
    from dispatch.service import notifier

    if minutes is None and not reset:
        raise click.UsageError("give --minutes N, or --default")
    notifier.set_remind_minutes(ctx.runtime, ctx.identity(), None if reset else minutes, category, priority)
    ctx.emit({"category": category, "priority": priority, "minutes": minutes},
             f"reminders {minutes or 'by the rule below'} minutes ahead"
             + (f" for {category or 'any category'} × {priority or 'any priority'}" if category or priority else ""))


@notify.command("failed")
@pass_ctx
def failed(ctx: Ctx) -> None:
    """Messages given up after their retries (send them again with `dispatch notify resend`)."""
    from dispatch.service import notifier

    rows = notifier.failed_sends(ctx.runtime, ctx.identity())

    def human() -> None:
        if not rows:
            click.echo("no failed notifications")
        for r in rows:
            click.echo(f"{r['id']}\tchannel {r['channel']}\t{r['attempts']} tries\t{r['subject']}\t{r['error']}")

    ctx.emit(rows, human)


@notify.command("resend")
@click.argument("ids", nargs=-1, type=int)
@pass_ctx
def resend(ctx: Ctx, ids: tuple[int, ...]) -> None:
    """Send failed messages again (IDS, or all of them); the notifier sends them at its next turn."""
    from dispatch.service import notifier

    count = notifier.resend(ctx.runtime, ctx.identity(), list(ids) or None)
    ctx.emit({"resent": count}, f"{count} notifications to send again")


@notify.command("run")
@click.option("--base-url", default="http://127.0.0.1:8000", show_default=True, envvar="DISPATCH_BASE_URL",
              help="Where people open the pages: the links in messages [env DISPATCH_BASE_URL].")
@click.option("--every", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
              help="Seconds between turns.")
@click.option("--kafka-mode", is_flag=True, help="The read models are the projector's: do not catch them up.")
@click.option("--retry-base", type=click.FloatRange(0.01, 3600), default=5.0, show_default=True,
              help="Seconds before the first retry of a failed send (then doubling, with jitter).")
@click.option("--max-attempts", type=click.IntRange(1, 100), default=8, show_default=True,
              help="Tries before a message is given up (listed by `dispatch notify failed`).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Serve /metrics, /healthz, /readyz here.")
@click.option("--log", "log_file", type=click.Path(dir_okay=False), help="Also write every notice to this file.")
@pass_ctx
def run(ctx: Ctx, base_url: str, every: float, kafka_mode: bool, retry_base: float, max_attempts: int,
        metrics_port: int | None, log_file: str | None) -> None:
    """The notifier, until Ctrl-C / SIGTERM: events and deadlines → messages → channels."""
    from consumers.engine import stop_on_signals
    from consumers.metrics import NotifyMetrics, ProcessHealth
    from dispatch.service.notifier import Notifier

    health = ProcessHealth("notifier")
    if metrics_port is not None:
        health.serve(metrics_port)
    notifier = Notifier(ctx.runtime, base_url=base_url, retry_base=retry_base, max_attempts=max_attempts,
                        catch_up=not kafka_mode, log_file=log_file, metrics=NotifyMetrics(health.registry, health.down))
    stop = stop_on_signals()
    click.echo(f"dispatch notify: running (every {every} s; links to {base_url})", err=True)
    try:
        notifier.run(stop, every)
    finally:
        health.close()
    ctx.emit(notifier.counts, f"notifier stopped: {notifier.counts}")
