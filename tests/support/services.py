"""Real services for tests: PostgreSQL (the DuckLake catalog, Dagster's instance), Redis and RabbitMQ on loopback.

Each test gets its own database, Redis key prefix or RabbitMQ vhost and removes it afterwards. Without the
service a test skips with a one-line reason; with ``ARAGORA_REQUIRE_SERVICES=1`` (CI) it fails instead, so a
service test cannot pass by skipping. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

# Read at import: tests/conftest.py clears every ARAGORA_* variable around each test.
REQUIRE_SERVICES = os.environ.get("ARAGORA_REQUIRE_SERVICES", "").strip() == "1"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"  # trust authentication on the dev and CI machines
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
RABBIT_HOST, RABBIT_PORT = "127.0.0.1", 5672


def unavailable(service: str, why: str) -> None:
    """Skip (or, under ARAGORA_REQUIRE_SERVICES=1, fail) the test: ``service`` cannot be used because ``why``."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{service} is required (ARAGORA_REQUIRE_SERVICES=1) but {why}", pytrace=False)
    pytest.skip(f"{service} not available: {why}")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def unique_name(kind: str) -> str:
    """A lowercase name no other test run uses (``aragora_<kind>_<hex>``)."""
    return f"aragora_{kind}_{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class PgDatabase:
    """A database of the test's own on the local PostgreSQL."""

    name: str
    host: str = PG_HOST
    port: int = PG_PORT
    user: str = PG_USER

    @property
    def dsn(self) -> str:
        """Its libpq connection string (trust authentication: no password)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={self.name}"

    def env(self) -> dict[str, str]:
        """The ARAGORA_PG_* variables deploy/dagster.yaml reads (the password is empty: trust authentication)."""
        return {"ARAGORA_PG_HOST": self.host, "ARAGORA_PG_PORT": str(self.port), "ARAGORA_PG_USER": self.user,
                "ARAGORA_PG_PASSWORD": "", "ARAGORA_PG_DB": self.name}


def _pg_admin(sql: str) -> None:
    import psycopg2  # the scale extra

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5)
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@contextmanager
def postgres_database_of_its_own() -> Iterator[PgDatabase]:
    """A fresh PostgreSQL database, dropped (with any connection left to it) afterwards; skips or fails without
    PostgreSQL as :func:`unavailable` says."""
    if not _listening(PG_HOST, PG_PORT):
        unavailable("PostgreSQL", f"nothing listens on {PG_HOST}:{PG_PORT}")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        unavailable("PostgreSQL", "psycopg2 is not installed (pip install -c constraints.txt -e '.[test]')")
    db = PgDatabase(unique_name("pg"))
    try:
        _pg_admin(f'CREATE DATABASE "{db.name}"')
    except Exception as exc:  # a server that refuses us is as good as absent
        unavailable("PostgreSQL", f"CREATE DATABASE failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    try:
        yield db
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')


@contextmanager
def postgres_database() -> Iterator[str]:
    """:func:`postgres_database_of_its_own`, as the libpq DSN a DuckLake catalog string takes."""
    with postgres_database_of_its_own() as db:
        yield db.dsn


@pytest.fixture
def postgres_db() -> Iterator[PgDatabase]:
    """A fresh PostgreSQL database for one test."""
    with postgres_database_of_its_own() as db:
        yield db


@dataclass(frozen=True)
class RedisPrefix:
    """The local Redis and a key prefix of the test's own."""

    url: str
    prefix: str


@pytest.fixture
def redis_prefix() -> Iterator[RedisPrefix]:
    """Redis database 0 with a unique key prefix; every key under the prefix is deleted after the test."""
    if not _listening(REDIS_HOST, REDIS_PORT):
        unavailable("Redis", f"nothing listens on {REDIS_HOST}:{REDIS_PORT}")
    try:
        import redis
    except ImportError:
        unavailable("Redis", "the redis client is not installed (pip install -c constraints.txt -e '.[scale]')")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", f"PING failed: {type(exc).__name__}")
    service = RedisPrefix(url, unique_name("redis") + ":")
    try:
        yield service
    finally:
        keys = list(client.scan_iter(match=f"{service.prefix}*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def rabbitmq_vhost() -> Iterator[str]:
    """An AMQP URL (guest/guest) on a RabbitMQ vhost of the test's own, deleted after the test."""
    if not _listening(RABBIT_HOST, RABBIT_PORT):
        unavailable("RabbitMQ", f"nothing listens on {RABBIT_HOST}:{RABBIT_PORT}")
    ctl = shutil.which("rabbitmqctl") or ("/usr/sbin/rabbitmqctl" if os.path.exists("/usr/sbin/rabbitmqctl") else None)
    if ctl is None:
        unavailable("RabbitMQ", "rabbitmqctl (to create a vhost) is not on PATH")
    vhost = unique_name("vhost")

    def rabbitmqctl(*args: str) -> None:
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode:
            unavailable("RabbitMQ", f"rabbitmqctl {args[0]} failed: {(done.stderr or done.stdout).strip()[:200]}")

    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBIT_HOST}:{RABBIT_PORT}/{vhost}"
    finally:
        subprocess.run([ctl, "delete_vhost", vhost], capture_output=True, timeout=60, check=False)
