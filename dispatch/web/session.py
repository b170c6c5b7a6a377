"""Browser sessions: a sign-in makes a token (``dispatch.adapters.user_tables``, 8 hours) held in a cookie that
scripts cannot read (HttpOnly), that other sites' requests do not carry (SameSite=Strict) and,
over HTTPS, that travels only encrypted (Secure). Every form carries a CSRF token derived from
the session's secret, checked on every POST (htmx sends it as ``X-CSRF-Token``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from fastapi import Request
from starlette.responses import Response

from dispatch.adapters import user_tables
from dispatch.domain.errors import Forbidden, Unauthenticated
from dispatch.domain.identity import Identity

__all__ = ["COOKIE", "LOGIN_COOKIE", "begin", "csrf_token", "end", "identity", "keep_login_secret", "login_secret", "login_token", "require_csrf",
           "require_login_csrf", "same_origin"]

COOKIE = "dispatch_session"
SESSION_HOURS = 8


def identity(request: Request) -> Identity:
    """The signed-in identity of this browser (raises ``Unauthenticated``: the page sends it to sign-in)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise Unauthenticated("sign in first")
    service = request.app.state.service
    client = request.client.host if request.client else "?"
    who = user_tables.check_token(service.runtime.engine, service.runtime.clock.now(), token,
                            where=f"from {client} page {request.url.path}")
    request.state.identity = who
    return who


def csrf_token(request: Request) -> str:
    token = request.cookies.get(COOKIE, "")
    return hmac.new(token.encode(), b"dispatch-csrf", hashlib.sha256).hexdigest()


_STALE = "this form is stale or came from elsewhere: reload the page and try again"
LOGIN_COOKIE = "dispatch_login"  # the sign-in form's own secret, before there is a session


def same_origin(request: Request) -> bool:
    """A state-changing request from a page this server served: its ``Origin`` (or, without one,
    its ``Referer``) names this server's own origin. The pages' ``Referrer-Policy: same-origin``
    makes a browser send it; ``Origin: null`` (another site that hides itself) is refused. A
    request that sends neither passes (older clients; the CSRF token still guards it)."""
    from urllib.parse import urlsplit

    served = f"{request.url.scheme}://{request.headers.get('host', '')}".lower()
    origin = request.headers.get("origin")
    if origin is None and request.headers.get("referer"):
        parts = urlsplit(request.headers["referer"])
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin is None or origin.lower() == served


def require_csrf(request: Request, form: dict[str, str]) -> None:
    sent = form.get("csrf") or request.headers.get("x-csrf-token") or ""
    if not request.cookies.get(COOKIE) or not hmac.compare_digest(sent, csrf_token(request)) \
            or not same_origin(request):
        raise Forbidden(_STALE).saying(why="stale_form")


def login_token(secret: str) -> str:
    """The sign-in form's CSRF token (login CSRF: another site cannot sign a person in as somebody
    else), derived from the random secret in the form page's own cookie (HttpOnly, SameSite=Strict)."""
    return hmac.new(secret.encode(), b"dispatch-login", hashlib.sha256).hexdigest()


def login_secret(request: Request) -> tuple[str, bool]:
    """This browser's sign-in secret, and whether it is new (it had none: ``keep_login_secret``)."""
    secret = request.cookies.get(LOGIN_COOKIE) or ""
    return (secret, False) if len(secret) >= 32 else (secrets.token_urlsafe(32), True)


def keep_login_secret(request: Request, response: Response, secret: str) -> None:
    response.set_cookie(LOGIN_COOKIE, secret, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/login")


def require_login_csrf(request: Request, form: dict[str, str]) -> None:
    secret = request.cookies.get(LOGIN_COOKIE) or ""
    if len(secret) < 32 or not hmac.compare_digest(form.get("login_csrf", ""), login_token(secret)) \
            or not same_origin(request):
        raise Forbidden(_STALE).saying(why="stale_form")


def begin(request: Request, response: Response, name: str, password: str) -> None:
    """Sign in from the page: through the one password path (``WebService.sign_in``: its limits,
    its answers), into a session cookie."""
    token = request.app.state.service.sign_in(request, name, password, label=user_tables.BROWSER)
    response.set_cookie(COOKIE, token.text, max_age=SESSION_HOURS * 3600, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")


def end(request: Request, response: Response) -> None:
    token = request.cookies.get(COOKIE)
    service = request.app.state.service
    if token and token.startswith("dsp_"):
        try:
            user_tables.revoke_token(service.runtime.engine, service.runtime.clock.now(), token.split("_")[1],
                               by="sign-out")
        except Exception:  # noqa: BLE001 - an already revoked or unknown token: signed out all the same
            pass
    response.delete_cookie(COOKIE, path="/")


def form_of(body: bytes) -> dict[str, Any]:
    from urllib.parse import parse_qs

    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=50)
    return {k: v[-1] for k, v in parsed.items()}
