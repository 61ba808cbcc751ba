"""Shared fixtures: the loopback API simulator, the recorded real API bodies, clean process state."""

from __future__ import annotations

import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.credentials import reset_credential_providers
from connectors.resilience import reset_circuit_breakers
from tests.support.services import postgres_database

ROOT = Path(__file__).resolve().parents[1]
REALAPI = ROOT / "tests" / "fixtures" / "realapi"
APISIM = ROOT / "tests" / "support" / "apisim.py"
SIM_START_TIMEOUT_S = 15.0


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sim:
    """A running apisim process and the base URLs to hand connectors."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc, self.port = proc, port
        self.root = f"http://127.0.0.1:{port}"
        self.hn = f"{self.root}/hn/api/v1"
        self.github = f"{self.root}/github"
        self.arxiv = f"{self.root}/arxiv"
        self.stripe = f"{self.root}/stripe"

    def truth(self, source: str, since: datetime | float | None = None,
              until: datetime | float | None = None) -> dict[str, Any]:
        """The simulator's count and checksum of the ids of ``source``: all, or those created in [since, until).

        ``since``/``until`` are aware datetimes (a naive one is taken as UTC) or epoch seconds.
        """
        window = {name: (value.replace(tzinfo=value.tzinfo or UTC).timestamp() if isinstance(value, datetime)
                         else value)
                  for name, value in (("since", since), ("until", until)) if value is not None}
        response = httpx.get(f"{self.root}/_truth/{source}", params=window, timeout=5)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """Requests served and faults injected so far."""
        return httpx.get(f"{self.root}/_stats", timeout=5).json()


def start_sim(**flags: Any) -> Sim:
    """Start tests/support/apisim.py with ``flags`` (``fail_rate=0.2`` -> ``--fail-rate 0.2``) on a free port.

    The simulator picks the port itself (``--port 0``) and prints it first, so two starts never race for one.
    """
    args = [sys.executable, str(APISIM), "--port", "0"]
    for key, value in flags.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output, deadline = [], time.monotonic() + SIM_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not select.select([proc.stdout], [], [], 0.1)[0]:
            continue
        line = proc.stdout.readline()
        if not line:  # it exited
            proc.wait()
            raise RuntimeError(f"apisim {' '.join(args[2:])} exited ({proc.returncode}): {''.join(output)[-2000:]}")
        listening = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if listening:
            return Sim(proc, int(listening.group(1)))
        output.append(line)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"apisim did not start within {SIM_START_TIMEOUT_S:.0f} s: {''.join(output)[-2000:]}")


def stop_sim(sim: Sim) -> None:
    """Stop a simulator process."""
    sim.proc.terminate()
    try:
        sim.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        sim.proc.kill()
        sim.proc.wait()


@pytest.fixture(scope="session")
def apisim() -> Iterator[Sim]:
    """A fault-free simulator with 500 records, shared by the session."""
    sim = start_sim(records=500)
    yield sim
    stop_sim(sim)


@pytest.fixture
def make_sim() -> Iterator[Callable[..., Sim]]:
    """A factory for simulators with their own flags (faults), stopped after the test."""
    sims: list[Sim] = []

    def factory(**flags: Any) -> Sim:
        sim = start_sim(**flags)
        sims.append(sim)
        return sim

    yield factory
    for sim in sims:
        stop_sim(sim)


def realapi_path(relative: str) -> Path:
    """Path of a recorded real API body under tests/fixtures/realapi (its origin is in SOURCES.md there)."""
    path = REALAPI / relative
    if not path.exists():
        raise FileNotFoundError(f"recorded body {relative} not found under {REALAPI}; add it and a SOURCES.md row")
    return path


@pytest.fixture
def realapi() -> Callable[[str], Any]:
    """Load a recorded real body: JSON files as parsed JSON, others as bytes."""

    def load(relative: str) -> Any:
        path = realapi_path(relative)
        return json.loads(path.read_text("utf-8")) if path.suffix == ".json" else path.read_bytes()

    return load


@pytest.fixture
def postgres_dsn() -> Iterator[str]:
    """The libpq DSN of a private, empty Postgres database, dropped after the test (skips/fails without Postgres)."""
    with postgres_database() as dsn:
        yield dsn


@pytest.fixture(params=["duckdb", "ducklake"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(store setting, data path) of an empty store on each backend: a DuckDB file, DuckLake on Postgres."""
    if request.param == "duckdb":
        yield str(tmp_path / "store.duckdb"), None
        return
    with postgres_database() as dsn:
        yield f"ducklake:postgres:{dsn}", str(tmp_path / "lake")


@pytest.fixture(autouse=True)
def _clean_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with fresh breakers and no credentials or base URLs from the developer's shell."""
    for name in list(os.environ):
        if re.match(r"^(ARAGORA_|GITHUB_TOKEN|STRIPE_|HUBSPOT_|DOCUSIGN_|PAGERDUTY_|TWITTER_|REDDIT_|NEWSAPI_"
                    r"|SEC_USER_AGENT|OPENAI_API_KEY|BRAVE_API_KEY|AWS_)", name):
            monkeypatch.delenv(name, raising=False)
    reset_circuit_breakers()
    reset_credential_providers()
    yield
    reset_circuit_breakers()
    reset_credential_providers()
