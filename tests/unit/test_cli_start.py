"""The command line starts fast: ``dispatch --help`` lists every command from the catalogue
without importing one (nor SQLAlchemy, eventsourcing, pydantic or Kafka); a command's module is
imported when it runs. (The time itself is measured by scripts/bench_cli.py, never asserted.)"""

from __future__ import annotations

import subprocess
from typing import Any
import sys

from click.testing import CliRunner

from dispatch.cli import main
from dispatch.cli.catalogue import COMMANDS


def test_the_catalogue_names_every_command_with_its_module_and_help() -> None:
    from dispatch.cli import load_all

    load_all()
    found = {name: (cmd.callback.__module__, cmd.get_short_help_str(limit=200))  # type: ignore[union-attr]
             for name, cmd in main.commands.items()}
    assert found == COMMANDS


def test_help_imports_no_command_module_and_no_heavy_library() -> None:
    probe = ("import sys\nfrom dispatch.cli import run\ntry:\n    run(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('LOADED:' + ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('sqlalchemy', 'eventsourcing', 'pydantic', 'kafka', 'structlog', 'fastapi') "
             "or m.startswith('dispatch.cli.') and m != 'dispatch.cli.catalogue')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert "report" in out and "watchdog" in out  # the help itself lists the commands
    assert out.rsplit("LOADED:", 1)[1].strip() == ""


def test_a_command_and_its_own_help_still_work_through_the_lazy_group() -> None:
    out = CliRunner().invoke(main, ["sla-rules", "--help"])
    assert out.exit_code == 0 and "most specific rule wins" in " ".join(out.output.split())
    unknown = CliRunner().invoke(main, ["no-such-command"])
    assert unknown.exit_code == 2 and "No such command" in unknown.output


def test_the_rules_of_who_records_what_name_the_command_models_the_engine_handles() -> None:
    # dispatch.service.access names the steps by class name, so that a read need not import the models
    from dispatch.service.access import ACTING_ROLE, CLAIMS, STEPS
    from dispatch.service.handlers import HANDLERS

    handled = {kind.__name__ for kind in HANDLERS}
    assert set(ACTING_ROLE) == handled
    for table in (STEPS, CLAIMS):
        for role, names in table.items():
            assert names <= handled, (role, names - handled)


_PROBE = """
import sys
from dispatch.cli import run
try:
    run(sys.argv[1:])
except SystemExit:
    pass
print('LOADED:' + ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in
      ('eventsourcing', 'pydantic', 'yaml', 'structlog', 'kafka', 'fastapi', 'psycopg')
      or m in ('dispatch.domain.commands', 'dispatch.aggregates', 'dispatch.service.application', 'dispatch.service.handlers',
               'dispatch.projections.apply_events', 'dispatch.adapters.eventstore'))))
print('DRAWS:' + ' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'chinese_calendar')
                                 or m == 'dispatch.adapters.user_tables'))[:200])
print('SQL:' + ' '.join(sorted(m for m in sys.modules if m in ('dispatch.projections.sla_stats',
      'dispatch.projections.rollups', 'dispatch.projections.verdicts', 'dispatch.projections.deadlines'))))
"""


def test_a_read_of_the_read_models_imports_only_what_its_answer_needs(tmp_path: Any) -> None:
    # once the read models hold every event, the lists and dashboards read SQL: no event store,
    # command models, projection code, file schema or logging library (the store is looked at in
    # one query to find nothing new)
    def dispatch(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True,
                              cwd=tmp_path)
        return done.stdout

    dispatch("init")
    dispatch("report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "路灯不亮")
    assert "dispatch.projections.apply_events" in dispatch("tickets")  # the first read projects the report
    for read in (["tickets"], ["dashboard", "--street", "caojing"], ["sla", "--by", "department"],
                 ["overdue"]):
        out = dispatch(*read)
        assert "LOADED:" in out, (read, out)
        assert out.rsplit("LOADED:", 1)[1].split("DRAWS:")[0].strip() == "", (read, out)
        # their tables are columns of text: no rich, no users' tables, no holiday package
        assert out.rsplit("DRAWS:", 1)[1].split("SQL:")[0].strip() == "", (read, out)
        # and only the SQL its own figures need: a dashboard or a list loads no SLA table, rollups
        # or missed deadlines
        wanted = {"tickets": set(), "dashboard": set(), "overdue": {"dispatch.projections.deadlines"},
                  "sla": {"dispatch.projections.sla_stats", "dispatch.projections.rollups",
                          "dispatch.projections.verdicts"}}[read[0]]
        assert set(out.rsplit("SQL:", 1)[1].split()) == wanted, (read, out)
    assert "CAOJING-" in dispatch("tickets")  # and it answered


def test_showing_one_ticket_reads_its_events_without_the_command_models(tmp_path: Any) -> None:
    # show, history and timeline read the ticket from the event store's table and fold its events
    # themselves: not the command models, the handlers, the file schema, the logging library, rich,
    # the users' tables or the holiday package — and not even eventsourcing
    def dispatch(*args: str) -> str:
        return subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True,
                              cwd=tmp_path).stdout

    dispatch("init")
    ticket = dispatch("report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "路灯不亮").split()[0]
    dispatch("tickets")
    for read in (["show", ticket], ["history", ticket], ["timeline", ticket]):
        out = dispatch(*read)
        loaded = set(out.rsplit("LOADED:", 1)[1].split("DRAWS:")[0].split())
        if read[0] != "timeline":  # (a table) — a ticket and its events are printed line by line: no
            # table library, no users' tables, no holiday package
            assert out.rsplit("DRAWS:", 1)[1].split("SQL:")[0].strip() == "", (read, out)
        assert "路灯不亮" in out or "Reported" in out or "上报" in out, (read, out)  # it answered
        assert not {m for m in loaded if m.split(".")[0] == "eventsourcing"} | (
            loaded & {"dispatch.adapters.eventstore", "dispatch.aggregates"}), (read, sorted(loaded))
        assert not loaded & {"dispatch.domain.commands", "dispatch.service.application", "dispatch.service.handlers", "pydantic", "yaml",
                             "structlog"}, (read, sorted(loaded))


def test_a_read_finds_the_store_s_last_position_in_its_own_table(tmp_path: Any) -> None:
    from dispatch.bootstrap import bootstrap
    from dispatch.projections.poller import store_top

    runtime = bootstrap(str(tmp_path / "d.db"))
    try:
        assert store_top(runtime.engine, runtime.store_table) == 0
        subprocess.run([sys.executable, "-c", _PROBE, "--db", str(tmp_path / "d.db"), "report", "--grid",
                        "cj-shuiku-g01", "--category", "市容环卫", "-d", "x"], check=True, capture_output=True)
        assert runtime.store_table == runtime.app.recorder.events_table_name
        assert store_top(runtime.engine, runtime.store_table) == runtime.app.recorder.max_notification_id() == 1
    finally:
        runtime.close()
