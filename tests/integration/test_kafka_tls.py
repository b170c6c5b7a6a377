"""SASL_SSL: a second real broker (scripts/kafka-local) with a certificate the test's own
certificate authority signed; dispatch's clients trust that CA (``DISPATCH_KAFKA_CA_FILE``), sign
in with SCRAM-SHA-512 over TLS and carry commands through; a client that trusts another CA is
refused the connection."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.integration.servers import REPO_ROOT, free_ports
from tests.integration.kafka_support import read_topic

with warnings.catch_warnings():  # kafka-python's import-time DeprecationWarning
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka.admin import KafkaAdminClient, ScramMechanism, UserScramCredentialUpsertion
    from kafka.errors import KafkaError

    from dispatch.adapters.kafka import KafkaSettings, ensure_topics, make_producer
    from dispatch.adapters.kafka.security import KafkaSecurity

pytestmark = pytest.mark.integration


def _authority(name: str) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server(ca_key: Any, ca_cert: Any) -> tuple[Any, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem(cert: Any) -> bytes:
    return bytes(cert.public_bytes(serialization.Encoding.PEM))


def test_sasl_ssl_with_a_certificate_authority_the_test_makes(tmp_path: Path) -> None:
    ca_key, ca_cert = _authority("dispatch test CA")
    key, cert = _server(ca_key, ca_cert)
    keystore = tmp_path / "broker.pem"  # Kafka's PEM keystore: the unencrypted PKCS#8 key, then the chain
    keystore.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()) + _pem(cert) + _pem(ca_cert))
    (tmp_path / "ca.pem").write_bytes(_pem(ca_cert))
    _, other_ca = _authority("somebody else's CA")
    (tmp_path / "other-ca.pem").write_bytes(_pem(other_ca))

    plain_port, controller, sasl, tls = free_ports(4)
    env = {**os.environ, "KAFKA_DATA": str(tmp_path / "kafka"), "KAFKA_PORT": str(plain_port),
           "KAFKA_CONTROLLER_PORT": str(controller), "KAFKA_SASL_PORT": str(sasl), "KAFKA_SSL_PORT": str(tls),
           "KAFKA_SSL_KEYSTORE_PEM": str(keystore), "KAFKA_HEAP": "384m"}
    script = str(REPO_ROOT / "scripts" / "kafka-local")
    started = subprocess.run([script, "start"], env=env, capture_output=True, text=True, timeout=240)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        prefix = f"it-tls-{uuid.uuid4().hex[:8]}."
        plain = KafkaSettings(bootstrap=f"127.0.0.1:{plain_port}", prefix=prefix)
        ensure_topics(plain)
        admin = KafkaAdminClient(**plain.client_config())
        assert admin.alter_user_scram_credentials(
            [UserScramCredentialUpsertion("tls-client", ScramMechanism.SCRAM_SHA_512, "tls secret")]) == {"tls-client": None}
        admin.close()
        secured = KafkaSettings.from_env(f"127.0.0.1:{tls}", prefix, security={
            "protocol": "SASL_SSL", "username": "tls-client", "password": "tls secret",
            "cafile": str(tmp_path / "ca.pem")})
        assert secured.security.client_config()["ssl_cafile"] == str(tmp_path / "ca.pem")
        # super.users holds ANONYMOUS only: give the SCRAM user its topic (as kafka-acls would)
        from kafka.admin import ACL, ACLOperation, ACLPermissionType, ResourcePattern, ResourceType
        admin = KafkaAdminClient(**plain.client_config())
        admin.create_acls([ACL("User:tls-client", "*", op, ACLPermissionType.ALLOW,
                               ResourcePattern(ResourceType.TOPIC, plain.topics.intake))
                           for op in (ACLOperation.WRITE, ACLOperation.DESCRIBE)])
        admin.close()
        from tests.waiting import wait_for

        def sent() -> bool:
            producer = make_producer(secured)
            try:
                producer.send(plain.topics.intake, key=b"k", value=json.dumps({"over": "tls"}).encode()).get(timeout=20)
                return True
            except KafkaError as error:
                assert "Authorization" in type(error).__name__ or "Authorization" in str(error), error
                return False
            finally:
                producer.close()

        wait_for(sent, timeout=60, what="a message sent over SASL_SSL")
        assert [json.loads(r.value) for r in read_topic(plain, plain.topics.intake)] == [{"over": "tls"}]
        # a client that trusts another authority does not get through the handshake
        distrust = KafkaSettings.from_env(f"127.0.0.1:{tls}", prefix, security={
            "protocol": "SASL_SSL", "username": "tls-client", "password": "tls secret",
            "cafile": str(tmp_path / "other-ca.pem")})
        with pytest.raises(KafkaError):
            make_producer(distrust, max_block_ms=5_000, bootstrap_timeout_ms=5_000)
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120)
