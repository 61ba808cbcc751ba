"""Sensors and schedules evaluated the way the daemon evaluates them, and an integration asset."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from aragora_pipelines.definitions import (
    POOL_LIMITS,
    RESOURCES,
    daily_evidence_schedule,
    daily_integrations_schedule,
    evidence_assets,
    evidence_freshness_checks,
    integration_assets,
    topics_sensor,
)
from aragora_pipelines.resources import DuckDBStoreResource, integration_resource_class
from aragora_pipelines.store import EvidenceStore
from connectors.registry import INTEGRATION_CONNECTORS

TICK = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def test_topics_sensor_adds_new_topics_and_applies_pool_limits(topics_file: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics_file))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["added-in-the-ui"])
    result = topics_sensor(build_sensor_context(instance=instance))
    added = {k for request in result.dynamic_partitions_requests for k in request.partition_keys}
    assert added == {"ai-safety", "rate-limiting"}
    assert instance.event_log_storage.get_concurrency_info("arxiv_api").slot_count == POOL_LIMITS["arxiv_api"]
    instance.add_dynamic_partitions("topics", sorted(added))
    assert isinstance(topics_sensor(build_sensor_context(instance=instance)), SkipReason)
    assert "added-in-the-ui" in instance.get_dynamic_partitions("topics")


def test_daily_evidence_schedule_targets_yesterday_for_configured_sources_only() -> None:
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("topics", ["ai-safety", "rate-limiting"])
        requests = list(daily_evidence_schedule(build_schedule_context(instance=instance,
                                                                       scheduled_execution_time=TICK)))
    assert len(requests) == 2 and all(isinstance(r, RunRequest) for r in requests)
    assert {r.partition_key for r in requests} == {"2026-03-01|ai-safety", "2026-03-01|rate-limiting"}
    selected = {k.path[-1] for k in requests[0].asset_selection}
    assert "evidence_hackernews" in selected and "evidence_arxiv" in selected
    assert "evidence_twitter" not in selected and "evidence_newsapi" not in selected  # no credentials


def test_integrations_schedule_skips_without_credentials_and_runs_configured_services(
        monkeypatch: pytest.MonkeyPatch) -> None:
    context = build_schedule_context(instance=DagsterInstance.ephemeral(), scheduled_execution_time=TICK)
    assert isinstance(daily_integrations_schedule(context), SkipReason)
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_schedule0000000000")
    request = daily_integrations_schedule(context)
    assert isinstance(request, RunRequest) and request.partition_key == "2026-03-01"
    assert {k.path[-1].split("_", 1)[0] for k in request.asset_selection} == {"stripe"}


def test_stripe_customers_partition_from_the_simulator(apisim, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk_test_e2eSecretValue0123456789"
    monkeypatch.setenv("STRIPE_API_KEY", secret)
    store_path = tmp_path / "objects.duckdb"
    stripe = integration_resource_class(*INTEGRATION_CONNECTORS["stripe"])(
        base_url=apisim.stripe, rate_limit_per_second=1000, base_delay_seconds=0.01)
    result = materialize([integration_assets["stripe_customers"]], partition_key="2026-01-01",
                         resources={**RESOURCES, "store": DuckDBStoreResource(path=str(store_path)),
                                    "stripe": stripe})
    assert result.success
    store = EvidenceStore(store_path)
    ids = sorted(r[0] for r in store.query("SELECT id FROM stripe_customers"))
    truth = apisim.truth("stripe")
    assert len(ids) == truth["count"]
    assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == truth["sha256_sorted_ids"]
    assert store.query("SELECT count(*) FROM provenance WHERE item_table = 'stripe_customers'") == [(len(ids),)]
    assert secret.encode() not in store_path.read_bytes()
    assert store.verify() == []


def test_evidence_partition_freshness_check_reports_missing_topics(apisim, run_assets, instance) -> None:
    from dagster import MultiPartitionKey

    from assets.freshness import due_day
    day = due_day(datetime.now(UTC), deadline_hour=6)
    fresh = MultiPartitionKey({"date": day, "topic": "ai-safety"})
    hn = {"base_url": apisim.hn, "max_retries": 1, "base_delay_seconds": 0.01}
    assert run_assets([evidence_assets["hackernews"]], fresh, hackernews=hn).success
    check = next(c for c in evidence_freshness_checks if "evidence_hackernews" in str(c.check_keys))
    result = materialize([evidence_assets["hackernews"], check], instance=instance,
                         selection=AssetSelection.checks(check), resources=RESOURCES, raise_on_error=False)
    evaluation = next(e.asset_check_evaluation_data for e in result.all_events
                      if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert not evaluation.passed  # rate-limiting has no partition for the due day yet
    assert evaluation.metadata["missing_topics"].value == "rate-limiting"


def test_due_day_waits_for_the_deadline() -> None:
    from assets.freshness import due_day
    assert due_day(datetime(2026, 3, 2, 5, 59, tzinfo=UTC), 6) == "2026-02-28"
    assert due_day(datetime(2026, 3, 2, 6, 0, tzinfo=UTC), 6) == "2026-03-01"


def test_catalog_is_requested_after_a_source_loads(run_assets, instance) -> None:
    from dagster import evaluate_automation_conditions

    from aragora_pipelines.definitions import defs
    first = evaluate_automation_conditions(defs=defs, instance=instance)
    assert first.total_requested == 0  # nothing loaded yet
    assert run_assets([evidence_assets["local_docs"]], "rate-limiting").success
    after = evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert after.total_requested == 1
    assert defs.resolve_sensor_def("evidence_catalog_automation") is not None


def test_topic_schedule_runs_the_document_sources_per_topic() -> None:
    from aragora_pipelines.definitions import daily_topic_evidence_schedule
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("topics", ["ai-safety"])
        requests = list(daily_topic_evidence_schedule(build_schedule_context(instance=instance,
                                                                             scheduled_execution_time=TICK)))
    assert [r.partition_key for r in requests] == ["ai-safety"]
    assert {k.path[-1] for k in requests[0].asset_selection} == {"evidence_local_docs", "evidence_sql"}
