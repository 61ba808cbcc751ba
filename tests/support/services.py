"""Real services for tests: a private PostgreSQL database per test, and the rule for when a service is missing.

Postgres is 127.0.0.1:5432, user postgres, trust auth (``ARAGORA_TEST_POSTGRES`` overrides the libpq DSN).
Without it a test skips with a one-line reason, unless ``ARAGORA_REQUIRE_SERVICES=1`` (CI), where it fails.
Both settings are read at import, before the suite's autouse fixture clears ``ARAGORA_*`` variables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

REQUIRE_SERVICES = os.environ.get("ARAGORA_REQUIRE_SERVICES") == "1"
POSTGRES_DSN = os.environ.get("ARAGORA_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres")


def missing_service(reason: str) -> None:
    """Skip the test for a missing service, or fail it where services are required (CI)."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (ARAGORA_REQUIRE_SERVICES=1: services are required here)", pytrace=False)
    pytest.skip(reason)


def _admin() -> Any:  # a psycopg2 connection
    import psycopg2

    try:
        con = psycopg2.connect(POSTGRES_DSN + " dbname=postgres", connect_timeout=3)
    except psycopg2.OperationalError as exc:
        missing_service(f"PostgreSQL not reachable at {POSTGRES_DSN}: {str(exc).strip().splitlines()[0]}")
    con.autocommit = True
    return con


@contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database with a unique name; yields its libpq DSN and drops it afterwards."""
    name = f"aragora_test_{uuid.uuid4().hex[:16]}"
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_DSN} dbname={name}"
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()
