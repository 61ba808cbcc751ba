"""Shared fixtures: the loopback API simulator, the recorded real API bodies, clean process state."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.resilience import reset_circuit_breakers

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ARAGORA_SHARED_DIR", ROOT.parent / "shared"))
REALAPI = SHARED / "realapi"
APISIM = SHARED / "bench" / "apisim.py"


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

    def truth(self, source: str) -> dict[str, Any]:
        """The simulator's count and checksum of every id of ``source``."""
        return httpx.get(f"{self.root}/_truth/{source}", timeout=5).json()

    def stats(self) -> dict[str, Any]:
        """Requests served and faults injected so far."""
        return httpx.get(f"{self.root}/_stats", timeout=5).json()


def start_sim(**flags: Any) -> Sim:
    """Start apisim with ``flags`` (``fail_rate=0.2`` -> ``--fail-rate 0.2``) and wait until it listens."""
    if not APISIM.exists():
        raise RuntimeError(f"the simulator is missing at {APISIM}; set ARAGORA_SHARED_DIR to the shared/ folder")
    port = free_port()
    args = [sys.executable, str(APISIM), "--port", str(port)]
    for key, value in flags.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return Sim(proc, port)
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"apisim exited: {proc.stdout.read() if proc.stdout else ''}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("apisim did not start within 15 s")


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
    """Path of a recorded real API body under shared/realapi."""
    path = REALAPI / relative
    if not path.exists():
        raise FileNotFoundError(f"recorded body {relative} not found under {REALAPI}")
    return path


@pytest.fixture
def realapi() -> Callable[[str], Any]:
    """Load a recorded real body: JSON files as parsed JSON, others as bytes."""

    def load(relative: str) -> Any:
        path = realapi_path(relative)
        return json.loads(path.read_text("utf-8")) if path.suffix == ".json" else path.read_bytes()

    return load


@pytest.fixture(autouse=True)
def _clean_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with fresh breakers and no credentials or base URLs from the developer's shell."""
    for name in list(os.environ):
        if re.match(r"^(ARAGORA_|GITHUB_TOKEN|STRIPE_|HUBSPOT_|DOCUSIGN_|PAGERDUTY_|TWITTER_|REDDIT_|NEWSAPI_"
                    r"|SEC_USER_AGENT|OPENAI_API_KEY|BRAVE_API_KEY|AWS_)", name):
            monkeypatch.delenv(name, raising=False)
    reset_circuit_breakers()
    yield
    reset_circuit_breakers()
