"""Users, API tokens and the audit log, in the dispatch database (every process of a
deployment shares them).

- Passwords are hashed with argon2 (argon2-cffi's defaults, argon2id); a sign-in that fails
  ``LOCK_AFTER`` times in a row locks the account for ``LOCK_MINUTES``.
- An API token is ``dsp_<id>_<secret>``: 16 random bytes of id, 32 of secret. Only the
  secret's SHA-256 is stored (a random 256-bit secret needs no slow hash), compared in
  constant time; tokens expire and can be revoked. The token text is shown once.
- A display token (``dsd_<id>_<secret>``) opens one street's big screen (大屏) read-only: it
  stands for no user, survives sessions ending, and is stored and checked like an API token.
- The audit log holds sign-ins, refusals and user changes: when, who, what, outcome.
- The door's counts (``SharedCounts``: sign-in failures, rate-limit buckets) when several web
  workers serve one deployment and must count together.

Times come from the clock the caller passes (``now``), never from here.
"""

from __future__ import annotations

import hashlib
import re
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (JSON, Boolean, Column, Engine, Float, Integer, MetaData, String, Table, Text, case, delete,
                        func, insert, select, update)

from dispatch.adapters.database import ensure_created
from dispatch.adapters.database import UtcDateTime
from dispatch.domain.errors import AccountLocked, InvalidCommand, Unauthenticated, UnknownUser, UserExists
from dispatch.domain.identity import SCOPE_KINDS, Identity

__all__ = ["DISPLAY_DAYS", "SharedCounts", "check_display_token", "issue_display_token", "list_display_tokens",
           "revoke_display_token", "LOCK_AFTER", "LOCK_MINUTES", "TOKEN_DAYS", "Token", "add_user", "audit", "audit_rows", "check_password",
           "check_token", "ensure_tables", "issue_token", "list_tokens", "list_users", "revoke_token", "set_disabled",
           "set_password"]

LOCK_AFTER = 5
LOCK_MINUTES = 15
TOKEN_DAYS = 90
MIN_PASSWORD = 10

