"""The HTTP API in Kafka mode, against the real broker and PostgreSQL: the API never writes
the event store; it produces each authorized command to the intake topic and answers with
the outcome the engine recorded (applied with the new version, refused with its code), or
202 and a status URL when the engine has not answered in time."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dispatch.bootstrap import bootstrap
from dispatch.service import accounts
from dispatch.web import create_app
from tests.integration.kafka_support import read_topic, stack, threads
from tests.waiting import wait_for

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from consumers.engine import Engine
    from dispatch.service.submission import KafkaSubmitter

pytestmark = pytest.mark.integration
USERS = {"sup": ("supervisor", "grid:cj-shuiku-g01"), "disp": ("dispatcher", "street:caojing"),
         "cg": ("department", "department:chengguan"), "hw": ("department", "department:huanwei"),
         "zf": ("department", "department:zhifa"), "hot": ("hotline", "district:jinshan")}


def test_the_loop_through_the_api_in_kafka_mode(tmp_path: Any) -> None:
    with stack(tmp_path, "api") as s:
        web_rt = bootstrap(s.db_url, kafka=s.settings.bootstrap, topic_prefix=s.settings.prefix)
        engine_rt = bootstrap(s.db_url)
        operator = accounts.local_operator("op")
        tokens = {}
        for name, (role, scope) in USERS.items():
            accounts.add(web_rt, operator, name=name, role=role, scope=scope, password=None)
            tokens[name] = {"Authorization": f"Bearer {accounts.issue_token(web_rt, operator, name).text}"}
        submitter = KafkaSubmitter(web_rt, wait=20)
        app = create_app(web_rt, submitter=submitter, background=False)
        with threads(Engine(engine_rt, s.settings)), TestClient(app) as client:
            r = client.post("/api/tickets", headers=tokens["sup"],
                            json={"grid": "cj-shuiku-g01", "category": "city_appearance", "description": "垃圾"})
            assert r.status_code == 201, r.text
            ticket = r.json()["ticket_id"]
            assert r.json()["version"] == 1
            steps = [("disp", "accept", {}), ("disp", "dispatch", {}), ("cg", "acknowledge", {}),
                     ("hw", "acknowledge", {}), ("zf", "acknowledge", {}), ("cg", "handle", {"result": "已清运"}),
                     ("cg", "feedback", {"message": "已处理"}),
                     ("hot", "evaluate", {"satisfaction": "satisfied", "resolved": True}), ("disp", "close", {})]
            for version, (who, step, body) in enumerate(steps, start=2):
                r = client.post(f"/api/tickets/{ticket}/{step}", headers=tokens[who], json=body)
                assert r.status_code == 200, r.text
                assert r.json()["version"] == version and r.json()["outcome"] == "applied"
                seen = client.get(f"/api/tickets/{ticket}", headers=tokens["disp"]).json()
                assert seen["version"] == version  # a read after a 2xx sees the write
            events = client.get(f"/api/tickets/{ticket}/history", headers=tokens["disp"]).json()["events"]
            assert [e["actor"]["id"] for e in events] == ["sup"] + [who for who, _, _ in steps]

            # refused by the engine: the problem carries the engine's code; nothing recorded
            other = client.post("/api/tickets", headers=tokens["sup"],
                                json={"grid": "cj-shuiku-g01", "category": "city_appearance",
                                      "description": "井盖"}).json()["ticket_id"]
            r = client.post(f"/api/tickets/{other}/close", headers=tokens["disp"], json={})
            assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] in {"illegal_transition", "ticket_not_evaluated"}

            # refused at the door: never produced
            before = len(read_topic(s.settings, s.topics.intake))
            r = client.post(f"/api/tickets/{other}/accept", headers=tokens["cg"], json={})
            assert r.status_code == 404  # 城管 has no call on it: for 城管 it does not exist
            r = client.post(f"/api/tickets/{other}/accept", headers=tokens["disp"],
                            json={"occurred_at": "2026-01-01T00:00:00+08:00"})
            assert r.status_code == 403 and r.json()["code"] == "backfill_not_allowed"
            assert len(read_topic(s.settings, s.topics.intake)) == before

            # the same idempotency key again: the first outcome, not a second step
            first = client.post(f"/api/tickets/{other}/accept", headers=tokens["disp"] | {"Idempotency-Key": "a1"},
                                json={})
            again = client.post(f"/api/tickets/{other}/accept", headers=tokens["disp"] | {"Idempotency-Key": "a1"},
                                json={})
            assert first.status_code == again.status_code == 200
            assert again.json()["version"] == first.json()["version"] == 2 and again.json()["outcome"] == "replayed"

            # no answer in time: 202 and a status URL that gives the outcome once it is there
            submitter.wait = 0.0
            r = client.post(f"/api/tickets/{other}/dispatch", headers=tokens["disp"], json={})
            assert r.status_code == 202 and r.json()["outcome"] == "pending"
            url = r.headers["location"]
            assert client.get(url, headers=tokens["cg"]).status_code == 404  # not theirs
            answer = wait_for(lambda: (a := client.get(url, headers=tokens["disp"]).json())["outcome"] != "pending"
                              and a, timeout=30, every=0.1, what="the engine's answer")
            assert answer["version"] == 3 and answer["event"] == "Dispatched"

            # Open311 in Kafka mode: a token now, the request id once the engine has applied it
            key = tokens["hot"]["Authorization"].removeprefix("Bearer ")
            posted = client.post("/open311/v2/requests.json", headers={"Content-Type": "application/x-www-form-urlencoded"},
                                 data={"api_key": key, "service_code": "city_appearance", "address_id": "cj-shuiku-g01",
                                       "description": "井盖缺失", "phone": "13812345678"})
            assert posted.status_code == 201, posted.text
            token = posted.json()[0]["token"]
            found = wait_for(lambda: (f := client.get(f"/open311/v2/tokens/{token}.json",
                                                      params={"api_key": key}).json()[0]).get("service_request_id")
                             and f, timeout=30, every=0.1, what="the request id behind the token")
            reported = client.get(f"/api/tickets/{found['service_request_id']}", headers=tokens["hot"]).json()
            assert reported["reporter"] == {"phone": "13812345678"}  # sealed by the engine, opened for the hotline
            assert b"13812345678" not in b"".join(
                n.state for n in engine_rt.app.recorder.select_notifications(1, 1000))

            ready = client.get("/readyz").json()
            assert ready["checks"] == {"database": "ok", "kafka": "ok"}
        for rt in (web_rt, engine_rt):
            rt.close()
