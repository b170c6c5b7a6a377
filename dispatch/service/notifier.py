"""The notifier: ticket events and deadlines → notices (``dispatch.service.notices``) → the outbox
(``dispatch.adapters.outbox``) → the channels (``dispatch.adapters.channels``).

One ``tick`` does three things:

1. **Reads the feed** — the event store's notification log, the same in both modes (embedded it
   is the SQLite store; in Kafka mode the engine writes it to PostgreSQL, and the relay publishes
   the same log as ticket-events): the events after its position, in batches. For each event the
   notices (``notices.for_event``), one outbox row per notice and channel of its recipient, under
   the key ``<position>:<cause>:<recipient>#<channel>``; the rows and the new position in one
   transaction. A notifier started on a database for the first time starts at the feed's end:
   nothing of the past is sent.
2. **Reminds**: deadlines (report-in, handling) that fall due within ``remind_minutes`` of the
   notifier's clock — the watchdog's clock object, simulated in the demo and the tests — from the
   read model, each reminded once (its key names the deadline).
3. **Sends** what is due: pending rows whose next try has come and whose quiet hours are over.
   A failure is tried again with exponential backoff and jitter (``retry_base`` · 2ⁿ, at most
   ``retry_cap``); after ``max_attempts`` the row is *failed* (``dispatch notify failed``;
   ``dispatch notify resend`` puts it back). Three failures in a row mark a channel *down*
   (a metric, and a line of ``/readyz``) until a send by it succeeds.

Quiet hours follow the SLA calendar: a notice about a working-time matter waits, on a channel
that keeps quiet hours, for the next working period; a calendar-time one is sent at once.
``log``: a file that every notice is also written to, one JSON line each, recipients with or
without a channel (``dispatch demo --notify-log``: what would have been sent).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from dispatch.adapters.logs import get_logger

from dispatch.adapters import channels as senders
from dispatch.adapters import outbox, user_tables
from dispatch.domain.errors import Forbidden, InvalidCommand
from dispatch.domain.identity import Identity
from dispatch.service.notices import DEFAULT_REMIND_MINUTES, Notice, for_event, quiet_until, reminder

__all__ = ["Notifier", "add_channel", "list_channels", "remove_channel", "set_remind_minutes"]

log = get_logger("dispatch.notifier")
FEED = "store"


class Notifier:
    def __init__(self, runtime: Any, *, clock: Any = None, base_url: str = "http://127.0.0.1:8000",
                 log_file: str | Path | None = None, retry_base: float = 5.0, retry_cap: float = 600.0,
                 max_attempts: int = 8, batch: int = 500, metrics: Any = None, catch_up: bool = True,
                 send: Callable[[dict[str, Any], dict[str, Any]], None] = senders.send):
        self.runtime, self.engine, self.app = runtime, runtime.engine, runtime.app
        self.clock = clock or runtime.clock
        self.base_url, self.batch = base_url, batch
        self.retry_base, self.retry_cap, self.max_attempts = retry_base, retry_cap, max_attempts
        self.log_file = Path(log_file) if log_file else None
        self._logged: set[str] = set()
        self.metrics, self._send = metrics, send
        self.catch_up = catch_up  # embedded: the read models are caught up here (Kafka mode: the projector)
        self.failures: dict[int, int] = {}  # channel id → failures in a row
        self.down: dict[int, str] = {}  # channel id → why it is down
        self.counts = {"queued": 0, "sent": 0, "retried": 0, "failed": 0, "reminded": 0}
        outbox.ensure_tables(self.engine)

    # -- 1. the feed --------------------------------------------------------------------------------
    def _position(self) -> int:
        found = outbox.position(self.engine, FEED)
        if found is None:  # first start on this database: from the feed's end, nothing old is sent
            found = self.app.recorder.max_notification_id() or 0
            outbox.fill(self.engine, [], name=FEED, upto=found)
        return found

    def feed_once(self) -> int:
        """Queue the notices of the next batch of stored events; how many events were read."""
        start = self._position()
        notifications = self.app.recorder.select_notifications(start + 1, self.batch)
        if not notifications:
            return 0
        people = user_tables.list_users(self.engine)
        rows: list[dict[str, Any]] = []
        for n in notifications:
            event = self.app.mapper.to_domain_event(n)
            if type(event).__name__ not in ("Dispatched", "Redispatched", "Escalated", "ExtensionRequested",
                                            "Reopened"):
                continue
            ticket = self.app.get_ticket(event.originator_id)
            basis = getattr(event, "time_basis", None) or _basis(ticket)
            rows += self._rows(for_event(event, n.id, ticket, self.runtime.reference, people, self.base_url, basis))
        made = outbox.fill(self.engine, rows, name=FEED, upto=notifications[-1].id)
        self.counts["queued"] += made
        return len(notifications)

    def _rows(self, notices: list[Notice]) -> list[dict[str, Any]]:
        """Outbox rows: one per notice and channel of its recipient (and the log line of each)."""
        if not notices:
            return []
        now, wall = self.clock.now(), time.time()
        owners = {n.recipient for n in notices}
        by_owner: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for channel in outbox.channels(self.engine, owners):
            by_owner.setdefault((channel["owner_kind"], channel["owner"]), []).append(channel)
        rows = []
        for notice in notices:
            self._log(notice)
            for channel in by_owner.get(notice.recipient, []):
                held = quiet_until(now, notice.basis, self.app.sla.calendar) if channel["quiet"] else None
                rows.append({"dedup_key": f"{notice.key}#{channel['id']}", "channel_id": channel["id"],
                             "ticket_id": notice.ticket_id, "subject": notice.subject,
                             "body": notice.body, "made_at": now.isoformat(),
                             "not_before": held.isoformat() if held else None, "queued_at": wall, "next_try": 0.0,
                             "attempts": 0, "status": "pending"})
        return rows

    def _log(self, notice: Notice) -> None:
        if self.log_file is None or notice.key in self._logged:  # a reminder is looked at on every pass
            return
        self._logged.add(notice.key)
        with self.log_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"at": self.clock.now().isoformat(), "key": notice.key,
                                "to": f"{notice.recipient[0]}:{notice.recipient[1]}", "subject": notice.subject,
                                "body": notice.body}, ensure_ascii=False) + "\n")

    # -- 2. reminders -----------------------------------------------------------------------------------
    def remind_once(self, lookahead: timedelta = timedelta(0)) -> int:
        """Queue a reminder for each report-in or handling deadline due within its minutes
        (plus ``lookahead``, the time to the next pass: none falls between two passes)."""
        from dispatch.projections import for_reading
        from dispatch.projections.deadlines import missed_deadlines

        if self.catch_up:  # (in a web process: waits for its projector rather than projecting itself)
            for_reading(self.runtime)
        now = self.clock.now()
        rules = {key: int(value) for key, value in outbox.settings(self.engine, "remind_minutes").items()}
        widest = max([DEFAULT_REMIND_MINUTES, *rules.values()]) + lookahead.total_seconds() / 60
        notices = []
        for deadline in missed_deadlines(self.engine, now + timedelta(minutes=widest)):
            minutes = remind_minutes(rules, deadline.category, deadline.priority)
            left = (deadline.due - now).total_seconds() / 60
            if not 0 < left <= minutes + lookahead.total_seconds() / 60:
                continue
            found = reminder(deadline, self.app.get_ticket(UUID(str(deadline.ticket_id))), self.runtime.reference,
                             self.base_url, left)
            if found is not None:
                notices.append(found)
        made = outbox.fill(self.engine, self._rows(notices))
        self.counts["reminded"] += made
        return made

    # -- 3. sending -------------------------------------------------------------------------------------
    def send_once(self) -> int:
        """Send what is due; how many were sent."""
        sent = 0
        for row in outbox.due(self.engine, now_wall=time.time(), now_business=self.clock.now().isoformat()):
            channel = {"kind": row["kind"], "target": row["target"], "secret": row["secret"]}
            message = {"dedup_key": row["dedup_key"], "subject": row["subject"], "body": row["body"],
                       "ticket_id": row["ticket_id"],
                       "link": f"{self.base_url.rstrip('/')}/tickets/{row['ticket_id']}" if row["ticket_id"] else None}
            try:
                self._send(channel, message)
            except senders.ChannelError as error:
                self._failed(row, str(error))
                continue
            outbox.mark(self.engine, row["id"], status="sent", sent_at=time.time(), attempts=row["attempts"] + 1,
                        last_error=None)
            self._up(row["channel_id"], row["kind"])
            self.counts["sent"] += 1
            sent += 1
            if self.metrics is not None:
                self.metrics.sent(row["kind"])
        return sent

    def _failed(self, row: dict[str, Any], why: str) -> None:
        attempts = row["attempts"] + 1
        channel = row["channel_id"]
        self.failures[channel] = self.failures.get(channel, 0) + 1
        if self.failures[channel] >= 3 and channel not in self.down:
            self.down[channel] = why
            log.warning("notification channel down", channel=channel, kind=row["kind"], error=why)
        if attempts >= self.max_attempts:
            outbox.mark(self.engine, row["id"], status="failed", attempts=attempts, last_error=why[:500])
            self.counts["failed"] += 1
            log.warning("notification given up", key=row["dedup_key"], channel=channel, attempts=attempts, error=why)
            if self.metrics is not None:
                self.metrics.failed(row["kind"])
            return
        wait = min(self.retry_cap, self.retry_base * 2 ** (attempts - 1)) * random.uniform(0.5, 1.0)
        outbox.mark(self.engine, row["id"], attempts=attempts, next_try=time.time() + wait, last_error=why[:500])
        self.counts["retried"] += 1
        if self.metrics is not None:
            self.metrics.retried(row["kind"])

    def _up(self, channel: int, kind: str) -> None:
        self.failures.pop(channel, None)
        if self.down.pop(channel, None) is not None:
            log.info("notification channel up again", channel=channel, kind=kind)

    # -- the loop ---------------------------------------------------------------------------------------
    def tick(self, lookahead: timedelta = timedelta(0)) -> int:
        while self.feed_once():
            pass
        self.remind_once(lookahead)
        sent = self.send_once()
        if self.metrics is not None:
            oldest = outbox.oldest_unsent(self.engine)
            self.metrics.oldest(None if oldest is None else time.time() - oldest)
            self.metrics.channels_down(self.ready())
        return sent

    def run(self, stop: threading.Event, every: float = 1.0, *, turn: Callable[[], bool] | None = None) -> None:
        """A tick every ``every`` seconds until ``stop``; with ``turn``, only while it says this
        process is the deployment's notifier (``dispatch.adapters.database.OneAtATime.mine``)."""
        while not stop.is_set():
            try:
                if turn is None or turn():
                    self.tick(timedelta(seconds=every))
            except Exception as error:  # noqa: BLE001 - a database hiccup: logged, tried again next time
                log.warning("notifier tick failed; trying again", error=f"{type(error).__name__}: {error}")
            stop.wait(every)

    def ready(self) -> dict[str, str]:
        """What ``/readyz`` says of the channels: one line per channel that is down."""
        return {f"notify channel {channel}": why for channel, why in self.down.items()}


