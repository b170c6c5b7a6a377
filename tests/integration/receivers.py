"""Real servers that notifications reach in the tests, each started by the test on a free port:
an SMTP server (aiosmtpd) that demands STARTTLS and a login, and HTTP receivers standing in for a
企业微信 group robot, a 钉钉 group robot (checking the signature as 钉钉 documents it) and a generic
webhook receiver (checking the HMAC, keeping the keys it accepted)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Receiver:
    """An HTTP receiver of one ``kind`` (wecom, dingtalk, webhook). ``down`` answers 503 while
    true; ``slow`` seconds per request. ``bodies``: what it accepted; ``keys``: how often each
    deduplication key came (webhook); ``refused``: requests whose signature did not check."""

    def __init__(self, kind: str, secret: str | None = None):
        self.kind, self.secret = kind, secret
        self.bodies: list[dict[str, Any]] = []
        self.keys: Counter[str] = Counter()
        self.refused: list[str] = []
        self.unavailable = 0
        self.down = False
        self.slow = 0.0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = owner.handle(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if self.slow:
            time.sleep(self.slow)
        with self.lock:
            if self.down:
                self.unavailable += 1
                return 503, {"errcode": -1}
            payload = json.loads(body)
            if self.kind == "dingtalk" and self.secret:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
                stamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
                expected = base64.b64encode(hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(),
                                                     hashlib.sha256).digest()).decode()
                if sign != expected or abs(time.time() * 1000 - int(stamp or 0)) > 3_600_000:
                    self.refused.append(path)
                    return 200, {"errcode": 310000, "errmsg": "sign not match"}
            if self.kind in ("wecom", "dingtalk") and (payload.get("msgtype") != "text"
                                                        or not payload.get("text", {}).get("content")):
                return 200, {"errcode": 40008, "errmsg": "invalid message type"}
            if self.kind == "webhook":
                stamp = headers.get("X-Dispatch-Timestamp", "")
                expected = "sha256=" + hmac.new((self.secret or "").encode(), stamp.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                if not self.secret or headers.get("X-Dispatch-Signature") != expected:
                    self.refused.append(headers.get("X-Dispatch-Key", "?"))
                    return 401, {"error": "bad signature"}
                self.keys[payload["key"]] += 1
            self.bodies.append(payload)
            return 200, {"errcode": 0, "errmsg": "ok"}

    def texts(self) -> list[str]:
        with self.lock:
            return [b["text"]["content"] if "text" in b else f"{b['subject']}\n{b['body']}" for b in self.bodies]


@contextmanager
def receiver(kind: str, secret: str | None = None) -> Iterator[Receiver]:
    made = Receiver(kind, secret)
    made.thread.start()
    try:
        yield made
    finally:
        made.server.shutdown()
        made.server.server_close()


def _certificate(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost: (CA file, cert file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dispatch test mail CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "cert.pem").write_bytes(cert.public_bytes(pem))
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


class Mailbox:
    """What the SMTP server accepted: each message, and whether it came over TLS, logged in."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.sessions: list[tuple[bool, str | None]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        from email import policy

        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        login = getattr(session, "auth_data", None)
        self.sessions.append((bool(session.ssl), login.decode() if isinstance(login, bytes) else login))
        return "250 OK"


@contextmanager
def smtp_server(folder: Path, user: str = "dispatch", password: str = "mail-secret") -> Iterator[tuple[Mailbox, dict[str, str]]]:
    """An SMTP server on a free port demanding STARTTLS and a login; yields the mailbox and the
    environment that points dispatch at it."""
    import ssl

    from tests.integration.servers import free_ports

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ca, cert, key = _certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == user and data.password.decode() == password
        return AuthResult(success=ok, auth_data=data.login if ok else None)

    [port] = free_ports(1)
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True, auth_exclude_mechanism=["CRAM-MD5"])
    controller.start()
    env = {"DISPATCH_SMTP_HOST": "127.0.0.1", "DISPATCH_SMTP_PORT": str(port), "DISPATCH_SMTP_USER": user,
           "DISPATCH_SMTP_PASSWORD": password, "DISPATCH_SMTP_CAFILE": str(ca),
           "DISPATCH_SMTP_FROM": "dispatch@grid.example"}
    try:
        yield box, env
    finally:
        controller.stop()
