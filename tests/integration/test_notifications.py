"""Notifications reach people through real servers the tests start: an SMTP server demanding
STARTTLS and a login, stand-ins for a 企业微信 robot, a 钉钉 robot (signature checked as 钉钉
documents it) and a generic webhook (HMAC checked, keys kept). A notifier killed mid-batch
loses and doubles nothing a receiver that keeps keys would notice; a channel that is down is
retried, and given up sends are resent."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from dispatch.bootstrap import Runtime, bootstrap
from dispatch.domain import commands as c
from dispatch.domain.clock import SimulatedClock
from dispatch.service import accounts
from dispatch.service.actions import act
from dispatch.service.notifier import Notifier, add_channel, failed_sends
from tests.integration.receivers import receiver, smtp_server
from tests.integration.servers import REPO_ROOT
from tests.waiting import wait_for

START = datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday, working hours
OPERATOR = accounts.local_operator("test")
PERSONAL = ("13812345678", "张三", "zhang@example.com", "110101199003071234")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    made = bootstrap(str(tmp_path / "notify.db"), clock=SimulatedClock(START))
    yield made
    made.close()


def _whistle(runtime: Runtime, n: int = 1, grid: str = "cj-shuiku-g01") -> list[str]:
    """Tickets reported (with a reporter's contact, and a phone number typed in the description),
    accepted and dispatched to 城管 (lead) by the category's routing."""
    clock = runtime.clock
    made = []
    for i in range(n):
        clock.advance(timedelta(minutes=1))
        report = act(runtime, c.Report, OPERATOR, grid=grid, category="city_appearance", channel="hotline",
                     description=f"路口垃圾堆放{i}，联系 13812345678 或 zhang@example.com，身份证110101199003071234",
                     reporter={"name": "张三", "phone": "13812345678", "email": "zhang@example.com"})
        ticket = str(report.ticket_id)
        clock.advance(timedelta(minutes=1))
        act(runtime, c.Accept, OPERATOR, ticket_id=ticket)
        clock.advance(timedelta(minutes=1))
        act(runtime, c.Dispatch, OPERATOR, ticket_id=ticket, lead="chengguan", cooperating=[])
        made.append(ticket)
    return made


def _no_personal_data(*texts: str) -> None:
    for text in texts:
        for item in PERSONAL:
            assert item not in text, (item, text)


def test_each_channel_receives_the_whistle_as_its_server_expects(runtime: Runtime, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hook.key").write_text("hook-hmac-secret\n", encoding="utf-8")
    monkeypatch.setenv("DT_SECRET", "SEC-dingtalk-test-secret")
    with smtp_server(tmp_path) as (mailbox, env), receiver("wecom") as wecom, \
            receiver("dingtalk", "SEC-dingtalk-test-secret") as dingtalk, \
            receiver("webhook", "hook-hmac-secret") as hook:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        add_channel(runtime, OPERATOR, owner="department:城管", kind="email", target="cg-duty@grid.example")
        add_channel(runtime, OPERATOR, owner="department:chengguan", kind="wecom",
                    target=f"{wecom.url}/cgi-bin/webhook/send?key=wecom-robot-key")
        add_channel(runtime, OPERATOR, owner="department:chengguan", kind="dingtalk",
                    target=f"{dingtalk.url}/robot/send?access_token=dt-token", secret="env:DT_SECRET")
        add_channel(runtime, OPERATOR, owner="department:chengguan", kind="webhook", target=f"{hook.url}/sms",
                    secret=f"file:{tmp_path / 'hook.key'}")
        notifier = Notifier(runtime, base_url="https://grid.example")
        notifier.tick()  # the notifier starts at the feed's end: what came before is not sent
        [ticket] = _whistle(runtime)
        case = runtime.app.get_ticket(UUID(ticket)).case_no
        notifier.tick()
        assert notifier.counts["sent"] == 4, notifier.counts
        [mail] = mailbox.messages
        assert mailbox.sessions == [(True, "dispatch")]  # over STARTTLS, logged in
        assert mail["Subject"] == f"【吹哨】城管主办：{case} 市容环卫" and mail["To"] == "cg-duty@grid.example"
        text = mail.get_content()
        assert f"https://grid.example/tickets/{ticket}" in text and "请在 11-23 09:33 前报到" in text
        assert "138****5678" in text and "z***@example.com" in text
        for got in (wecom.texts(), dingtalk.texts(), hook.texts()):
            assert len(got) == 1 and case in got[0] and f"https://grid.example/tickets/{ticket}" in got[0]
        assert dingtalk.refused == [] and hook.refused == [] and len(hook.keys) == 1
        _no_personal_data(text, *wecom.texts(), *dingtalk.texts(), *hook.texts())


def _cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dispatch", "--db", str(db), *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})


def test_a_notifier_killed_mid_batch_loses_and_doubles_nothing_a_receiver_keeping_keys_sees(
        runtime: Runtime, tmp_path: Path) -> None:
    from tests.said import say

    (tmp_path / "hook.key").write_text("hook-hmac-secret", encoding="utf-8")
    db = tmp_path / "notify.db"
    with receiver("webhook", "hook-hmac-secret") as hook:
        hook.slow = 0.05  # a receiver that takes its time: the kill falls in the middle of a batch
        add_channel(runtime, OPERATOR, owner="department:chengguan", kind="webhook", target=f"{hook.url}/sms",
                    secret=f"file:{tmp_path / 'hook.key'}", quiet=False)
        log = open(tmp_path / "notifier.log", "ab")  # noqa: SIM115 - closed below

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "dispatch", "--db", str(db), "notify", "run",
                                     "--every", "0.1"], cwd=REPO_ROOT, stdout=log, stderr=log,
                                    env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})

        notifier = start()
        try:
            wait_for(lambda: _cli(db, "--json", "notify", "list").returncode == 0 and
                     Notifier(runtime)._position() >= 0, what="the notifier up")
            tickets = _whistle(runtime, 60)
            wait_for(lambda: len(hook.keys) >= 15, timeout=120, every=0.02, what="some messages received")
            notifier.send_signal(signal.SIGKILL)
            notifier.wait(timeout=30)
            received_before = len(hook.keys)
            assert received_before < len(tickets), "every message was sent before the kill"
            notifier = start()
            wait_for(lambda: len(hook.keys) >= len(tickets), timeout=180, what="every message received")
        finally:
            notifier.send_signal(signal.SIGKILL)
            notifier.wait(timeout=30)
            log.close()
        expected = {str(runtime.app.get_ticket(UUID(t)).case_no) for t in tickets}
        got = {re.search(r"[A-Z]+-\d{8}-\d{5}", b["subject"]).group(0) for b in hook.bodies}  # type: ignore[union-attr]
        assert got == expected  # every one at least once
        assert len(hook.keys) == len(tickets)  # one key per message: the receiver keeps each once
        doubled = sum(hook.keys.values()) - len(hook.keys)
        say(f"notifier killed (-9) after {received_before} of {len(tickets)} messages: all arrived, "
            f"{doubled} sent twice and recognised by their key")


