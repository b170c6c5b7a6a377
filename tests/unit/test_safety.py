"""Nothing destroys data, nothing poisons the store: each case a careless or hostile user
found, reproduced, and now refused with one sentence (or the data left intact)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dispatch.bootstrap import bootstrap
from dispatch.domain.errors import BusinessTimeOutOfRange
from dispatch.domain.timewindow import TimeWindow
from dispatch.projections import catch_up
from tests.unit.safety_support import invoke

AT = "2026-11-20T09:00:00+08:00"
REPORT = ["report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "垃圾焚烧"]


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "live.db")
    assert invoke("--db", path, "init").code == 0
    return path


def events_in(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def one_line_refusal(ran: object, word: str) -> None:
    code, err = ran.code, ran.err  # type: ignore[attr-defined]
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], err
    assert "Traceback" not in err and "Error:" not in err and "Exception" not in err, err


# --- business times ------------------------------------------------------------------------------

@pytest.mark.parametrize("at", ["0001-01-01T00:00+08:00", "9999-12-31T23:59-12:00", "1999-12-31T23:59+00:00"])
def test_a_business_time_outside_the_window_is_refused_and_the_views_keep_working(db: str, at: str) -> None:
    one_line_refusal(invoke("--db", db, *REPORT, "--at", at), "business time")
    assert events_in(db) == 0
    ticket = invoke("--db", db, *REPORT, "--at", AT).out.strip()
    assert invoke("--db", db, "whistle", ticket, "--at", at).code == 1
    for read in (["tickets"], ["dashboard", "--street", "caojing"], ["sla", "--by", "department"],
                 ["watchdog", "--once"]):
        assert invoke("--db", db, *read).code == 0, read


def test_the_window_follows_the_runtime_clock() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    window = TimeWindow()
    window.check(now + timedelta(minutes=15), now)  # a phone's clock a little ahead: accepted
    with pytest.raises(BusinessTimeOutOfRange, match="in the future"):
        window.check(now + timedelta(minutes=16), now)
    with pytest.raises(BusinessTimeOutOfRange, match="before 2000-01-01"):
        window.check(datetime(1999, 12, 31, tzinfo=timezone.utc), now)
    custom = TimeWindow.from_env({"DISPATCH_EARLIEST": "2020-01-01", "DISPATCH_FUTURE_TOLERANCE_MINUTES": "0"})
    with pytest.raises(BusinessTimeOutOfRange):
        custom.check(datetime(2019, 6, 1, tzinfo=timezone.utc), now)


def test_a_store_that_already_holds_an_impossible_time_quarantines_it_and_goes_on(db: str) -> None:
    # an event written before the window existed (here: with the window switched off)
    rt = bootstrap(db, create=False)
    try:
        rt.app.time_window = _NoWindow()  # type: ignore[assignment]
        from dispatch.domain.commands import parse_command
        actor = {"role": "supervisor", "id": "网格员张"}
        for at in ("0001-01-01T00:00:00+08:00", AT):
            rt.app.execute(parse_command({"type": "report", "occurred_at": at, "actor": actor,
                                          "grid": "cj-shuiku-g01", "category": "city_appearance",
                                          "channel": "patrol", "description": "x"}))
        catch_up(rt)  # no longer stops the world
        with rt.engine.connect() as conn:
            from sqlalchemy import text
            quarantined = conn.execute(text("SELECT type, reason FROM quarantined_events")).all()
            tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar()
    finally:
        rt.close()
    assert [q[0] for q in quarantined] == ["Reported"] and "out of range" in quarantined[0][1]
    assert tickets == 1  # the good report after it is projected
    assert invoke("--db", db, "tickets").code == 0
    assert invoke("--db", db, "watchdog", "--once").code == 0
    verified = invoke("--db", db, "--json", "replay", "--verify", "--no-progress")
    assert verified.code == 0, verified.err  # a replay quarantines the same event
    report = json.loads(verified.out)
    assert report["quarantined"] == 1
    assert {t["table"]: t["live_rows"] for t in report["verification"]["tables"]}["quarantined_events"] == 1


class _NoWindow:
    def check(self, at: datetime, now: datetime) -> None:
        return None


# --- databases -----------------------------------------------------------------------------------

def test_a_command_on_a_missing_database_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "dispatc.db"
    one_line_refusal(invoke("--db", str(typo), "tickets"), "no dispatch database")
    assert not typo.exists()


def test_another_tools_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (n INTEGER)")
    before = other.read_bytes()
    for args in (["tickets"], ["init"], [*REPORT, "--at", AT], ["demo", "--days", "1"], ["upgrade"]):
        one_line_refusal(invoke("--db", str(other), *args), "not")
    assert other.read_bytes() == before  # not a byte: no journal mode switched, no change counter moved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal, no -shm beside it
    with sqlite3.connect(other) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert names == ["invoices"]


def test_a_replay_into_another_tools_file_leaves_it_as_it_was(db: str, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "other.db"
    other.parent.mkdir()
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE invoices (n INTEGER)")
    before = other.read_bytes()
    one_line_refusal(invoke("--db", db, "replay", "--into", str(other)), "no replay made")
    assert other.read_bytes() == before and [p.name for p in other.parent.iterdir()] == ["other.db"]


def test_a_file_that_is_no_database_is_refused_untouched(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))  # a damaged header, then garbage
    before = notes.read_bytes()
    for args in (["tickets"], [*REPORT, "--at", AT]):
        one_line_refusal(invoke("--db", str(notes), *args), "not")
    assert notes.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]


def test_a_damaged_file_is_found_by_check(db: str) -> None:
    assert invoke("--db", db, *REPORT, "--at", AT).code == 0
    assert invoke("--db", db, "check").code == 0
    with open(db, "r+b") as f:  # 8 KiB of garbage in the middle of the file
        f.seek(os.path.getsize(db) // 2)
        f.write(os.urandom(8192))
    ran = invoke("--db", db, "--json", "check")
    assert ran.code == 1 and json.loads(ran.out)["ok"] is False


def test_files_are_readable_by_their_owner_only(db: str, tmp_path: Path) -> None:
    assert os.stat(db).st_mode & 0o777 == 0o600
    out = tmp_path / "tickets.csv"
    assert invoke("--db", db, "export", "tickets", "--out", str(out)).code == 0
    assert os.stat(out).st_mode & 0o777 == 0o600


def test_a_database_made_before_the_marker_is_upgraded_explicitly(db: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE dispatch_meta")
    one_line_refusal(invoke("--db", db, "tickets"), "upgrade")
    assert invoke("--db", db, "upgrade").code == 0
    assert invoke("--db", db, "tickets").code == 0


def test_a_database_of_an_earlier_schema_gains_the_new_columns_filled_by_upgrade(db: str) -> None:
    assert invoke("--db", db, *REPORT, "--at", AT).code == 0
    assert invoke("--db", db, "tickets").code == 0  # projected
    with sqlite3.connect(db) as conn:  # as schema 6 left it: no count of deadline moves
        conn.execute("ALTER TABLE tickets DROP COLUMN deadline_moves")
        conn.execute("UPDATE dispatch_meta SET value = '6' WHERE key = 'schema_version'")
    one_line_refusal(invoke("--db", db, "tickets"), "upgrade")
    ran = invoke("--db", db, "--json", "upgrade")
    assert ran.code == 0 and json.loads(ran.out)["columns_added"] == ["tickets.deadline_moves"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT deadline_moves FROM tickets").fetchall() == [(0,)]  # refilled from the events
    assert invoke("--db", db, "tickets").code == 0


def test_replay_never_writes_into_a_database_it_did_not_make(db: str, tmp_path: Path) -> None:
    other = str(tmp_path / "b.db")
    assert invoke("--db", other, "init").code == 0
    assert invoke("--db", other, *REPORT, "--at", AT).code == 0
    before = Path(other).read_bytes()
    one_line_refusal(invoke("--db", db, "replay", "--into", other, "--no-progress"), "no replay made")
    assert Path(other).read_bytes() == before
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.db").symlink_to(db)
    for alias in (str(tmp_path / "sub" / ".." / "live.db"), str(tmp_path / "link.db")):
        one_line_refusal(invoke("--db", db, "replay", "--into", alias, "--no-progress"), "live database")
    # its own earlier target may be replayed into again
    mine = str(tmp_path / "then.db")
    assert invoke("--db", db, "replay", "--into", mine, "--no-progress").code == 0
    assert invoke("--db", db, "replay", "--into", mine, "--no-progress").code == 0
    assert invoke("--db", mine, "tickets").code == 0


def test_an_interrupted_replay_leaves_a_target_that_says_so(db: str, tmp_path: Path) -> None:
    from dispatch.service.replay import open_target

    rt = bootstrap(db, create=False)
    try:
        target = open_target(str(tmp_path / "half.db"), rt.reference, source="t", live=rt.db)
        target.close()  # killed before finish()
    finally:
        rt.close()
    one_line_refusal(invoke("--db", str(tmp_path / "half.db"), "tickets"), "interrupted replay")


def test_a_killed_verify_leaves_no_scratch_folder_behind(db: str, tmp_path: Path) -> None:
    import tempfile

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = Path(tempfile.mkdtemp(prefix="dispatch-verify-"))
    (stale / "owner.pid").write_text(dead.stdout.strip())
    (stale / "scratch.db").write_bytes(b"x" * 1000)
    assert invoke("--db", db, "replay", "--verify", "--no-progress").code == 0
    assert not stale.exists()
    owners = Path(tempfile.gettempdir()).glob("dispatch-verify-*/owner.pid")
    assert all(p.read_text() != str(os.getpid()) for p in owners)  # and its own scratch folder is gone too


def test_a_reference_change_that_would_orphan_tickets_needs_force(db: str, tmp_path: Path) -> None:
    ticket = invoke("--db", db, *REPORT, "--at", AT).out.strip()
    other = tmp_path / "other.yaml"
    other.write_text(MINI, encoding="utf-8")
    ran = invoke("--db", db, "init", "--reference", str(other))
    one_line_refusal(ran, "would remove")
    assert "cj-shuiku-g01" in ran.err and "city_appearance" in ran.err
    assert invoke("--db", db, "show", ticket).code == 0  # the data is intact
    assert invoke("--db", db, "--json", "init", "--reference", str(other), "--force").code == 0
    with sqlite3.connect(db) as conn:
        removed = json.loads(conn.execute("SELECT removed FROM reference_changes").fetchone()[0])
    assert "cj-shuiku-g01" in removed["grids"]


def test_the_demo_never_writes_into_a_real_database(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = Path(db).read_bytes()
    one_line_refusal(invoke("--db", db, "demo", "--days", "1"), "not a demo database")
    monkeypatch.setenv("DISPATCH_DB", db)
    one_line_refusal(invoke("demo", "--days", "1"), "not a demo database")
    assert Path(db).read_bytes() == before
    monkeypatch.delenv("DISPATCH_DB")
    monkeypatch.chdir(tmp_path)
    Path("demo.db").write_bytes(Path(db).read_bytes())  # a real database someone named demo.db
    one_line_refusal(invoke("demo", "--days", "1"), "not a demo database")
    assert Path("demo.db").read_bytes() == before


def test_the_demo_runs_on_ones_own_reference_data(tmp_path: Path) -> None:
    ref = tmp_path / "mini.yaml"
    ref.write_text(MINI, encoding="utf-8")
    ran = invoke("--db", str(tmp_path / "d.db"), "--json", "demo", "--days", "2", "--street", "s1",
                 "--reference", str(ref))
    assert ran.code == 0, ran.err
    data = json.loads(ran.out)
    assert data["tally"]["reported"] > 0 and all(a["agree"] for a in data["agreement"])


# --- errors ----------------------------------------------------------------------------------------

def test_errors_name_the_thing_never_an_exception_class(tmp_path: Path) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    for args, word in [
        (["--db", "postgresql://[::1", "tickets"], "database URL"),
        (["--db", "postgresql://u@127.0.0.1:notaport/x", "tickets"], "port"),
        (["--db", "mysql://x/y", "tickets"], "unsupported database"),
        (["--db", str(folder), "tickets"], str(folder)),
        (["--db", "postgresql://nobody@127.0.0.1:1/x", "tickets"], "127.0.0.1"),
    ]:
        one_line_refusal(invoke(*args), word)


def test_json_errors_are_json_with_a_code(db: str) -> None:
    ran = invoke("--db", db, "--json", "show", "00000000-0000-0000-0000-000000000000")
    assert ran.code == 1
    assert json.loads(ran.err) == {"error": {"code": "ticket_not_found",
                                             "message": "no ticket 00000000-0000-0000-0000-000000000000"}}


def test_a_password_on_the_command_line_is_warned_about_and_a_file_is_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dispatch.adapters.config import resolve_db

    ran = invoke("--db", "postgresql://u:secret@127.0.0.1:1/x", "tickets")
    assert "visible to other users" in ran.err
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("DISPATCH_DB_PASSWORD_FILE", str(secret))
    assert resolve_db("postgresql://u@127.0.0.1/x").url.password == "s3cret"


def test_every_error_code_is_in_the_catalogue() -> None:
    import dispatch.domain.errors as errors

    doc = (Path(__file__).parents[2] / "docs" / "errors.md").read_text(encoding="utf-8")
    codes = {cls(*(["x"] * _arity(cls))).code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.DispatchError)}
    missing = sorted(code for code in codes if f"`{code}`" not in doc)
    assert not missing, f"docs/errors.md lacks {missing}"


def _arity(cls: type) -> int:
    import inspect

    return len([p for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self" and p.default is p.empty and p.kind == p.POSITIONAL_OR_KEYWORD])


# --- output that can hurt its reader ---------------------------------------------------------------

def test_csv_export_neutralises_formulas_keeps_rows_whole_and_leads_with_a_bom(db: str, tmp_path: Path) -> None:
    for text in ("=HYPERLINK(\"http://x\",\"点我\")", "+1+1", "-2", "@SUM(A1)", "line\rbreak"):
        assert invoke("--db", db, *REPORT[:-1], text, "--at", AT, "--by", "-cli").code == 0
    out = tmp_path / "t.csv"
    assert invoke("--db", db, "export", "tickets", "--out", str(out)).code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert len(rows) == 5
    descriptions = {r["description"] for r in rows}
    assert descriptions == {"'=HYPERLINK(\"http://x\",\"点我\")", "'+1+1", "'-2", "'@SUM(A1)", "line\rbreak"}
    assert invoke("--db", db, "export", "tickets", "--out", str(out), "--no-bom").code == 0
    assert not out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_an_actor_id_cannot_forge_a_history_line_and_descriptions_are_escaped(db: str) -> None:
    one_line_refusal(invoke("--db", db, *REPORT, "--at", AT, "--by", "x\n  3  Closed  centre:director"),
                     "actor.id: contains a control character")
    ticket = invoke("--db", db, *REPORT[:-1], "亮\x1b[31m红\n第二行", "--at", AT)
    assert ticket.code == 1  # an escape sequence in text is refused at the door
    ticket_id = invoke("--db", db, *REPORT[:-1], "第一行\n第二行", "--at", AT).out.strip()
    shown = invoke("--db", db, "show", ticket_id).out
    assert "第一行\\n第二行" in shown


# --- hostile reference files (in a child process under a 1 GiB memory cap) -------------------------

MINI = """timezone: Asia/Shanghai
working_hours: ["08:30-12:00", "13:30-17:30"]
districts:
  - id: d1
    name: 一区
    streets:
      - id: s1
        name: 一街
        communities:
          - {id: c1, name: 一社区, grid_count: 2}
