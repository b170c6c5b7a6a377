"""The grid centre can see its reference data and name things unambiguously; filters and
weights are checked instead of silently giving nothing or nonsense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dispatch.domain.errors import ReferenceDataError, UnknownGrid
from dispatch.domain.reference import load_reference, reference_from_dict
from tests.unit.safety_support import invoke


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "ref.db")
    assert invoke("--db", path, "init").code == 0
    return path


def test_an_ambiguous_grid_name_lists_the_candidates_and_community_slash_name_picks_one() -> None:
    ref = load_reference(None)
    with pytest.raises(UnknownGrid) as refused:
        ref.grid("第1网格")
    assert "cj-hutang-g01 (护塘村)" in str(refused.value) and "give the id" in str(refused.value)
    assert ref.grid("护塘村/第1网格").id == "cj-hutang-g01"
    assert ref.grid("cj-hutang/第2网格").id == "cj-hutang-g02"


def test_grid_names_are_unique_within_a_community() -> None:
    body = load_reference(None).to_dict()
    grids = body["districts"][0]["streets"][0]["communities"][0]["grids"]
    grids[1]["name"] = grids[0]["name"]
    with pytest.raises(ReferenceDataError, match="used twice"):
        reference_from_dict(body, source="edited.yaml")


def test_the_reference_commands_show_what_the_database_holds(db: str) -> None:
    ref = load_reference(None)
    places = json.loads(invoke("--db", db, "--json", "places").out)
    assert sum(len(p["grids"]) for p in places) == len(ref.grids)
    only = json.loads(invoke("--db", db, "--json", "places", "--community", "水库村").out)
    assert [g["id"] for g in only[0]["grids"]] == ["cj-shuiku-g01", "cj-shuiku-g02"]
    departments = {d["id"]: d for d in json.loads(invoke("--db", db, "--json", "departments").out)}
    assert "city_appearance" in departments["chengguan"]["leads"]
    categories = json.loads(invoke("--db", db, "--json", "categories").out)
    assert {c["id"] for c in categories["categories"]} == set(ref.categories)
    rules = json.loads(invoke("--db", db, "--json", "sla-rules").out)
    assert {(r["category"], r["priority"]) for r in rules} == {(r.category, r.priority) for r in ref.sla_rules}
    assert "市容环卫" in invoke("--db", db, "categories").out  # names, not only ids, for people


@pytest.mark.parametrize("args,word", [
    (["tickets", "--status", "overdue"], "--status"),
    (["sla", "--by", "department", "--weights", "1,1,1"], "add up to 1"),
    (["sla", "--by", "department", "--basic-weight", "1.5"], "--basic-weight"),
    (["dashboard", "--street", "caojing", "--weights", "0.5,0.5,x"], "--weights"),
])
def test_filters_and_weights_are_checked(db: str, args: list[str], word: str) -> None:
    ran = invoke("--db", db, *args)
    assert ran.code == 2 and word in ran.err and len(ran.err.strip().splitlines()) == 1, ran.err
