"""The whole loop through the HTTP API, one user per role, on the embedded default: every
write answered with the new version, visible to the next read, recorded as the signed-in
identity at the time the server received it."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from dispatch.web.guard import Limits
from tests.web.support import GRID_A, START, Api, make_api


def test_the_loop_with_one_user_per_role(api: Api) -> None:
    ticket = api.report("sup-a")
    steps = [("disp-a", "accept", {}), ("disp-a", "dispatch", {}), ("desk-cg", "acknowledge", {}),
             ("desk-hw", "acknowledge", {}), ("desk-cg", "handle", {"result": "已清运"}),
             ("desk-cg", "feedback", {"message": "已处理"}),
             ("hot-a", "evaluate", {"satisfaction": "satisfied", "resolved": True}),
             ("disp-a", "close", {})]
    for version, (who, step, body) in enumerate(steps, start=2):
        answer = api.step(who, ticket, step, body)
        assert answer["version"] == version and answer["outcome"] == "applied"
        assert api.version(ticket) == version  # a read after a 2xx sees the write
    assert api.get("disp-a", f"/api/tickets/{ticket}").json()["status"] == "closed"

    events = api.get("boss", f"/api/tickets/{ticket}/history").json()["events"]
    actors = [(e["actor"]["role"], e["actor"]["id"]) for e in events]
    assert actors == [("supervisor", "sup-a"), ("centre", "disp-a"), ("centre", "disp-a"),
                      ("department", "desk-cg"), ("department", "desk-hw"), ("department", "desk-cg"),
                      ("department", "desk-cg"), ("hotline", "hot-a"), ("centre", "disp-a")]
    assert events[3]["actor"]["department"] == "chengguan"
    # business time = the time the server received each step, on the clock it was given
    for minutes, event in enumerate(events, start=1):
        assert datetime.fromisoformat(event["occurred_at"]) == datetime.fromisoformat(event["actor"]["received_at"])
        assert datetime.fromisoformat(event["occurred_at"]) == START + timedelta(minutes=minutes)


def test_only_an_admin_sets_a_business_time(api: Api) -> None:
    ticket = api.report()
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    early = "2026-11-20T09:03:30+08:00"
    refused = api.post("desk-cg", f"/api/tickets/{ticket}/acknowledge", {"occurred_at": early})
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "backfill_not_allowed"
    assert api.version(ticket) == 3  # nothing recorded

    backfill = api.step("boss", ticket, "acknowledge", {"department": "chengguan", "occurred_at": early})
    event = api.get("boss", f"/api/tickets/{ticket}/history").json()["events"][-1]
    assert backfill["version"] == 4 and event["occurred_at"] == early
    assert event["actor"] == {"role": "department", "id": "boss", "department": "chengguan",
                              "received_at": event["actor"]["received_at"]}
    assert event["actor"]["received_at"] > "2026-11-20T01:03:30"  # received later (UTC), recorded beside it


def test_a_supervisor_reports_outside_its_grids_on_behalf(api: Api) -> None:
    ticket = api.report("sup-a", grid="xq-baihe-g01")
    first = api.get("boss", f"/api/tickets/{ticket}/history").json()["events"][0]
    assert first["actor"]["on_behalf"] is True and first["actor"]["grid"] == GRID_A
    own = api.report("sup-a")
    assert "on_behalf" not in api.get("boss", f"/api/tickets/{own}/history").json()["events"][0]["actor"]


def test_an_idempotency_key_applies_a_write_once(api: Api) -> None:
    body = {"grid": GRID_A, "category": "city_appearance", "description": "井盖缺失"}
    first = api.post("sup-a", "/api/tickets", body, **{"Idempotency-Key": "phone-42"})
    again = api.post("sup-a", "/api/tickets", body, **{"Idempotency-Key": "phone-42"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["ticket_id"] == first.json()["ticket_id"] and again.json()["outcome"] == "replayed"
    other = api.post("sup-b", "/api/tickets", body, **{"Idempotency-Key": "phone-42"})  # keys are per user
    assert other.json()["ticket_id"] != first.json()["ticket_id"]

    ticket = first.json()["ticket_id"]
    accepted = api.post("disp-a", f"/api/tickets/{ticket}/accept", {}, **{"Idempotency-Key": "k1"})
    repeat = api.post("disp-a", f"/api/tickets/{ticket}/accept", {}, **{"Idempotency-Key": "k1"})
    assert accepted.json()["version"] == repeat.json()["version"] == 2 and repeat.json()["outcome"] == "replayed"
    assert api.version(ticket) == 2


def test_reads_find_a_ticket_by_its_outside_reference_and_page_the_list(api: Api) -> None:
    ticket = api.report("hot-a", external_ref="12345-2026-0001")
    assert api.get("hot-a", "/api/tickets/12345-2026-0001").json()["ticket_id"] == ticket
    for _ in range(4):
        api.report("sup-a")
    page = api.get("disp-a", "/api/tickets", limit=2).json()
    assert len(page["tickets"]) == 2 and page["next_offset"] == 2
    rest = api.get("disp-a", "/api/tickets", limit=10, offset=2).json()
    assert len(rest["tickets"]) == 3 and rest["next_offset"] is None
    seen = {t["ticket_id"] for t in page["tickets"] + rest["tickets"]}
    assert len(seen) == 5


def test_a_refused_step_is_a_problem_with_the_catalogue_code(api: Api) -> None:
    ticket = api.report()
    r = api.post("disp-a", f"/api/tickets/{ticket}/close", {})
    assert r.status_code == 409 and r.json()["code"] in {"illegal_transition", "ticket_not_evaluated"}
    assert r.headers["content-type"] == "application/problem+json"
    r = api.post("disp-a", f"/api/tickets/{ticket}/evaluate", {"satisfaction": "meh", "resolved": "yes"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_command"
    assert "Error" not in r.json()["detail"] and "Traceback" not in r.text
    r = api.post("disp-a", "/api/tickets/not-a-ticket/accept", {})
    assert r.status_code == 404 and r.json()["code"] == "ticket_not_found"
    assert api.version(ticket) == 1


def test_password_sign_in_locks_after_five_failures_and_is_audited(api: Api) -> None:
    for _ in range(5):
        r = api.client.post("/api/session", json={"name": "boss", "password": "wrong password"})
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated"
    r = api.client.post("/api/session", json={"name": "boss", "password": "correct horse battery"})
    assert r.status_code == 401 and r.json()["code"] == "account_locked"
    audit = api.runtime.engine
    from dispatch.adapters import user_tables

    rows = user_tables.audit_rows(audit, 20)
    assert sum(1 for row in rows if row["action"] == "signin" and row["outcome"] == "refused") == 6


def test_a_signed_in_token_works_until_it_is_revoked_or_expires(api: Api) -> None:
    from datetime import timedelta

    from dispatch.service import accounts

    r = api.client.post("/api/session", json={"name": "boss", "password": "correct horse battery"})
    token = r.json()["token"]
    me = api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "boss", "role": "admin", "scope_kind": None, "scope": []}
    api.clock.advance(timedelta(hours=9))  # sign-in tokens last 8 hours
    assert api.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    accounts.revoke(api.runtime, accounts.local_operator("op"), api.tokens["ana"].split("_")[1])
    assert api.get("ana", "/api/me").status_code == 401


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok"}
    ticket = api.report()
    api.post("disp-a", f"/api/tickets/{ticket}/close", {})
    text = api.client.get("/metrics").text
    assert 'dispatch_commands_total{outcome="applied",type="report"} 1.0' in text
    assert 'outcome="ticket_not_evaluated"' in text or 'outcome="illegal_transition"' in text
    assert 'dispatch_http_requests_total{method="POST",route="/api/tickets",status="201"} 1.0' in text
    assert "dispatch_projection_lag_events" in text


def test_every_answer_carries_the_security_headers_and_large_bodies_are_refused(api: Api) -> None:
    r = api.get(None, "/api/tickets")
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    for header in ("x-content-type-options", "x-frame-options", "content-security-policy", "referrer-policy"):
        assert header in r.headers
    assert "access-control-allow-origin" not in api.client.options(
        "/api/tickets", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}).headers
    big = api.post("sup-a", "/api/tickets", {"grid": GRID_A, "category": "city_appearance",
                                            "description": "x" * 70_000})
    assert big.status_code == 413 and big.json()["code"] == "too_large"


def test_writes_are_rate_limited_per_identity_and_sign_ins_per_address(tmp_path: Path) -> None:
    api = make_api(tmp_path, limits=Limits(writes_per_minute=1, write_burst=3, signins_per_minute=2))
    with api.client:
        for _ in range(3):
            api.report("sup-a")
        r = api.post("sup-a", "/api/tickets", {"grid": GRID_A, "category": "city_appearance", "description": "x"})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
        api.report("hot-a")  # another identity has its own allowance
        for _ in range(2):
            api.client.post("/api/session", json={"name": "boss", "password": "wrong password"})
        r = api.client.post("/api/session", json={"name": "boss", "password": "correct horse battery"})
        assert r.status_code == 429
    api.runtime.close()


def test_a_report_placed_by_position_in_either_coordinate_system(api: Api) -> None:
    from coordTransform import wgs84_to_gcj02

    ring = api.runtime.reference.boundaries["cj-hutang-g01"]["coordinates"][0]
    lon, lat = (ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[2][1]) / 2  # the middle of the grid
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    for position in ({"lat": lat, "lon": lon}, {"lat": gcj_lat, "lon": gcj_lon, "crs": "GCJ02"}):
        r = api.post("sup-a", "/api/tickets", {"category": "city_appearance", "description": "x",
                                               "position": position})
        assert r.status_code == 201, r.text
        shown = api.get("boss", f"/api/tickets/{r.json()['ticket_id']}").json()
        assert shown["grid"] == "cj-hutang-g01"
    # the GCJ-02 numbers read as GPS land in another grid: why the system must be named
    assert api.runtime.locator.locate(gcj_lon, gcj_lat) != "cj-hutang-g01"
    r = api.post("sup-a", "/api/tickets", {"category": "city_appearance", "description": "x",
                                           "position": {"lat": 0.0, "lon": 0.0}})
    assert r.status_code == 400 and r.json()["code"] == "position_outside_grids"
    r = api.post("sup-a", "/api/tickets", {"category": "city_appearance", "description": "x"})
    assert r.status_code == 422 and "position" in r.json()["detail"]


def test_grid_boundaries_are_served_as_geojson(api: Api) -> None:
    data = api.get("disp-a", "/api/reference/boundaries", street="漕泾镇").json()
    assert data["type"] == "FeatureCollection"
    grids = {f["properties"]["grid"] for f in data["features"]}
    assert GRID_A in grids and all(g.startswith("cj-") for g in grids)
    assert all(f["properties"]["sample"] is True and f["geometry"]["type"] == "Polygon" for f in data["features"])


def test_an_answer_names_the_dispatch_it_answers(api: Api) -> None:
    """Over HTTP (embedded: applied at once) an answer to a dispatch still to come is refused,
    not parked — only the Kafka engine parks — and one to the current dispatch is applied."""
    ticket = api.report()
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    ahead = api.post("desk-cg", f"/api/tickets/{ticket}/acknowledge", {"dispatch_no": 2})
    assert ahead.status_code == 409 and ahead.json()["code"] == "awaiting_dispatch"
    assert "has not reached dispatch 2" in ahead.json()["detail"]
    assert api.version(ticket) == 3
    assert api.step("desk-cg", ticket, "acknowledge", {"dispatch_no": 1})["version"] == 4
