"""Every role × every endpoint × a ticket in its scope (A: street caojing, dispatched to 城管
with 环卫 and 综合执法 cooperating) and one outside it (B: street xinqi, dispatched to 市政 with
物业监管): 401 without a valid token, 403 where the role or scope does not allow it (and then
nothing is recorded, and the audit log holds the refusal), something else where it does.

The expectations are written out by hand, as the roles are described to their users."""

from __future__ import annotations

from uuid import uuid4

from datetime import timedelta
from typing import Any

import pytest

from dispatch.adapters import user_tables
from dispatch.service import accounts
from tests.web.support import GRID_A, GRID_B, USERS, Api

ROLES = list(USERS)
CENTRE = {"boss", "disp-a"}
CENTRE_B = {"boss", "disp-b"}

# step -> (body, who may on A, who may on B)
WRITES: dict[str, tuple[dict[str, Any], set[str], set[str]]] = {
    "accept": ({}, CENTRE, CENTRE_B),
    "first-contact": ({"mode": "explain"}, {"boss", "sup-a", "hot-a", "disp-a"}, {"boss", "sup-b", "hot-b", "disp-b"}),
    "dispatch": ({}, CENTRE, CENTRE_B),
    "acknowledge": ({"department": "chengguan"}, {"boss", "desk-cg", "desk-hw"}, {"boss"}),
    "reject": ({"reason": "不属本部门"}, {"boss", "desk-cg", "desk-hw"}, {"boss"}),
    "handle": ({"result": "ok"}, {"boss", "desk-cg", "desk-hw"}, {"boss"}),
    "feedback": ({"message": "ok"}, {"boss", "disp-a", "desk-cg"}, {"boss", "disp-b"}),
    "evaluate": ({"satisfaction": "satisfied", "resolved": True}, {"boss", "hot-a", "disp-a"},
                 {"boss", "hot-b", "disp-b"}),  # the centre records the call-back's verdict too
    "reopen": ({}, CENTRE, CENTRE_B),
    "escalate": ({}, CENTRE, CENTRE_B),
    "duplicate": ({"original_id": "{other}"}, CENTRE, CENTRE_B),
    "cancel": ({"reason": "测试"}, CENTRE, CENTRE_B),
    "close": ({}, CENTRE, CENTRE_B),
    "extension": ({"department": "chengguan", "minutes": 60, "reason": "等待配件"}, {"boss", "desk-cg"}, {"boss"}),
    "extension-decision": ({"approve": False, "reason": "不符合延期条件"}, CENTRE, CENTRE_B),
    "hold": ({"reason": "等待产权确认"}, CENTRE, CENTRE_B),
    "resume": ({}, CENTRE, CENTRE_B),
}
# A desk names no department (its own is implied); an admin must: give it only to boss.
_DEPT_STEPS = {"acknowledge", "reject", "handle", "extension"}

REPORT_ON_A = {"boss", "sup-a", "sup-b", "hot-a", "disp-a"}  # sup-b: outside its grids, on behalf

# read path -> who may on A / on B
READS_TICKET = ({"boss", "ana", "sup-a", "hot-a", "disp-a", "desk-cg", "desk-hw", "lead-a"},
                {"boss", "ana", "sup-b", "hot-b", "disp-b", "lead-b"})
READS_PLACE: dict[str, set[str]] = {  # asked for street caojing
    "/api/dashboard": {"boss", "ana", "disp-a", "lead-a"},
    "/api/sla": {"boss", "ana", "disp-a", "lead-a"},
    "/api/overdue": {"boss", "ana", "disp-a", "lead-a", "desk-cg", "desk-hw", "desk-jj"},
}
INBOX_CHENGGUAN = {"boss", "ana", "desk-cg"}  # a desk's own work list
EVERYONE = set(ROLES)


@pytest.fixture
def tickets(api: Api) -> dict[str, str]:
    a = api.report("sup-a", GRID_A)
    b = api.report("sup-b", GRID_B, category="public_facilities")
    for t, who in ((a, "disp-a"), (b, "disp-b")):
        api.step(who, t, "accept")
        api.step(who, t, "dispatch")
    return {"A": a, "B": b, "other": api.report("sup-a", GRID_A)}


def _body(step: str, who: str, tickets: dict[str, str]) -> dict[str, Any]:
    body = dict(WRITES[step][0])
    if step in _DEPT_STEPS and who != "boss":
        body.pop("department", None)
    elif step in _DEPT_STEPS:
        body["department"] = "chengguan"
    if "original_id" in body:
        body["original_id"] = tickets["other"]
    return body


def _forbidden_rows(api: Api) -> int:
    return sum(1 for r in user_tables.audit_rows(api.runtime.engine, 10_000) if r["action"] == "forbidden")


@pytest.mark.parametrize("where", ["A", "B"])
def test_writes(api: Api, tickets: dict[str, str], where: str) -> None:
    ticket = tickets[where]
    for step, (_, on_a, on_b) in WRITES.items():
        allowed = on_a if where == "A" else on_b
        for who in ROLES:
            before, audited = api.version(ticket), _forbidden_rows(api)
            r = api.post(who, f"/api/tickets/{ticket}/{step}", _body(step, who, tickets))
            sees = who in READS_TICKET["AB".index(where)]
            if who in allowed:
                assert r.status_code not in (401, 403), (step, who, r.text)
            else:  # what one may not see does not exist for one (404, as for none); the rest 403
                assert r.status_code == (403 if sees else 404), (step, who, r.text)
                assert r.json()["code"] == ("forbidden" if sees else "ticket_not_found")
                assert api.version(ticket) == before, (step, who)  # nothing recorded
                assert _forbidden_rows(api) == audited + 1  # the refusal is in the audit log
            assert api.post(None, f"/api/tickets/{ticket}/{step}", _body(step, who, tickets)).status_code == 401


