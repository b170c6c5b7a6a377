"""Grid boundaries in the reference data: checked on load, converted to WGS-84, kept through
the stored copy, and used to place positions in their grid."""

from __future__ import annotations

from typing import Any

import pytest

from dispatch.domain.errors import ReferenceDataError
from dispatch.domain.geo import GridLocator
from dispatch.domain.reference import load_reference, reference_from_dict

SQUARE = {"type": "Polygon", "coordinates": [[[121.0, 30.0], [121.01, 30.0], [121.01, 29.99], [121.0, 29.99],
                                              [121.0, 30.0]]]}


def _with(boundaries: dict[str, Any]) -> dict[str, Any]:
    data = load_reference(None, boundaries=False).to_dict()
    return {**data, "boundaries": boundaries}


def test_the_bundled_sample_has_marked_sample_boundaries_for_every_grid() -> None:
    ref = load_reference(None)
    assert ref.boundaries_sample is True and set(ref.boundaries) == set(ref.grids)
    again = reference_from_dict(ref.to_dict(), source="stored")  # the database's copy reads back equal
    assert again == ref


@pytest.mark.parametrize(("geometry", "problem"), [
    ({"type": "Point", "coordinates": [121.0, 30.0]}, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[121.0, 30.0], [121.01, 30.0], [121.0, 30.0]]]}, "at least 4"),
    ({"type": "Polygon", "coordinates": [[[121.0, 30.0], [121.01, 30.0], [121.01, 29.99], [121.0, 29.0]]]},
     "end where it starts"),
    ({"type": "Polygon", "coordinates": [[[221.0, 30.0], [121.01, 30.0], [121.01, 29.99], [221.0, 30.0]]]},
     "not a longitude"),
    ({"type": "Polygon", "coordinates": [[["a", 30.0], [121.01, 30.0], [121.01, 29.99], ["a", 30.0]]]},
     "in numbers"),
])
def test_a_bad_boundary_is_refused_with_where_and_why(geometry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ReferenceDataError) as error:
        reference_from_dict(_with({"crs": "WGS84", "grids": {"cj-shuiku-g01": geometry}}), source="f.yaml")
    assert "boundaries.grids.cj-shuiku-g01" in str(error.value) and problem in str(error.value)


def test_an_unknown_grid_or_system_is_refused() -> None:
    with pytest.raises(ReferenceDataError, match="no grid with id 'nowhere'"):
        reference_from_dict(_with({"crs": "WGS84", "grids": {"nowhere": SQUARE}}), source="f.yaml")
    with pytest.raises(ReferenceDataError, match="boundaries.crs"):
        reference_from_dict(_with({"crs": "BD09", "grids": {"cj-shuiku-g01": SQUARE}}), source="f.yaml")


def test_gcj02_boundaries_are_stored_in_wgs84_and_place_gps_positions() -> None:
    from coordTransform import wgs84_to_gcj02

    ring = [[121.0, 30.0], [121.01, 30.0], [121.01, 29.99], [121.0, 29.99], [121.0, 30.0]]
    gcj = {"type": "Polygon", "coordinates": [[list(wgs84_to_gcj02(x, y)) for x, y in ring]]}
    ref = reference_from_dict(_with({"crs": "GCJ02", "grids": {"cj-shuiku-g01": gcj}}), source="f.yaml")
    stored = ref.boundaries["cj-shuiku-g01"]["coordinates"][0]
    assert all(abs(a - b) < 1e-4 for p, q in zip(stored, ring) for a, b in zip(p, q))  # back within ~10 m
    locator = GridLocator(ref.boundaries)
    assert locator.locate(121.005, 29.995) == "cj-shuiku-g01"
    assert locator.locate(*wgs84_to_gcj02(121.005, 29.995), crs="GCJ02") == "cj-shuiku-g01"
    assert locator.locate(121.02, 29.995) is None
