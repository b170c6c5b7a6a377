"""``dispatch export``: tickets, events and SLA rows for analysts' own tools."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dispatch.bootstrap import bootstrap
from dispatch.projections import catch_up
from dispatch.projections import tables as t
from dispatch.service.replay.export import COLUMNS
from tests.unit.test_replay_helpers import T0, run_scenario

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning (dispatch.cli imports it)
    warnings.simplefilter("ignore", DeprecationWarning)
    from dispatch.cli import main, run

DOC = Path(__file__).resolve().parents[2] / "docs" / "export-columns.md"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("export") / "live.db"
    run_scenario(path, n=80, evaluate_method="sms").close()
    return str(path)


def export(db: str, *args: str) -> list[dict[str, str]]:
    result = CliRunner().invoke(main, ["--db", db, "export", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout.removeprefix("\ufeff"))))  # a BOM leads by default


def count(db: str, query: Any) -> int:
    runtime = bootstrap(db)
    try:
        catch_up(runtime)
        with runtime.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        runtime.close()


def test_tickets_carry_chinese_names_next_to_ids(live: str) -> None:
    rows = export(live, "tickets")
    assert list(rows[0]) == [name for name, _ in COLUMNS["tickets"]]
    assert len(rows) == 80
    shuiku = next(r for r in rows if r["community"] == "cj-shuiku")
    assert shuiku["community_name"] == "水库村" and shuiku["street_name"] == "漕泾镇"
    assert shuiku["district_name"] == "金山区"
    assert {r["category_name"] for r in rows} <= {"市容环卫", "道路交通", "公共设施", "设施管理"}
    assert all("占道经营" in r["description"] for r in rows)
    assert all(r["reported_at"].endswith("+08:00") for r in rows)


def test_the_period_filters_tickets_by_report_time(live: str) -> None:
    start, end = T0.replace(day=17, hour=0, minute=0), T0.replace(day=18, hour=0, minute=0)
    rows = export(live, "tickets", "--from", "2026-11-17", "--to", "2026-11-17")
    expected = count(live, select(func.count()).select_from(t.tickets)
                     .where(t.tickets.c.reported_at >= start, t.tickets.c.reported_at < end))
    assert 0 < len(rows) == expected
    assert all(r["reported_at"].startswith("2026-11-17") for r in rows)


def test_events_in_a_period_with_their_data(live: str, tmp_path: Path) -> None:
    everything = export(live, "events")
    assert [int(r["position"]) for r in everything] == list(range(1, len(everything) + 1))
    evaluated = [r for r in everything if r["type"] == "Evaluated"]
    assert evaluated and all(json.loads(r["data"])["method"] == "sms" for r in evaluated)
    dispatched = next(r for r in everything if r["type"] == "Dispatched")
    assert dispatched["department_name"] and dispatched["community_name"] and dispatched["category_name"]
    some = export(live, "events", "--from", "2026-11-17T08:00+08:00", "--to", "2026-11-17T20:00+08:00")
    assert 0 < len(some) < len(everything)
    assert all("2026-11-17T08:00" <= r["occurred_at"] < "2026-11-17T20:00" for r in some)


def test_sla_rows_one_per_call_with_on_time_flags(live: str) -> None:
    as_of = T0.replace(day=25).isoformat()
    rows = export(live, "sla", "--as-of", as_of)
    assert len(rows) == count(live, select(func.count()).select_from(t.calls))
    for r in rows:
        assert r["department_name"]
        if r["answered_at"]:
            assert r["ack_on_time"] == ("true" if r["answered_at"] <= r["ack_due"] else "false")
            assert float(r["minutes_to_answer"]) >= 0
        else:
            assert r["ack_on_time"] == "false"  # long past every deadline as of the 25th
        if r["role"] != "lead":
            assert r["handle_on_time"] == "" and r["handle_due"] == ""


def test_parquet_round_trip_keeps_names_and_times(live: str, tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "tickets.parquet"
    result = CliRunner().invoke(main, ["--db", live, "--json", "export", "tickets", "--format", "parquet",
                                       "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 80
    table = pq.read_table(out)
    assert table.column_names == [name for name, _ in COLUMNS["tickets"]]
    assert str(table.schema.field("reported_at").type) == "timestamp[us, tz=Asia/Shanghai]"
    assert "水库村" in table.column("community_name").to_pylist()
    assert table.num_rows == 80


def test_csv_file_is_utf8(live: str, tmp_path: Path) -> None:
    out = tmp_path / "sla.csv"
    result = CliRunner().invoke(main, ["--db", live, "export", "sla", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0 and "wrote" in result.stdout
    assert "城管" in out.read_text(encoding="utf-8")


def test_missing_pyarrow_is_one_clear_line(live: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SystemExit) as exit_:
        run(["--db", live, "export", "events", "--format", "parquet", "--out", str(tmp_path / "e.parquet")])
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == "dispatch: error: Parquet needs pyarrow: pip install 'dispatch[parquet]' (or use --format csv)"


def test_every_column_is_documented() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for kind, columns in COLUMNS.items():
        section = doc.split(f"## {kind}", 1)[1].split("\n## ", 1)[0]
        documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.M)
        assert documented == [name for name, _ in columns], kind
