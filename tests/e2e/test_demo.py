"""``dispatch demo``: the README's first command, on the embedded default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cli import Cli


def test_demo_dashboard_figures_equal_the_simulations_own_tally_and_repeat_exactly(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    # A week of 新碶街道 at 40 reports a day, through the real engine, projections and watchdog.
    first = cli("--json", "demo", "--days", "7", "--seed", "1", "--tickets-per-day", "40", timeout=300)
    data = first.json()
    tally, dash, engine = data["tally"], data["dashboard"], data["engine"]

    # The dashboard counts what the simulation says it did (the tally comes from its commands).
    assert dash["street"] == "xinqi" and tally["reported"] > 200
    assert dash["reported"] == tally["reported"]
    assert dash["closed"] == tally["closed"]
    assert dash["evaluated"] == tally["evaluated"]
    assert {s: dash[s] for s in tally["satisfaction"]} == tally["satisfaction"]
    assert sum(row["rejected"] for row in data["sla"]["rows"]) == tally["rejections"] > 0
    assert sum(row["dispatched"] for row in data["sla"]["rows"]) == tally["calls"]
    assert dash["by_channel"] == tally["by_channel"]
    assert dash["by_category"] == tally["by_category"]
    # Every command was accepted; late departments were escalated by the watchdog.
    assert engine["refused"] == 0 and engine["commands"] == tally["commands"]
    assert dash["escalations"] == engine["escalations"] > 0
    assert all(row["agree"] for row in data["agreement"])
    # The story has every turn the articles describe.
    assert tally["first_contact_closures"] > 0 and tally["redispatches"] > 0 and tally["tickets_reopened"] > 0
    assert (tmp_path / "demo.db").exists()

    # Same seed, same story, same figures — on a database recreated for the run.
    second = cli("--json", "demo", "--days", "7", "--seed", "1", "--tickets-per-day", "40", timeout=300)
    assert second.out == first.out


def test_demo_of_caojing_in_words_says_where_the_data_went(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    result = cli("demo", "--street", "漕泾镇", "--days", "2", "--seed", "3", timeout=300)
    assert "漕泾镇 (caojing)" in result.out
    assert "demo.db (recreated for this run" in result.out
    assert "agree with the simulation's own tally" in result.out
    assert "SLA by department" in result.out


def test_demo_refuses_a_database_that_already_holds_events(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    cli("--db", "mine.db", "demo", "--days", "1", "--tickets-per-day", "5", timeout=300)
    again = cli("--db", "mine.db", "demo", "--days", "1", check=False)
    assert again.code == 1
    assert "already holds" in again.err and "empty database" in again.err


@pytest.mark.integration
def test_demo_through_kafka_and_postgres_shows_the_same_figures_as_embedded(tmp_path: Path) -> None:
    from tests.integration.servers import drop_postgres_database, fresh_postgres_database, kafka_bootstrap

    cli = Cli(tmp_path)
    embedded = cli("--json", "demo", "--days", "2", "--seed", "5", timeout=300).json()
    url = fresh_postgres_database("demo_kafka")
    try:
        # Commands go to the intake topic; engine, relay and projector run in the demo's process.
        kafka = cli("--db", url, "--json", "demo", "--days", "2", "--seed", "5", "--kafka", kafka_bootstrap(),
                    timeout=600).json()
    finally:
        drop_postgres_database(url)
    assert kafka["demo"]["mode"] == "kafka" and kafka["engine"]["refused"] == 0
    assert kafka["tally"] == embedded["tally"]
    assert kafka["dashboard"] == embedded["dashboard"]
    assert kafka["sla"] == embedded["sla"]


def test_demo_web_serves_the_simulated_streets_big_screen_as_of_the_story_end(tmp_path: Path) -> None:
    import re
    import subprocess
    import sys

    import httpx2 as httpx

    from tests.e2e.web import _free_port
    from tests.waiting import wait_for

    cli, port = Cli(tmp_path), _free_port()
    server = subprocess.Popen([sys.executable, "-m", "dispatch", "demo", "--days", "2", "--web", "--port", str(port)],
                              cwd=tmp_path, env={**cli.env, "BROWSER": "true"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    try:
        said: list[str] = []

        def announced() -> bool:
            assert server.poll() is None, server.communicate(timeout=5)
            line = server.stderr.readline() if server.stderr else ""
            said.append(line)
            return "/screen?key=" in line

        wait_for(announced, timeout=120, every=0.1, what="the demo to print its big screen's address")
        address = re.search(r"http://\S+", said[-1]).group(0)  # type: ignore[union-attr]
        wait_for(lambda: _answers(httpx, f"http://127.0.0.1:{port}/healthz"), timeout=60, every=0.2,
                 what="the web to answer")
        with httpx.Client(follow_redirects=True) as browser:
            screen = browser.get(address)
            assert screen.status_code == 200 and "新碶街道" in screen.text and str(screen.url).endswith("/screen")
            data = browser.get(f"http://127.0.0.1:{port}/screen/data").json()
        assert data["figures"]["reported"] > 50  # two simulated days
        assert data["as_of"].startswith("2025-09-24T00:00:00")  # "now" is the end of the story
    finally:
        server.terminate()
        server.communicate(timeout=30)


def _answers(httpx: Any, url: str) -> bool:
    try:
        return bool(httpx.get(url, timeout=1).status_code == 200)
    except httpx.TransportError:
        return False
