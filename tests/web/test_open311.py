"""Open311 GeoReport v2 at /open311/v2/: services, reports placed by position, requests filtered
and paged, in XML and JSON with the spec's field names, errors in the spec's shape."""

from __future__ import annotations

from uuid import UUID

from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

from coordTransform import wgs84_to_gcj02

from tests.web.support import Api

REQUEST_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                  "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                  "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _middle(api: Api, grid: str) -> tuple[float, float]:
    ring = api.runtime.reference.boundaries[grid]["coordinates"][0]
    return (ring[0][0] + ring[1][0]) / 2, (ring[0][1] + ring[2][1]) / 2


def _post(api: Api, who: str | None, **form: Any) -> Any:
    api.clock.advance(timedelta(minutes=1))
    data = {"service_code": "city_appearance", "description": "垃圾堆放", **form}
    if who:
        data["api_key"] = api.tokens[who]
    return api.client.post("/open311/v2/requests.json", data=data, headers=FORM)


def test_services_in_json_and_xml(api: Api) -> None:
    services = api.client.get("/open311/v2/services.json").json()
    codes = {s["service_code"]: s for s in services}
    assert codes["city_appearance"]["service_name"] == "市容环卫"
    assert set(codes["city_appearance"]) == {"service_code", "service_name", "description", "metadata", "type",
                                             "keywords", "group"}
    xml = ET.fromstring(api.client.get("/open311/v2/services.xml").content)
    assert xml.tag == "services" and xml.find("service/service_name").text  # type: ignore[union-attr]
    definition = api.client.get("/open311/v2/services/city_appearance.json").json()
    priority = [a for a in definition["attributes"] if a["code"] == "priority"][0]
    assert {v["key"] for v in priority["values"]} >= {"normal"}
    assert ET.fromstring(api.client.get("/open311/v2/services/city_appearance.xml").content).tag == "service_definition"
    assert ET.fromstring(api.client.get("/open311/v2/discovery.xml").content).find(
        "endpoints/endpoint/specification").text == "http://wiki.open311.org/GeoReport_v2"  # type: ignore[union-attr]
    missing = api.client.get("/open311/v2/services/nothing.json")
    assert missing.status_code == 404 and missing.json() == [{"code": 404, "description": "no service nothing"}]


def test_a_post_is_placed_in_its_grid_in_either_coordinate_system(api: Api) -> None:
    lon, lat = _middle(api, "cj-hutang-g02")
    gps = _post(api, "hot-a", lat=str(lat), long=str(lon))
    assert gps.status_code == 201, gps.text
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    mars = _post(api, "hot-a", lat=str(gcj_lat), long=str(gcj_lon), crs="GCJ02", address_string="护塘村东口")
    for answer in (gps, mars):
        [row] = answer.json()
        assert set(row) == {"service_request_id", "service_notice", "account_id"}
        shown = api.get("boss", f"/api/tickets/{row['service_request_id']}").json()
        assert shown["grid"] == "cj-hutang-g02" and shown["channel"] == "third_party"
    by_grid = _post(api, "hot-a", address_id="cj-shuiku-g02", **{"attribute[priority]": "urgent"})
    assert by_grid.status_code == 201, by_grid.text
    outside = _post(api, "hot-a", lat="0", long="0")
    assert outside.status_code == 400 and outside.json()[0]["code"] == 400


def test_a_post_without_a_valid_key_is_refused_in_the_spec_shape(api: Api) -> None:
    lon, lat = _middle(api, "cj-hutang-g02")
    for who, key in ((None, None), (None, "dsp_nope_nope")):
        form = {"lat": str(lat), "long": str(lon)} | ({"api_key": key} if key else {})
        r = _post(api, who, **form)
        assert r.status_code == 403 and list(r.json()[0]) == ["code", "description"]
    r = _post(api, "lead-a", lat=str(lat), long=str(lon))  # a leader may not report
    assert r.status_code == 403
    xml = api.client.post("/open311/v2/requests.xml", data={"service_code": "x"}, headers=FORM)
    root = ET.fromstring(xml.content)
    assert root.tag == "errors" and root.find("error/code").text == "403"  # type: ignore[union-attr]


def test_requests_filtered_by_date_and_status_and_paged(api: Api) -> None:
    early = [_post(api, "hot-a", address_id="cj-shuiku-g01").json()[0]["service_request_id"] for _ in range(3)]
    api.clock.advance(timedelta(days=2))
    late = [_post(api, "hot-a", address_id="cj-shuiku-g01").json()[0]["service_request_id"] for _ in range(2)]
    api.step("disp-a", late[0], "cancel", {"reason": "重复上报"})
    key = api.tokens["disp-a"]

    def ids(**params: Any) -> list[str]:
        r = api.client.get("/open311/v2/requests.json", params={"api_key": key, **params})
        assert r.status_code == 200, r.text
        for row in r.json():
            assert set(row) == REQUEST_FIELDS
        return [row["service_request_id"] for row in r.json()]

    assert set(ids()) == set(early + late)
    assert set(ids(start_date="2026-11-21T00:00:00+08:00")) == set(late)
    assert set(ids(end_date="2026-11-21T00:00:00+08:00")) == set(early)
    assert ids(status="closed") == [late[0]]
    assert set(ids(status="open")) == set(early + late[1:])
    first, second, third = ids(page_size=2), ids(page_size=2, page=2), ids(page_size=2, page=3)
    assert len(first) == len(second) == 2 and len(third) == 1 and len(set(first + second + third)) == 5
    assert ids(service_request_id=f"{early[0]},{late[1]}") == [late[1], early[0]]
    case_no = api.runtime.app.get_ticket(UUID(early[1])).case_no  # what the caller quotes on the phone
    assert ids(service_request_id=case_no) == [early[1]]
    by_case = api.client.get(f"/open311/v2/requests/{case_no}.json", params={"api_key": key}).json()
    assert by_case[0]["service_request_id"] == early[1]

    one = api.client.get(f"/open311/v2/requests/{early[0]}.json", params={"api_key": key}).json()[0]
    assert one["status"] == "open" and one["service_code"] == "city_appearance" and one["address_id"] == "cj-shuiku-g01"
    assert one["requested_datetime"].endswith("+08:00")
    xml = ET.fromstring(api.client.get(f"/open311/v2/requests/{early[0]}.xml", params={"api_key": key}).content)
    assert xml.tag == "service_requests" and xml.find("request/service_request_id").text == early[0]  # type: ignore[union-attr]
    # another street's dispatcher sees none of them
    other = api.client.get("/open311/v2/requests.json", params={"api_key": api.tokens["disp-b"]}).json()
    assert other == []


def test_a_request_by_its_case_number_shows_the_lead_and_the_deadline(api: Api) -> None:
    ticket = api.report("hot-a", external_ref="12345-2026-0042")
    api.step("disp-a", ticket, "accept")
    api.step("disp-a", ticket, "dispatch")
    row = api.client.get("/open311/v2/requests/12345-2026-0042.json",
                         params={"api_key": api.tokens["hot-a"]}).json()[0]
    assert row["service_request_id"] == ticket and row["agency_responsible"] == "城管"
    assert row["expected_datetime"] and row["status_notes"]
