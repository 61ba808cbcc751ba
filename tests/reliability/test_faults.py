"""Nothing lost, nothing doubled: ingests against the simulator's injected faults, a dead API and a SIGKILL.

Every ingest goes through ``aragora_pipelines.ingest.ingest_evidence``, the path of the assets and the CLI,
and is checked against the simulator's ``/_truth/hn`` (count and checksum of every id it holds).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock, Timeout

from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.store import STAGING_DIR, EvidenceStore
from connectors.exceptions import ConnectorCircuitOpenError
from connectors.hackernews import HackerNewsConnector
from connectors.resilience import CircuitState
from tests.conftest import ROOT, Sim

# Generous retries with tiny waits (Retry-After is capped by max_delay), a timeout well under the
# simulator's 2 s hang, and a breaker that a run of unlucky rolls cannot open.
FAULT_TOLERANT: dict[str, Any] = {
    "max_retries": 15, "base_delay": 0.01, "max_delay": 0.05, "timeout": 0.5, "rate_limit": False,
    "retry_parse_errors": True, "circuit_failure_threshold": 40,
}


def stored_truth(store: EvidenceStore) -> dict[str, Any]:
    """The store's HackerNews ids in the simulator's /_truth form (count and sha256 of the sorted ids)."""
    ids = [row[0] for row in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews'")]
    return {"count": len(ids), "sha256_sorted_ids": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()}


def ingest(sim: Sim, store: EvidenceStore, limit: int, **knobs: Any) -> Any:
    """One ingest of ``limit`` records from the simulator, 50 per page."""
    connector = HackerNewsConnector(base_url=sim.hn, hits_per_page=50, **{**FAULT_TOLERANT, **knobs})
    return ingest_evidence(connector, store, query="faults", limit=limit, asset_key="evidence_hackernews",
                           partition_key="2026-01-01|faults")


def assert_converged(store: EvidenceStore, sim: Sim) -> None:
    """The store holds exactly the simulator's ids, each once, with an intact provenance chain."""
    assert stored_truth(store) == sim.truth("hn")
    assert store.duplicate_ids("evidence") == 0
    assert store.verify() == []


def test_faulty_api_loses_and_doubles_nothing(make_sim, tmp_path: Path) -> None:
    sim = make_sim(records=600, fail_rate=0.2, ratelimit_every=7, garbage_rate=0.05, hang_rate=0.02, hang_s=2)
    store = EvidenceStore(tmp_path / "faults.duckdb", lock_timeout=30)

    result = ingest(sim, store, limit=1000)

    assert_converged(store, sim)
    assert (result.rows_fetched, result.rows_new, result.provenance_records) == (600, 600, 600)
    faults = sim.stats()["faults"]
    assert faults["ratelimit"] >= 1 and sum(faults.values()) >= 3  # the faults really happened


def test_reingesting_through_faults_adds_nothing(make_sim, tmp_path: Path) -> None:
    sim = make_sim(records=300, fail_rate=0.2, ratelimit_every=7, garbage_rate=0.05)
    store = EvidenceStore(tmp_path / "faults.duckdb", lock_timeout=30)
    ingest(sim, store, limit=1000)
    again = ingest(sim, store, limit=1000)
    assert (again.rows_new, again.rows_changed, again.rows_unchanged, again.provenance_records) == (0, 0, 300, 0)
    assert_converged(store, sim)
    assert store.counts()["provenance"] == 300


def test_dead_api_opens_the_breaker_fails_clearly_and_leaves_the_store_byte_identical(
        make_sim, tmp_path: Path) -> None:
    healthy, dead = make_sim(records=100), make_sim(records=100, fail_rate=1.0)
    store = EvidenceStore(tmp_path / "down.duckdb", lock_timeout=30)
    ingest(healthy, store, limit=1000)
    before_bytes = store.path.read_bytes()
    before_rows = store.query("SELECT * FROM evidence ORDER BY id")
    before_counts = store.counts()

    connector = HackerNewsConnector(base_url=dead.hn, hits_per_page=50,
                                    **{**FAULT_TOLERANT, "circuit_failure_threshold": 3})
    with pytest.raises(ConnectorCircuitOpenError) as caught:
        ingest_evidence(connector, store, query="faults", limit=1000)

    message = str(caught.value)
    assert "circuit" in message and "is open" in message and "remaining" in message
    assert connector.breaker.state is CircuitState.OPEN
    assert dead.stats()["requests"] == 3  # it stopped hammering the API once the breaker opened
    assert store.path.read_bytes() == before_bytes
    assert store.query("SELECT * FROM evidence ORDER BY id") == before_rows
    assert store.counts() == before_counts


CHILD_INGEST = """
import json, sys
from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.store import STAGING_DIR, EvidenceStore
from connectors.hackernews import HackerNewsConnector
spec = json.loads(sys.argv[1])
connector = HackerNewsConnector(base_url=spec["base_url"], hits_per_page=100, rate_limit=False, max_retries=0)
ingest_evidence(connector, EvidenceStore(spec["db"]), query="crash", limit=spec["limit"],
                asset_key="evidence_hackernews", partition_key="2026-01-01|crash")
"""


def start_child_ingest(sim: Sim, db: Path, limit: int) -> subprocess.Popen[bytes]:
    """An ingest in a process of its own, to be killed."""
    spec = json.dumps({"base_url": sim.hn, "db": str(db), "limit": limit})
    return subprocess.Popen([sys.executable, "-c", CHILD_INGEST, spec], cwd=ROOT, stderr=subprocess.PIPE)


def wait_until(condition, child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Poll ``condition`` every millisecond until it holds; fail if the child exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if child.poll() is not None:
            pytest.fail(f"the ingest exited ({child.returncode}) before the kill point: "
                        f"{child.stderr.read().decode()[-2000:] if child.stderr else ''}")
        if time.monotonic() > deadline:
            pytest.fail("the kill point was not reached in time")
        time.sleep(0.001)


def writer_lock_held(store: EvidenceStore) -> bool:
    """Whether another process holds the store's writer lock (it takes it only to write, briefly)."""
    lock = FileLock(str(store.path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def sigkill(child: subprocess.Popen[bytes]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL


@pytest.mark.parametrize("kill_point", ["while fetching", "while writing"])
def test_sigkill_mid_load_then_rerun_converges(make_sim, tmp_path: Path, kill_point: str) -> None:
    # 100 ms a page: after the kill point the child still has several waves of pages to fetch, so even on
    # a loaded machine it is killed before it reaches its write.
    sim = make_sim(records=4000, latency_ms=100)
    store = EvidenceStore(tmp_path / "crash.duckdb", lock_timeout=30)
    ingest(sim, store, limit=300)  # an earlier, smaller load is already in the store
    before = store.counts()

    child = start_child_ingest(sim, store.path, 4000)
    if kill_point == "while fetching":
        served = sim.stats()["requests"]
        wait_until(lambda: sim.stats()["requests"] >= served + 10, child)
    else:
        wait_until(lambda: writer_lock_held(store), child)
    sigkill(child)

    # Killed before its commit: the store opens, is exactly as before and verifies.
    staged = list((store.path.parent / STAGING_DIR).iterdir())
    assert len(staged) == (1 if kill_point == "while writing" else 0)  # what the killed process left behind
    assert store.counts() == before
    assert store.verify() == []
    assert store.duplicate_ids("evidence") == 0

    result = ingest(sim, store, limit=4000)
    assert (result.rows_new, result.rows_unchanged) == (3700, 300)
    assert_converged(store, sim)
    assert list((store.path.parent / STAGING_DIR).iterdir()) == []  # the killed load's staged rows are gone
