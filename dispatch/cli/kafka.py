"""Kafka processes: ``serve`` (engine), ``relay``, ``project``, ``department``, plus
``topics``, ``dead-letters`` and ``schemas``. Servers log at INFO with ``-v``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dispatch.adapters.kafka import KafkaSettings
from dispatch.cli import main
from dispatch.cli.context import Ctx, pass_ctx

__all__: list[str] = []


def metrics_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--metrics-port", type=click.IntRange(0, 65535), envvar="DISPATCH_METRICS_PORT",
                        help="Serve /metrics, /healthz and /readyz on this port (127.0.0.1) [env "
                             "DISPATCH_METRICS_PORT].")(f)


_SECURITY = (  # option, KafkaSecurity field, help (secrets: a file or the environment, never the value)
    ("--kafka-security", "protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL [env DISPATCH_KAFKA_SECURITY_PROTOCOL]."),
    ("--kafka-sasl-mechanism", "mechanism", "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN [env DISPATCH_KAFKA_SASL_MECHANISM]."),
    ("--kafka-username", "username", "SASL principal [env DISPATCH_KAFKA_USERNAME]."),
    ("--kafka-password-file", "password_file", "File holding the SASL password [env DISPATCH_KAFKA_PASSWORD(_FILE)]."),
    ("--kafka-ca-file", "cafile", "CA certificates (PEM) to trust [env DISPATCH_KAFKA_CA_FILE]."),
    ("--kafka-cert-file", "certfile", "Client certificate (PEM) [env DISPATCH_KAFKA_CERT_FILE]."),
    ("--kafka-key-file", "keyfile", "Its private key (PEM) [env DISPATCH_KAFKA_KEY_FILE]."),
)


def _keep_security(field: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def keep(ctx: click.Context, _: click.Parameter, value: Any) -> Any:
        if value is not None:
            ctx.meta.setdefault("kafka_security", {})[field] = value
        return value

    return keep


def kafka_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option, field, text in reversed(_SECURITY):
        f = click.option(option, field, metavar="X", help=text, expose_value=False,
                         callback=_keep_security(field))(f)
    f = click.option("--topic-prefix", metavar="P", help="Topic name prefix [env DISPATCH_TOPIC_PREFIX; default 'dispatch.'].")(f)
    f = click.option("--kafka", "bootstrap", metavar="HOST:PORT", help="Kafka bootstrap servers [env DISPATCH_KAFKA].")(f)
    return f


def _settings(bootstrap: str | None, prefix: str | None, partitions: int | None = None) -> KafkaSettings:
    security = click.get_current_context().meta.get("kafka_security", {})
    settings = KafkaSettings.from_env(bootstrap, prefix, security=security)
    if partitions:
        settings = KafkaSettings(settings.bootstrap, settings.prefix,
                                 {k: (partitions if k in ("intake", "ticket-events") else v)
                                  for k, v in settings.partitions.items()}, security=settings.security)
    return settings


@main.command()
@kafka_options
@metrics_option
@click.option("--group", help="Consumer group [default <prefix>engine].")
@click.option("--max-poll-records", type=int, default=2000, show_default=True)
@click.option("--max-message-bytes", type=int, default=64 * 1024, show_default=True,
              help="Larger intake messages are dead-lettered as 'oversized'.")
@click.option("--session-timeout-ms", type=int, default=10_000, show_default=True,
              help="How soon the group moves a dead engine's partitions to another.")
@pass_ctx
def serve(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, metrics_port: int | None, group: str | None,
          max_poll_records: int, max_message_bytes: int, session_timeout_ms: int) -> None:
    """Run the engine: intake commands → ticket aggregates (until Ctrl-C / SIGTERM)."""
    from consumers.engine import serve as run, stop_on_signals

    counts = run(ctx.runtime, _settings(bootstrap, topic_prefix), stop_on_signals(), group=group,
                 max_poll_records=max_poll_records, max_message_bytes=max_message_bytes,
                 session_timeout_ms=session_timeout_ms, metrics_port=metrics_port)
    ctx.emit(counts, f"engine stopped: {counts}")


@main.command()
@kafka_options
@metrics_option
@pass_ctx
def relay(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, metrics_port: int | None) -> None:
    """Run the relay: event store → ticket-events and whistle topics."""
    from consumers.engine import stop_on_signals
    from consumers.relay import run_relay

    counts = run_relay(ctx.runtime, _settings(bootstrap, topic_prefix), stop_on_signals(), metrics_port=metrics_port)
    ctx.emit(counts, f"relay stopped: {counts}")


@main.command()
@kafka_options
@metrics_option
@click.option("--group", help="Consumer group [default <prefix>projector].")
@pass_ctx
def project(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, metrics_port: int | None,
            group: str | None) -> None:
    """Run the projector: ticket-events topic → read models."""
    from consumers.engine import stop_on_signals
    from consumers.projector import run_projector

    counts = run_projector(ctx.runtime, _settings(bootstrap, topic_prefix), stop_on_signals(), group,
                           metrics_port=metrics_port)
    ctx.emit(counts, f"projector stopped: {counts}")


@main.command()
@kafka_options
@click.option("--partitions", type=int, help="Partitions for intake and ticket-events [default 6].")
@pass_ctx
def topics(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, partitions: int | None) -> None:
    """Create the topics that are missing, with each department's door (safe to repeat)."""
    from dispatch.adapters.kafka import ensure_topics

    settings = _settings(bootstrap, topic_prefix, partitions)
    departments = ctx.runtime.reference.departments
    created = ensure_topics(settings, departments=departments)
    for name in [*settings.topics.all(), *settings.topics.doors(departments)]:
        click.echo(f"{name}  {'created' if name in created else 'exists'}")