def test_a_channel_down_is_retried_and_given_up_sends_are_resent(runtime: Runtime, tmp_path: Path) -> None:
    from consumers.metrics import NotifyMetrics, ProcessHealth

    (tmp_path / "hook.key").write_text("hook-hmac-secret", encoding="utf-8")
    health = ProcessHealth("notifier")
    with receiver("webhook", "hook-hmac-secret") as hook:
        channel = add_channel(runtime, OPERATOR, owner="department:chengguan", kind="webhook",
                              target=f"{hook.url}/sms", secret=f"file:{tmp_path / 'hook.key'}", quiet=False)
        notifier = Notifier(runtime, retry_base=0.05, retry_cap=0.2, max_attempts=50, metrics=NotifyMetrics(health.registry, health.down))
        notifier.tick()
        hook.down = True
        _whistle(runtime, 3)
        wait_for(lambda: notifier.tick() is not None and hook.unavailable >= 6, timeout=60, every=0.05,
                 what="sends refused while the channel is down")
        assert f"notify channel {channel['id']}" in health.down  # /readyz says so
        assert _metric(health, "dispatch_notify_channels_down") == 1
        hook.down = False
        wait_for(lambda: notifier.tick() is not None and len(hook.keys) == 3, timeout=60, every=0.05,
                 what="the messages delivered once it is back")
        assert _metric(health, "dispatch_notify_retried_total", channel="webhook") >= 6
        assert _metric(health, "dispatch_notify_sent_total", channel="webhook") == 3
        assert not health.down and _metric(health, "dispatch_notify_channels_down") == 0
        # down past the limit: given up, listed, and sent again on request
        stubborn = Notifier(runtime, retry_base=0.02, retry_cap=0.05, max_attempts=3)
        hook.down = True
        _whistle(runtime, 2)
        wait_for(lambda: stubborn.tick() is not None and len(failed_sends(runtime, OPERATOR)) == 2, timeout=60,
                 every=0.05, what="two sends given up")
        listed = _cli(tmp_path / "notify.db", "notify", "failed")
        assert listed.returncode == 0 and listed.stdout.count("3 tries") == 2, listed.stdout + listed.stderr
        hook.down = False
        resent = _cli(tmp_path / "notify.db", "notify", "resend")
        assert resent.returncode == 0 and "2 notifications" in resent.stdout, resent.stderr
        wait_for(lambda: stubborn.tick() is not None and len(hook.keys) == 5, timeout=60, every=0.05,
                 what="the given-up sends delivered")
        assert failed_sends(runtime, OPERATOR) == []


def _metric(health: Any, name: str, **labels: str) -> float:
    value = health.registry.get_sample_value(name, labels or None)
    return float(value or 0)
