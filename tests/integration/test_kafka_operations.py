"""Running the engine as a service: SIGTERM mid-stream hands its partitions to the survivor at once
(the session timeout is a minute; the survivor has them long before) and loses and doubles
nothing; PostgreSQL stopped mid-stream and started again, the engine says so on /readyz and goes
on with nothing lost or doubled; the metrics endpoint shows the lag and outcomes moving."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx2 as httpx
import pytest

from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import intake_caught_up, kill, some_progress, stack, stored_command_ids, \
    wait_for
from tests.integration.servers import private_postgres

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import KafkaAdminClient

    from dispatch.adapters.kafka.load import lifecycle_messages

pytestmark = pytest.mark.integration
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
SESSION_TIMEOUT_S = 60


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _members(s: Any, group: str) -> int:
    """How many members the group's coordinator lists now."""
    admin = KafkaAdminClient(**s.settings.client_config())
    try:
        return len(admin.describe_groups([group])[group]["members"])
    finally:
        admin.close()


def _exactly_once(app: Any, messages: list[Any]) -> None:
    import json

    expected = {json.loads(value)["command_id"] for _, value in messages}
    counts = stored_command_ids(app)
    assert set(counts) == expected, f"missing {len(expected - set(counts))}, unexpected {len(set(counts) - expected)}"
    assert [cid for cid, n in counts.items() if n != 1] == []


def test_sigterm_mid_stream_hands_the_partitions_over_at_once_and_loses_and_doubles_nothing(tmp_path: Any) -> None:
    with stack(tmp_path, "sigterm") as s:
        runtime = bootstrap(s.db_url)
        port = _port()
        minute = ("--session-timeout-ms", str(SESSION_TIMEOUT_S * 1000), "--max-poll-records", "200")
        a = s.engine_process("engine-a", *minute, "--metrics-port", str(port))
        b = s.engine_process("engine-b", *minute)
        try:
            def assigned(name: str) -> list[list[int]]:
                return [line["partitions"] for line in s.log_lines(name) if line.get("event") == "partitions assigned"]

            wait_for(lambda: assigned("engine-a") and assigned("engine-b") and assigned("engine-a")[-1]
                     and assigned("engine-b")[-1]
                     and len(assigned("engine-a")[-1]) + len(assigned("engine-b")[-1]) == 6, timeout=120,
                     what="a split assignment")
            before = len(assigned("engine-b"))
            messages = lifecycle_messages(runtime.reference, 3000, start=T0, tag="term")
            s.send(messages)
            some_progress(runtime.app, 500)

            # A's metrics move while it works: its lag and its applied commands
            first = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            wait_for(lambda: _metric(httpx.get(f"http://127.0.0.1:{port}/metrics").text, "dispatch_commands_total",
                                     outcome="applied") > _metric(first, "dispatch_commands_total", outcome="applied"),
                     every=0.05, what="A's applied counter to move")
            assert _metric(first, "dispatch_consumer_lag") > 0 and httpx.get(f"http://127.0.0.1:{port}/readyz").is_success

            a.send_signal(signal.SIGTERM)
            assert a.wait(timeout=SESSION_TIMEOUT_S) == 0
            stopped = [line for line in s.log_lines("engine-a") if line.get("event") == "engine stopped"]
            assert stopped and stopped[-1]["applied"] > 0
            assert runtime.app.recorder.max_notification_id() < len(messages), "the stream ended before SIGTERM"
            # A left the group as it stopped: the coordinator lists B alone at once (a member that
            # vanished would stay listed until its 60 s session expired), so B's new assignment
            # below is the rebalance A's leaving began, not one the session timeout would begin
            assert _members(s, f"{s.settings.prefix}engine") == 1
            wait_for(lambda: len(assigned("engine-b")) > before and set(assigned("engine-b")[-1]) == set(range(6)),
                     timeout=120, every=0.1, what="B to be assigned A's partitions")
            wait_for(lambda: intake_caught_up(s, runtime.app), timeout=180, what="B to finish the stream")
        finally:
            kill(a)
            kill(b)
        _exactly_once(runtime.app, messages)
        runtime.close()


