"""docs/open311.md, row by row: each test names the row it holds (GeoReport v2 point by point),
and the last ones run PyPI's ``georeport`` client, unchanged, against a served dispatch."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from dispatch.service import accounts
from tests.waiting import wait_for
from tests.web.support import START, Api, make_api, sign_in_page

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
BASE = "/open311/v2"


@pytest.fixture
def public(tmp_path: Path) -> Iterator[Api]:
    made = make_api(tmp_path, open311_public_reads=True)
    with made.client:
        yield made
    made.runtime.close()


def _middle(api: Api, grid: str) -> tuple[float, float]:
    ring = api.runtime.reference.boundaries[grid]["coordinates"][0]
    return (ring[0][1] + ring[2][1]) / 2, (ring[0][0] + ring[1][0]) / 2  # lat, lon


def _post(api: Api, who: str | None = "hot-a", fmt: str = "json", **form: Any) -> Any:
    api.clock.advance(timedelta(minutes=1))
    data = {"service_code": "city_appearance", "description": "垃圾堆放", **form}
    if who:
        data["api_key"] = api.tokens[who]
    return api.client.post(f"{BASE}/requests.{fmt}", data=data, headers=FORM)


def _placed(api: Api, grid: str = "cj-hutang-g02", who: str = "hot-a", **form: Any) -> str:
    lat, lon = _middle(api, grid)
    r = _post(api, who, lat=str(lat), long=str(lon), **form)
    assert r.status_code == 201, r.text
    return str(r.json()[0]["service_request_id"])


def _get(api: Api, path: str, who: str | None = "hot-a", **params: Any) -> Any:
    if who:
        params["api_key"] = api.tokens[who]
    return api.client.get(f"{BASE}/{path}", params=params)


def _is_error(r: Any, status: int) -> None:
    assert r.status_code == status, r.text
    if r.headers["content-type"].startswith("text/xml"):
        root = ET.fromstring(r.content)
        assert root.tag == "errors" and root.find("error/code").text == str(status)  # type: ignore[union-attr]
        assert root.find("error/description").text  # type: ignore[union-attr]
    else:
        [error] = r.json()
        assert error["code"] == status and error["description"] and list(error) == ["code", "description"]


def test_row_01_discovery(api: Api) -> None:
    doc = api.client.get(f"{BASE}/discovery.json").json()
    assert doc["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert set(doc["endpoints"][0]["formats"]) == {"text/xml", "application/json"}


def test_row_02_services_need_no_key(api: Api) -> None:
    services = api.client.get(f"{BASE}/services.json").json()
    row = {s["service_code"]: s for s in services}["city_appearance"]
    assert row["metadata"] is True and row["type"] == "realtime" and isinstance(row["keywords"], str)


def test_row_03_an_unknown_service_definition_is_404(api: Api) -> None:
    _is_error(api.client.get(f"{BASE}/services/no_such.json"), 404)
    _is_error(api.client.get(f"{BASE}/services/no_such.xml"), 404)


def test_row_04_a_missing_or_bad_key_is_403(api: Api) -> None:
    lat, lon = _middle(api, "cj-hutang-g02")
    _is_error(_post(api, None, lat=str(lat), long=str(lon)), 403)
    _is_error(_post(api, None, lat=str(lat), long=str(lon), api_key="dsp_nope_nope"), 403)
    _is_error(_post(api, None, fmt="xml", lat=str(lat), long=str(lon)), 403)


def test_row_05_posting_an_unknown_service_code_is_404(api: Api) -> None:
    lat, lon = _middle(api, "cj-hutang-g02")
    _is_error(_post(api, service_code="no_such", lat=str(lat), long=str(lon)), 404)


def test_row_06_a_position_places_the_report(api: Api) -> None:
    lat, lon = _middle(api, "cj-hutang-g02")
    r = _post(api, lat=str(lat), long=str(lon))
    assert r.status_code == 201 and set(r.json()[0]) == {"service_request_id", "service_notice", "account_id"}
    assert api.get("boss", f"/api/tickets/{r.json()[0]['service_request_id']}").json()["grid"] == "cj-hutang-g02"
    _is_error(_post(api, lat="0", long="0"), 400)


def test_row_07_an_address_id_names_the_grid(api: Api) -> None:
    r = _post(api, address_id="cj-shuiku-g02")
    assert r.status_code == 201
    assert api.get("boss", f"/api/tickets/{r.json()[0]['service_request_id']}").json()["grid"] == "cj-shuiku-g02"


def test_row_08_an_address_in_words_waits_to_be_placed_and_keeps_its_time(api: Api) -> None:
    sent = _post(api, address_string="漕泾镇护塘村东口 垃圾桶旁", phone="13812345678")
    assert sent.status_code == 201, sent.text
    [row] = sent.json()
    token = row["token"]
    assert "service_request_id" not in row
    from dispatch.domain.identity import Identity
    from dispatch.service.access import sees_change

    [told] = api.client.app.state.service.live.moves[-1].changes  # the consoles' streams are told at once
    assert told["ticket_id"] == f"unplaced-{token}"
    assert sees_change(Identity("d", "dispatcher", "street", ("caojing",)), told)
    assert not sees_change(Identity("c", "department", "department", ("chengguan",)), told)
    reported = api.clock.now()
    waiting = _get(api, f"tokens/{token}.json").json()
    assert waiting == [{"service_request_id": None, "token": token}]
    # another district's dispatcher does not see it; the centre of its district does
    csrf = sign_in_page(api, "disp-b")
    assert "东口" not in api.client.get("/console/body").text
    refused = api.client.post(f"/console/{token}/place", data={"grid": "xq-baihe-g01"},
                              headers={"X-CSRF-Token": csrf} | FORM)
    assert "已不在待定位队列中" in refused.text
    csrf = sign_in_page(api, "disp-a")
    body = api.client.get("/console/body").text
    assert "待定位" in body and "漕泾镇护塘村东口" in body and "13812345678" not in body
    api.clock.advance(timedelta(hours=2))
    unchosen = api.client.post(f"/console/{token}/place", data={"grid": ""}, headers={"X-CSRF-Token": csrf} | FORM)
    assert "请选择这条上报所在的网格" in unchosen.text
    placed = api.client.post(f"/console/{token}/place", data={"grid": "cj-hutang-g01"},
                             headers={"X-CSRF-Token": csrf} | FORM)
    assert placed.status_code == 200 and "漕泾镇护塘村东口" not in placed.text.split("新上报")[0]
    [found] = _get(api, f"tokens/{token}.json").json()
    ticket = api.get("boss", f"/api/tickets/{found['service_request_id']}").json()
    assert ticket["grid"] == "cj-hutang-g01" and ticket["channel"] == "third_party"
    assert ticket["reported_at"].startswith(reported.astimezone(START.tzinfo).isoformat()[:16])  # its SLA clock
    again = api.client.post(f"/console/{token}/place", data={"grid": "cj-hutang-g02"},
                            headers={"X-CSRF-Token": csrf} | FORM)
    assert "已不在待定位队列中" in again.text  # one report, one ticket
    assert len(api.get("boss", "/api/tickets", limit=50).json()["tickets"]) == 1


def test_row_09_no_location_at_all_is_400(api: Api) -> None:
    _is_error(_post(api), 400)


def test_row_10_contact_details_never_come_back(api: Api) -> None:
    ticket = _placed(api, first_name="三", last_name="张", phone="13812345678", email="z@example.com")
    text = _get(api, f"requests/{ticket}.json").text + _get(api, "requests.json").text
    text += _get(api, f"requests/{ticket}.xml").text
    assert ticket in text
    assert "13812345678" not in text and "z@example.com" not in text and "张" not in text


def test_row_11_reads_need_a_key_and_see_only_what_the_user_may(api: Api) -> None:
    ticket = _placed(api)
    _is_error(_get(api, "requests.json", None), 403)
    _is_error(_get(api, f"requests/{ticket}.json", None), 403)
    _is_error(_get(api, f"requests/{ticket}.json", "hot-b"), 404)  # another district's: as if none
    assert [r["service_request_id"] for r in _get(api, "requests.json").json()] == [ticket]
    assert _get(api, "requests.json", "hot-b").json() == []


def test_row_12_a_list_of_ids_overrides_the_other_filters(api: Api) -> None:
    first, second = _placed(api), _placed(api)
    listed = _get(api, "requests.json", service_request_id=f"{first},{second}", status="closed",
                  service_code="city_appearance", start_date="2001-01-01T00:00:00Z", end_date="2001-01-02T00:00:00Z")
    assert {r["service_request_id"] for r in listed.json()} == {first, second}


def test_row_13_service_codes_as_a_list(api: Api) -> None:
    codes = list(api.runtime.reference.categories)[:2]
    made = {code: _placed(api, service_code=code) for code in codes}
    both = _get(api, "requests.json", service_code=",".join(codes)).json()
    assert {r["service_request_id"] for r in both} == set(made.values())
    one = _get(api, "requests.json", service_code=codes[0]).json()
    assert [r["service_request_id"] for r in one] == [made[codes[0]]]
    _is_error(_get(api, "requests.json", service_code=f"{codes[0]},no_such"), 404)


def test_row_14_status_open_closed_or_both(api: Api) -> None:
    ticket = _placed(api)
    api.step("disp-a", ticket, "cancel", {"reason": "误报"})
    assert _get(api, "requests.json", status="open").json() == []
    assert [r["status"] for r in _get(api, "requests.json", status="closed").json()] == ["closed"]
    assert len(_get(api, "requests.json", status="open,closed").json()) == 1
    _is_error(_get(api, "requests.json", status="pending"), 400)


def test_row_15_the_last_90_days_by_default(api: Api) -> None:
    old = _placed(api)
    api.clock.advance(timedelta(days=91))
    api.tokens["hot-a"] = accounts.issue_token(api.runtime, accounts.local_operator("op"), "hot-a").text  # 90 days
    new = _placed(api)
    assert [r["service_request_id"] for r in _get(api, "requests.json").json()] == [new]
    since = (START - timedelta(days=1)).isoformat()
    assert {r["service_request_id"] for r in _get(api, "requests.json", start_date=since).json()} == {old, new}
    until = (START + timedelta(days=2)).isoformat()
    assert [r["service_request_id"] for r in _get(api, "requests.json", end_date=until).json()] == [old]
    _is_error(_get(api, "requests.json", start_date="1900-01-01T00:00:00Z"), 400)


def test_row_16_up_to_1000_by_default(api: Api) -> None:
    from dispatch.web import open311

    assert open311.MAX_PAGE == 1000
    for _ in range(3):
        _placed(api)
    assert len(_get(api, "requests.json").json()) == 3
    assert len(_get(api, "requests.json", page_size="2").json()) == 2
    _is_error(_get(api, "requests.json", page_size="1001"), 400)


def test_row_17_each_request_has_its_fields_and_position(api: Api) -> None:
    lat, lon = _middle(api, "cj-hutang-g02")
    ticket = _placed(api)
    [row] = _get(api, f"requests/{ticket}.json").json()
    assert {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
            "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
            "address", "address_id", "zipcode", "lat", "long", "media_url"} <= set(row)
    assert abs(row["lat"] - lat) < 1e-6 and abs(row["long"] - lon) < 1e-6


def test_row_18_the_address_is_most_specific_first(api: Api) -> None:
    ticket = _placed(api)
    [row] = _get(api, f"requests/{ticket}.json").json()
    place = api.runtime.reference.place("cj-hutang-g02")
    assert row["address"] == ", ".join(p.name for p in (place.grid, place.community, place.street, place.district))


def test_row_19_an_unknown_request_is_404(api: Api) -> None:
    _is_error(_get(api, "requests/00000000-0000-0000-0000-000000000000.json"), 404)
    _is_error(_get(api, "requests/00000000-0000-0000-0000-000000000000.xml"), 404)


def test_row_20_an_unknown_token_is_404_in_either_format(api: Api) -> None:
    _is_error(_get(api, "tokens/nothing-here.json"), 404)
    _is_error(_get(api, "tokens/nothing-here.xml"), 404)
    _is_error(_get(api, "tokens/nothing-here.json", None), 403)


def test_row_21_errors_in_the_spec_shape(api: Api) -> None:
    _is_error(_get(api, "requests.json", page="x"), 400)
    _is_error(_get(api, "requests.xml", page="x"), 400)


def test_row_22_content_types_say_utf_8(api: Api) -> None:
    assert api.client.get(f"{BASE}/services.json").headers["content-type"] == "application/json; charset=utf-8"
    assert api.client.get(f"{BASE}/services.xml").headers["content-type"] == "text/xml; charset=utf-8"
    assert _get(api, "requests.json").headers["content-type"] == "application/json; charset=utf-8"


def test_row_23_other_formats_are_404(api: Api) -> None:
    assert api.client.get(f"{BASE}/services.csv").status_code == 404


def test_row_24_public_reads_show_only_public_fields(public: Api) -> None:
    lat, lon = _middle(public, "cj-hutang-g02")
    ticket = _placed(public, media_url="https://example.org/p.jpg")
    [row] = _get(public, f"requests/{ticket}.json", None).json()
    assert row["description"] == "市容环卫" and row["media_url"] is None
    assert row["lat"] == round(lat, 3) and row["long"] == round(lon, 3)
    listed = _get(public, "requests.json", None)
    assert listed.status_code == 200 and "13812345678" not in listed.text and "垃圾堆放" not in listed.text
    [full] = _get(public, f"requests/{ticket}.json").json()  # a key still gives its user's view
    assert full["description"].startswith("垃圾堆放") and full["media_url"] == "https://example.org/p.jpg"
    _is_error(_get(public, "requests.json", None, api_key="dsp_nope_nope"), 403)


# -- row 25: an outside client, unchanged ----------------------------------------------------------------

def _serve(api: Api) -> Iterator[str]:
    """A real server on a free port, on an application of its own over the same database."""
    import uvicorn

    from dispatch.web import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(api.runtime, background=False,
                     open311_public_reads=api.client.app.state.open311_public_reads)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20, every=0.05, what="the server to start")
    try:
        yield f"http://127.0.0.1:{port}{BASE}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _client_walk(client: Any, ticket: str) -> None:
    services = client.get_service_list()
    assert "city_appearance" in {s["service_code"] for s in services}
    assert client.get_service_definition("city_appearance")["service_code"] == "city_appearance"
    listed = client.get_service_requests(service_code="city_appearance", status="open")
    listed = listed if isinstance(listed, list) else [listed]  # xmltodict: one element is no list
    assert ticket in {r["service_request_id"] for r in listed}
    assert client.get_service_request(ticket)["service_request_id"] == ticket


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_row_25_georeport_reads_a_public_server_without_a_key(public: Api, fmt: str) -> None:
    from georeport import GeoReport

    ticket = _placed(public)
    for root in _serve(public):
        _client_walk(GeoReport(root, output_format=fmt), ticket)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_row_25_georeport_reads_the_default_server_with_a_key(api: Api, fmt: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from georeport import GeoReport, georeport

    ticket = _placed(api)
    key = api.tokens["hot-a"]
    plain = requests.get

    def with_key(url: str, params: dict[str, Any] | None = None, **options: Any) -> Any:
        return plain(url, params={**(params or {}), "api_key": key}, **options)

    for root in _serve(api):
        with pytest.raises(requests.HTTPError, match="403"):
            GeoReport(root, output_format=fmt).get_service_requests()  # no key: not public here
        monkeypatch.setattr(georeport.requests, "get", with_key)  # the key added; the client unchanged
        _client_walk(GeoReport(root, output_format=fmt), ticket)


def test_row_08_a_report_in_words_taken_in_by_another_process_reaches_this_ones_consoles(api: Api) -> None:
    """Web workers side by side: a report waiting to be placed that another worker took in is
    found by this one's watcher at its next look, and told to its grid centres' consoles; once
    placed, they are told again (its row leaves the queue)."""
    from dispatch.domain.identity import Identity
    from dispatch.service import actions
    from dispatch.service.access import sees_change
    from dispatch.web.live import Hub

    hub = Hub(api.runtime, embedded=False)
    assert hub.check() is None  # where things stand
    hotline = Identity("hot-a", "hotline", "district", ("jinshan",))
    token = actions.hold_unplaced(api.runtime, hotline, category="city_appearance", description="垃圾堆放",
                                  location="漕泾镇护塘村东口")  # as another worker's Open311 door does
    move = hub.check()
    assert move is not None and [c["ticket_id"] for c in move.changes or ()] == [f"unplaced-{token}"]
    assert sees_change(Identity("d", "dispatcher", "street", ("caojing",)), (move.changes or [])[0])
    assert hub.check() is None  # told once
    csrf = sign_in_page(api, "disp-a")
    placed = api.client.post(f"/console/{token}/place", data={"grid": "cj-hutang-g01"},
                             headers={"X-CSRF-Token": csrf} | FORM)
    assert placed.status_code == 200
    move = hub.check()
    assert move is not None and f"unplaced-{token}" in [c["ticket_id"] for c in move.changes or ()]
