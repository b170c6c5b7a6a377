"""The SLA scenario's figures through PostgreSQL: same events, same read models, same numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dispatch.bootstrap import bootstrap
from dispatch.projections import apply_records, catch_up, stored_position
from dispatch.projections.decode import records_from_notifications
from tests.integration.servers import drop_postgres_database, fresh_postgres_database
from tests.unit.test_sla_scenario import (AS_OF, COMMUNITY_A, COMMUNITY_B, DEPARTMENTS, REFERENCE, assert_figures,
                                          cli_json, play, rows_by)


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = fresh_postgres_database("projections")
    ref: Path = tmp_path_factory.mktemp("ref") / "reference.yaml"
    ref.write_text(yaml.safe_dump(REFERENCE, allow_unicode=True), encoding="utf-8")
    runtime = bootstrap(url, reference_file=ref)
    try:
        play(runtime)
    finally:
        runtime.close()
    yield url
    drop_postgres_database(url)


def test_sla_figures_on_postgres_equal_the_hand_computed_ones(pg_url: str) -> None:
    data = cli_json(pg_url, "sla", "--by", "department", "--as-of", AS_OF)
    rows = rows_by(data, "department")
    for dept, expected in DEPARTMENTS.items():
        assert_figures(rows[dept], expected)
    assert [r["department"] for r in data["ranking"]] == ["shizheng", "huanwei"]


def test_dashboards_on_postgres_equal_the_hand_computed_ones(pg_url: str) -> None:
    assert_figures(cli_json(pg_url, "dashboard", "--community", "ca", "--as-of", AS_OF), COMMUNITY_A)
    street = cli_json(pg_url, "dashboard", "--street", "s1", "--as-of", AS_OF, "--min-evaluated", "10")
    communities = {c["community"]: c for c in street["communities"]}
    assert_figures(communities["cb"], COMMUNITY_B)
    assert [r["community"] for r in street["ranking"]] == ["ca"]


def test_a_redelivered_batch_changes_nothing_on_postgres(pg_url: str) -> None:
    runtime = bootstrap(pg_url)
    try:
        catch_up(runtime)
        before = cli_json(pg_url, "sla", "--by", "street", "--as-of", AS_OF)
        notifications = runtime.app.recorder.select_notifications(start=1, limit=500)
        records = records_from_notifications(notifications, runtime.app.mapper)
        assert apply_records(runtime.engine, records, source="ticket-events:0", position=41) == 0
        assert stored_position(runtime.engine, "ticket-events:0") == 41
        assert cli_json(pg_url, "sla", "--by", "street", "--as-of", AS_OF) == before
    finally:
        runtime.close()


def test_a_read_finds_the_store_s_last_position_in_its_own_table_on_postgres(pg_url: str) -> None:
    # catch_up looks at the store's table by name before it loads anything: the name must be the
    # one eventsourcing gives it, or a read would find "nothing new" and miss every event
    from dispatch.projections.poller import store_top

    from dispatch.service import queries

    runtime = bootstrap(pg_url, create=False)
    try:
        # one ticket read through the store alone (the application not built): the same table
        assert runtime.store.recorder.events_table_name == runtime.store_table
        first = queries.tickets(runtime, limit=1)[0]
        assert queries.show(runtime, str(first["ticket_id"]))["status"] == first["status"]
        assert runtime.store_table == runtime.app.recorder.events_table_name
        assert store_top(runtime.engine, runtime.store_table) == runtime.app.recorder.max_notification_id() > 0
    finally:
        runtime.close()
