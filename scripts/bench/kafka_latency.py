"""Latency: a report produced → visible in the community dashboard's tables, at a fixed rate,
beside the plain Kafka produce → consume latency of the same messages measured alongside.

Engine, relay and projector run as separate processes (``python -m consumers.*``). The
benchmark process paces the producer, consumes a copy of each report from a floor topic
with a plain kafka-python consumer, and polls the read model every few milliseconds
for the reports' tickets (the community dashboard counts a report once its ticket row
exists); at the end it checks the dashboard's ``reported`` figure, and splits each report's
latency into engine / relay / projector stages (``stages_ms``). The consumers log to
``bench-results/logs/latency-*.log``; ``BENCH_PROFILE=consumers.engine`` (or .relay,
.projector) runs that process under pyinstrument.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from sqlalchemy import select

from bench.common import REPO, START, Result, drop_pg, fresh_pg, kafka_bootstrap, load, stop_processes, unique_prefix
from dispatch.adapters.kafka import FETCH_MAX_WAIT_MS, KafkaSettings, ensure_topics, intake_key, make_producer
from dispatch.adapters.kafka.security import KafkaSecurity
from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from dispatch.domain.commands import Report, command_to_json
from dispatch.projections import community_dashboard, create_tables
from dispatch.projections import tables as t

__all__ = ["bench_latency"]

RATE = 200


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def _reports(prefix: str, n: int, grids: list[str]) -> list[Report]:
    return [Report(command_id=f"{prefix}lat-{i}", occurred_at=START + timedelta(milliseconds=i),
                   actor={"role": "supervisor", "id": "sup-1"}, grid=grids[i % len(grids)],
                   category="city_appearance", channel="patrol", description="latency probe") for i in range(n)]


def _start(module: str, db: str, settings: KafkaSettings) -> subprocess.Popen[bytes]:
    logs = REPO / "bench-results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = open(logs / f"latency-{module.rsplit('.', 1)[-1]}.log", "wb")  # noqa: SIM115 - closed with the process
    wrap = (["-m", "pyinstrument", "-o", str(logs / f"latency-{module.rsplit('.', 1)[-1]}.profile.txt")]
            if os.environ.get("BENCH_PROFILE") == module else [])
    return subprocess.Popen([sys.executable, *wrap, "-m", module, "--db", db, "--kafka", settings.bootstrap,
                             "--topic-prefix", settings.prefix, "--log-level", "INFO"],
                            cwd=REPO, stdout=log, stderr=log, env=os.environ | {"PYTHONPATH": str(REPO)})


class _Watch:
    """Polls the read model for tickets not yet seen; records when each appears."""

    def __init__(self, runtime: Any):
        self.runtime, self.pending, self.seen = runtime, {}, {}
        self.lock, self.stop = threading.Lock(), threading.Event()

    def expect(self, ticket_id: str, sent: float) -> None:
        with self.lock:
            self.pending[ticket_id] = sent

    def run(self) -> None:
        tk = t.tickets.c
        while not self.stop.is_set():
            with self.lock:
                ids = list(self.pending)
            if ids:
                with self.runtime.engine.connect() as conn:
                    found = [r[0] for r in conn.execute(select(tk.ticket_id).where(tk.ticket_id.in_(ids)))]
                now = time.perf_counter()
                with self.lock:
                    for tid in found:
                        self.seen[tid] = now - self.pending.pop(tid)
            time.sleep(0.003)


def _floor_consumer(settings: KafkaSettings, topic: str, sent: dict[bytes, float], out: dict[bytes, float],
                    ready: threading.Event, stop: threading.Event) -> None:
    consumer = KafkaConsumer(**settings.client_config(), group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    tps = [TopicPartition(topic, p) for p in range(6)]
    consumer.assign(tps)
    consumer.seek_to_end(*tps)
    for tp in tps:
        consumer.position(tp)
    ready.set()
    while not stop.is_set():
        for records in consumer.poll(timeout_ms=100).values():
            now = time.perf_counter()
            for r in records:
                if r.key in sent:
                    out[r.key] = now - sent[r.key]
    consumer.close()


def _stages(db: str, settings: KafkaSettings, sent: dict[str, float], seen: dict[str, float]) -> dict[str, Any]:
    """Where the time goes, per report (wall clock, one machine): produced → Reported event
    created in the engine (the event's ``timestamp``) → on the ticket-events topic (the
    relay's produce time, the message timestamp) → visible in the read model."""
    import psycopg

    stored: dict[str, float] = {}
    with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
        for tid, ts in conn.execute("SELECT originator_id::text, convert_from(state, 'UTF8')::json->'timestamp'->>'_data_' "
                                    "FROM dispatch_events WHERE originator_version = 1"):
            stored[tid] = datetime.fromisoformat(ts).timestamp()
    relayed: dict[str, float] = {}
    consumer = KafkaConsumer(**settings.client_config(), group_id=None, enable_auto_commit=False)
    try:
        topic = settings.topics.ticket_events
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            for records in consumer.poll(timeout_ms=1000).values():
                for r in records:
                    if b'"version":1,' in r.value and r.key:
                        relayed[r.key.decode()] = r.timestamp / 1000
    finally:
        consumer.close()
    ids = [i for i in sent if i in stored and i in relayed and i in seen]
    steps = {"engine (produced → event recorded)": [stored[i] - sent[i] for i in ids],
             "relay (recorded → on ticket-events)": [relayed[i] - stored[i] for i in ids],
             "projector (on ticket-events → visible)": [sent[i] + seen[i] - relayed[i] for i in ids]}
    return {name: {"p50": round(_pct(v, 0.5) * 1000, 1), "p99": round(_pct(v, 0.99) * 1000, 1)}
            for name, v in steps.items() if v}


def bench_latency(quick: bool) -> Result:
    seconds = 15 if quick else 60
    settings = KafkaSettings(bootstrap=kafka_bootstrap(), prefix=unique_prefix("latency"),
                             security=KafkaSecurity.from_env())  # DISPATCH_KAFKA_SECURITY_* as every client
    from dispatch.domain.reference import load_reference

    ensure_topics(settings, departments=load_reference(None).departments)  # the engine reads every door
    floor_topic = settings.prefix + "floor"
    admin = KafkaAdminClient(**settings.client_config())
    admin.create_topics([NewTopic(floor_topic, 6, 1)])
    admin.close()
    db = fresh_pg("bench_latency")
    runtime = bootstrap(db)
    create_tables(runtime.engine)
    community = runtime.reference.community("xq-baihe")
    grids = [g.id for g in runtime.reference.grids_of_community(community.id)]
    procs = [_start(m, db, settings) for m in ("consumers.engine", "consumers.relay", "consumers.projector")]
    watch, producer = _Watch(runtime), make_producer(settings)
    floor_sent: dict[bytes, float] = {}
    wall_sent: dict[str, float] = {}
    floor_got: dict[bytes, float] = {}
    ready, stop = threading.Event(), threading.Event()
    threads = [threading.Thread(target=watch.run, daemon=True),
               threading.Thread(target=_floor_consumer, args=(settings, floor_topic, floor_sent, floor_got, ready, stop),
                                daemon=True)]
    try:
        for th in threads:
            th.start()
        ready.wait(30)
        # warm-up: the pipeline answers before the clock starts
        for cmd in _reports(settings.prefix + "warm-", 20, grids):
            watch.expect(str(ticket_id_for(command_id=cmd.command_id)), time.perf_counter())
            producer.send(settings.topics.intake, key=intake_key(cmd), value=command_to_json(cmd))
        producer.flush()
        deadline = time.monotonic() + 120
        while len(watch.seen) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        watch.seen.clear()
        reports = _reports(settings.prefix, RATE * seconds, grids)
        began = time.perf_counter()
        for i, cmd in enumerate(reports):
            pause = began + i / RATE - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            key, value = intake_key(cmd), command_to_json(cmd)
            now = time.perf_counter()
            watch.expect(key.decode(), now)
            wall_sent[key.decode()] = time.time()
            floor_sent[cmd.command_id.encode()] = now  # type: ignore[union-attr]
            producer.send(settings.topics.intake, key=key, value=value)
            producer.send(floor_topic, key=cmd.command_id.encode(), value=value)  # type: ignore[union-attr]
        producer.flush()
        achieved = len(reports) / (time.perf_counter() - began)
        deadline = time.monotonic() + 120
        while (len(watch.seen) < len(reports) or len(floor_got) < len(reports)) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        watch.stop.set()
        visible = list(watch.seen.values())
        floor = list(floor_got.values())
        dash = community_dashboard(runtime.engine, runtime.reference, community.id,
                                   as_of=START + timedelta(days=1))
        stages = _stages(db, settings, wall_sent, watch.seen)
    finally:
        stop_processes(procs)
        producer.close()
        runtime.close()
        drop_pg(db)
    p99, floor_p99 = _pct(visible, 0.99) * 1000, _pct(floor, 0.99) * 1000
    return Result(
        "latency", f"report produced → visible in the community dashboard, p99 at {RATE} reports/s "
                   f"({len(reports):,} reports; engine, relay, projector as processes)", "ms", round(p99, 1),
        "Kafka produce → consume p99 alongside, ms", round(floor_p99, 1), round(p99 / floor_p99, 2),
        "p99 ≤ 3× floor", passed=p99 <= 3 * floor_p99,
        details={"p50_ms": round(_pct(visible, 0.5) * 1000, 1), "p99_ms": round(p99, 1),
                 "max_ms": round(max(visible) * 1000, 1), "floor_p50_ms": round(_pct(floor, 0.5) * 1000, 1),
                 "floor_p99_ms": round(floor_p99, 1), "visible": len(visible), "sent": len(reports),
                 "achieved_rate": round(achieved, 1), "dashboard_reported": dash["reported"],
                 "stages_ms": stages,
                 "load_average": load()})
