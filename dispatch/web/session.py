"""Browser sessions: a sign-in makes a token (``dispatch.users``, 8 hours) held in a cookie that
scripts cannot read (HttpOnly), that other sites' requests do not carry (SameSite=Strict) and,
over HTTPS, that travels only encrypted (Secure). Every form carries a CSRF token derived from
the session's secret, checked on every POST (htmx sends it as ``X-CSRF-Token``)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import Request
from starlette.responses import Response

from dispatch import users
from dispatch.errors import Forbidden, Unauthenticated
from dispatch.identity import Identity

__all__ = ["COOKIE", "begin", "csrf_token", "end", "identity", "require_csrf"]

COOKIE = "dispatch_session"
SESSION_HOURS = 8


def identity(request: Request) -> Identity:
    """The signed-in identity of this browser (raises ``Unauthenticated``: the page sends it to sign-in)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise Unauthenticated("sign in first")
    service = request.app.state.service
    client = request.client.host if request.client else "?"
    who = users.check_token(service.runtime.engine, service.runtime.clock.now(), token,
                            where=f"from {client} page {request.url.path}")
    request.state.identity = who
    return who


def csrf_token(request: Request) -> str:
    token = request.cookies.get(COOKIE, "")
    return hmac.new(token.encode(), b"dispatch-csrf", hashlib.sha256).hexdigest()


def require_csrf(request: Request, form: dict[str, str]) -> None:
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not request.cookies.get(COOKIE) or not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden("this form is stale or came from elsewhere: reload the page and try again")


def begin(request: Request, response: Response, name: str, password: str) -> Identity:
    service = request.app.state.service
    client = request.client.host if request.client else "?"
    now = service.runtime.clock.now()
    who = users.check_password(service.runtime.engine, now, name, password, where=f"from {client} (browser)")
    token = users.issue_token(service.runtime.engine, now, who.name, days=SESSION_HOURS / 24, label="browser",
                              by=who.name)
    response.set_cookie(COOKIE, token.text, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return who


def end(request: Request, response: Response) -> None:
    token = request.cookies.get(COOKIE)
    service = request.app.state.service
    if token and token.startswith("dsp_"):
        try:
            users.revoke_token(service.runtime.engine, service.runtime.clock.now(), token.split("_")[1],
                               by="sign-out")
        except Exception:  # noqa: BLE001 - an already revoked or unknown token: signed out all the same
            pass
    response.delete_cookie(COOKIE, path="/")


def form_of(body: bytes) -> dict[str, Any]:
    from urllib.parse import parse_qs

    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[-1] for k, v in parsed.items()}
