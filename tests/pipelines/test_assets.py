"""Real materializations with an ephemeral instance: the simulator, HTTP mocks and the sample sources."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, MultiPartitionKey, RetryPolicy, materialize

from aragora_pipelines.definitions import (
    SAMPLE_DIR,
    catalog,
    evidence_assets,
    evidence_partitions,
)
from aragora_pipelines.resources import DuckDBStoreResource
from aragora_pipelines.store import EvidenceStore
from assets.evidence import evidence_asset
from tests.conftest import realapi_path

DAY = MultiPartitionKey({"date": "2026-01-01", "topic": "ai-safety"})
HN_FAST = {"max_retries": 1, "base_delay_seconds": 0.01, "max_delay_seconds": 0.05, "timeout_seconds": 5}


def materialization(result: Any, asset: str) -> dict[str, Any]:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def checks(result: Any) -> dict[str, bool]:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
            for e in result.all_events if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION}


def test_hackernews_partition_from_the_simulator_stores_exactly_the_source(apisim, run_assets, store) -> None:
    result = run_assets([evidence_assets["hackernews"]], DAY, hackernews={"base_url": apisim.hn, **HN_FAST,
                                                                          "options": {"hits_per_page": 100}})
    assert result.success
    truth = apisim.truth("hn")
    ids = [r[0] for r in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews' ORDER BY 1")]
    assert len(ids) == truth["count"] == 500
    assert hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest() == truth["sha256_sorted_ids"]
    meta = materialization(result, "evidence_hackernews")
    assert (meta["dagster/row_count"], meta["rows_new"], meta["rows_unchanged"]) == (500, 500, 0)
    assert meta["dagster/table_name"] == "evidence"
    assert all(checks(result).values()) and len(checks(result)) == 4
    prov = store.query("SELECT DISTINCT run_id, asset_key, partition_key, claim_id FROM provenance")
    assert prov == [(result.run_id, "evidence_hackernews", "2026-01-01|ai-safety", "claim_ai")]
    assert store.query("SELECT count(*) FROM claim_citations WHERE claim_id = 'claim_ai'") == [(500,)]


def test_rematerializing_is_idempotent(apisim, run_assets, store) -> None:
    config = {"base_url": apisim.hn, **HN_FAST}
    assert run_assets([evidence_assets["hackernews"]], DAY, hackernews=config).success
    before = store.counts()
    again = run_assets([evidence_assets["hackernews"]], DAY, hackernews=config)
    assert again.success
    meta = materialization(again, "evidence_hackernews")
    assert (meta["rows_new"], meta["rows_changed"], meta["rows_unchanged"]) == (0, 0, 500)
    after = store.counts()
    assert (after["evidence"], after["provenance"]) == (before["evidence"], before["provenance"])
    assert after["loads"] == before["loads"] + 1


def _hn_body(title_suffix: str = "") -> dict[str, Any]:
    body = json.loads(realapi_path("hackernews/algolia_search_by_url.json").read_text())
    body = copy.deepcopy(body)
    body["hits"][0]["title"] = body["hits"][0]["title"] + title_suffix
    for offset, hit in enumerate(body["hits"]):  # inside the DAY partition: items outside it would be dropped
        hit["created_at_i"] = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()) + offset
        hit["created_at"] = datetime.fromtimestamp(hit["created_at_i"], UTC).isoformat().replace("+00:00", "Z")
    return body


def test_changed_upstream_item_adds_one_linked_provenance_record(httpx_mock, run_assets, store) -> None:
    httpx_mock.add_response(json=_hn_body())
    httpx_mock.add_response(json=_hn_body(" (updated)"))
    config = {"base_url": "https://hn.example/api/v1", **HN_FAST}
    assert run_assets([evidence_assets["hackernews"]], DAY, hackernews=config).success
    hits = len(_hn_body()["hits"])
    assert store.counts()["provenance"] == hits
    second = run_assets([evidence_assets["hackernews"]], DAY, hackernews=config)
    assert materialization(second, "evidence_hackernews")["rows_changed"] == 1
    assert store.counts()["provenance"] == hits + 1
    assert store.verify() == []


def test_crash_after_fetch_before_commit_leaves_the_store_unchanged(apisim, run_assets, store, monkeypatch) -> None:
    asset = evidence_asset("hackernews", partitions_def=evidence_partitions, has_time_axis=True,
                           retry_policy=RetryPolicy(max_retries=0))
    config = {"base_url": apisim.hn, **HN_FAST}
    assert run_assets([asset], DAY, hackernews=config).success
    before = store.query("SELECT id, content_hash, last_seen FROM evidence ORDER BY id")
    counts = store.counts()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected crash after fetching, before commit")

    monkeypatch.setattr(EvidenceStore, "_log_load", crash)
    # Another partition of the same day: the simulator honours the day window, so it fetches the same 500 items.
    failed = run_assets([asset], MultiPartitionKey({"date": "2026-01-01", "topic": "rate-limiting"}),
                        hackernews=config)
    assert not failed.success
    assert store.counts() == counts
    assert store.query("SELECT id, content_hash, last_seen FROM evidence ORDER BY id") == before


def test_unconfigured_connector_fails_at_once_naming_the_variable(run_assets, store) -> None:
    result = run_assets([evidence_assets["twitter"]], DAY)
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert "TWITTER_BEARER_TOKEN" in str(failures[0].event_specific_data.error)
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert not store.path.exists() or store.counts()["evidence"] == 0


def test_open_breaker_becomes_a_dagster_retry_after_the_cooldown(make_sim, run_assets, store) -> None:
    down = make_sim(records=10, fail_rate=1.0)
    config = {"base_url": down.hn, "max_retries": 2, "base_delay_seconds": 0.01, "max_delay_seconds": 0.02,
              "circuit_failure_threshold": 2, "circuit_cooldown_seconds": 0.3, "timeout_seconds": 5}
    result = run_assets([evidence_assets["hackernews"]], DAY, hackernews=config)
    assert not result.success
    retries = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert retries, "an open breaker must become a Dagster retry"
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "circuit" in str(failure.event_specific_data.error).lower()
    assert not store.path.exists() or store.counts()["evidence"] == 0


def test_sample_sources_and_catalog(run_assets, store) -> None:
    result = run_assets([evidence_assets["local_docs"], evidence_assets["sql"]], "rate-limiting")
    assert result.success, [str(e) for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    sources = dict(store.query("SELECT source, count(*) FROM evidence GROUP BY source"))
    assert sources["local_docs"] >= 2 and sources["sql"] >= 2
    docs = {p.name for p in (SAMPLE_DIR / "docs").iterdir()}
    stored = {r[0].rsplit("/", 1)[-1] for r in store.query("SELECT source_id FROM evidence WHERE source='local_docs'")}
    assert stored <= docs
    assert materialize([catalog], resources={"store": DuckDBStoreResource(path=str(store.path))}).success
    summary = dict((s, n) for s, n in store.query("SELECT source, rows FROM source_summary"))
    assert summary == sources


def test_definitions_file_paths_exist() -> None:
    assert (SAMPLE_DIR / "articles.sqlite").exists() and Path(SAMPLE_DIR / "docs").is_dir()


def test_a_long_rate_limit_becomes_a_dagster_retry_after_retry_after(httpx_mock, run_assets, store) -> None:
    # Retry-After (1 s) beyond the connector's max_retry_wait (0): one request, then a RetryRequested for 1 s,
    # even with a RetryPolicy allowing no retry: the wait is the server's, not the policy's, and costs it nothing.
    asset = evidence_asset("hackernews", partitions_def=evidence_partitions, has_time_axis=True,
                           retry_policy=RetryPolicy(max_retries=0))
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "1"}, json={"message": "slow down"})
    httpx_mock.add_response(json=_hn_body())
    config = {"base_url": "https://hn.example/api/v1", **HN_FAST, "options": {"max_retry_wait": 0}}
    result = run_assets([asset], DAY, hackernews=config)
    assert result.success, [str(e) for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    retries = [e.event_specific_data for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert [(r.seconds_to_wait, r.error.cls_name) for r in retries] == [(1.0, "RetryRequested")]
    assert len(httpx_mock.get_requests()) == 2
    assert store.counts()["evidence"] == len(_hn_body()["hits"])
