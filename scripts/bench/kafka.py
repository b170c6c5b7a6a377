"""Kafka benchmarks: intake throughput (the engine vs a plain consumer + multi-row INSERT)
and scale-out (two engine processes on a two-partition intake vs one). Latency is in
``kafka_latency``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from kafka import KafkaConsumer, TopicPartition

from bench.common import REPO, START, Result, drop_pg, fresh_pg, kafka_bootstrap, load, stop_processes, unique_prefix
from bench.kafka_latency import bench_latency
from consumers.engine import Engine
from dispatch.adapters.kafka import FETCH_MAX_WAIT_MS, KafkaSettings, ensure_topics, intake_key, make_producer
from dispatch.adapters.kafka.load import produce
from dispatch.adapters.kafka.security import KafkaSecurity
from dispatch.bootstrap import bootstrap, freeze_startup
from dispatch.domain.commands import command_to_json
from dispatch.domain.reference import load_reference
from dispatch.service.simulation import simulate

__all__ = ["bench_intake", "bench_latency", "bench_scale_out", "intake_messages"]


def intake_messages(n: int, seed: int = 1) -> list[tuple[bytes, bytes]]:
    """The first ``n`` commands of a busy simulated street, keyed by ticket."""
    out = []
    for _, cmd in simulate(load_reference(None), "xinqi", max(3, n // 8000 + 3), 1000, seed, START):
        out.append((intake_key(cmd), command_to_json(cmd)))
        if len(out) >= n:
            break
    return out


def _settings(name: str, intake_partitions: int = 6) -> KafkaSettings:
    settings = KafkaSettings(bootstrap=kafka_bootstrap(), prefix=unique_prefix(name),
                             partitions={"intake": intake_partitions, "ticket-events": 6, "whistle": 3,
                                         "dead-letters": 1},
                             security=KafkaSecurity.from_env())  # DISPATCH_KAFKA_SECURITY_* as every client
    ensure_topics(settings, departments=load_reference(None).departments)  # the engine reads every door
    return settings


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _engine_rate(settings: KafkaSettings, messages: list[tuple[bytes, bytes]], db: str) -> dict[str, Any]:
    """Join first (on an empty topic), then produce everything, then time the engine to the end."""
    runtime = bootstrap(db)
    freeze_startup()  # as the engine's own process does once started (``consumers/process.py``)
    engine = Engine(runtime, settings, poll_timeout_ms=100)
    topic = settings.topics.intake
    tps = [TopicPartition(topic, p) for p in range(settings.partitions_of(topic))]
    deadline = time.monotonic() + 60
    while set(engine.owned) != set(tps) and time.monotonic() < deadline:
        engine.step()
    producer = make_producer(settings)
    produce(producer, topic, messages)
    producer.close()
    ends = engine.consumer.end_offsets(tps)
    began = time.perf_counter()
    while any(ends[tp] and (engine.owned.get(tp) is None or engine.owned[tp] < ends[tp] - 1) for tp in tps):
        engine.step()
    seconds = time.perf_counter() - began
    counts = dict(engine.counts)
    engine.close()
    runtime.close()
    return {"seconds": seconds, "rate": len(messages) / seconds, **counts}


def _floor_rate(settings: KafkaSettings, db: str, n: int) -> dict[str, Any]:
    """kafka-python reads the same messages; one multi-row INSERT (and commit) per poll."""
    topic = settings.topics.intake
    consumer = KafkaConsumer(**settings.client_config(), group_id=None, enable_auto_commit=False,
                             max_poll_records=2000, isolation_level="read_committed",
                             fetch_max_wait_ms=FETCH_MAX_WAIT_MS)  # the engine's consumer settings
    tps = [TopicPartition(topic, p) for p in range(settings.partitions_of(topic))]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    with psycopg.connect(_dsn(db)) as conn:
        conn.execute("CREATE TABLE intake_floor (part int, off bigint, key bytea, value bytea)")
        conn.commit()
        got, began = 0, time.perf_counter()
        while got < n:
            for tp, records in consumer.poll(timeout_ms=500, max_records=2000).items():
                rows = ", ".join(["(%s, %s, %s, %s)"] * len(records))
                params = [x for r in records for x in (r.partition, r.offset, r.key, r.value)]
                conn.execute(f"INSERT INTO intake_floor VALUES {rows}", params)  # type: ignore[arg-type]
                conn.commit()
                got += len(records)
        seconds = time.perf_counter() - began
    consumer.close()
    return {"seconds": seconds, "rate": got / seconds}


def bench_intake(quick: bool) -> Result:
    n = 20_000 if quick else 100_000
    messages = intake_messages(n)
    settings = _settings("intake")
    db, floor_db = fresh_pg("bench_intake"), fresh_pg("bench_intake_floor")
    try:
        engine = _engine_rate(settings, messages, db)
        floor = _floor_rate(settings, floor_db, n)
    finally:
        drop_pg(db)
        drop_pg(floor_db)
    rate, ratio = engine["rate"], engine["rate"] / floor["rate"]
    return Result(
        "intake", f"intake topic → ticket aggregates in PostgreSQL, exactly-once ({n:,} simulated commands, "
                  "6 partitions, one engine)", "commands/s", round(rate),
        "kafka-python + one multi-row INSERT per poll, messages/s", round(floor["rate"]), round(ratio, 3),
        "≥ 0.5× floor and ≥ 5,000/s", passed=ratio >= 0.5 and rate >= 5000,
        details={"messages": n, "seconds": round(engine["seconds"], 2), "floor_seconds": round(floor["seconds"], 2),
                 "applied": engine["applied"], "refused": engine["refused"], "batches": engine["batches"],
                 "load_average": load()})


# --- scale-out -------------------------------------------------------------------------------

def _applied(db: str) -> dict[str, int]:
    with psycopg.connect(_dsn(db)) as conn:
        return {name: pos for name, pos in conn.execute("SELECT application_name, notification_id FROM dispatch_tracking")}


def _assignments(path: Path) -> list[int] | None:
    """The partitions of an engine's latest assignment, from its JSON log."""
    latest = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("event") == "partitions assigned":
            latest = entry.get("partitions")
    return latest