def test_postgres_stopped_mid_stream_and_started_again_loses_and_doubles_nothing(tmp_path: Any) -> None:
    """On a PostgreSQL of the test's own: the shared one, other tests' and people's, keeps running."""
    with private_postgres() as (server, url), stack(tmp_path, "pgdown", postgres=url) as s:
        runtime = bootstrap(s.db_url)
        port = _port()
        engine = s.engine_process("engine", "--max-poll-records", "200", "--metrics-port", str(port))
        ready = f"http://127.0.0.1:{port}/readyz"
        try:
            wait_for(lambda: any(line.get("event") == "partitions assigned" for line in s.log_lines("engine")),
                     timeout=120, what="the engine to join")
            messages = lifecycle_messages(runtime.reference, 4000, start=T0, tag="pgdown")
            s.send(messages)
            some_progress(runtime.app, 300)
            assert (runtime.app.recorder.max_notification_id() or 0) < len(messages), "the stream ended too soon"
            runtime.close()
            server.stop()
            try:
                down = wait_for(lambda: (r := httpx.get(ready)).status_code == 503 and r.json(), timeout=60,
                                what="/readyz to say the database is down")
                assert "database" in down["down"]
                assert engine.poll() is None, "the engine must wait for the database, not exit"
                time.sleep(3)
            finally:
                server.start()
            runtime = bootstrap(s.db_url)
            wait_for(lambda: intake_caught_up(s, runtime.app), timeout=240, what="the engine to finish the stream")
            wait_for(lambda: httpx.get(ready).status_code == 200, timeout=30, what="/readyz to be ready again")
            lines = [line.get("event") for line in s.log_lines("engine")]
            assert "database unavailable; retrying" in lines and "dependencies available again" in lines
            assert lines.count("database unavailable; retrying") == 1
        finally:
            kill(engine)
        _exactly_once(runtime.app, messages)
        runtime.close()


