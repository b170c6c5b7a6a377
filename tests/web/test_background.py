"""Embedded `dispatch web` keeps the read models caught up and runs the SLA watchdog in its
own process: a missed report-in deadline is escalated with no CLI command run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from tests.waiting import wait_for
from tests.web.support import make_api


def test_the_watchdog_escalates_in_the_web_process(tmp_path: Path) -> None:
    api = make_api(tmp_path, background=True, watchdog_every=1.0)
    with api.client:
        ticket = api.report()
        api.step("disp-a", ticket, "accept")
        api.step("disp-a", ticket, "dispatch")
        due = min(datetime.fromisoformat(c["ack_due"])
                  for c in api.get("boss", f"/api/tickets/{ticket}").json()["calls"])
        api.clock.set(due + timedelta(hours=2))
        wait_for(lambda: api.version(ticket) > 3, timeout=30, every=0.2, what="an escalation")
        events = api.get("boss", f"/api/tickets/{ticket}/history").json()["events"]
        assert events[3]["event"] == "Escalated" and events[3]["actor"]["id"] == "watchdog"
        # and the read models have every event without anyone reading them (/metrics does not catch up)
        wait_for(lambda: "dispatch_projection_lag_events 0.0" in api.client.get("/metrics").text, timeout=30,
                 every=0.2, what="the read models to catch up")
    api.runtime.close()