@main.command("kafka-acls")
@kafka_options
@click.option("--principal-prefix", default="dispatch-", show_default=True,
              help="Principals are User:<prefix>engine, …relay, …projector, …web, …desk-<department>.")
@click.option("--apply", "apply_", is_flag=True, help="Create them with the admin client (needs Alter on the cluster).")
@pass_ctx
def kafka_acls(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, principal_prefix: str,
               apply_: bool) -> None:
    """Print (or --apply) the ACLs each process and each department's desk needs, and no more."""
    from dispatch.adapters.kafka.acls import apply, plan

    settings = _settings(bootstrap, topic_prefix)
    grants = plan(settings.topics, ctx.runtime.reference.departments, principal_prefix)
    rows = [vars(g) for g in grants]
    if apply_:
        made = apply(settings, grants)
        ctx.emit({"applied": made, "acls": rows}, f"created {made} ACLs")
        return

    def human() -> None:
        for g in grants:
            click.echo(f"{g.principal}\t{g.operation}\t{g.resource}\t{g.pattern}\t{g.name}")

    ctx.emit(rows, human)


@main.command("schemas")
@click.option("--out", default="schemas", show_default=True, type=click.Path(file_okay=False))
def schemas(out: str) -> None:
    """Write the intake command JSON Schema (generated from the command models)."""
    from dispatch.adapters.kafka.schemas import write_intake_schema

    click.echo(str(write_intake_schema(out)))


