"""Eight partitions materialized at once, in separate processes, against one DuckDB file."""

from __future__ import annotations

import multiprocessing
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aragora_pipelines.store import EvidenceStore

TOPICS = ("ai-safety", "rate-limiting")


def materialize_partition(store_path: str, topics_file: str, hn_url: str, day: str, topic: str) -> bool:
    """One run, in its own process: evidence_hackernews for (day, topic) into the shared store."""
    os.environ["ARAGORA_TOPICS_FILE"] = topics_file
    from dagster import DagsterInstance, MultiPartitionKey, materialize

    from aragora_pipelines.definitions import RESOURCES, evidence_assets
    from aragora_pipelines.resources import DuckDBStoreResource, evidence_resource_class
    from connectors.hackernews import HackerNewsConnector

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", list(TOPICS))
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=store_path),
                 "hackernews": evidence_resource_class(HackerNewsConnector)(
                     base_url=hn_url, max_retries=2, base_delay_seconds=0.05)}
    result = materialize([evidence_assets["hackernews"]], instance=instance, resources=resources,
                         partition_key=MultiPartitionKey({"date": day, "topic": topic}),
                         run_config={"ops": {"evidence_hackernews": {"config": {"limit": 1000}}}},
                         raise_on_error=False)
    return result.success


@pytest.mark.slow
def test_eight_partitions_in_eight_processes_all_succeed_with_exact_rows(make_sim, tmp_path: Path,
                                                                        topics_file: Path) -> None:
    sim = make_sim(records=300, latency_ms=20)
    store_path = tmp_path / "shared.duckdb"
    # 4 days x 2 topics. The simulator honours each day's window and holds 300 records, all on 2026-01-01,
    # so both topics' runs for that day fetch the same 300 items at once and the other days fetch none.
    days = [f"2026-01-0{d}" for d in range(1, 5)]
    partitions = [(day, topic) for day in days for topic in TOPICS]
    # spawn, not fork: forking a pytest process whose other threads (simulators, loggers, watchdogs) may hold a
    # lock at that instant deadlocked a child now and then; a spawned run starts clean and imports what it needs.
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        outcomes = pool.starmap(materialize_partition,
                                [(str(store_path), str(topics_file), sim.hn, day, topic) for day, topic in partitions])
    assert outcomes == [True] * 8
    store = EvidenceStore(store_path)
    counts = store.counts()
    assert counts["evidence"] == sim.truth("hn")["count"] == 300
    assert counts["provenance"] == 300  # one 2026-01-01 run inserted each item, the other found it unchanged
    assert counts["loads"] == 8
    starts = {day: datetime.fromisoformat(day).replace(tzinfo=UTC) for day in days}
    in_day = {day: sim.truth("hn", since=start, until=start + timedelta(days=1))["count"]
              for day, start in starts.items()}
    assert in_day == {"2026-01-01": 300, "2026-01-02": 0, "2026-01-03": 0, "2026-01-04": 0}
    assert dict(store.query("SELECT partition_key, rows_fetched FROM loads")) == {
        f"{day}|{topic}": in_day[day] for day, topic in partitions}
    assert store.query("SELECT count(DISTINCT partition_key) FROM loads") == [(8,)]
    assert store.verify() == []
