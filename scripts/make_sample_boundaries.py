#!/usr/bin/env python
"""Write dispatch/data/sample-boundaries.json: SAMPLE grid boundaries for the bundled sample
places, so positions can be placed in grids out of the box. They are made up — each street's
grids as ~400 m cells on a lattice around a point near the real street — and marked
``"sample": true``; a real deployment loads its own (``dispatch init --reference``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from dispatch.domain.reference import load_reference

CENTRES = {"caojing": (121.400, 30.780), "xinqi": (121.870, 29.900), "mochouhu": (118.760, 32.030)}  # lon, lat
CELL_LON, CELL_LAT = 0.0042, 0.0036  # about 400 m at these latitudes


def main() -> None:
    ref = load_reference(None, boundaries=False)
    grids: dict[str, dict[str, object]] = {}
    for street in ref.streets.values():
        ids = [g.id for c in ref.communities_of_street(street.id) for g in ref.grids_of_community(c.id)]
        cols = math.ceil(math.sqrt(len(ids)))
        lon0, lat0 = CENTRES[street.id]
        lon0 -= cols * CELL_LON / 2
        lat0 += cols * CELL_LAT / 2
        for n, grid in enumerate(ids):
            row, col = divmod(n, cols)
            west, north = lon0 + col * CELL_LON, lat0 - row * CELL_LAT
            ring = [[west, north], [west + CELL_LON, north], [west + CELL_LON, north - CELL_LAT],
                    [west, north - CELL_LAT], [west, north]]
            grids[grid] = {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}
    out = Path(__file__).resolve().parents[1] / "dispatch" / "data" / "sample-boundaries.json"
    out.write_text(json.dumps({"crs": "WGS84", "sample": True, "grids": grids}, separators=(",", ":")) + "\n",
                   encoding="utf-8")
    print(f"{len(grids)} sample grid boundaries -> {out}")


if __name__ == "__main__":
    main()
