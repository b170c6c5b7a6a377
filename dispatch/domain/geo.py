"""Positions and grids: which grid a position lies in, whatever coordinate system it came in.

Phones' GPS gives WGS-84; Chinese web maps (Amap, Tencent) give GCJ-02, a few hundred metres
off — enough to land in the neighbouring grid — so every position says its system and is
converted to WGS-84 (``coordTransform``) before it is placed. Grid boundaries are GeoJSON
polygons kept in WGS-84 (``Reference.boundaries``); ``GridLocator`` places a point with an
STR-tree over them (shapely), built once per reference data.
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = ["CRS", "GridLocator", "check_geometry", "to_wgs84"]

CRS = Literal["WGS84", "GCJ02"]
_MAX_POINTS = 10_000  # one grid's boundary


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    if crs == "WGS84":
        return lon, lat
    if crs == "GCJ02":
        from coordTransform import gcj02_to_wgs84

        x, y = gcj02_to_wgs84(lon, lat)
        return float(x), float(y)
    raise ValueError(f"unknown coordinate system {crs!r}: give WGS84 (GPS) or GCJ02 (Chinese web maps)")


def _ring(ring: Any, crs: str) -> list[list[float]]:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ValueError("a polygon ring needs at least 4 positions")
    out = []
    for point in ring:
        if (not isinstance(point, list) or len(point) < 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in point[:2])):
            raise ValueError("a position is [longitude, latitude] in numbers")
        lon, lat = float(point[0]), float(point[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"[{lon}, {lat}] is not a longitude, latitude")
        out.append(list(to_wgs84(lon, lat, crs)))
    if out[0] != out[-1]:
        raise ValueError("a polygon ring must end where it starts")
    return out


def check_geometry(geometry: dict[str, Any], crs: str) -> dict[str, Any]:
    """A GeoJSON Polygon or MultiPolygon, checked for shape (no shapely needed) and returned in WGS-84."""
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "Polygon" and isinstance(coordinates, list) and coordinates:
        polygons = [coordinates]
    elif kind == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
        polygons = coordinates
    else:
        raise ValueError("give a GeoJSON Polygon or MultiPolygon ({'type': ..., 'coordinates': [...]})")
    converted = []
    points = 0
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise ValueError("a polygon is a list of rings")
        rings = [_ring(ring, crs) for ring in polygon]
        points += sum(len(r) for r in rings)
        converted.append(rings)
    if points > _MAX_POINTS:
        raise ValueError(f"more than {_MAX_POINTS:,} positions in one boundary")
    if kind == "Polygon":
        return {"type": "Polygon", "coordinates": converted[0]}
    return {"type": "MultiPolygon", "coordinates": converted}


class GridLocator:
    """Which grid holds a point: an STR-tree over the reference data's grid boundaries."""

    def __init__(self, boundaries: dict[str, dict[str, Any]]):
        from shapely import STRtree
        from shapely.geometry import shape

        self.ids = list(boundaries)
        self.shapes = [shape(boundaries[i]) for i in self.ids]
        self.tree = STRtree(self.shapes)

    def __len__(self) -> int:
        return len(self.ids)

    def locate(self, lon: float, lat: float, crs: str = "WGS84") -> str | None:
        """The grid id whose boundary holds the point (the first by id on a shared edge), or None."""
        from shapely.geometry import Point

        x, y = to_wgs84(lon, lat, crs)
        hits = sorted(self.ids[i] for i in self.tree.query(Point(x, y), predicate="intersects"))
        return hits[0] if hits else None