METADATA = MetaData()
users = Table(
    "users", METADATA,
    Column("name", String(100), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("scope_kind", String(20)),
    Column("scope", JSON, nullable=False),
    Column("password_hash", Text),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_signins", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
)
api_tokens = Table(
    "api_tokens", METADATA,
    Column("id", String(40), primary_key=True),
    Column("user_name", String(100), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
display_tokens = Table(
    "display_tokens", METADATA,
    Column("id", String(40), primary_key=True),
    Column("street", String(100), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("label", String(200), nullable=False, default=""),
    Column("created_by", String(100), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
)
audit_log = Table(
    "audit_log", METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime, nullable=False, index=True),
    Column("who", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("detail", Text, nullable=False, default=""),
)
# The door's counts shared by a deployment's web workers (``SharedCounts``): a sign-in's failures
# per address and per account, a rate limit's bucket per key; ``at`` in seconds since the epoch.
door_counts = Table(
    "door_counts", METADATA,
    Column("kind", String(30), primary_key=True),
    Column("key", String(300), primary_key=True),
    Column("value", Float, nullable=False),
    Column("at", Float, nullable=False),
)
_hashers: list[Any] = []


def _hasher() -> Any:
    """argon2-cffi's hasher (argon2id, its defaults), made on first use: most commands never hash."""
    if not _hashers:
        from argon2 import PasswordHasher

        _hashers.append(PasswordHasher())
    return _hashers[0]


def ensure_tables(engine: Engine) -> None:
    ensure_created(engine, METADATA)


def audit(engine: Engine, now: datetime, who: str, action: str, outcome: str, detail: str = "") -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(insert(audit_log).values(at=now, who=who[:100], action=action, outcome=outcome,
                                              detail=detail[:2000]))


def audit_rows(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    ensure_tables(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]


def _identity(row: Any) -> Identity:
    return Identity(name=row.name, role=row.role, scope_kind=row.scope_kind, scope=tuple(row.scope or ()))


# what a user name may be: it is shown on pages and written into every event's actor
USER_NAME = re.compile(r"[^\W_](?:[\w.@-]{0,62}[^\W_])?")


def add_user(engine: Engine, now: datetime, *, name: str, role: str, scope_kind: str | None, scope: list[str],
             password: str | None, by: str) -> Identity:
    """A new user (scope ids already resolved by the caller). Raises ``UserExists``."""
    if role not in SCOPE_KINDS:
        raise InvalidCommand(f"role: give one of {', '.join(SCOPE_KINDS)}")
    if not USER_NAME.fullmatch(name):
        raise InvalidCommand("name: 1–64 letters (Chinese too) or digits, and '.', '_', '@', '-' inside; "
                             "no spaces, no markup")
    kinds = SCOPE_KINDS[role]
    if kinds and (scope_kind not in kinds or not scope):
        raise InvalidCommand(f"a {role} is bound to a {' or a '.join(kinds)}: give --scope KIND:ID[,ID…]")
    if not kinds and scope:
        raise InvalidCommand(f"a {role} sees everything; it takes no scope")
    if role == "department" and len(scope) != 1:
        raise InvalidCommand("a department user is bound to exactly one department")
    ensure_tables(engine)
    with engine.begin() as conn:
        if conn.execute(select(users.c.name).where(users.c.name == name)).first():
            raise UserExists(f"a user named {name} exists already")
        conn.execute(insert(users).values(name=name, role=role, scope_kind=scope_kind if kinds else None,
                                          scope=list(scope), password_hash=_hash(password) if password else None,
                                          disabled=False, failed_signins=0, created_at=now))
    audit(engine, now, by, "user.add", "ok", f"{name} as {role}" + (f" of {scope_kind} {','.join(scope)}" if scope else ""))
    return Identity(name=name, role=role, scope_kind=scope_kind if kinds else None, scope=tuple(scope))


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidCommand(f"password: at least {MIN_PASSWORD} characters")
    return _hasher().hash(password)


def list_users(engine: Engine) -> list[dict[str, Any]]:
    ensure_tables(engine)
    with engine.connect() as conn:
        return [{"name": r.name, "role": r.role, "scope_kind": r.scope_kind, "scope": list(r.scope or ()),
                 "disabled": r.disabled, "has_password": r.password_hash is not None,
                 "locked_until": r.locked_until, "created_at": r.created_at}
                for r in conn.execute(select(users).order_by(users.c.name))]


def _user(conn: Any, name: str) -> Any:
    row = conn.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        raise UnknownUser(f"no user named {name}")
    return row


# the labels of the tokens a password made (a page's session, an API sign-in): a password change,
# disabling the user or "sign out everywhere" ends them; tokens made for machines stay unless asked
BROWSER, SIGN_IN = "browser", "sign-in"
SESSIONS = (BROWSER, SIGN_IN)


def set_disabled(engine: Engine, now: datetime, name: str, disabled: bool, *, by: str) -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        _user(conn, name)
        conn.execute(update(users).where(users.c.name == name).values(disabled=disabled))
        ended = _end_sessions(conn, now, name, machines=False) if disabled else 0
    audit(engine, now, by, "user.disable" if disabled else "user.enable", "ok",
          name + (f" ({ended} sessions ended)" if ended else ""))


def set_password(engine: Engine, now: datetime, name: str, password: str, *, by: str) -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        _user(conn, name)
        conn.execute(update(users).where(users.c.name == name).values(
            password_hash=_hash(password), failed_signins=0, locked_until=None))
        ended = _end_sessions(conn, now, name, machines=False)  # the old password's sessions end with it
    audit(engine, now, by, "user.password", "ok", name + (f" ({ended} sessions ended)" if ended else ""))


def _end_sessions(conn: Any, now: datetime, name: str, *, machines: bool, keep: str | None = None) -> int:
    t = api_tokens.c
    query = update(api_tokens).where(t.user_name == name, t.revoked_at.is_(None), t.expires_at > now)
    if not machines:
        query = query.where(t.label.in_(SESSIONS))
    if keep is not None:
        query = query.where(t.id != keep)
    return len(conn.execute(query.values(revoked_at=now).returning(t.id)).all())


def end_sessions(engine: Engine, now: datetime, name: str, *, machines: bool = False, keep: str | None = None,
                 by: str) -> int:
    """Sign ``name`` out everywhere: every live session its password made (and, ``machines``, its
    API tokens too), but ``keep`` (the session asking); returns how many ended."""
    ensure_tables(engine)
    with engine.begin() as conn:
        _user(conn, name)
        ended = _end_sessions(conn, now, name, machines=machines, keep=keep)
    audit(engine, now, by, "user.signout", "ok", f"{name}: {ended} ended" + (" (machines too)" if machines else ""))
    return ended


def list_sessions(engine: Engine, now: datetime, name: str) -> list[dict[str, Any]]:
    """``name``'s live sessions (tokens its password made), newest first."""
    ensure_tables(engine)
    t = api_tokens.c
    with engine.connect() as conn:
        rows = conn.execute(select(t.id, t.label, t.created_at, t.expires_at)
                            .where(t.user_name == name, t.revoked_at.is_(None), t.expires_at > now,
                                   t.label.in_(SESSIONS)).order_by(t.created_at.desc()))
        return [dict(r._mapping) for r in rows]


_REFUSED = "wrong user name or password"
_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash no password matches, checked when there is no real one, so an unknown or disabled
    name costs the same time as a wrong password."""
    if not _DUMMY:
        _DUMMY.append(_hash(secrets.token_urlsafe(24)))
    return _DUMMY[0]


def check_password(engine: Engine, now: datetime, name: str, password: str, *, where: str = "") -> Identity:
    """Sign in with a password; counts failures and locks the account after ``LOCK_AFTER``.
    An unknown name, a disabled user, a wrong password and a locked account answer alike, after
    one password check each; that an account is locked is said only to a correct password."""
    ensure_tables(engine)
    with engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
        usable = row is not None and not row.disabled and row.password_hash is not None
        right = _verify(row.password_hash if row is not None and usable else _dummy_hash(), password) and usable
        locked = row is not None and row.locked_until is not None and row.locked_until > now
        outcome: Exception | None = None
        if right and locked and row is not None:
            outcome = AccountLocked(f"too many failed sign-ins: try again after "
                                    f"{row.locked_until.isoformat(timespec='minutes')}").saying(until=row.locked_until)
        elif not right:
            outcome = Unauthenticated(_REFUSED)
            if row is not None and not locked:
                failed = row.failed_signins + 1
                lock = now + timedelta(minutes=LOCK_MINUTES) if failed >= LOCK_AFTER else None
                conn.execute(update(users).where(users.c.name == name).values(
                    failed_signins=0 if lock else failed, locked_until=lock))
        else:
            conn.execute(update(users).where(users.c.name == name).values(failed_signins=0, locked_until=None))
    if outcome is not None:
        audit(engine, now, name, "signin", "refused", f"{outcome} {where}".strip())
        raise outcome
    audit(engine, now, name, "signin", "ok", where)
    return _identity(row)


def _verify(stored: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_hasher().verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Token:
    id: str
    text: str  # shown once
    expires_at: datetime


def _mint(now: datetime, days: float) -> tuple[str, str, datetime]:
    """A new token's id, secret and expiry."""
    return secrets.token_hex(8), secrets.token_urlsafe(32), now + timedelta(days=days)


def _refusal(row: Any, secret: str, now: datetime, kind: str) -> str:
    """Why a stored token (``row``, or None) does not admit ``secret`` now; "" if it does."""
    if row is None or not hmac.compare_digest(row.secret_sha256, _sha(secret)):
        return f"unknown {kind}"
    if row.revoked_at is not None:
        return f"revoked {kind} {row.id}"
    if row.expires_at <= now:
        return f"expired {kind} {row.id}"
    return ""


def issue_token(engine: Engine, now: datetime, name: str, *, days: float = TOKEN_DAYS, label: str = "",
                by: str) -> Token:
    ensure_tables(engine)
    token_id, secret, expires = _mint(now, days)
    with engine.begin() as conn:
        row = _user(conn, name)
        if row.disabled:
            raise InvalidCommand(f"{name} is disabled: enable the user first")
        conn.execute(insert(api_tokens).values(id=token_id, user_name=name, secret_sha256=_sha(secret),
                                               label=label[:200], created_at=now, expires_at=expires))
    audit(engine, now, by, "token.issue", "ok", f"{token_id} for {name}" + (f" ({label})" if label else ""))
    return Token(id=token_id, text=f"dsp_{token_id}_{secret}", expires_at=expires)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def list_tokens(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    ensure_tables(engine)
    query = select(api_tokens).order_by(api_tokens.c.created_at)
    if name:
        query = query.where(api_tokens.c.user_name == name)
    with engine.connect() as conn:
        return [{k: v for k, v in r._mapping.items() if k != "secret_sha256"} for r in conn.execute(query)]


def revoke_token(engine: Engine, now: datetime, token_id: str, *, by: str) -> None:
    ensure_tables(engine)
    with engine.begin() as conn:
        done = conn.execute(update(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=now)).rowcount
    if not done:
        raise UnknownUser(f"no live token {token_id}")
    audit(engine, now, by, "token.revoke", "ok", token_id)


def check_token(engine: Engine, now: datetime, text: str, *, where: str = "") -> Identity:
    """The identity a bearer token stands for. Every refusal reads the same and is audited."""
    ensure_tables(engine)
    parts = text.split("_", 2) if text.startswith("dsp_") else []
    reason, row = "malformed token", None
    if len(parts) == 3:
        with engine.connect() as conn:
            row = conn.execute(select(api_tokens, users.c.role, users.c.scope_kind, users.c.scope, users.c.disabled)
                               .join(users, users.c.name == api_tokens.c.user_name)
                               .where(api_tokens.c.id == parts[1])).first()
        reason = _refusal(row, parts[2], now, "token")
        if not reason and row is not None and row.disabled:
            reason = f"disabled user {row.user_name}"
    if reason:
        audit(engine, now, row.user_name if row is not None else "?", "token", "refused", f"{reason} {where}".strip())
        raise Unauthenticated("sign in again: the token is missing, wrong, expired or revoked")
    assert row is not None
    return Identity(name=row.user_name, role=row.role, scope_kind=row.scope_kind, scope=tuple(row.scope or ()),
                    kind="client")


DISPLAY_DAYS = 365


def issue_display_token(engine: Engine, now: datetime, street: str, *, days: float = DISPLAY_DAYS, label: str = "",
                        by: str) -> Token:
    """A big screen's read-only token for one street (shown once)."""
    ensure_tables(engine)
    token_id, secret, expires = _mint(now, days)
    with engine.begin() as conn:
        conn.execute(insert(display_tokens).values(id=token_id, street=street, secret_sha256=_sha(secret),
                                                   label=label[:200], created_by=by[:100], created_at=now,
                                                   expires_at=expires))
    audit(engine, now, by, "display.issue", "ok", f"{token_id} for street {street}" + (f" ({label})" if label else ""))
    return Token(id=token_id, text=f"dsd_{token_id}_{secret}", expires_at=expires)


def list_display_tokens(engine: Engine) -> list[dict[str, Any]]:
    ensure_tables(engine)
    with engine.connect() as conn:
        return [{k: v for k, v in r._mapping.items() if k != "secret_sha256"}
                for r in conn.execute(select(display_tokens).order_by(display_tokens.c.created_at))]


def revoke_display_token(engine: Engine, now: datetime, token_id: str, *, by: str) -> bool:
    """False if there is no live display token of that id."""
    ensure_tables(engine)
    with engine.begin() as conn:
        done = conn.execute(update(display_tokens).where(display_tokens.c.id == token_id,
                                                         display_tokens.c.revoked_at.is_(None))
                            .values(revoked_at=now)).rowcount
    if done:
        audit(engine, now, by, "display.revoke", "ok", token_id)
    return bool(done)


def check_display_token(engine: Engine, now: datetime, text: str, *, where: str = "") -> Identity:
    """The read-only identity of a big screen: role ``display``, scoped to its street."""
    ensure_tables(engine)
    parts = text.split("_", 2) if text.startswith("dsd_") else []
    reason, row = "malformed display token", None
    if len(parts) == 3:
        with engine.connect() as conn:
            row = conn.execute(select(display_tokens).where(display_tokens.c.id == parts[1])).first()
        reason = _refusal(row, parts[2], now, "display token")
    if reason:
        audit(engine, now, "?", "display", "refused", f"{reason} {where}".strip())
        raise Unauthenticated("this big-screen link is wrong, expired or revoked: ask for a new one")
    assert row is not None
    return Identity(name=f"display:{row.id}", role="display", scope_kind="street", scope=(row.street,),
                    kind="display")


def count(engine: Engine) -> int:
    ensure_tables(engine)
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(users)).scalar_one())


class SharedCounts:
    """The door's counts (``dispatch.web.guard``: sign-in failures, rate-limit buckets) in the
    database, so web workers side by side count as one: the operations of
    ``guard.LocalCounts``, each one statement (an upsert that takes a token only while the bucket
    holds one, a failure counted or started again, a row forgotten), so workers drawing on one
    key never hold its row between round trips. Timed by the machines' wall clock (workers may
    run on several hosts); rows quiet for ``quiet`` seconds are deleted now and then."""

    def __init__(self, engine: Engine, *, quiet: float = 900.0):
        self.engine, self.quiet = engine, quiet
        self._pruned = 0.0
        ensure_tables(engine)
        from sqlalchemy.dialects import postgresql, sqlite

        self._dialect: Any = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._least: Any = func.least if engine.dialect.name == "postgresql" else func.min
        self._greatest: Any = func.greatest if engine.dialect.name == "postgresql" else func.max

    def now(self) -> float:
        import time

        return time.time()

    def take(self, kind: str, key: str, rate: float, burst: float) -> float:
        now, key = self.now(), key[:300]
        row = door_counts.c
        tokens = self._least(burst, row.value + self._greatest(0.0, now - row.at) * rate)
        stmt = (self._dialect.insert(door_counts).values(kind=kind, key=key, value=burst - 1, at=now)
                .on_conflict_do_update(index_elements=["kind", "key"], set_={"value": tokens - 1, "at": now},
                                       where=tokens >= 1)
                .returning(row.value))
        with self.engine.begin() as conn:
            if conn.execute(stmt).first() is not None:
                self._prune(conn, now)
                return 0.0
            left = conn.execute(select(tokens).where(row.kind == kind, row.key == key)).scalar_one()
        return max(0.0, (1 - float(left)) / rate)

    def fail(self, kind: str, key: str, forget: float) -> None:
        now, key = self.now(), key[:300]
        row = door_counts.c
        counted = case((now - row.at > forget, 1.0), else_=row.value + 1)
        stmt = (self._dialect.insert(door_counts).values(kind=kind, key=key, value=1.0, at=now)
                .on_conflict_do_update(index_elements=["kind", "key"], set_={"value": counted, "at": now}))
        with self.engine.begin() as conn:
            conn.execute(stmt)
            self._prune(conn, now)

    def forget(self, kind: str, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(door_counts).where(door_counts.c.kind == kind, door_counts.c.key == key[:300]))

    def read(self, kind: str, key: str) -> tuple[float, float] | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(door_counts.c.value, door_counts.c.at)
                                 .where(door_counts.c.kind == kind, door_counts.c.key == key[:300])).first()
        return None if found is None else (found.value, found.at)

    def _prune(self, conn: Any, now: float) -> None:
        if now - self._pruned > 60:
            self._pruned = now
            conn.execute(delete(door_counts).where(door_counts.c.at < now - self.quiet))
