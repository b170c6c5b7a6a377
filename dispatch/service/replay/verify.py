"""Compare the live projections with a rebuilt copy, table by table.

Per table: the row count and a SHA-256 over every row in primary-key order (byte
order of the UTF-8 text, the same on SQLite and PostgreSQL), values in a canonical
form (times as UTC ISO-8601). The two sides are read as streams and merged by key,
so the first differing rows can be shown with their keys without holding a table
in memory.

Left out: ``projection_positions``. Where each source stands differs by design (the
live database counts Kafka offsets per partition or the store's notification ids; a
rebuild has its own), so it is no projection of the events.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Table, inspect, select

from dispatch.projections.tables import METADATA, positions

__all__ = ["Comparison", "TableComparison", "compare", "compared_tables"]

EXCLUDED = (positions.name,)


def compared_tables() -> list[Table]:
    return [t for t in METADATA.sorted_tables if t.name not in EXCLUDED]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@dataclass
class TableComparison:
    table: str
    live_rows: int = 0
    rebuilt_rows: int = 0
    live_checksum: str = ""
    rebuilt_checksum: str = ""
    differing_rows: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.differing_rows == 0 and self.live_checksum == self.rebuilt_checksum

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "ok": self.ok, "live_rows": self.live_rows, "rebuilt_rows": self.rebuilt_rows,
                "live_checksum": self.live_checksum, "rebuilt_checksum": self.rebuilt_checksum,
                "differing_rows": self.differing_rows, "differences": self.differences}


@dataclass
class Comparison:
    tables: list[TableComparison]
    excluded: tuple[str, ...] = EXCLUDED

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def differing_rows(self) -> int:
        return sum(t.differing_rows for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "differing_rows": self.differing_rows, "excluded": list(self.excluded),
                "excluded_why": "source positions differ by source by design",
                "tables": [t.to_dict() for t in self.tables]}


def _rows(engine: Engine, table: Table) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(primary key, row) in canonical order, values made plain."""
    pk = list(table.primary_key.columns)
    pk_index = [list(table.columns).index(c) for c in pk]
    postgres = engine.dialect.name == "postgresql"
    order = [c.collate("C") if postgres and c.type.python_type is str else c for c in pk]
    if not inspect(engine).has_table(table.name):
        return
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(select(table).order_by(*order))
        for row in result:
            values = tuple(_plain(v) for v in row)
            yield tuple(values[i] for i in pk_index), values


def _line(values: tuple[Any, ...]) -> bytes:
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _compare_table(live: Engine, rebuilt: Engine, table: Table, limit: int) -> TableComparison:
    out = TableComparison(table.name)
    names = [c.name for c in table.columns]
    keys = [c.name for c in table.primary_key.columns]
    h_live, h_rebuilt = hashlib.sha256(), hashlib.sha256()
    a, b = _rows(live, table), _rows(rebuilt, table)
    ra, rb = next(a, None), next(b, None)

    def differ(kind: str, key: tuple[Any, ...], cols: dict[str, Any] | None = None) -> None:
        out.differing_rows += 1
        if len(out.differences) < limit:
            item: dict[str, Any] = {"key": dict(zip(keys, key)), "kind": kind}
            if cols:
                item["columns"] = cols
            out.differences.append(item)

    while ra is not None or rb is not None:
        if rb is None or (ra is not None and ra[0] < rb[0]):
            assert ra is not None
            out.live_rows += 1
            h_live.update(_line(ra[1]))
            differ("missing in rebuilt", ra[0])
            ra = next(a, None)
        elif ra is None or rb[0] < ra[0]:
            out.rebuilt_rows += 1
            h_rebuilt.update(_line(rb[1]))
            differ("missing in live", rb[0])
            rb = next(b, None)
        else:
            out.live_rows += 1
            out.rebuilt_rows += 1
            h_live.update(_line(ra[1]))
            h_rebuilt.update(_line(rb[1]))
            if ra[1] != rb[1]:
                differ("differs", ra[0], {n: {"live": x, "rebuilt": y}
                                         for n, x, y in zip(names, ra[1], rb[1]) if x != y})
            ra, rb = next(a, None), next(b, None)
    out.live_checksum, out.rebuilt_checksum = h_live.hexdigest(), h_rebuilt.hexdigest()
    return out


def compare(live: Engine, rebuilt: Engine, *, limit: int = 20) -> Comparison:
    """Every projection table of ``live`` against ``rebuilt`` (at most ``limit`` rows shown per table)."""
    return Comparison([_compare_table(live, rebuilt, table, limit) for table in compared_tables()])