def test_every_process_serves_metrics_that_move_with_its_work(tmp_path: Any) -> None:
    """The engine, relay, projector, watchdog and a department's desk, each on its own port: the
    counters and lags each one owns move while a stream goes through all five."""
    with stack(tmp_path, "metrics") as s:
        bootstrap(s.db_url).close()  # the store, made as `dispatch init` would (the CLI's commands ask for one)
        ports = {name: _port() for name in ("engine", "relay", "projector", "watchdog", "desk")}
        processes = [
            s.engine_process("engine", "--metrics-port", str(ports["engine"])),
            s.process("relay", "consumers.relay", "--metrics-port", str(ports["relay"])),
            s.process("projector", "consumers.projector", "--metrics-port", str(ports["projector"])),
            # business times months ago: every acknowledgement deadline is missed as of now
            s.process("watchdog", "dispatch", "watchdog", "--interval", "2", "--metrics-port", str(ports["watchdog"])),
            s.process("desk", "dispatch", "department", "--dept", "chengguan", "--auto",
                      "--metrics-port", str(ports["desk"])),
        ]

        def scrape(name: str) -> str:
            return httpx.get(f"http://127.0.0.1:{ports[name]}/metrics", timeout=5).text

        try:
            before = {name: wait_for(lambda n=name: _answers(ports[n]) and scrape(n), timeout=120,
                                     what=f"the {name}'s metrics endpoint") for name in ports}
            centre = {"role": "centre", "id": "c-1"}
            messages = []
            for n in range(20):
                ref = f"12345-m{n}"
                ticket = str(ticket_id_for(external_ref=ref, channel="hotline"))
                for k, body in enumerate([
                        {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
                         "category": "city_appearance", "channel": "hotline", "description": "垃圾",
                         "external_ref": ref},
                        {"type": "accept", "actor": centre, "ticket_id": ticket},
                        # 城管 (whose desk runs) leads half; 环卫 (no desk: its calls go overdue) the rest
                        {"type": "dispatch", "actor": centre, "ticket_id": ticket,
                         "lead": "chengguan" if n % 2 == 0 else "huanwei", "cooperating": []}]):
                    at = (T0 + timedelta(minutes=n + k)).isoformat()
                    messages.append((ticket.encode(), json.dumps(body | {"command_id": f"m{n}-{k}", "occurred_at": at},
                                                                 ensure_ascii=False).encode()))
            s.send(messages)

            def moved(name: str, metric: str, **labels: str) -> bool:
                return _metric(scrape(name), metric, **labels) > _metric(before[name], metric, **labels)

            wait_for(lambda: moved("engine", "dispatch_commands_total", outcome="applied"), timeout=120,
                     what="the engine's applied counter")
            wait_for(lambda: moved("relay", "dispatch_events_total"), timeout=120, what="the relay's events")
            wait_for(lambda: moved("projector", "dispatch_events_total"), timeout=120, what="the projector's events")
            wait_for(lambda: moved("desk", "dispatch_desk_calls_total") and moved("desk", "dispatch_desk_answers_total"),
                     timeout=120, what="the desk's calls and answers")
            wait_for(lambda: moved("watchdog", "dispatch_watchdog_escalations_total"), timeout=120,
                     what="the watchdog's escalations")
            # the desk's answers came through its door: the engine applied them too
            wait_for(lambda: _metric(scrape("engine"), "dispatch_commands_total", outcome="applied") >= 60 + 10 + 10,
                     timeout=120, what="the desk's answers applied")
            # lags: per partition for the consumers, of the store for the relay, of its door for the desk
            engine, projector, desk = scrape("engine"), scrape("projector"), scrape("desk")
            assert f'topic="{s.topics.intake}"' in engine and "dispatch_consumer_lag{" in engine
            assert f'topic="{s.topics.ticket_events}"' in projector
            assert f'topic="{s.topics.whistle_of("chengguan")}"' in desk
            assert "dispatch_store_lag_events" in scrape("relay")
            wait_for(lambda: _metric(scrape("watchdog"), "dispatch_overdue_deadlines") > 0, timeout=60,
                     what="the watchdog's overdue deadlines")
            for name in ports:
                wait_for(lambda name=name: httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=5).status_code
                         == 200, timeout=60, what=f"{name} ready")
        finally:
            for process in processes:
                kill(process, signal.SIGTERM)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_engine_killed_while_answers_park_and_wake_loses_and_doubles_none(tmp_path: Any) -> None:
    """Answers sent before their dispatches: the engine is SIGKILLed while it parks them, and again
    while the dispatches wake them; every answer is applied exactly once and none stays parked."""
    from dispatch.adapters import parked_store

    n = 150
    centre = {"role": "centre", "id": "c-1"}
    desk = {"role": "department", "id": "cg-desk", "department": "chengguan"}

    def body(ticket: str, step: dict[str, Any], cid: str, minutes: int) -> tuple[bytes, bytes]:
        return ticket.encode(), json.dumps(step | {"ticket_id": ticket, "command_id": cid, "occurred_at": (
            T0 + timedelta(minutes=minutes)).isoformat()}, ensure_ascii=False).encode()

    tickets = [str(ticket_id_for(external_ref=f"12345-k{i}", channel="hotline")) for i in range(n)]
    opened, answers, dispatches = [], [], []
    for i, ticket in enumerate(tickets):
        report = {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
                  "category": "city_appearance", "channel": "hotline", "description": "垃圾",
                  "external_ref": f"12345-k{i}"}
        key, value = body(ticket, report, f"k{i}-report", 0)
        opened += [(key, json.dumps({k: v for k, v in json.loads(value).items() if k != "ticket_id"},
                                    ensure_ascii=False).encode()),
                   body(ticket, {"type": "accept", "actor": centre}, f"k{i}-accept", 1)]
        answers += [body(ticket, {"type": "acknowledge", "actor": desk, "department": "chengguan", "dispatch_no": 1},
                         f"k{i}-ack", 10),
                    body(ticket, {"type": "handle", "actor": desk, "department": "chengguan", "dispatch_no": 1,
                                  "result": "已清运"}, f"k{i}-handle", 60)]
        dispatches.append(body(ticket, {"type": "dispatch", "actor": centre, "lead": "chengguan",
                                        "cooperating": []}, f"k{i}-dispatch", 2))
    with stack(tmp_path, "parkkill") as s:
        runtime = bootstrap(s.db_url)
        parked_store.ensure_table(runtime.engine)
        engine = s.engine_process("engine-1", "--max-poll-records", "5")
        try:
            s.send(opened)
            wait_for(lambda: intake_caught_up(s, runtime.app), timeout=120, what="the reports and acceptances")
            s.send(answers, s.topics.answers_of("chengguan"))
            wait_for(lambda: len(parked_store.load(runtime.engine)) >= 40, every=0.02, what="some answers parked")
            kill(engine)  # SIGKILL while it parks
            assert len(parked_store.load(runtime.engine)) < len(answers), "every answer was parked before the kill"
            engine = s.engine_process("engine-2", "--max-poll-records", "5")
            wait_for(lambda: len(parked_store.load(runtime.engine)) == len(answers), timeout=120,
                     what="every answer parked, once")
            s.send(dispatches)
            wait_for(lambda: len(parked_store.load(runtime.engine)) <= len(answers) - 40, every=0.02,
                     what="some answers woken")
            kill(engine)  # SIGKILL while the dispatches wake them
            assert parked_store.load(runtime.engine), "every answer was woken before the kill"
            engine = s.engine_process("engine-3", "--max-poll-records", "20")
            wait_for(lambda: intake_caught_up(s, runtime.app) and not parked_store.load(runtime.engine), timeout=180,
                     what="every dispatch applied and every answer woken")
        finally:
            kill(engine)
        counts = stored_command_ids(runtime.app)
        expected = {json.loads(value)["command_id"] for _, value in opened + answers + dispatches}
        assert set(counts) == expected, f"missing {sorted(expected - set(counts))[:5]}"
        assert [cid for cid, k in counts.items() if k != 1] == []
        assert {runtime.app.get_ticket(uuid.UUID(t)).status for t in tickets} == {"handled"}
        runtime.close()
