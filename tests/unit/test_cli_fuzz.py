"""Arbitrary arguments and business times through the CLI's own entry point (in-process):
never a traceback; a refusal is one line on stderr, a non-zero exit and nothing recorded;
the read commands still work afterwards."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.safety_support import invoke

VERBS = {
    "report": ["--grid", "--category", "--priority", "--channel", "-d", "--location", "--ref", "--role"],
    "accept": ["--note"], "first-contact": ["--mode", "--note"], "whistle": ["--lead", "--with", "--reason"],
    "ack": ["--dept"], "reject": ["--dept", "--reason"], "handle": ["--dept", "--result"],
    "feedback": ["--message"], "evaluate": ["--satisfaction", "--comment", "--method"], "reopen": ["--reason"],
    "escalate": ["--reason"], "duplicate": ["--of"], "cancel": ["--reason"], "close": ["--note"],
}
GOOD = {"--grid": "cj-shuiku-g01", "--category": "市容环卫", "-d": "垃圾", "--dept": "城管",
        "--satisfaction": "satisfied", "--mode": "explain", "--reason": "因为", "--channel": "hotline"}
TIMES = st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2026-11-20T09:00:00+08:00", "0001-01-01T00:00+08:00", "9999-12-31T23:59-12:00",
                     "2026-02-30T10:00", "yesterday", "", "1700000000", "2026-11-20T25:00+08:00"]),
    st.text(max_size=30),
)
TEXT = st.one_of(st.text(max_size=40), st.sampled_from(list(GOOD.values()) + ["\x1b[2J", "a\nb", "=1+1", "-x"]))


def _events(path: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


@st.composite
def commands(draw: st.DrawFn, ticket: str) -> list[str]:
    verb = draw(st.sampled_from(sorted(VERBS)))
    args = [verb]
    if verb != "report":
        args.append(draw(st.one_of(st.just(ticket), TEXT)))
    for option in VERBS[verb]:
        if draw(st.booleans()):
            args += [option, draw(st.one_of(st.just(GOOD.get(option, "x")), TEXT))]
    if draw(st.booleans()):
        args += ["--at", draw(TIMES)]
    if draw(st.booleans()):
        args += ["--by", draw(TEXT)]
    if draw(st.booleans()):
        args.insert(0, "--json")
    return args


def test_arbitrary_commands_never_hurt_the_store(tmp_path: Path) -> None:
    db = str(tmp_path / "fuzz.db")
    assert invoke("--db", db, "init").code == 0
    ticket = invoke("--db", db, "report", "--grid", "cj-shuiku-g01", "--category", "市容环卫", "-d", "x",
                    "--at", "2026-11-20T09:00:00+08:00").out.strip()

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(commands(ticket))
    def one(args: list[str]) -> None:
        before = _events(db)
        ran = invoke("--db", db, *args)
        assert "Traceback" not in ran.err
        if ran.code != 0:
            lines = ran.err.strip().splitlines()
            assert len(lines) == 1 and lines[0], ran.err
            assert "Error:" not in lines[0] and "Exception" not in lines[0], lines[0]
            assert _events(db) == before, args
        else:
            assert _events(db) - before in (0, 1), args
        assert invoke("--db", db, "tickets").code == 0
        assert invoke("--db", db, "show", ticket).code == 0

    one()
