"""The channels a notification leaves by, each a small sender behind one call,
``send(channel, message)`` (raises ``ChannelError`` when the far end refuses or cannot be
reached):

- ``email``: SMTP with STARTTLS and login (``smtplib``). The server comes from the environment:
  ``DISPATCH_SMTP_HOST``, ``DISPATCH_SMTP_PORT`` (587), ``DISPATCH_SMTP_USER``, the password in
  ``DISPATCH_SMTP_PASSWORD`` or a file named by ``DISPATCH_SMTP_PASSWORD_FILE``,
  ``DISPATCH_SMTP_FROM``, ``DISPATCH_SMTP_STARTTLS`` (1; 0 only for a relay on the same host) and
  ``DISPATCH_SMTP_CAFILE`` (a private CA's certificate). The message's ``Message-ID`` is its
  deduplication key.
- ``wecom``: a 企业微信 group robot's webhook URL; the documented text message
  ``{"msgtype": "text", "text": {"content": …}}``; an ``errcode`` other than 0 is a refusal.
- ``dingtalk``: a 钉钉 group robot's webhook URL; the same text message; with a secret (the
  robot's 加签), ``&timestamp=<ms>&sign=<base64 HMAC-SHA256 of "<ms>\\n<secret>">`` as 钉钉 documents.
- ``webhook``: any HTTPS receiver (a city's SMS gateway …): a JSON body ``{"key", "subject",
  "body", "ticket_id", "link"}`` with ``X-Dispatch-Timestamp`` (epoch seconds) and
  ``X-Dispatch-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.

A channel's secret is named, never written: ``env:NAME`` or ``file:/path``; it is read when
sending and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

__all__ = ["ChannelError", "dingtalk_sign", "secret_of", "send", "webhook_signature"]

TIMEOUT = 10.0


class ChannelError(Exception):
    """The far end refused the message or could not be reached (the reason, without secrets)."""


def secret_of(reference: str | None) -> str | None:
    """The secret a channel names: ``env:NAME`` or ``file:/path`` (None: it has none)."""
    if not reference:
        return None
    kind, _, where = reference.partition(":")
    if kind == "env":
        value = os.environ.get(where)
        if value is None:
            raise ChannelError(f"the secret's environment variable {where} is not set")
        return value
    if kind == "file":
        try:
            return Path(where).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ChannelError(f"the secret's file {where} cannot be read ({error.strerror})") from None
    raise ChannelError("a secret is named env:NAME or file:/path")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """钉钉's 加签: base64 of HMAC-SHA256(secret, "<timestamp>\\n<secret>"), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode())


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send(channel: dict[str, Any], message: dict[str, Any]) -> None:
    """Send ``message`` (``dedup_key``, ``subject``, ``body``, ``ticket_id``, ``link``) by ``channel``."""
    kind = channel["kind"]
    if kind == "email":
        _email(channel, message)
    elif kind in ("wecom", "dingtalk"):
        _robot(channel, message)
    elif kind == "webhook":
        _webhook(channel, message)
    else:
        raise ChannelError(f"no channel kind {kind}")


def _email(channel: dict[str, Any], message: dict[str, Any]) -> None:
    env = os.environ
    host = env.get("DISPATCH_SMTP_HOST")
    if not host:
        raise ChannelError("no SMTP server: set DISPATCH_SMTP_HOST")
    port = int(env.get("DISPATCH_SMTP_PORT", "587"))
    password = env.get("DISPATCH_SMTP_PASSWORD")
    if password is None and env.get("DISPATCH_SMTP_PASSWORD_FILE"):
        password = secret_of("file:" + env["DISPATCH_SMTP_PASSWORD_FILE"])
    mail = EmailMessage()
    mail["From"] = env.get("DISPATCH_SMTP_FROM", f"dispatch@{host}")
    mail["To"] = channel["target"]
    mail["Subject"] = message["subject"]
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = f"<{hashlib.sha256(message['dedup_key'].encode()).hexdigest()[:32]}@dispatch>"
    mail["X-Dispatch-Key"] = message["dedup_key"]
    mail.set_content(message["body"])
    try:
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as smtp:
            if env.get("DISPATCH_SMTP_STARTTLS", "1") != "0":
                context = ssl.create_default_context(cafile=env.get("DISPATCH_SMTP_CAFILE") or None)
                smtp.starttls(context=context)
            if env.get("DISPATCH_SMTP_USER"):
                smtp.login(env["DISPATCH_SMTP_USER"], password or "")
            smtp.send_message(mail)
    except (smtplib.SMTPException, OSError, ssl.SSLError) as error:
        raise ChannelError(f"SMTP {host}:{port}: {type(error).__name__} {getattr(error, 'smtp_code', '')}".strip()) \
            from None


def _post(url: str, body: bytes, headers: dict[str, str], shown: str) -> bytes:
    """POST ``body``; the answer's body (raises ``ChannelError`` for no answer or a status ≥ 300)."""
    if not url.startswith(("https://", "http://")):
        raise ChannelError(f"{shown}: not an http(s) URL")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 - http(s) only, checked
            return bytes(answer.read(65536))
    except urllib.error.HTTPError as error:
        raise ChannelError(f"{shown}: HTTP {error.code}") from None
    except (urllib.error.URLError, OSError) as error:
        raise ChannelError(f"{shown}: {type(getattr(error, 'reason', error)).__name__}") from None


def _shown(url: str) -> str:
    """A URL as a log line may show it: no query (robots carry their access token there)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _robot(channel: dict[str, Any], message: dict[str, Any]) -> None:
    url = channel["target"]
    secret = secret_of(channel.get("secret"))
    if channel["kind"] == "dingtalk" and secret:
        stamp = int(time.time() * 1000)
        url += ("&" if "?" in url else "?") + f"timestamp={stamp}&sign={dingtalk_sign(secret, stamp)}"
    content = f"{message['subject']}\n{message['body']}"
    body = json.dumps({"msgtype": "text", "text": {"content": content}}, ensure_ascii=False).encode()
    answer = _post(url, body, {}, _shown(channel["target"]))
    try:
        code = json.loads(answer or b"{}").get("errcode", 0)
    except (ValueError, AttributeError):
        code = 0
    if code:
        raise ChannelError(f"{_shown(channel['target'])}: the robot answered errcode {code}")


def _webhook(channel: dict[str, Any], message: dict[str, Any]) -> None:
    body = json.dumps({"key": message["dedup_key"], "subject": message["subject"], "body": message["body"],
                       "ticket_id": message.get("ticket_id"), "link": message.get("link")},
                      ensure_ascii=False).encode()
    headers = {"X-Dispatch-Key": message["dedup_key"]}
    secret = secret_of(channel.get("secret"))
    if secret:
        stamp = str(int(time.time()))
        headers |= {"X-Dispatch-Timestamp": stamp, "X-Dispatch-Signature": webhook_signature(secret, stamp, body)}
    _post(channel["target"], body, headers, _shown(channel["target"]))
