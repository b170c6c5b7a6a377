"""Reporters' personal data (个人信息保护法): sealed in the event store, seen in full only by the
roles that call back, masked for everyone else, never exported or served by Open311, and
erasable on request — after which it is unreadable everywhere and every figure is unchanged."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from dispatch.bootstrap import bootstrap
from dispatch.projections import catch_up
from dispatch.service.replay.export import export_rows
from tests.unit.safety_support import invoke
from tests.web.support import GRID_A, Api

PHONE, EMAIL, NAME = "13812345678", "zhang.sf@example.com", "张三丰"
REPORTER = {"name": NAME, "phone": PHONE, "email": EMAIL}
FULL = {"boss", "hot-a", "disp-a"}
MASKED = {"sup-a", "desk-cg", "desk-hw", "lead-a", "ana"}


def _loop(api: Api) -> str:
    ticket = api.report("hot-a", reporter=REPORTER)
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    api.step("desk-cg", ticket, "acknowledge")
    return ticket


def _everything_stored(api: Api) -> bytes:
    recorder: Any = api.runtime.app.recorder
    return b"".join(n.state for n in recorder.select_notifications(1, 10_000))


def test_each_role_sees_the_contact_in_full_or_masked(api: Api) -> None:
    ticket = _loop(api)
    for who in FULL | MASKED:
        shown = api.get(who, f"/api/tickets/{ticket}")
        assert shown.status_code == 200, (who, shown.text)
        reporter = shown.json()["reporter"]
        history = api.get(who, f"/api/tickets/{ticket}/history").json()["events"][0]["details"]["reporter"]
        timeline = api.get(who, f"/api/tickets/{ticket}/timeline").json()["events"][0]["details"]["reporter"]
        assert reporter == history == timeline
        if who in FULL:
            assert reporter == REPORTER, who
        else:
            assert reporter == {"name": "张**", "phone": "138****5678", "email": "z***@example.com",
                                "masked": True}, who
            assert PHONE not in shown.text


def test_the_store_the_wire_exports_and_open311_hold_no_phone_number(api: Api) -> None:
    from dispatch.projections.decode import records_from_notifications
    from dispatch.projections.records import record_to_json

    ticket = _loop(api)
    stored = _everything_stored(api)
    assert PHONE.encode() not in stored and NAME.encode() not in stored and b"zhang.sf" not in stored
    recorder: Any = api.runtime.app.recorder
    wire = b"".join(record_to_json(r) for r in records_from_notifications(
        recorder.select_notifications(1, 100), api.runtime.app.mapper))
    assert PHONE.encode() not in wire
    catch_up(api.runtime)
    for kind in ("events", "tickets"):
        rows = list(export_rows(kind, api.runtime.engine, api.runtime.reference, as_of=api.clock.now(),
                                app=api.runtime.app))
        assert rows and PHONE not in json.dumps(rows, default=str, ensure_ascii=False)
    open311 = api.client.get(f"/open311/v2/requests/{ticket}.json", params={"api_key": api.tokens["hot-a"]})
    assert open311.status_code == 200 and PHONE not in open311.text and NAME not in open311.text


def test_open311_and_cli_reports_carry_a_contact_too(api: Api, tmp_path: Any) -> None:
    r = api.client.post("/open311/v2/requests.json", headers={"Content-Type": "application/x-www-form-urlencoded"},
                        data={"api_key": api.tokens["hot-a"], "service_code": "city_appearance",
                              "address_id": GRID_A, "description": "x", "last_name": "李", "first_name": "四",
                              "phone": "13900001111"})
    ticket = r.json()[0]["service_request_id"]
    assert api.get("hot-a", f"/api/tickets/{ticket}").json()["reporter"] == {"name": "李 四",
                                                                             "phone": "13900001111"}
    db = str(tmp_path / "cli.db")
    assert invoke("--db", db, "init").code == 0
    made = invoke("--db", db, "report", "--grid", GRID_A, "--category", "市容环卫", "-d", "x",
                  "--reporter-phone", "13900002222")
    assert made.code == 0, made.err
    shown = json.loads(invoke("--db", db, "--json", "show", made.out.strip()).out)
    assert shown["reporter"] == {"phone": "13900002222"}


def test_erasure_makes_the_contact_unreadable_everywhere_and_changes_no_figure(api: Api, tmp_path: Any) -> None:
    ticket = _loop(api)
    other = api.report("hot-a", reporter={"phone": "13911112222"})
    api.clock.advance(timedelta(hours=1))
    refused = api.post("hot-a", "/api/reporters/erase", {"phone": PHONE})
    assert refused.status_code == 403  # an admin's act
    erased = api.post("boss", "/api/reporters/erase", {"phone": "+86 138-1234-5678"})  # however it is written
    assert erased.status_code == 200 and erased.json() == {"erased_keys": 1}
    for who in ("boss", "hot-a", "ana"):
        assert api.get(who, f"/api/tickets/{ticket}").json()["reporter"] == {"erased": True}
        details = api.get(who, f"/api/tickets/{ticket}/history").json()["events"][0]["details"]
        assert details["reporter"] == {"erased": True}
    assert api.get("hot-a", f"/api/tickets/{other}").json()["reporter"] == {"phone": "13911112222"}
    audit = [r for r in __import__("dispatch.adapters.user_tables", fromlist=["audit_rows"]).audit_rows(api.runtime.engine, 20)
             if r["action"] == "reporter.erase"]
    assert audit and all(PHONE not in r["detail"] and "5678" not in r["detail"] for r in audit)
    # the history is not rewritten and every figure is the same: a replay verifies clean
    db = str(api.runtime.db.url.database)
    verify = invoke("--db", db, "--json", "replay", "--verify")
    assert verify.code == 0, verify.err
    assert json.loads(verify.out)["verification"]["ok"] is True
    reopened = bootstrap(db, create=False)
    assert reopened.app.get_ticket(UUID(ticket)).version == 4  # nothing rewritten
    reopened.close()
