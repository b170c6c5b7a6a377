"""Where notifications are kept (``dispatch.service.notifier`` decides and sends them): the channels
(who hears on which e-mail address or robot), the settings (how many minutes before a deadline
to remind), the outbox (each message to send, under a deduplication key per event, recipient
and channel) and the position in the event store's feed the outbox was filled up to.

The outbox rows a batch of events makes and the feed position after it are written in one
transaction (``fill``): a notifier killed at any moment neither loses a message nor makes one
twice; a sent row is marked after the send, so a kill in between sends it again (at least once:
receivers deduplicate by the key every message carries).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import (BigInteger, Column, Engine, Float, Integer, MetaData, String, Table, Text, delete, func,
                        insert, select, update)

from dispatch.adapters.database import ensure_created

__all__ = ["KINDS", "add_channel", "channels", "due", "ensure_tables", "failed", "fill", "mark", "oldest_unsent",
           "position", "remove_channel", "resend", "rows", "setting", "set_setting"]

KINDS = ("email", "wecom", "dingtalk", "webhook")
METADATA = MetaData()
notify_channels = Table(
    "notify_channels", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("owner_kind", String(20), nullable=False),  # "department" or "user"
    Column("owner", String(200), nullable=False),  # a department id or a user name
    Column("kind", String(20), nullable=False),  # email, wecom, dingtalk, webhook
    Column("target", String(1000), nullable=False),  # an address, or the robot's / receiver's URL
    Column("secret", String(500)),  # where its secret is: env:NAME or file:/path — never the secret itself
    Column("quiet", Integer, nullable=False, default=1),  # 1: working-time notices wait for working hours
    Column("label", String(200), nullable=False, default=""),
)
notify_settings = Table(
    "notify_settings", METADATA,
    Column("key", String(200), primary_key=True),  # remind_minutes[:<category>]
    Column("value", String(200), nullable=False),
)
notify_outbox = Table(
    "notify_outbox", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dedup_key", String(500), nullable=False, unique=True),
    Column("channel_id", Integer, nullable=False, index=True),
    Column("ticket_id", String(60)),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("made_at", String(40), nullable=False),  # business time (the notifier's clock)
    Column("not_before", String(40)),  # business time: quiet hours hold it until then
    Column("queued_at", Float, nullable=False),  # wall clock (epoch s): when it joined the outbox
    Column("next_try", Float, nullable=False, default=0.0),  # wall clock (epoch s): retries back off
    Column("attempts", Integer, nullable=False, default=0),
    Column("status", String(10), nullable=False, default="pending", index=True),  # pending, sent, failed
    Column("last_error", String(500)),
    Column("sent_at", Float),
)
notify_position = Table(
    "notify_position", METADATA,
    Column("name", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


def ensure_tables(engine: Engine) -> None:
    ensure_created(engine, METADATA)


# -- channels and settings ------------------------------------------------------------------------

def add_channel(engine: Engine, *, owner_kind: str, owner: str, kind: str, target: str, secret: str | None,
                quiet: bool, label: str) -> int:
    ensure_tables(engine)
    with engine.begin() as conn:
        made = conn.execute(insert(notify_channels).values(owner_kind=owner_kind, owner=owner, kind=kind,
                                                           target=target, secret=secret, quiet=int(quiet),
                                                           label=label))
        return int(made.inserted_primary_key[0])  # type: ignore[index]


def remove_channel(engine: Engine, channel_id: int) -> bool:
    ensure_tables(engine)
    with engine.begin() as conn:
        return bool(conn.execute(delete(notify_channels).where(notify_channels.c.id == channel_id)).rowcount)


def channels(engine: Engine, owners: Iterable[tuple[str, str]] | None = None) -> list[dict[str, Any]]:
    """Every channel (of ``owners``: ``(owner_kind, owner)`` pairs), in the order they were added."""
    ensure_tables(engine)
    query = select(notify_channels).order_by(notify_channels.c.id)
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(query)]
    if owners is not None:
        wanted = set(owners)
        found = [c for c in found if (c["owner_kind"], c["owner"]) in wanted]
    return found


def setting(engine: Engine, key: str) -> str | None:
    ensure_tables(engine)
    with engine.connect() as conn:
        value = conn.execute(select(notify_settings.c.value).where(notify_settings.c.key == key)).scalar()
    return None if value is None else str(value)


def settings(engine: Engine, prefix: str) -> dict[str, str]:
    """Every setting whose key starts with ``prefix``."""
    ensure_tables(engine)
    with engine.connect() as conn:
        return {str(k): str(v) for k, v in conn.execute(select(notify_settings.c.key, notify_settings.c.value)
                                                        .where(notify_settings.c.key.startswith(prefix)))}


def set_setting(engine: Engine, key: str, value: str | None) -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(delete(notify_settings).where(notify_settings.c.key == key))
        if value is not None:
            conn.execute(insert(notify_settings).values(key=key, value=value))


# -- the feed position and the outbox -----------------------------------------------------------------

def position(engine: Engine, name: str) -> int | None:
    ensure_tables(engine)
    with engine.connect() as conn:
        found = conn.execute(select(notify_position.c.position).where(notify_position.c.name == name)).scalar()
    return None if found is None else int(found)


def _insert_ignoring_duplicates(engine: Engine) -> Any:
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(notify_outbox).on_conflict_do_nothing(index_elements=["dedup_key"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(notify_outbox).on_conflict_do_nothing(index_elements=["dedup_key"])


def fill(engine: Engine, messages: list[dict[str, Any]], *, name: str | None = None, upto: int | None = None) -> int:
    """Put ``messages`` in the outbox (a key already there is skipped) and, in the same
    transaction, move feed ``name`` to ``upto``. Returns how many were new."""
    ensure_tables(engine)
    with engine.begin() as conn:
        made = 0
        if messages:
            made = int(conn.execute(_insert_ignoring_duplicates(engine), messages).rowcount or 0)
        if name is not None and upto is not None:
            moved = conn.execute(update(notify_position).where(notify_position.c.name == name)
                                 .values(position=upto)).rowcount
            if not moved:
                conn.execute(insert(notify_position).values(name=name, position=upto))
    return made


def due(engine: Engine, *, now_wall: float, now_business: str, limit: int = 100) -> list[dict[str, Any]]:
    """Pending messages whose next try has come and whose quiet hours are over, oldest first."""
    ensure_tables(engine)
    o, ch = notify_outbox.c, notify_channels.c
    query = (select(notify_outbox, ch.kind, ch.target, ch.secret, ch.label.label("channel_label"))
             .join(notify_channels, ch.id == o.channel_id)
             .where(o.status == "pending", o.next_try <= now_wall)
             .where((o.not_before.is_(None)) | (o.not_before <= now_business))
             .order_by(o.id).limit(limit))
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def mark(engine: Engine, row_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(notify_outbox).where(notify_outbox.c.id == row_id).values(**values))


def rows(engine: Engine, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    ensure_tables(engine)
    query = select(notify_outbox).order_by(notify_outbox.c.id).limit(limit)
    if status is not None:
        query = query.where(notify_outbox.c.status == status)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def failed(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, "failed")


def resend(engine: Engine, ids: list[int] | None = None) -> int:
    """Given-up messages (``ids``, or all) back to pending, tried at once."""
    ensure_tables(engine)
    query = update(notify_outbox).where(notify_outbox.c.status == "failed")
    if ids is not None:
        query = query.where(notify_outbox.c.id.in_(ids))
    with engine.begin() as conn:
        return int(conn.execute(query.values(status="pending", attempts=0, next_try=0.0)).rowcount or 0)


def oldest_unsent(engine: Engine) -> float | None:
    """When (wall clock, epoch s) the oldest message still pending joined the outbox, or None."""
    ensure_tables(engine)
    with engine.connect() as conn:
        value = conn.execute(select(func.min(notify_outbox.c.queued_at))
                             .where(notify_outbox.c.status == "pending")).scalar()
    return None if value is None else float(value)
