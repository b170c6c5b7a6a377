"""An engine never stalls at its start: started right after its topics are made it gets its
partitions and applies at once (twenty times over), and one whose database refuses connections
at start-up waits for it — logging that it is unavailable and when it is back — instead of
exiting."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from psycopg import sql

from dispatch.aggregates import ticket_id_for
from dispatch.bootstrap import bootstrap
from tests.integration.kafka_support import Stack, drop_topics, kill, stack, wait_for
from tests.integration.servers import _connect_maintenance

REPORT = {"type": "report", "actor": {"role": "hotline", "id": "op"}, "grid": "cj-shuiku-g01",
          "category": "city_appearance", "channel": "hotline", "description": "垃圾"}


def _report(ref: str) -> tuple[bytes, bytes]:
    ticket = str(ticket_id_for(external_ref=ref, channel="hotline"))
    body = REPORT | {"external_ref": ref, "command_id": ref, "occurred_at": "2026-03-02T09:00:00+08:00"}
    return ticket.encode(), json.dumps(body, ensure_ascii=False).encode()


def _applied(runtime: Any, ref: str) -> bool:
    try:
        runtime.app.get_ticket(ticket_id_for(external_ref=ref, channel="hotline"))
    except Exception:  # not there yet (the aggregate not found)
        return False
    return True


def test_an_engine_started_right_after_its_topics_applies_at_once_twenty_times(tmp_path: Any) -> None:
    from dispatch.adapters.kafka import KafkaSettings, ensure_topics
    from dispatch.domain.reference import load_reference

    departments = load_reference().departments
    with stack(tmp_path, "startup") as s:
        runtime = bootstrap(s.db_url)
        took = []
        for i in range(20):
            prefix = f"it-start{i}-{uuid.uuid4().hex[:6]}."
            settings = KafkaSettings(bootstrap=s.settings.bootstrap, prefix=prefix,
                                     partitions={"intake": 3, "ticket-events": 1, "whistle": 1, "dead-letters": 1})
            ensure_topics(settings, departments=departments)
            started = time.monotonic()
            mine = Stack(settings, s.db_url, tmp_path)
            engine = mine.engine_process(f"engine-{i}")  # at once: no pause after the topics
            try:
                ref = f"start-{i}-{uuid.uuid4().hex[:6]}"
                mine.send([_report(ref)])
                wait_for(lambda ref=ref: _applied(runtime, ref), timeout=60, every=0.1,
                         what=f"start {i}: the report applied")
                took.append(time.monotonic() - started)
            finally:
                kill(engine)
                drop_topics(settings)
        runtime.close()
    assert len(took) == 20


def test_an_engine_whose_database_refuses_connections_at_start_up_waits_for_it(tmp_path: Any) -> None:
    with stack(tmp_path, "dbwait") as s:
        bootstrap(s.db_url).close()  # the store's tables made; then the database refuses everyone
        name = s.db_url.rsplit("/", 1)[1].split("?")[0]
        with _connect_maintenance(s.db_url) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name)))
        engine = s.engine_process("engine")
        try:
            wait_for(lambda: any("unavailable" in line.get("event", "") for line in s.log_lines("engine")),
                     timeout=60, what="the engine saying its database is unavailable")
            assert engine.poll() is None, "the engine exited instead of waiting"
            with _connect_maintenance(s.db_url) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name)))
            s.send([_report("dbwait-1")])
            runtime = bootstrap(s.db_url)
            wait_for(lambda: _applied(runtime, "dbwait-1"), timeout=90, what="the report applied once it was back")
            runtime.close()
            events = [line.get("event", "") for line in s.log_lines("engine")]
            assert "dependencies available again" in events
        finally:
            kill(engine)
