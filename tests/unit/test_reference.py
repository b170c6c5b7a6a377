"""Reference data: the bundled sample, lookups, SLA rule choice, round trip, and bad files."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from dispatch.domain.errors import (ReferenceDataError, UnknownCategory, UnknownCommunity,
                                    UnknownDepartment, UnknownGrid, UnknownPriority, UnknownStreet)
from dispatch.domain.reference import Reference, load_reference, reference_from_dict


@pytest.fixture(scope="module")
def sample() -> Reference:
    return load_reference()


def rule(category: str, priority: str, ack: int, handle: int, feedback: int,
         basis: str = "working", every: int = 120) -> dict[str, Any]:
    return {"category": category, "priority": priority, "ack_minutes": ack, "handle_minutes": handle,
            "feedback_minutes": feedback, "time_basis": basis, "escalate_every_minutes": every}


def base() -> dict[str, Any]:
    """A small valid reference file, as a user might write it."""
    return {
        "timezone": "Asia/Shanghai",
        "working_hours": ["08:30-12:00", "13:30-17:30"],
        "districts": [{"id": "d1", "name": "测试区", "streets": [
            {"id": "s1", "name": "测试街道", "communities": [
                {"id": "c1", "name": "一社区", "grids": [{"id": "c1-east", "name": "东网格"}]},
                {"id": "c2", "name": "二社区", "grid_count": 2},
            ]},
        ]}],
        "departments": [{"id": "chengguan", "name": "城管"}, {"id": "huanwei", "name": "环卫"}],
        "priorities": [{"id": "normal", "name": "一般"}, {"id": "urgent", "name": "紧急"}],
        "categories": [
            {"id": "city_appearance", "name": "市容环卫", "kind": "grid",
             "lead_department": "chengguan", "cooperating": ["huanwei"]},
            {"id": "economy", "name": "经济综合", "kind": "hotline", "lead_department": "huanwei"},
        ],
        "sla": [
            rule("*", "*", 30, 1350, 1800),
            rule("*", "urgent", 15, 480, 1440, "calendar", 60),
            rule("city_appearance", "*", 20, 900, 1350),
            rule("city_appearance", "urgent", 10, 240, 480, "calendar", 30),
        ],
    }


# --- the bundled sample ---------------------------------------------------------------------

def test_sample_is_marked_as_sample_and_uses_shanghai_working_hours(sample: Reference) -> None:
    assert sample.sample is True
    assert sample.timezone == "Asia/Shanghai"
    assert sample.working_hours == ("08:30-12:00", "13:30-17:30")


def test_sample_caojing_has_14_villages_each_with_at_least_two_grids(sample: Reference) -> None:
    villages = sample.communities_of_street("漕泾镇")
    assert len(villages) == 14
    assert all(len(sample.grids_of_community(v.id)) >= 2 for v in villages)
    assert sample.street("漕泾镇").district_id == sample.districts["jinshan"].id


def test_sample_xinqi_has_9_areas_and_143_grids(sample: Reference) -> None:
    areas = sample.communities_of_street("xinqi")
    assert len(areas) == 9
    assert sum(len(sample.grids_of_community(a.id)) for a in areas) == 143
    assert sample.community("百合片区").street_id == "xinqi"


def test_sample_mochouhu_has_a_few_communities(sample: Reference) -> None:
    communities = sample.communities_of_street("莫愁湖街道")
    assert 3 <= len(communities) <= 4
    assert all(sample.grids_of_community(c.id) for c in communities)


def test_sample_categories_have_existing_departments(sample: Reference) -> None:
    for category in sample.categories.values():
        assert category.lead_department in sample.departments
        assert all(d in sample.departments for d in category.cooperating)
        assert len(category.cooperating) <= 2
    kinds = {c.name: c.kind for c in sample.categories.values()}
    assert kinds == {"市容环卫": "grid", "道路交通": "grid", "公共设施": "grid", "设施管理": "grid",
                     "环卫环保": "grid", "建设交通": "hotline", "公共事业": "hotline", "经济综合": "hotline"}


def test_sample_every_category_and_priority_gets_a_sensible_rule(sample: Reference) -> None:
    for category in sample.categories:
        for priority in sample.priorities:
            r = sample.sla_rule(category, priority)
            assert 0 < r.ack_minutes <= r.handle_minutes <= r.feedback_minutes
            assert r.time_basis == ("working" if priority == "normal" else "calendar")
    emergency = sample.sla_rule("road_traffic", "emergency")
    assert emergency.handle_minutes < sample.sla_rule("road_traffic", "normal").handle_minutes
    assert emergency.escalate_every_minutes < sample.sla_rule("road_traffic", "normal").escalate_every_minutes


# --- lookups --------------------------------------------------------------------------------

def test_lookups_by_id_and_by_name(sample: Reference) -> None:
    assert sample.grid("cj-shuiku-g01") is sample.grid("水库村北片网格")
    assert sample.grid("xq-taihe-g15").name == "第15网格"
    assert sample.community("水库村").id == "cj-shuiku"
    assert sample.street("新碶街道").id == "xinqi"
    assert sample.department("城管").id == "chengguan"
    assert sample.category("市容环卫").id == "city_appearance"
    assert sample.priority("特急").id == "emergency"
    assert sample.priority("emergency").name == "特急"


def test_a_name_shared_by_several_grids_needs_the_id(sample: Reference) -> None:
    with pytest.raises(UnknownGrid) as caught:
        sample.grid("第1网格")
    assert caught.value.key == "第1网格"
    assert sample.grid("cj-hutang-g01").name == "第1网格"


@pytest.mark.parametrize("method, error", [
    ("grid", UnknownGrid), ("community", UnknownCommunity), ("street", UnknownStreet),
    ("department", UnknownDepartment), ("category", UnknownCategory), ("priority", UnknownPriority),
    ("place", UnknownGrid), ("grids_of_community", UnknownCommunity),
    ("communities_of_street", UnknownStreet),
])
def test_unknown_keys_raise_named_errors(sample: Reference, method: str, error: type) -> None:
    with pytest.raises(error, match="no-such-thing"):
        getattr(sample, method)("no-such-thing")


def test_place_gives_the_escalation_ladder(sample: Reference) -> None:
    place = sample.place("xq-baihe-g03")
    assert (place.grid.name, place.community.name, place.street.name, place.district.name) == (
        "第3网格", "百合片区", "新碶街道", "北仑区")
    assert sample.place("水库村南片网格").district.name == "金山区"


def test_sla_rule_most_specific_wins() -> None:
    ref = reference_from_dict(base(), source="test")
    assert ref.sla_rule("city_appearance", "urgent").ack_minutes == 10  # (cat, prio)
    assert ref.sla_rule("city_appearance", "normal").ack_minutes == 20  # (cat, *)
    assert ref.sla_rule("economy", "urgent").ack_minutes == 15          # (*, prio)
    assert ref.sla_rule("economy", "normal").ack_minutes == 30          # (*, *)
    with pytest.raises(UnknownCategory):
        ref.sla_rule("nonsense", "normal")


# --- round trip and user files --------------------------------------------------------------

def test_to_dict_round_trips_and_is_json(sample: Reference) -> None:
    data = json.loads(json.dumps(sample.to_dict(), ensure_ascii=False))
    assert reference_from_dict(data, source="db") == sample
    ref = reference_from_dict({**base(), "calendar_overrides": {"2025-10-11": "workday"}}, source="x")
    again = reference_from_dict(json.loads(json.dumps(ref.to_dict())), source="db")
    assert again == ref and again.calendar_overrides == {date(2025, 10, 11): True}


def test_the_stored_copy_reads_back_equal_without_the_file_schema(sample: Reference) -> None:
    # bootstrap reads the database's copy with stored=True (no pydantic): the same Reference as
    # the validated read, from the stored form and from a file form that leans on the defaults
    sloppy = base()
    sloppy["sla"][0].pop("accept_minutes", None)
    sloppy["categories"][0].pop("cooperating", None)
    for data in (json.loads(json.dumps(sample.to_dict(), ensure_ascii=False)), sloppy,
                 {**base(), "calendar_overrides": {"2025-10-11": "workday"}, "calendar_years": [2025]}):
        assert reference_from_dict(data, source="db", stored=True) == reference_from_dict(data, source="db")
    broken = {**sample.to_dict(), "sla": "nonsense"}  # a copy that does not read: validated, refused as a file is
    with pytest.raises(ReferenceDataError, match="sla"):
        reference_from_dict(broken, source="db", stored=True)
    unknown = {**sample.to_dict(), "colour": "red"}
    with pytest.raises(ReferenceDataError, match="unknown key"):
        reference_from_dict(unknown, source="db", stored=True)


def test_a_users_json_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "my-city.json"
    path.write_text(json.dumps(base(), ensure_ascii=False), encoding="utf-8")
    ref = load_reference(path)
    assert ref.sample is False
    assert [g.id for g in ref.grids_of_community("二社区")] == ["c2-g01", "c2-g02"]
    assert ref.grid("东网格").community_id == "c1"
    assert ref.category("economy").cooperating == ()


def test_a_users_yaml_file_with_plain_date_keys_loads(tmp_path: Path) -> None:
    path = tmp_path / "my-city.yaml"
    text = yaml.safe_dump(base(), allow_unicode=True)
    path.write_text(text + "calendar_overrides:\n  2025-10-11: workday\n  '2025-10-06': holiday\n",
                    encoding="utf-8")
    ref = load_reference(str(path))
    assert ref.calendar_overrides == {date(2025, 10, 11): True, date(2025, 10, 6): False}


# --- bad files ------------------------------------------------------------------------------

def edit(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    data = copy.deepcopy(base())
    change(data)
    return data


C0 = "districts[0].streets[0].communities[0]"
BAD: list[tuple[str, object, str, str]] = [
    # (case, file content: a dict to dump or raw text, expected path, expected problem words)
    ("missing key", edit(lambda d: d.pop("timezone")), "timezone", "required key is missing"),
    ("unknown key", edit(lambda d: d["categories"][1].update(colour="red")),
     "categories[1].colour", "unknown key"),
    ("wrong type", edit(lambda d: d["sla"][0].update(ack_minutes="30")),
     "sla[0].ack_minutes", "should be a valid integer (got '30')"),
    ("zero minutes", edit(lambda d: d["sla"][2].update(handle_minutes=0)),
     "sla[2].handle_minutes", "greater than 0"),
    ("bad kind", edit(lambda d: d["categories"][0].update(kind="phone")),
     "categories[0].kind", "'grid' or 'hotline'"),
    ("bad time basis", edit(lambda d: d["sla"][1].update(time_basis="office")),
     "sla[1].time_basis", "'calendar' or 'working'"),
    ("id with space", edit(lambda d: d["departments"][1].update(id="huan wei")),
     "departments[1].id", "without whitespace"),
    ("empty id", edit(lambda d: d["priorities"][0].update(id="")), "priorities[0].id", "non-empty"),
    ("empty name", edit(lambda d: d["departments"][0].update(name=" ")), "departments[0].name", "non-empty"),
    ("grids and grid_count", edit(lambda d: d["districts"][0]["streets"][0]["communities"][0].update(
        grid_count=3)), C0, "exactly one of 'grids'"),
    ("no districts", edit(lambda d: d.update(districts=[])), "districts", "at least 1 item"),
    ("a street of nothing", edit(lambda d: d["districts"][0]["streets"][0].update(communities=[])),
     "districts[0].streets[0].communities", "at least 1 item"),
    ("a community of no grids", edit(lambda d: d["districts"][0]["streets"][0]["communities"][0].update(grids=[])),
     f"{C0}.grids", "at least 1 item"),
    ("no departments", edit(lambda d: d.update(departments=[])), "departments", "at least 1 item"),
    ("yaml syntax", "timezone: Asia/Shanghai\n  sample: true\n", "line 2", "YAML syntax error: mapping values"),
    ("top level list", "- 1\n- 2\n", "", "must be a mapping"),
    ("empty file", "", "", "the file is empty"),
    ("duplicate department", edit(lambda d: d["departments"].append({"id": "chengguan", "name": "城管2"})),
     "departments[2].id", "duplicate department id 'chengguan' (first used at departments[0].id)"),
    ("duplicate community", edit(lambda d: d["districts"].append({"id": "d2", "name": "二区", "streets": [
        {"id": "s2", "name": "二街", "communities": [{"id": "c1", "name": "又一社区", "grid_count": 1}]}]})),
     "districts[1].streets[0].communities[0].id", "duplicate community id 'c1'"),
    ("generated grid clashes", edit(lambda d: d["districts"][0]["streets"][0]["communities"][0].update(
        grids=[{"id": "c2-g02", "name": "东网格"}])),
     "districts[0].streets[0].communities[1].grid_count", f"duplicate grid id 'c2-g02' (first used at {C0}"),
    ("dangling lead", edit(lambda d: d["categories"][1].update(lead_department="shuiwu")),
     "categories[1].lead_department", "no department with id 'shuiwu'"),
    ("dangling cooperating", edit(lambda d: d["categories"][0].update(cooperating=["huanwei", "xiaofang"])),
     "categories[0].cooperating[1]", "no department with id 'xiaofang'"),
    ("lead also cooperating", edit(lambda d: d["categories"][0].update(cooperating=["chengguan"])),
     "categories[0].cooperating", "named twice"),
    ("sla unknown category", edit(lambda d: d["sla"][2].update(category="traffic")),
     "sla[2].category", "no category with id 'traffic'"),
    ("sla unknown priority", edit(lambda d: d["sla"][1].update(priority="emergency")),
     "sla[1].priority", "no priority with id 'emergency'"),
    ("sla duplicate pair", edit(lambda d: d["sla"].append(rule("*", "urgent", 5, 60, 60))),
     "sla[4]", "a second rule for ('*', 'urgent'); the first is sla[1]"),
    ("sla deadlines out of order", edit(lambda d: d["sla"][0].update(feedback_minutes=60)),
     "sla[0]", "ack_minutes <= handle_minutes <= feedback_minutes"),
    ("no default rule", edit(lambda d: d["sla"].pop(0)), "sla", "no default rule"),
    ("bad working hours", edit(lambda d: d.update(working_hours=["08:30-12:00", "1:30pm-5pm"])),
     "working_hours[1]", "'1:30pm-5pm'"),
    ("overlapping working hours", edit(lambda d: d.update(working_hours=["08:30-12:00", "11:00-17:30"])),
     "working_hours", "overlaps"),
    ("bad override date", edit(lambda d: d.update(calendar_overrides={"2025-02-30": "holiday"})),
     "calendar_overrides.2025-02-30", "not a valid date"),
    ("bad override value", edit(lambda d: d.update(calendar_overrides={"2025-10-11": "off"})),
     "calendar_overrides.2025-10-11", "expected 'workday' or 'holiday', got 'off'"),
    ("unknown timezone", edit(lambda d: d.update(timezone="Asia/Beijing")),
     "timezone", "unknown time zone 'Asia/Beijing'"),
]


@pytest.mark.parametrize("content, path, problem", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_files_raise_one_clear_error(tmp_path: Path, content: object, path: str, problem: str) -> None:
    file = tmp_path / "city-ref.yaml"
    text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
    file.write_text(text, encoding="utf-8")
    with pytest.raises(ReferenceDataError) as caught:
        load_reference(file)
    message = str(caught.value)
    assert str(file) in message and "city-ref.yaml" in message
    assert caught.value.path.startswith(path) if path.startswith("line") else caught.value.path == path
    assert path in message and problem in message


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    file = tmp_path / "mine.json"
    file.write_text('{"timezone": "Asia/Shanghai",\n "districts": [,]}', encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=r"mine\.json: line 2, column \d+: JSON syntax error"):
        load_reference(file)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"nowhere\.yaml: file not found"):
        load_reference(tmp_path / "nowhere.yaml")


def test_reference_from_dict_names_its_source() -> None:
    with pytest.raises(ReferenceDataError, match=r"^db: sla: no default rule"):
        reference_from_dict(edit(lambda d: d["sla"].pop(0)), source="db")
