"""The hand-computed SLA scenario through Kafka and PostgreSQL, and a projector killed mid-stream.

Commands go to the intake topic as an outside producer would send them; the engine applies
them, the relay puts the events on ticket-events, and projector processes build read models
in databases of their own. One projector runs uninterrupted; another is killed with SIGKILL
part-way and restarted. Both must show exactly the hand-computed figures, and each other's.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import yaml

from consumers.engine import Engine
from consumers.projector import Projector
from consumers.relay import Relay
from dispatch.adapters.kafka import intake_key, make_producer
from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from dispatch.domain.commands import Report, command_to_json, parse_command
from dispatch.projections import stored_position
from tests.integration.kafka_support import kill, read_topic, stack, wait_for
from tests.integration.servers import REPO_ROOT, drop_postgres_database, fresh_postgres_database
from tests.unit.test_sla_scenario import (AS_OF, COMMUNITY_A, DEPARTMENTS, REFERENCE, assert_figures,
                                          cli_json, play, rows_by)

# The scenario's street and departments, plus a busy street elsewhere with its own department,
# so the projector has enough to do to be killed in the middle (its figures stay apart).
NOISE_TICKETS = 1500
REFERENCE_WITH_NOISE = copy.deepcopy(REFERENCE)
REFERENCE_WITH_NOISE["districts"][0]["streets"].append(
    {"id": "s9", "name": "西街道", "communities": [{"id": "c9", "name": "丙社区", "grid_count": 1}]})
REFERENCE_WITH_NOISE["departments"].append({"id": "noise", "name": "物业监管"})
REFERENCE_WITH_NOISE["categories"].append(
    {"id": "estates", "name": "设施管理", "kind": "grid", "lead_department": "noise"})
VIEWS = [("sla", "--by", "department"), ("sla", "--by", "category"), ("sla", "--by", "community"),
         ("sla", "--by", "street", "--period", "week"), ("dashboard", "--street", "s1"),
         ("dashboard", "--community", "ca"), ("dashboard", "--community", "cb")]


class _Capture:
    """Stands in for the application while the scenario is *written*: it keeps each command
    (to be produced to Kafka) and answers with the id the ticket will get."""

    def __init__(self) -> None:
        self.commands: list[Any] = []
        self.app = self

    def execute(self, command: Any) -> Any:
        self.commands.append(command)
        if isinstance(command, Report):
            return SimpleNamespace(ticket_id=ticket_id_for(command_id=command.command_id))
        return SimpleNamespace(ticket_id=command.ticket_id)


def noise(n: int) -> list[Any]:
    out = []
    for i in range(n):
        day = 2 + i % 12  # 10-02 … 10-13
        base = {"occurred_at": f"2026-10-{day:02d}T09:00:00+08:00", "actor": {"role": "centre", "id": "c"}}
        report = parse_command({**base, "type": "report", "command_id": f"n{i}", "grid": "c9-g01",
                                "category": "estates", "channel": "patrol", "description": "noise"})
        out.append(report)
        tid = str(ticket_id_for(command_id=f"n{i}"))
        dept = {"role": "department", "id": "n", "department": "noise"}
        for step, (kind, hhmm, extra) in enumerate([
            ("accept", "09:05", {}), ("dispatch", "09:10", {}), ("acknowledge", "09:20", {"department": "noise"}),
            ("handle", "11:00", {"department": "noise", "result": "ok"}), ("feedback", "11:30", {}),
            ("evaluate", "12:00", {"satisfaction": "satisfied", "resolved": True}), ("close", "12:10", {}),
        ]):
            actor = dept if "department" in extra else base["actor"]
            out.append(parse_command({"type": kind, "command_id": f"n{i}-{step}", "ticket_id": tid, "actor": actor,
                                      "occurred_at": f"2026-10-{day:02d}T{hhmm}:00+08:00", **extra}))
    return out


def positions(url: str, topic: str, partitions: int) -> list[int]:
    runtime = bootstrap(url)
    try:
        return [p if (p := stored_position(runtime.engine, f"{topic}:{i}")) is not None else -1
                for i in range(partitions)]
    finally:
        runtime.close()


def projector_process(url: str, s: Any, group: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "consumers.projector", "--db", url, "--kafka", s.settings.bootstrap,
         "--topic-prefix", s.settings.prefix, "--group", group, "--log-level", "WARNING"],
        cwd=REPO_ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_scenario_through_kafka_gives_the_hand_computed_figures_even_with_a_projector_killed_midway(
    tmp_path: Path,
) -> None:
    ref = tmp_path / "reference.yaml"
    ref.write_text(yaml.safe_dump(REFERENCE_WITH_NOISE, allow_unicode=True), encoding="utf-8")
    capture = _Capture()
    play(capture)  # type: ignore[arg-type]
    commands = noise(NOISE_TICKETS) + capture.commands

    with stack(tmp_path, "scenario") as s:
        # An outside producer sends every command to intake, keyed by ticket.
        producer = make_producer(s.settings)
        for command in commands:
            producer.send(s.topics.intake, key=intake_key(command), value=command_to_json(command))
        producer.flush()
        producer.close()

        # The engine applies them all, exactly once; the relay publishes the events.
        runtime = bootstrap(s.db_url, reference_file=ref)
        try:
            engine = Engine(runtime, s.settings, group=f"{s.settings.prefix}engine")
            engine.run_until_idle()
            engine.close()
            assert engine.counts["applied"] == len(commands) and engine.counts["dead"] == 0, engine.counts
            relay = Relay(runtime, s.settings, idle_sleep=0.05)
            relay.run_until_idle()
            relay.close()
        finally:
            runtime.close()
        events = read_topic(s.settings, s.topics.ticket_events)
        assert len(events) == len(commands)  # one event per command
        partitions = s.settings.partitions_of(s.topics.ticket_events)
        ends = [max((e.offset for e in events if e.partition == p), default=-1) for p in range(partitions)]

        uninterrupted, interrupted = fresh_postgres_database("proj_a"), fresh_postgres_database("proj_b")
        try:
            for url in (uninterrupted, interrupted):
                bootstrap(url, reference_file=ref).close()  # the read side's own copy of the reference data

            # Read model A: one projector, start to end.
            runtime = bootstrap(uninterrupted)
            try:
                projector = Projector(runtime, s.settings, group=f"{s.settings.prefix}a-{uuid.uuid4().hex[:6]}")
                projector.run_until_idle()
                projector.close()
            finally:
                runtime.close()
            assert positions(uninterrupted, s.topics.ticket_events, partitions) == ends

            # Read model B: a projector process killed with SIGKILL in the middle, then restarted.
            group, log = f"{s.settings.prefix}b-{uuid.uuid4().hex[:6]}", tmp_path / "projector.log"
            first = projector_process(interrupted, s, group, log)
            wait_for(lambda: any(p >= 0 for p in positions(interrupted, s.topics.ticket_events, partitions)),
                     every=0.02, timeout=120, what="the projector's first batch")
            kill(first)
            at_kill = positions(interrupted, s.topics.ticket_events, partitions)
            assert at_kill != ends, "the projector finished before it could be killed"
            second = projector_process(interrupted, s, group, log)
            try:
                wait_for(lambda: positions(interrupted, s.topics.ticket_events, partitions) == ends,
                         timeout=180, what="the restarted projector to catch up")
            finally:
                kill(second)

            # Every figure of the interrupted read model equals the uninterrupted one ...
            for view in VIEWS:
                assert cli_json(interrupted, *view, "--as-of", AS_OF) == cli_json(uninterrupted, *view, "--as-of", AS_OF)
            # ... and the hand-computed figures of the scenario.
            rows = rows_by(cli_json(interrupted, "sla", "--by", "department", "--as-of", AS_OF), "department")
            for dept, expected in DEPARTMENTS.items():
                assert_figures(rows[dept], expected)
            assert_figures(cli_json(interrupted, "dashboard", "--community", "ca", "--as-of", AS_OF), COMMUNITY_A)
            assert rows["noise"]["dispatched"] == NOISE_TICKETS
        finally:
            drop_postgres_database(uninterrupted)
            drop_postgres_database(interrupted)
