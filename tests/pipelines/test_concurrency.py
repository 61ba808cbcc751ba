"""Eight partitions materialized at once, in separate processes, against one DuckDB file."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from aragora_pipelines.store import EvidenceStore

TOPIC = "ai-safety"


def materialize_partition(store_path: str, topics_file: str, hn_url: str, day: str) -> bool:
    """One run, in its own process: evidence_hackernews for (day, TOPIC) into the shared store."""
    os.environ["ARAGORA_TOPICS_FILE"] = topics_file
    from dagster import DagsterInstance, MultiPartitionKey, materialize

    from aragora_pipelines.definitions import RESOURCES, evidence_assets
    from aragora_pipelines.resources import DuckDBStoreResource, evidence_resource_class
    from connectors.hackernews import HackerNewsConnector

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", [TOPIC])
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=store_path),
                 "hackernews": evidence_resource_class(HackerNewsConnector)(
                     base_url=hn_url, max_retries=2, base_delay_seconds=0.05)}
    result = materialize([evidence_assets["hackernews"]], instance=instance, resources=resources,
                         partition_key=MultiPartitionKey({"date": day, "topic": TOPIC}),
                         run_config={"ops": {"evidence_hackernews": {"config": {"limit": 1000}}}},
                         raise_on_error=False)
    return result.success


@pytest.mark.slow
def test_eight_partitions_in_eight_processes_all_succeed_with_exact_rows(make_sim, tmp_path: Path,
                                                                        topics_file: Path) -> None:
    sim = make_sim(records=300, latency_ms=20)
    store_path = tmp_path / "shared.duckdb"
    days = [f"2026-01-0{d}" for d in range(1, 9)]
    # fork: each run starts with Dagster already imported, so the test measures the runs, not imports
    with multiprocessing.get_context("fork").Pool(8) as pool:
        outcomes = pool.starmap(materialize_partition,
                                [(str(store_path), str(topics_file), sim.hn, day) for day in days])
    assert outcomes == [True] * 8
    store = EvidenceStore(store_path)
    counts = store.counts()
    assert counts["evidence"] == sim.truth("hn")["count"] == 300
    assert counts["provenance"] == 300  # the first writer inserted each item, the others found it unchanged
    assert counts["loads"] == 8
    assert store.query("SELECT count(DISTINCT partition_key) FROM loads") == [(8,)]
    assert store.verify() == []