def _basis(ticket: Any) -> str:
    """The time basis of a ticket's deadlines (its current dispatch's), for quiet hours."""
    return str(getattr(ticket, "time_basis", None) or "calendar")


# -- who hears what, managed (admins) ---------------------------------------------------------------------

def _admin(identity: Identity) -> None:
    if identity.role != "admin":
        raise Forbidden(f"{identity.describe()} may not manage notifications")


def add_channel(runtime: Any, identity: Identity, *, owner: str, kind: str, target: str, secret: str | None = None,
                quiet: bool = True, label: str = "") -> dict[str, Any]:
    """A channel for a department (``department:<id or name>``), a user (``user:<name>``) or a
    level of the ladder (``community:``, ``street:``, ``district:<id or name>``: its supervision
    group; a street's is the grid centre's, which hears of extension requests too)."""
    _admin(identity)
    owner_kind, _, who = owner.partition(":")
    ref = runtime.reference
    if owner_kind == "department":
        who = ref.department(who).id
    elif owner_kind == "user":
        if who not in {u["name"] for u in user_tables.list_users(runtime.engine)}:
            raise InvalidCommand(f"owner: no user {who}")
    elif owner_kind in ("community", "street", "district"):
        who = f"{owner_kind}:{getattr(ref, owner_kind)(who).id}"
        owner_kind = "level"
    else:
        raise InvalidCommand("owner: department:<id or name>, user:<name>, or community:/street:/district:<id or name>")
    if kind not in outbox.KINDS:
        raise InvalidCommand(f"kind: one of {', '.join(outbox.KINDS)}")
    if kind == "email" and "@" not in target:
        raise InvalidCommand("target: an e-mail address")
    if kind != "email" and not target.startswith(("https://", "http://")):
        raise InvalidCommand("target: the robot's or receiver's http(s) URL")
    if secret and not secret.startswith(("env:", "file:")):
        raise InvalidCommand("secret: name where it is, env:NAME or file:/path — never the secret itself")
    made = outbox.add_channel(runtime.engine, owner_kind=owner_kind, owner=who, kind=kind, target=target,
                              secret=secret, quiet=quiet, label=label)
    user_tables.audit(runtime.engine, runtime.clock.now(), identity.name, "notify channel add", "ok",
                f"{made} {owner_kind}:{who} {kind}")
    return {"id": made, "owner": who if owner_kind == "level" else f"{owner_kind}:{who}", "kind": kind, "target": _shown(kind, target),
            "quiet": quiet, "label": label}