def test_reports(api: Api) -> None:
    for who in ROLES:
        r = api.post(who, "/api/tickets", {"grid": GRID_A, "category": "city_appearance", "description": "x"})
        assert (r.status_code == 201) == (who in REPORT_ON_A), (who, r.text)
        if who not in REPORT_ON_A:
            assert r.status_code == 403
    assert api.post(None, "/api/tickets", {"grid": GRID_A, "category": "city_appearance",
                                           "description": "x"}).status_code == 401


def test_ticket_reads(api: Api, tickets: dict[str, str]) -> None:
    for where, allowed in zip("AB", READS_TICKET):
        for suffix in ("", "/history", "/timeline"):
            for who in ROLES:
                r = api.get(who, f"/api/tickets/{tickets[where]}{suffix}")
                assert r.status_code == (200 if who in allowed else 404), (where, suffix, who, r.text)
                if who not in allowed:  # exactly as for a ticket that does not exist
                    none = api.get(who, f"/api/tickets/{uuid4()}{suffix}")
                    assert (none.status_code, none.json()["code"], none.json()["title"]) == \
                        (r.status_code, r.json()["code"], r.json()["title"])
            assert api.get(None, f"/api/tickets/{tickets[where]}{suffix}").status_code == 401


def test_lists_show_only_what_each_role_sees(api: Api, tickets: dict[str, str]) -> None:
    for who in ROLES:
        r = api.get(who, "/api/tickets", limit=100)
        assert r.status_code == 200
        seen = {t["ticket_id"] for t in r.json()["tickets"]}
        assert (tickets["A"] in seen) == (who in READS_TICKET[0]), who
        assert (tickets["B"] in seen) == (who in READS_TICKET[1]), who


def test_figures_work_lists_and_reference(api: Api, tickets: dict[str, str]) -> None:
    for path, allowed in READS_PLACE.items():
        for who in ROLES:
            r = api.get(who, path, street="caojing")
            assert r.status_code == (200 if who in allowed else 403), (path, who, r.text)
        assert api.get(None, path, street="caojing").status_code == 401
    for who in ROLES:
        r = api.get(who, "/api/inbox", department="chengguan")
        assert r.status_code == (200 if who in INBOX_CHENGGUAN else 403), (who, r.text)
        for path in ("/api/reference/places", "/api/reference/departments", "/api/reference/categories",
                     "/api/reference/sla-rules", "/api/reference/boundaries", "/api/me"):
            assert api.get(who, path).status_code == 200, (path, who)


def test_only_an_admin_erases_a_reporters_data(api: Api) -> None:
    for who in ROLES:
        r = api.post(who, "/api/reporters/erase", {"phone": "13800000000"})
        assert r.status_code == (200 if who == "boss" else 403), (who, r.text)
    assert api.post(None, "/api/reporters/erase", {"phone": "13800000000"}).status_code == 401


def test_a_department_never_sees_another_departments_calls(api: Api, tickets: dict[str, str]) -> None:
    a = tickets["A"]
    api.step("desk-hw", a, "acknowledge")
    api.step("desk-cg", a, "reject", {"reason": "不属城管"})
    cooperating = api.get("desk-hw", f"/api/tickets/{a}").json()
    assert {call["department"] for call in cooperating["calls"]} == {"huanwei"}
    events = api.get("desk-hw", f"/api/tickets/{a}/history").json()["events"]
    assert [e["event"] for e in events if e["event"] in ("Acknowledged", "Rejected")] == ["Acknowledged"]
    lead = api.get("desk-cg", f"/api/tickets/{a}").json()  # the lead sees its cooperating departments' calls
    assert {call["department"] for call in lead["calls"]} == {"chengguan", "huanwei", "zhifa"}
    assert api.get("desk-hw", "/api/inbox", department="chengguan").status_code == 403
    assert api.get("desk-hw", "/api/overdue", department="chengguan").status_code == 403
    # acting for another department, even one with a call on the ticket
    r = api.post("desk-hw", f"/api/tickets/{a}/handle", {"department": "chengguan"})
    assert r.status_code == 403


def test_disabled_users_expired_and_revoked_tokens_are_refused(api: Api) -> None:
    operator = accounts.local_operator("op")
    accounts.disable(api.runtime, operator, "disp-a")
    assert api.get("disp-a", "/api/tickets").status_code == 401
    short = accounts.issue_token(api.runtime, operator, "ana", days=0.5).text
    api.clock.advance(timedelta(days=1))
    assert api.client.get("/api/tickets", headers={"Authorization": f"Bearer {short}"}).status_code == 401
    accounts.revoke(api.runtime, operator, api.tokens["lead-a"].split("_")[1])
    assert api.get("lead-a", "/api/tickets").status_code == 401
    forged = api.tokens["hot-a"][:-4] + "AAAA"
    assert api.client.get("/api/tickets", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    refusals = [r["detail"] for r in user_tables.audit_rows(api.runtime.engine, 50) if r["outcome"] == "refused"]
    assert any("disabled user disp-a" in d for d in refusals)
    assert any("expired token" in d for d in refusals)
    assert any("revoked token" in d for d in refusals)
    assert any("unknown token" in d for d in refusals)
