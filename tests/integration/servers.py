"""Access to the real PostgreSQL and Kafka servers used by integration tests.

The servers come from ``scripts/pg-local`` and ``scripts/kafka-local``.
``scripts/test`` (and ``.ci/run``) start them and export

* ``DISPATCH_TEST_POSTGRES_URL`` -- SQLAlchemy URL, e.g.
  ``postgresql+psycopg://postgres@127.0.0.1:55432/dispatch_test``
* ``DISPATCH_TEST_KAFKA`` -- bootstrap address, e.g. ``127.0.0.1:19092``

When a test is run directly with pytest and a variable is unset, the matching
script is started from here instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts"

POSTGRES_ENV = "DISPATCH_TEST_POSTGRES_URL"
KAFKA_ENV = "DISPATCH_TEST_KAFKA"


def _script(name: str, *args: str, timeout: float = 300) -> str:
    """Run scripts/<name> <args>; return its stdout (its stderr passes through)."""
    result = subprocess.run(
        [str(SCRIPTS / name), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"scripts/{name} {' '.join(args)} exited {result.returncode}: {result.stdout}"
        )
    return result.stdout.strip()


# --- PostgreSQL ------------------------------------------------------------


def postgres_url() -> str:
    """SQLAlchemy URL of the test database (starting scripts/pg-local if needed)."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        _script("pg-local", "start")
        url = _script("pg-local", "url")
        os.environ[POSTGRES_ENV] = url
    return url


def _connect_maintenance(url: str) -> psycopg.Connection:
    """Autocommit connection to the ``postgres`` database of the server in ``url``."""
    parts = urlsplit(url)
    return psycopg.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username) if parts.username else "postgres",
        password=unquote(parts.password) if parts.password else None,
        dbname="postgres",
        autocommit=True,
    )


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def fresh_postgres_database(prefix: str = "dispatch", server: str | None = None) -> str:
    """Create a new, uniquely named, empty database (on ``server``, a URL of it; default the
    shared test server); return its SQLAlchemy URL."""
    base = server or postgres_url()
    slug = re.sub(r"[^a-z0-9_]+", "_", prefix.lower()).strip("_") or "db"
    name = f"{slug[:40]}_{uuid.uuid4().hex[:12]}"  # < 63 chars (identifier limit)
    with _connect_maintenance(base) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return _with_database(base, name)


def drop_postgres_database(url: str) -> None:
    """Drop a database made by :func:`fresh_postgres_database` (closing its sessions)."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    with _connect_maintenance(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def postgres_runtime(prefix: str = "dispatch") -> Iterator[Any]:
    """A ``dispatch.bootstrap`` runtime on a fresh database of the test server (its tables made),
    closed and the database dropped afterwards."""
    from dispatch.bootstrap import bootstrap

    url = fresh_postgres_database(prefix)
    runtime = bootstrap(url)
    try:
        yield runtime
    finally:
        runtime.close()
        drop_postgres_database(url)


# --- Kafka -----------------------------------------------------------------


def kafka_bootstrap() -> str:
    """Bootstrap address of the test broker (starting scripts/kafka-local if needed)."""
    bootstrap = os.environ.get(KAFKA_ENV)
    if not bootstrap:
        bootstrap = kafka_start()
    return bootstrap


def kafka_start() -> str:
    """Start the local broker (no-op if running); wait until it answers."""
    _script("kafka-local", "start")
    bootstrap = _script("kafka-local", "bootstrap")
    os.environ.setdefault(KAFKA_ENV, bootstrap)
    return bootstrap


def kafka_sasl_bootstrap() -> str | None:
    """The test broker's SASL_PLAINTEXT listener (SCRAM-SHA-512, PLAIN; scripts/kafka-local), or None
    when the tests were pointed at another broker without naming one (DISPATCH_TEST_KAFKA_SASL)."""
    named = os.environ.get("DISPATCH_TEST_KAFKA_SASL")
    if named:
        return named
    if os.environ.get(KAFKA_ENV) and os.environ[KAFKA_ENV] != _script("kafka-local", "bootstrap"):
        return None
    kafka_bootstrap()
    return _script("kafka-local", "sasl-bootstrap")


def postgres_stop() -> None:
    """Stop the local PostgreSQL (its data is kept)."""
    _script("pg-local", "stop")


def postgres_start() -> None:
    _script("pg-local", "start")


def kafka_stop() -> None:
    """Stop the local broker (SIGTERM, SIGKILL after 30 s). Topics and data are kept."""
    _script("kafka-local", "stop")


def kafka_restart() -> str:
    """Stop and start the local broker; its topics and messages survive."""
    kafka_stop()
    return kafka_start()


# --- private servers: for the tests that stop one -----------------------------------------------


def free_ports(n: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class PrivateServer:
    """A server of the test's own, started from the same script as the shared one (another data
    directory and port): a test that stops a server stops this one, never the shared one."""

    def __init__(self, script: str, env: dict[str, str], data: Path):
        self.script, self.env, self.data = script, env, data

    def run(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run([str(SCRIPTS / self.script), *args], cwd=REPO_ROOT, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"scripts/{self.script} {' '.join(args)} exited {result.returncode}: {result.stdout}")
        return result.stdout.strip()

    def start(self) -> None:
        self.run("start")

    def stop(self) -> None:
        self.run("stop")


@contextmanager
def private_postgres() -> Iterator[tuple[PrivateServer, str]]:
    """A PostgreSQL cluster of the test's own (scripts/pg-local, another data directory and
    port): the server and the URL of its test database. Stopped and removed afterwards."""
    import shutil
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="dpg-", dir="/tmp"))  # short: the socket lives there
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    [port] = free_ports(1)
    server = PrivateServer("pg-local", {**os.environ, "PG_DATA": str(data / "d"), "PG_PORT": str(port)}, data)
    try:
        server.start()
        yield server, server.run("url")
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(data, ignore_errors=True)


@contextmanager
def private_kafka(tmp: Path) -> Iterator[tuple[PrivateServer, str]]:
    """A broker of the test's own (scripts/kafka-local, another data directory and ports): the
    server and its bootstrap address. Stopped afterwards."""
    plain, controller, sasl = free_ports(3)
    server = PrivateServer("kafka-local", {**os.environ, "KAFKA_DATA": str(tmp / "kafka"), "KAFKA_PORT": str(plain),
                                           "KAFKA_CONTROLLER_PORT": str(controller), "KAFKA_SASL_PORT": str(sasl),
                                           "KAFKA_HEAP": "384m"}, tmp / "kafka")
    try:
        server.start()
        yield server, f"127.0.0.1:{plain}"
    finally:
        server.stop()