def _shown(kind: str, target: str) -> str:
    """A robot's URL without its access token (its query), as lists show it."""
    if kind in ("wecom", "dingtalk", "webhook") and "?" in target:
        return target.split("?", 1)[0] + "?…"
    return target


def list_channels(runtime: Any, identity: Identity) -> list[dict[str, Any]]:
    _admin(identity)
    return [{"id": c["id"], "owner": c["owner"] if c["owner_kind"] == "level" else f"{c['owner_kind']}:{c['owner']}", "kind": c["kind"],
             "target": _shown(c["kind"], c["target"]), "secret": c["secret"], "quiet": bool(c["quiet"]),
             "label": c["label"]} for c in outbox.channels(runtime.engine)]


def remove_channel(runtime: Any, identity: Identity, channel_id: int) -> bool:
    _admin(identity)
    done = outbox.remove_channel(runtime.engine, channel_id)
    user_tables.audit(runtime.engine, runtime.clock.now(), identity.name, "notify channel remove",
                "ok" if done else "none", str(channel_id))
    return done


def remind_minutes(rules: dict[str, int], category: str, priority: str) -> int:
    """Minutes ahead for a deadline of ``category`` × ``priority``: the most specific rule, as SLA
    rules are chosen — (category, priority) > (category, any) > (any, priority) > the default."""
    for key in (f"remind_minutes:{category}:{priority}", f"remind_minutes:{category}:*",
                f"remind_minutes:*:{priority}", "remind_minutes:*:*", "remind_minutes"):
        if key in rules:
            return rules[key]
    return DEFAULT_REMIND_MINUTES


def set_remind_minutes(runtime: Any, identity: Identity, minutes: int | None, category: str | None = None,
                       priority: str | None = None) -> None:
    """How long before a deadline of ``category`` × ``priority`` (each, or any) its department is
    reminded; None: back to the rule below it."""
    _admin(identity)
    if minutes is not None and not 1 <= minutes <= 24 * 60:
        raise InvalidCommand("minutes: from 1 to 1440")
    ref = runtime.reference
    cat = ref.category(category).id if category else "*"
    prio = ref.priority(priority).id if priority else "*"
    key = "remind_minutes" if (cat, prio) == ("*", "*") else f"remind_minutes:{cat}:{prio}"
    outbox.set_setting(runtime.engine, key, None if minutes is None else str(minutes))


def failed_sends(runtime: Any, identity: Identity) -> list[dict[str, Any]]:
    _admin(identity)
    return [{"id": r["id"], "key": r["dedup_key"], "channel": r["channel_id"], "subject": r["subject"],
             "attempts": r["attempts"], "error": r["last_error"]} for r in outbox.failed(runtime.engine)]


def resend(runtime: Any, identity: Identity, ids: list[int] | None = None) -> int:
    _admin(identity)
    return outbox.resend(runtime.engine, ids)
