"""Every Kafka client is given the same security settings; secrets come from the environment
or a file; a setting that cannot work is one sentence before anything connects."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatch.adapters.kafka import KafkaSettings
from dispatch.adapters.kafka.security import KafkaSecurity
from dispatch.domain.errors import DispatchError


def test_plaintext_by_default_and_sasl_scram_over_tls_from_the_environment(tmp_path: Path) -> None:
    assert KafkaSecurity.from_env({}).client_config() == {"security_protocol": "PLAINTEXT"}
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    secret = tmp_path / "password"
    secret.write_text("s3cret words\n")
    env = {"DISPATCH_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "DISPATCH_KAFKA_USERNAME": "dispatch-engine",
           "DISPATCH_KAFKA_PASSWORD_FILE": str(secret), "DISPATCH_KAFKA_CA_FILE": str(ca)}
    security = KafkaSecurity.from_env(env)
    assert security.client_config() == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "dispatch-engine",
        "sasl_plain_password": "s3cret words", "ssl_check_hostname": True, "ssl_cafile": str(ca)}
    assert "s3cret" not in repr(security) and "s3cret" not in security.describe()
    # an option wins over the environment
    plain = KafkaSecurity.from_env(env, mechanism="plain", protocol="SASL_PLAINTEXT")
    assert plain.client_config()["sasl_mechanism"] == "PLAIN" and "ssl_cafile" not in plain.client_config()


def test_settings_that_cannot_work_are_refused_in_one_sentence(tmp_path: Path) -> None:
    cases = [
        ({"DISPATCH_KAFKA_SECURITY_PROTOCOL": "TLS"}, "one of PLAINTEXT, SSL"),
        ({"DISPATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs a username"),
        ({"DISPATCH_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "DISPATCH_KAFKA_USERNAME": "u",
          "DISPATCH_KAFKA_PASSWORD": "p", "DISPATCH_KAFKA_SASL_MECHANISM": "GSSAPI"}, "one of SCRAM-SHA-512"),
        ({"DISPATCH_KAFKA_SECURITY_PROTOCOL": "SSL", "DISPATCH_KAFKA_CA_FILE": str(tmp_path / "none.pem")},
         "no such file"),
        ({"DISPATCH_KAFKA_PASSWORD_FILE": str(tmp_path / "missing")}, "cannot read it"),
    ]
    for env, words in cases:
        with pytest.raises(DispatchError, match=words):
            KafkaSecurity.from_env(env)


def test_every_client_gets_the_security_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("DISPATCH_KAFKA_USERNAME", "desk-chengguan")
    monkeypatch.setenv("DISPATCH_KAFKA_PASSWORD", "pw")
    settings = KafkaSettings.from_env("broker:9092", "city.")
    assert settings.client_config() == {"bootstrap_servers": "broker:9092", "security_protocol": "SASL_PLAINTEXT",
                                        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "desk-chengguan",
                                        "sasl_plain_password": "pw"}
