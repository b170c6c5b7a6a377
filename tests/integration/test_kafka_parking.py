"""One ticket's commands travel on three topics — the centre's intake, the 12345 platform's
``intake.hotline`` and a department's ``answers.<slug>`` — whose relative order no producer
controls. Sent in the worst order (every answer first, then the centre's steps, the report last
of all), the real engine on the real broker applies every command in the lifecycle's order and
dead-letters none; a command whose report never comes is dead-lettered after the window with
the headers it came with."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import kill, read_topic, stack, stored_command_ids, wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=8)))
CENTRE = {"role": "centre", "id": "c-1"}
HOTLINE = {"role": "hotline", "id": "op-12345"}
DESK = {"role": "department", "id": "cg-desk", "department": "chengguan"}
LIFECYCLE = ["Reported", "Accepted", "Dispatched", "Acknowledged", "Handled", "FeedbackGiven", "Evaluated", "Closed"]


def _message(ticket: str, step: dict[str, Any], cid: str, minutes: int, *, named: bool = True) -> tuple[bytes, bytes]:
    body = step | {"command_id": cid, "occurred_at": (T0 + timedelta(minutes=minutes)).isoformat()}
    if named:
        body["ticket_id"] = ticket
    return ticket.encode(), json.dumps(body, ensure_ascii=False).encode()


def test_a_lifecycle_sent_in_reverse_across_three_topics_is_applied_in_order(tmp_path: Any) -> None:
    n = 20
    answers: list[tuple[bytes, bytes]] = []
    centre: list[tuple[bytes, bytes]] = []
    hotline: list[tuple[bytes, bytes]] = []
    tickets = []
    for i in range(n):
        ref = f"12345-rev{i}"
        ticket = str(ticket_id_for(external_ref=ref, channel="hotline"))
        tickets.append(ticket)
        answers += [_message(ticket, {"type": "acknowledge", "actor": DESK, "department": "chengguan",
                                      "dispatch_no": 1}, f"r{i}-ack", 3),
                    _message(ticket, {"type": "handle", "actor": DESK, "department": "chengguan", "dispatch_no": 1,
                                      "result": "已清运"}, f"r{i}-handle", 40)]
        centre += [_message(ticket, {"type": "accept", "actor": CENTRE}, f"r{i}-accept", 1),
                   _message(ticket, {"type": "dispatch", "actor": CENTRE, "lead": "chengguan", "cooperating": []},
                            f"r{i}-dispatch", 2),
                   _message(ticket, {"type": "feedback", "actor": CENTRE, "message": "已处理"}, f"r{i}-feedback", 50),
                   _message(ticket, {"type": "close", "actor": CENTRE}, f"r{i}-close", 70)]
        hotline += [_message(ticket, {"type": "report", "actor": HOTLINE, "grid": "cj-shuiku-g01",
                                      "category": "city_appearance", "channel": "hotline", "description": "垃圾",
                                      "external_ref": ref}, f"r{i}-report", 0, named=False),
                    _message(ticket, {"type": "evaluate", "actor": HOTLINE, "satisfaction": "satisfied",
                                      "resolved": True}, f"r{i}-evaluate", 60)]
    with stack(tmp_path, "reverse") as s:
        runtime = bootstrap(s.db_url)
        engine = s.engine_process("engine", "--max-poll-records", "7")
        try:
            s.send(answers, s.topics.answers_of("chengguan"))
            from dispatch.adapters import parked_store

            parked_store.ensure_table(runtime.engine)
            wait_for(lambda: len(parked_store.load(runtime.engine)) == len(answers), timeout=120,
                     what="every answer parked, waiting for its report")
            s.send(centre)
            wait_for(lambda: len(parked_store.load(runtime.engine)) == len(answers) + len(centre), timeout=120,
                     what="every centre step parked behind the answers")
            s.send(hotline, s.topics.intake_of("hotline"))
            wait_for(lambda: not parked_store.load(runtime.engine) and len(stored_command_ids(runtime.app)) == 8 * n,
                     timeout=180, what="every command applied")
        finally:
            kill(engine)
        for ticket in tickets:
            assert [type(e).__name__ for e in runtime.app.events.get(uuid.UUID(ticket))] == LIFECYCLE
        assert [cid for cid, k in stored_command_ids(runtime.app).items() if k != 1] == []
        assert read_topic(s.settings, s.topics.dead_letters) == []
        runtime.close()


def test_a_command_whose_report_never_comes_is_dead_lettered_after_the_window_with_its_headers(
        tmp_path: Any) -> None:
    from dispatch.adapters.kafka import make_producer

    ticket = str(ticket_id_for(external_ref="12345-never", channel="hotline"))
    key, value = _message(ticket, {"type": "accept", "actor": CENTRE}, "never-accept", 1)
    with stack(tmp_path, "window") as s:
        runtime = bootstrap(s.db_url)
        engine = s.engine_process("engine", "--report-window", "2", "--sweep-seconds", "0.5")
        try:
            producer = make_producer(s.settings)
            producer.send(s.topics.intake, key=key, value=value, headers=[("trace-id", b"never-1")]).get(timeout=30)
            producer.close()
            wait_for(lambda: read_topic(s.settings, s.topics.dead_letters), timeout=120,
                     what="the command given up after its window")
        finally:
            kill(engine)
        [letter] = read_topic(s.settings, s.topics.dead_letters)
        headers = dict(letter.headers)
        assert letter.value == value and headers["trace-id"] == b"never-1"
        assert headers["dispatch.error.code"] == b"ticket_not_found"
        runtime.close()
