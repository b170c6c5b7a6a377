"""A simulated day of a street with the notifier on the demo's clock: every whistle call is told
to its departments, each report-in and handling deadline is reminded before it falls due (never
after), each escalation reaches the level it climbed to once — its channel and its people — and
no message carries a reporter's contact or an unmasked phone number typed into a description;
``dispatch demo --notify-log`` shows the same to a newcomer."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dispatch.bootstrap import bootstrap
from dispatch.domain import commands as c
from dispatch.domain.clock import SimulatedClock
from dispatch.service import accounts
from dispatch.service.notifier import Notifier, add_channel
from dispatch.service.simulation import simulate
from dispatch.service.simulation.runner import run_embedded

START = datetime(2026, 11, 23, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
TICK = timedelta(minutes=5)
CONTACT = {"name": "李四", "phone": "13912345678", "email": "lisi@example.com"}
OPERATOR = accounts.local_operator("test")


def _with_contact(command: object) -> object:
    if isinstance(command, c.Report):
        return command.model_copy(update={"reporter": c.Reporter(**CONTACT),
                                          "description": command.description + " 电话13912345678"})
    return command


def test_a_simulated_day_reminds_before_deadlines_and_tells_each_escalation_to_its_level(tmp_path: Path) -> None:
    runtime = bootstrap(str(tmp_path / "day.db"), clock=SimulatedClock(START))
    try:
        for name, role, scope in (("lead-xq", "leader", "street:xinqi"), ("lead-bl", "leader", "district:beilun"),
                                  ("sup-ms", "supervisor", "community:xq-minshan")):
            accounts.add(runtime, OPERATOR, name=name, role=role, scope=scope, password=None)
        add_channel(runtime, OPERATOR, owner="street:xinqi", kind="webhook", target="http://127.0.0.1:9/street")
        log = tmp_path / "notices.jsonl"
        notifier = Notifier(runtime, log_file=log, base_url="https://grid.example", send=lambda channel, m: None)
        notifier.tick()
        commands = [(at, _with_contact(command)) for at, command in simulate(runtime.reference, "xinqi", 1, 60, 3,
                                                                              START)]
        run_embedded(runtime, commands, start=START, end=START + timedelta(days=1), tick=TICK,
                     on_tick=lambda at: notifier.tick(TICK))
        lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        events = [runtime.app.mapper.to_domain_event(n) for n in runtime.app.recorder.select_notifications(1, 100_000)]
    finally:
        runtime.close()
    kinds = Counter(line["subject"].split("】")[0] + "】" for line in lines)
    whistles = sum(len(e.calls) for e in events if type(e).__name__ in ("Dispatched", "Redispatched"))
    assert kinds["【吹哨】"] == whistles > 0
    # reminders: before the deadline they name, at most the reminder minutes (and one pass) ahead
    reminders = [line for line in lines if "提醒】" in line["subject"]]
    assert len(reminders) > 10
    for line in reminders:
        due = _due(line["key"])
        at = datetime.fromisoformat(line["at"])
        assert timedelta(0) < due - at <= timedelta(minutes=10) + TICK, line
    assert len({line["key"] for line in reminders}) == len(reminders)  # each deadline reminded once
    # escalations: each one told once to the level it reached, and to that level's people
    escalations = [(n, e) for n, e in enumerate(events, start=1) if type(e).__name__ == "Escalated"]
    assert escalations
    told = Counter((line["key"].split(":")[0], line["to"]) for line in lines if "督办" in line["subject"])
    for position, event in escalations:
        level_told = [to for (p, to), count in told.items() if p == str(position) and to.startswith("level:")]
        assert len(level_told) == 1 and level_told[0].startswith(f"level:{event.to_level}:"), (position, told)
        assert all(count == 1 for (p, _), count in told.items() if p == str(position))
    people = {to for (_, to) in told if to.startswith("user:")}
    assert people <= {"user:lead-xq", "user:lead-bl", "user:sup-ms"} and "user:lead-xq" in people
    # no personal data in any message
    for line in lines:
        text = line["subject"] + line["body"]
        assert not any(v in text for v in CONTACT.values()), line
        assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text), line


def _due(key: str) -> datetime:
    """The deadline a reminder's key names: ``remind:<ticket>:<kind>:<call>:<due ISO>``."""
    found = re.search(r"(\d{4}-\d{2}-\d{2}T[\d:.]+[+-]\d{2}:\d{2})$", key)
    assert found, key
    return datetime.fromisoformat(found.group(1))


def test_the_demo_shows_what_it_would_have_sent(tmp_path: Path) -> None:
    log = tmp_path / "would-send.jsonl"
    ran = subprocess.run([sys.executable, "-m", "dispatch", "--db", str(tmp_path / "demo.db"), "demo", "--days", "1",
                          "--notify-log", str(log)], capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    subjects = Counter(line["subject"].split("】")[0] + "】" for line in lines)
    assert subjects["【吹哨】"] > 0 and subjects["【报到提醒】"] > 0 and any("督办" in s for s in subjects)
    assert all(line["at"].startswith("2025-09-2") for line in lines)  # the story's clock, not the machine's
