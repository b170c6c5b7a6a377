"""Reporters' personal data (name, phone, e-mail for the call-back, 回访), sealed.

The data never enters the event store in the clear: the ``Reported`` event holds it encrypted
(AES-256-GCM) under a key of that reporter's own, and the key lives here, outside the events.
Erasing a reporter (个人信息保护法: deletion on request) deletes the key: every event that held
their data keeps its ciphertext, which nothing can read any more, and history is not rewritten
— so a replay gives every figure unchanged (no figure reads personal data).

A reporter is found again by a keyed hash (HMAC-SHA-256 with a secret of this database) of
their phone number or e-mail, so one erasure request covers all their reports; the row
holding that hash goes with the key, so nothing links the old events to a person after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Column, Engine, LargeBinary, MetaData, String, Table, delete, insert, select

from dispatch.adapters.database import ensure_created

__all__ = ["FREE_TEXT", "Vault", "mask", "scrub"]

METADATA = MetaData()
reporter_keys = Table(
    "reporter_keys", METADATA,
    Column("key_id", String(32), primary_key=True),
    Column("lookup", String(64), nullable=False, index=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created_at", String(40), nullable=False),
)
vault_secret = Table(
    "vault_secret", METADATA,
    Column("name", String(40), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)


def _normal(reporter: dict[str, Any]) -> str:
    """What identifies a reporter: the phone's digits, else the e-mail, else the name."""
    phone = re.sub(r"\D", "", reporter.get("phone") or "")
    if phone:
        return "phone:" + phone.removeprefix("86") if len(phone) > 11 else "phone:" + phone
    if reporter.get("email"):
        return "email:" + str(reporter["email"]).strip().lower()
    return "name:" + str(reporter.get("name") or "").strip()


def mask(reporter: dict[str, Any]) -> dict[str, Any]:
    """What everyone but the call-back roles sees: 张*, 138****5678, z***@example.com."""
    out: dict[str, Any] = {}
    if reporter.get("name"):
        name = str(reporter["name"])
        out["name"] = name[0] + "*" * max(1, len(name) - 1)
    if reporter.get("phone"):
        digits = str(reporter["phone"])
        out["phone"] = digits[:3] + "****" + digits[-4:] if len(digits) >= 8 else "****"
    if reporter.get("email"):
        local, _, domain = str(reporter["email"]).partition("@")
        out["email"] = (local[:1] + "***@" + domain) if domain else "***"
    out["masked"] = True
    return out


# Contact details people type into free text ("联系电话13812345678"): masked wherever text
# leaves for analysis (exports), as the sealed contact fields are.
_ID_CARD = re.compile(r"(?<![0-9])([1-9][0-9]{5})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?[0-9]{4}[- ]?([0-9]{4})(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])(0[0-9]{2,3}[- ]?)[0-9]{3,4}([0-9]{4})(?![0-9])")
_EMAIL = re.compile(r"([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
FREE_TEXT = ("description", "reason", "result", "message", "override")  # event fields people write


def scrub(text: str | None) -> str | None:
    """Free text with phone numbers, ID-card numbers and e-mail addresses masked:
    ``138****5678``, ``310104********123X``, ``z***@example.com``."""
    if not text:
        return text
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(2), text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    text = _LANDLINE.sub(lambda m: m.group(1) + "****" + m.group(2), text)
    return _EMAIL.sub(lambda m: m.group(1) + "***@" + m.group(2), text)


class Vault:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._pepper: bytes | None = None

    def _ready(self) -> bytes:
        if self._pepper is None:
            ensure_created(self.engine, METADATA)
            with self.engine.begin() as conn:
                found = conn.execute(select(vault_secret.c.value).where(vault_secret.c.name == "lookup")).scalar()
                if found is None:
                    found = secrets.token_bytes(32)
                    conn.execute(insert(vault_secret).values(name="lookup", value=found))
            self._pepper = found
        return self._pepper

    def _lookup(self, reporter: dict[str, Any]) -> str:
        return hmac.new(self._ready(), _normal(reporter).encode(), hashlib.sha256).hexdigest()

    def seal(self, reporter: dict[str, Any]) -> dict[str, str]:
        """``{"key", "data"}``: the reporter's data encrypted under their key (made on first use)."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        lookup = self._lookup(reporter)
        with self.engine.begin() as conn:
            row = conn.execute(select(reporter_keys.c.key_id, reporter_keys.c.secret)
                               .where(reporter_keys.c.lookup == lookup).limit(1)).first()
            if row is None:
                key_id, secret = secrets.token_hex(16), AESGCM.generate_key(bit_length=256)
                conn.execute(insert(reporter_keys).values(key_id=key_id, lookup=lookup, secret=secret,
                                                          created_at=datetime.now(timezone.utc).isoformat()))
            else:
                key_id, secret = row.key_id, row.secret
        nonce = os.urandom(12)
        sealed = AESGCM(secret).encrypt(nonce, json.dumps(reporter, ensure_ascii=False).encode(), key_id.encode())
        return {"key": key_id, "data": base64.b64encode(nonce + sealed).decode()}

    def open(self, sealed: dict[str, str] | None) -> dict[str, Any] | None:
        """The reporter's data, or ``{"erased": True}`` once their key is gone (None: none given)."""
        if not sealed:
            return None
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._ready()
        with self.engine.connect() as conn:
            secret = conn.execute(select(reporter_keys.c.secret)
                                  .where(reporter_keys.c.key_id == sealed["key"])).scalar()
        if secret is None:
            return {"erased": True}
        raw = base64.b64decode(sealed["data"])
        try:
            plain = AESGCM(secret).decrypt(raw[:12], raw[12:], sealed["key"].encode())
        except InvalidTag:
            return {"erased": True}
        data: dict[str, Any] = json.loads(plain)
        return data

    def erase(self, *, phone: str | None = None, email: str | None = None) -> int:
        """Destroy the keys of the reporter with this phone number or e-mail; how many were destroyed."""
        if not phone and not email:
            return 0
        lookup = self._lookup({"phone": phone} if phone else {"email": email})
        with self.engine.begin() as conn:
            return int(conn.execute(delete(reporter_keys).where(reporter_keys.c.lookup == lookup)).rowcount or 0)
