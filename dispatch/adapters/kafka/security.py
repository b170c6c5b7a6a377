"""How every Kafka client of dispatch proves who it is and protects the line: TLS (a CA file,
optionally a client certificate) and SASL (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN).

Settings come from options or the environment; secrets only from the environment or a file
(never the command line, where other users see them in the process list):

    DISPATCH_KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
    DISPATCH_KAFKA_SASL_MECHANISM      SCRAM-SHA-512 (default with SASL) | SCRAM-SHA-256 | PLAIN
    DISPATCH_KAFKA_USERNAME            the SASL principal
    DISPATCH_KAFKA_PASSWORD[_FILE]     its password, or a file holding it
    DISPATCH_KAFKA_CA_FILE             PEM of the certificate authorities to trust (SSL, SASL_SSL)
    DISPATCH_KAFKA_CERT_FILE           a client certificate (PEM), for brokers that ask for one
    DISPATCH_KAFKA_KEY_FILE            its private key (PEM)
    DISPATCH_KAFKA_KEY_PASSWORD[_FILE] the key's password, if it has one
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dispatch.domain.errors import DispatchError

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaSecurity"]

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")
_ENV = "DISPATCH_KAFKA_"


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """``NAME`` from the environment, or the first line of the file ``NAME_FILE`` names."""
    if env.get(name + "_FILE"):
        path = Path(env[name + "_FILE"])
        try:
            return path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
        except OSError as error:
            raise DispatchError(f"{name}_FILE={path}: cannot read it ({error.strerror})") from None
    return env.get(name) or None


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> KafkaSecurity:
        """Options (those not None) win over the environment. Raises ``DispatchError`` with one
        sentence on a setting that cannot work."""
        env = os.environ if env is None else env
        found = cls(protocol=(env.get(_ENV + "SECURITY_PROTOCOL") or "PLAINTEXT").upper(),
                    mechanism=(env.get(_ENV + "SASL_MECHANISM") or "").upper() or None,
                    username=env.get(_ENV + "USERNAME") or None, password=_secret(env, _ENV + "PASSWORD"),
                    cafile=env.get(_ENV + "CA_FILE") or None, certfile=env.get(_ENV + "CERT_FILE") or None,
                    keyfile=env.get(_ENV + "KEY_FILE") or None, key_password=_secret(env, _ENV + "KEY_PASSWORD"))
        given = {k: (v.upper() if k in ("protocol", "mechanism") else v) for k, v in options.items() if v is not None}
        if "password_file" in given:
            given["password"] = _secret({_ENV + "PASSWORD_FILE": given.pop("password_file")}, _ENV + "PASSWORD")
        return replace(found, **given).checked()

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def checked(self) -> KafkaSecurity:
        if self.protocol not in PROTOCOLS:
            raise DispatchError(f"Kafka security protocol {self.protocol!r}: one of {', '.join(PROTOCOLS)}")
        if self.sasl:
            mechanism = self.mechanism or "SCRAM-SHA-512"
            if mechanism not in MECHANISMS:
                raise DispatchError(f"Kafka SASL mechanism {mechanism!r}: one of {', '.join(MECHANISMS)}")
            if not self.username or self.password is None:
                raise DispatchError(f"Kafka {self.protocol} needs a username ({_ENV}USERNAME) and a password "
                                    f"({_ENV}PASSWORD or {_ENV}PASSWORD_FILE)")
            return replace(self, mechanism=mechanism)._files()
        return self._files()

    def _files(self) -> KafkaSecurity:
        for name, path in (("CA_FILE", self.cafile), ("CERT_FILE", self.certfile), ("KEY_FILE", self.keyfile)):
            if path and not Path(path).is_file():
                raise DispatchError(f"{_ENV}{name}={path}: no such file")
        if bool(self.certfile) != bool(self.keyfile):
            raise DispatchError(f"a Kafka client certificate needs its key: give {_ENV}CERT_FILE and {_ENV}KEY_FILE")
        return self

    def client_config(self) -> dict[str, Any]:
        """kafka-python's settings for producers, consumers and the admin client."""
        config: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            config |= {"sasl_mechanism": self.mechanism, "sasl_plain_username": self.username,
                       "sasl_plain_password": self.password}
        if self.tls:
            config |= {"ssl_check_hostname": True, "ssl_cafile": self.cafile, "ssl_certfile": self.certfile,
                       "ssl_keyfile": self.keyfile, "ssl_password": self.key_password}
        return {k: v for k, v in config.items() if v is not None}

    def describe(self) -> str:
        """For logs: the protocol, the mechanism and principal (never a secret)."""
        if self.sasl:
            return f"{self.protocol} {self.mechanism} as {self.username}"
        return self.protocol + (" with a client certificate" if self.certfile else "")