@main.command()
@kafka_options
@click.option("--dept", required=True, help="Department id or name (e.g. 城管).")
@click.option("--inbox", is_flag=True, help="Print the calls still waiting for this department, then exit.")
@click.option("--auto", is_flag=True, help="Answer every call automatically (simulation).")
@click.option("--ack-delay-minutes", type=float, default=15.0, show_default=True)
@click.option("--handle-delay-minutes", type=float, default=240.0, show_default=True)
@click.option("--reject-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ack", "ack_ticket", metavar="TICKET", help="Acknowledge (报到) this ticket's call, then exit.")
@click.option("--reject", "reject_ticket", metavar="TICKET", help="Reject (退单) this ticket's call; needs --reason.")
@click.option("--handle", "handle_ticket", metavar="TICKET", help="Record the handling (处置) of this ticket.")
@click.option("--reason", default="", help="Why the call is rejected.")
@click.option("--result", default="", help="What was done (with --handle).")
@click.option("--at", metavar="TIME", help="Business time of the answer [default now].")
@click.option("--as", "person", default=None, help="Who answers [default <dept>-desk].")
@metrics_option
@pass_ctx
def department(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, dept: str, inbox: bool, auto: bool,
               ack_delay_minutes: float, handle_delay_minutes: float, reject_rate: float, seed: int,
               ack_ticket: str | None, reject_ticket: str | None, handle_ticket: str | None, reason: str,
               result: str, at: str | None, person: str | None, metrics_port: int | None) -> None:
    """A department's desk: receive its whistle calls and answer them on intake."""
    from consumers.department import AutoPolicy, DepartmentDesk, call_line
    from consumers.engine import stop_on_signals
    from dispatch.domain.commands import parse_command

    dept_id = ctx.runtime.reference.department(dept).id
    desk = DepartmentDesk(_settings(bootstrap, topic_prefix), dept_id)
    try:
        actions = [(k, t) for k, t in (("acknowledge", ack_ticket), ("reject", reject_ticket),
                                       ("handle", handle_ticket)) if t]
        if len(actions) > 1 or (actions and (inbox or auto)):
            raise click.UsageError("use one of --ack, --reject, --handle, --inbox, --auto")
        if actions:
            kind, ticket = actions[0]
            body: dict[str, Any] = {
                "type": kind, "ticket_id": str(ctx.ticket_id(ticket)), "department": dept_id,
                "occurred_at": ctx.time(at).isoformat(),
                "actor": {"role": "department", "id": person or f"{dept_id}-desk", "department": dept_id},
            }
            if kind == "reject":
                body["reason"] = reason
            if kind == "handle":
                body["result"] = result
            command = parse_command(body)
            desk.send([command])
            ctx.emit({"sent": kind, "ticket_id": ticket, "department": dept_id}, f"{kind} sent for {ticket}")
        elif inbox:
            calls = desk.inbox()
            ctx.emit(calls, lambda: click.echo("\n".join(call_line(c) for c in calls) or "inbox empty"))
        else:
            from consumers.metrics import ProcessHealth

            if auto:
                desk.auto = AutoPolicy(ack_delay_minutes, handle_delay_minutes, reject_rate, seed)
            desk.health = ProcessHealth(f"desk {dept_id}")
            if metrics_port is not None:
                desk.health.serve(metrics_port)
            try:
                desk.follow(stop_on_signals(), on_message=None if ctx.as_json else lambda m: click.echo(call_line(m)))
            finally:
                desk.health.close()
    finally:
        desk.close()


@main.command("dead-letters")
@kafka_options
@click.option("--limit", type=int, default=100, show_default=True, help="Show at most this many (the latest).")
@pass_ctx
def dead_letters(ctx: Ctx, bootstrap: str | None, topic_prefix: str | None, limit: int) -> None:
    """Show the dead-letter topic: what was refused, from where, and why."""
    from dispatch.adapters.kafka import DeadLetter, make_consumer

    settings = _settings(bootstrap, topic_prefix)
    consumer = make_consumer(settings, None)
    letters: list[DeadLetter] = []
    try:
        from kafka import TopicPartition

        tps = [TopicPartition(settings.topics.dead_letters, p)
               for p in sorted(consumer.partitions_for_topic(settings.topics.dead_letters) or [])]
        consumer.assign(tps)
        ends = consumer.end_offsets(tps)
        consumer.seek_to_beginning(*tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                letters += [DeadLetter.from_record(r) for r in records]
    finally:
        consumer.close()
    letters = letters[-limit:]
    rows = [{"code": d.code, "message": d.message, "source": f"{d.topic}:{d.partition}:{d.offset}",
             "value": (d.value or b"")[:200].decode("utf-8", "replace")} for d in letters]
    ctx.emit(rows, lambda: click.echo("\n".join(f"{r['source']}  {r['code']}  {r['message']}" for r in rows)
                                      or "no dead letters"))


@main.command()
@pass_ctx
def parked(ctx: Ctx) -> None:
    """Show the answers waiting for the dispatch they answer (the engine parked them)."""
    from dispatch.adapters import parked_store as lot

    lot.ensure_table(ctx.runtime.engine)
    rows = lot.describe(ctx.runtime.engine)
    ctx.emit(rows, lambda: click.echo("\n".join(
        f"{r['ticket_id']}  waits for dispatch {r['dispatch_no']}  {r['source']}  at {r['occurred_at']}"
        for r in rows) or "no answer is waiting"))