def _engines_rate(engines: int, messages: list[tuple[bytes, bytes]], logs: Path) -> dict[str, Any]:
    """Start the engines on the empty topic, wait until each holds its share of the two
    partitions, then produce everything and time the engines from first to last applied."""
    settings = _settings(f"scale{engines}", intake_partitions=2)
    topic = settings.topics.intake
    db = fresh_pg(f"bench_scale{engines}")
    bootstrap(db).close()  # tables exist before the engines race to create them
    procs, paths = [], []
    try:
        for i in range(engines):
            paths.append(logs / f"engine-{engines}-{i}.log")
            log = open(paths[-1], "wb")  # noqa: SIM115 - closed with the process
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "consumers.engine", "--db", db, "--kafka", settings.bootstrap,
                 "--topic-prefix", settings.prefix, "--log-level", "INFO"],
                cwd=REPO, stdout=log, stderr=log, env=os.environ | {"PYTHONPATH": str(REPO)}))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            held = [_assignments(p) for p in paths]
            if all(h is not None and len(h) == 2 // engines for h in held):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"engines did not settle on their partitions: {held}")
        producer = make_producer(settings)
        produce(producer, topic, messages)
        producer.close()
        ends = {f"{topic}:{p}": end - 1 for p, end in _ends(settings, topic).items() if end}
        first_at, first_done, deadline = None, 0, time.monotonic() + 1200
        while time.monotonic() < deadline:
            positions = _applied(db)
            done = sum(positions.get(name, -1) + 1 for name in ends)
            if first_at is None and done:
                first_at, first_done = time.perf_counter(), done
            if all(positions.get(name, -1) >= end for name, end in ends.items()):
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - (first_at or time.perf_counter())
        held = [_assignments(p) for p in paths]
    finally:
        stop_processes(procs)
        drop_pg(db)
    return {"seconds": seconds, "rate": (len(messages) - first_done) / seconds if seconds else None,
            "measured_messages": len(messages) - first_done, "partitions_held_at_end": held}


def _ends(settings: KafkaSettings, topic: str) -> dict[int, int]:
    consumer = KafkaConsumer(**settings.client_config(), group_id=None)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        return {tp.partition: end for tp, end in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def bench_scale_out(quick: bool) -> Result:
    n = 20_000 if quick else 60_000
    messages = intake_messages(n, seed=2)
    logs = REPO / "bench-results" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    one = _engines_rate(1, messages, logs)
    two = _engines_rate(2, messages, logs)
    ratio = two["rate"] / one["rate"]
    return Result(
        "scale-out", f"two engine processes on a 2-partition intake ({n:,} commands, PostgreSQL)", "commands/s",
        round(two["rate"]), "one engine process on the same intake, commands/s", round(one["rate"]), round(ratio, 2),
        "≥ 1.6×", passed=ratio >= 1.6,
        details={"one": one, "two": two, "nproc": os.cpu_count(), "load_average": load()})