departments: [{id: a, name: 甲}, {id: b, name: 乙}]
priorities: [{id: normal, name: 一般}]
categories: [{id: c, name: 丙, kind: grid, lead_department: a, cooperating: [b]}]
sla: [{category: '*', priority: '*', ack_minutes: 30, handle_minutes: 60, feedback_minutes: 90,
       time_basis: calendar, escalate_every_minutes: 60}]
"""


def _alias_dag() -> str:
    lines = ["a0: &a0 [{id: x, name: y}]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 11)]
    return "\n".join(lines) + "\n" + MINI


BOMBS = {
    "grid_count.yaml": (MINI.replace("grid_count: 2", "grid_count: 100000000"), "less than or equal to 10000"),
    "million.yaml": (MINI.replace("{id: c1, name: 一社区, grid_count: 2}", "\n".join(
        ["{id: c%d, name: 社区%d, grid_count: 10000}" % (i, i) for i in range(101)]).replace(
        "\n", "\n          - ")), "grids exceeded"),
    "alias.yaml": (_alias_dag(), "nodes exceeded"),
    "many_aliases.yaml": ("x: &x 1\ny: [" + ", ".join(["*x"] * 500) + "]\n" + MINI, "aliases exceeded"),
    "deep.yaml": ("x: " + "[" * 1000 + "]" * 1000 + "\n" + MINI, "depth exceeded"),
    "deep_block.yaml": ("".join("  " * i + f"k{i}:\n" for i in range(300)) + MINI, "depth exceeded"),
    "deep.json": ("[" * 100000 + "]" * 100000, "depth exceeded"),
    "duplicate.yaml": (MINI + "timezone: UTC\n", "appears twice"),
    "duplicate.json": ('{"timezone": "UTC", "timezone": "Asia/Shanghai"}', "appears twice"),
    "minutes.yaml": (MINI.replace("handle_minutes: 60", "handle_minutes: 1000000000"), "less than or equal to 527040"),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_hostile_reference_file_is_refused_by_a_limit(tmp_path: Path, name: str) -> None:
    body, limit = BOMBS[name]
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    capped = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
              "from dispatch.cli import run; run(sys.argv[1:])")
    p = subprocess.run([sys.executable, "-c", capped, "--db", str(tmp_path / "x.db"), "init", "--reference", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, p.stderr
    assert limit in p.stderr and name in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert not (tmp_path / "x.db").exists()


def test_an_oversized_reference_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    from dispatch.domain.errors import ReferenceDataError
    from dispatch.domain.reference import MAX_FILE_BYTES, load_reference

    path = tmp_path / "huge.yaml"
    with open(path, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ReferenceDataError) as refused:
        load_reference(path)
    assert refused.value.limit == "size"
