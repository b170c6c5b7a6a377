"""``sla --street / --community``: the figures of one unit's tickets only — each of its rows
equals that row of the unfiltered figures — and an unknown unit is one sentence and exit 1."""

from __future__ import annotations

from pathlib import Path

from tests.unit.safety_support import invoke
from tests.unit.test_projections import _runtime
from tests.unit.test_sla_scenario import AS_OF, cli_json, play, rows_by


def test_sla_of_one_community_or_street_is_that_units_share_of_the_whole(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path / "s.db")
    play(runtime)
    runtime.close()
    db = str(tmp_path / "s.db")
    whole = rows_by(cli_json(db, "sla", "--by", "community", "--as-of", AS_OF), "community")
    only_a = cli_json(db, "sla", "--by", "community", "--community", "甲社区", "--as-of", AS_OF)
    assert [r["community"] for r in only_a["rows"]] == ["ca"]
    assert only_a["rows"][0] == whole["ca"]
    assert only_a["scope"] == {"street": None, "community": "ca"}
    # the scenario has one street: its figures are everyone's
    everyone = cli_json(db, "sla", "--by", "department", "--as-of", AS_OF)
    street = cli_json(db, "sla", "--by", "department", "--street", "东街道", "--as-of", AS_OF)
    assert street["rows"] == everyone["rows"] and street["ranking"] == everyone["ranking"]
    # department figures of one community differ from the whole street's (community B's tickets left out)
    by_dept_a = rows_by(cli_json(db, "sla", "--by", "department", "--community", "ca", "--as-of", AS_OF),
                        "department")
    assert by_dept_a != rows_by(everyone, "department")
    refused = invoke("--db", db, "sla", "--by", "department", "--community", "no such place")
    assert refused.code != 0 and refused.out == "" and len(refused.err.strip().splitlines()) == 1
