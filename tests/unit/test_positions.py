"""Positions are data: ``Reported`` v4 carries the report's position; a store written before it
(v1, v2 or v3 reports, the position only inside the location text) reads with the same positions
through the aggregate, its snapshots, the read model and the wire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from dispatch.aggregates.ticket import Ticket
from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain import commands as c
from dispatch.domain.upcasting import position_in_text, upcast_data
from dispatch.projections import catch_up, list_tickets
from dispatch.service import accounts
from dispatch.service.actions import act

REPORTED = "dispatch.aggregates.ticket:Ticket.Reported"


def _middle(runtime: Runtime, grid: str) -> tuple[float, float]:
    ring = runtime.reference.boundaries[grid]["coordinates"][0]
    return (ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[2][1]) / 2


@pytest.fixture
def current(tmp_path: Path) -> Any:
    runtime = bootstrap(str(tmp_path / "v4.db"))
    op = accounts.local_operator("op")
    lon, lat = _middle(runtime, "cj-shuiku-g02")
    placed = act(runtime, c.Report, op, category="市容环卫", description="垃圾满溢", channel="patrol",
                 position={"lat": lat, "lon": lon, "crs": "WGS84", "accuracy": 15.0}).ticket_id
    typed = act(runtime, c.Report, op, category="市容环卫", description="井盖缺失", channel="patrol",
                location="水库村南口", position={"lat": lat, "lon": lon}).ticket_id
    plain = act(runtime, c.Report, op, grid="cj-shuiku-g01", category="市容环卫", description="路灯不亮",
                channel="patrol", location="村委会门口").ticket_id
    yield runtime, {"placed": str(placed), "typed": str(typed), "plain": str(plain)}, (lat, lon)
    runtime.close()


def _old_copy(current: Runtime, path: Path, version: int) -> Runtime:
    """The same history as an older dispatch stored it: a Reported of ``version`` (1, 2 or 3),
    its position only in the location text as that code wrote it."""
    old = bootstrap(str(path))
    transcoder = current.app.mapper.transcoder
    stored = []
    for n in current.app.recorder.select_notifications(1, 1000):
        state = n.state
        if n.topic == REPORTED:
            body = transcoder.decode(state)
            position = body.pop("position")
            if position is not None:
                where = f"{position['lat']:.6f},{position['lon']:.6f} (WGS-84)"
                body["location"] = f"{body['location']} @ {where}" if body.get("location") else where
            drop = {3: (), 2: ("case_no", "accept_due", "dispatch_due", "centre_basis", "provisional", "calendar"),
                    1: ("case_no", "accept_due", "dispatch_due", "centre_basis", "provisional", "calendar",
                        "reporter", "media")}[version]
            for key in drop:
                body.pop(key, None)
            if version == 1:
                body.pop("class_version", None)
            else:
                body["class_version"] = version
            state = transcoder.encode(body)
        stored.append(StoredEvent(originator_id=n.originator_id, originator_version=n.originator_version,
                                  topic=n.topic, state=state))
    old.app.recorder.insert_events(stored)
    return old


@pytest.mark.parametrize("version", [1, 2, 3])
def test_an_old_history_reads_with_its_position(current: Any, tmp_path: Path, version: int) -> None:
    runtime, ids, (lat, lon) = current
    old = _old_copy(runtime, tmp_path / f"v{version}.db", version)
    try:
        raw = [n for n in old.app.recorder.select_notifications(1, 10) if n.topic == REPORTED]
        assert all(b"position" not in n.state for n in raw)  # really the old shape
        placed, typed, plain = (old.app.get_ticket(__import__("uuid").UUID(ids[k])) for k in ("placed", "typed", "plain"))
        for ticket in (placed, typed):
            assert ticket.position is not None
            assert ticket.position["lat"] == pytest.approx(lat, abs=1e-6)
            assert ticket.position["lon"] == pytest.approx(lon, abs=1e-6)
            assert ticket.position["given_in"] is None and ticket.position["accuracy"] is None  # not recorded then
        assert typed.location == f"水库村南口 @ {lat:.6f},{lon:.6f} (WGS-84)"  # the text stays as it was
        assert plain.position is None
        catch_up(old)
        rows = {r["ticket_id"]: r for r in list_tickets(old.engine, limit=10)}
        assert rows[ids["placed"]]["lat"] == pytest.approx(lat, abs=1e-6) and rows[ids["plain"]]["lat"] is None
    finally:
        old.close()


def test_the_current_history_keeps_what_the_phone_gave(current: Any) -> None:
    runtime, ids, (lat, lon) = current
    ticket = runtime.app.get_ticket(__import__("uuid").UUID(ids["placed"]))
    assert ticket.position == {"lat": pytest.approx(lat), "lon": pytest.approx(lon), "given_in": "WGS84",
                               "accuracy": 15.0}
    assert ticket.location is None


def test_a_snapshot_from_before_v4_gets_the_position_from_its_location_text() -> None:
    state = {"location": "水库村南口 @ 30.789000,121.393700 (WGS-84)"}
    Ticket.upcast_v3_v4(state)
    assert state["position"] == {"lat": 30.789, "lon": 121.3937, "given_in": None, "accuracy": None}
    state = {"location": "村委会门口"}
    Ticket.upcast_v3_v4(state)
    assert state["position"] is None


def test_a_wire_record_from_an_older_relay_gets_the_position() -> None:
    data = {"location": "30.789000,121.393700 (WGS-84)", "reporter": None, "media": None, "case_no": None}
    assert upcast_data("Reported", data)
    assert data["position"] == {"lat": 30.789, "lon": 121.3937, "given_in": None, "accuracy": None}


@pytest.mark.parametrize("text", [None, "", "北口", "30.7,121.3", "91.000000,121.000000 (WGS-84)",
                                  "position 30.789000,121.393700 (WGS-84) nearby"])
def test_text_without_a_position_gives_none(text: str | None) -> None:
    assert position_in_text(text) is None
