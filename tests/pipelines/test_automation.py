"""Sensors and schedules evaluated the way the daemon evaluates them, and an integration asset."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
    materialize,
)

from aragora_pipelines.definitions import (
    FRESHNESS_DEADLINE_HOUR,
    POOL_LIMITS,
    RESOURCES,
    build_freshness_sensor,
    daily_evidence_schedule,
    daily_integrations_schedule,
    daily_tick,
    evidence_assets,
    freshness_checks,
    freshness_sensor,
    integration_assets,
    topics_sensor,
)
from aragora_pipelines.resources import (
    DuckDBStoreResource,
    TopicsResource,
    evidence_resource_class,
    integration_resource_class,
)
from aragora_pipelines.store import EvidenceStore
from aragora_pipelines.topics import scheduled_topics
from assets.freshness import ACTIVE_KEY_PREFIX, CHECK_NAME, due_day, partition_freshness_check, tick_for
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

TICK = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


def test_topics_sensor_adds_new_topics_and_applies_pool_limits(topics_file: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics_file))
    instance = DagsterInstance.ephemeral()  # both sync directions: tests/pipelines/test_topics.py
    result = topics_sensor(build_sensor_context(instance=instance))
    added = {k for request in result.dynamic_partitions_requests for k in request.partition_keys}
    assert added == {"ai-safety", "rate-limiting"}
    assert instance.event_log_storage.get_concurrency_info("arxiv_api").slot_count == POOL_LIMITS["arxiv_api"]
    instance.add_dynamic_partitions("topics", sorted(added))
    again = topics_sensor(build_sensor_context(instance=instance, cursor=result.cursor))
    assert not again.dynamic_partitions_requests and again.skip_reason.skip_message == "topics are in sync"


def test_daily_evidence_schedule_targets_yesterday_for_configured_sources_only() -> None:
    with instance_for_test() as instance:  # the shipped topics file: rate-limiting, circuit-breakers, ...
        instance.add_dynamic_partitions("topics", ["circuit-breakers", "rate-limiting"])
        requests = list(daily_evidence_schedule(build_schedule_context(instance=instance,
                                                                       scheduled_execution_time=TICK)))
    assert len(requests) == 2 and all(isinstance(r, RunRequest) for r in requests)
    assert {r.partition_key for r in requests} == {"2026-03-01|circuit-breakers", "2026-03-01|rate-limiting"}
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


def _evaluate(asset_def: AssetsDefinition, instance: DagsterInstance, partition_key: str | None = None,
              **resources: Any) -> AssetCheckEvaluation:
    """``daily_partitions_fresh`` of ``asset_def`` evaluated in one run: the hourly sensor's run (checks only), or,
    with ``partition_key``, a run materializing that partition (what a schedule or backfill run does)."""
    check = next(c for c in freshness_checks if asset_def.key in {k.asset_key for k in c.check_keys})
    result = materialize([asset_def, check], instance=instance, partition_key=partition_key,
                         selection=None if partition_key else AssetSelection.checks(check),
                         resources={**RESOURCES, **resources}, raise_on_error=False)
    return next(e for e in result.get_asset_check_evaluations() if e.check_name == CHECK_NAME)


def _activate(instance: DagsterInstance, asset: str, topics: list[str], since: datetime) -> None:
    """Record that ``asset``'s source and ``topics`` became active at ``since`` (as an older deployment would have)."""
    instance.run_storage.set_cursor_values({f"{ACTIVE_KEY_PREFIX}{asset}|{t}": since.isoformat() for t in topics})


def _hn(apisim: Any, store_path: Path, topics_file: Path) -> dict[str, Any]:
    """Resources that point HackerNews at the simulator and the store and topics at temporary files."""
    hn = evidence_resource_class(EVIDENCE_CONNECTORS["hackernews"])(base_url=apisim.hn, max_retries=1,
                                                                     base_delay_seconds=0.01)
    return {"hackernews": hn, "store": DuckDBStoreResource(path=str(store_path)),
            "topics": TopicsResource(file=str(topics_file))}


def test_a_fresh_deployment_is_not_due_yet(instance: DagsterInstance) -> None:
    evaluation = _evaluate(evidence_assets["hackernews"], instance)
    assert evaluation.passed  # nothing materialized, but both topics were first seen just now
    assert evaluation.metadata["due"].value == 0
    assert evaluation.metadata["not_due_yet"].value.startswith("ai-safety, rate-limiting: active since ")
    again = _evaluate(evidence_assets["hackernews"], instance)
    assert again.metadata["not_due_yet"] == evaluation.metadata["not_due_yet"]  # first seen is kept


def test_once_due_the_check_reports_the_missing_topics(apisim, instance: DagsterInstance, store_path: Path,
                                                       topics_file: Path) -> None:
    _activate(instance, "evidence_hackernews", ["ai-safety", "rate-limiting"], datetime(2026, 1, 1, tzinfo=UTC))
    day = due_day(datetime.now(UTC), FRESHNESS_DEADLINE_HOUR)
    resources = _hn(apisim, store_path, topics_file)
    assert _evaluate(evidence_assets["hackernews"], instance, f"{day}|ai-safety", **resources).passed
    evaluation = _evaluate(evidence_assets["hackernews"], instance)
    assert not evaluation.passed and evaluation.severity == AssetCheckSeverity.WARN
    assert (evaluation.metadata["day"].value, evaluation.metadata["missing"].value) == (day, f"{day}|rate-limiting")
    assert "not_due_yet" not in evaluation.metadata


def test_a_topic_added_after_the_days_tick_is_not_due(instance: DagsterInstance) -> None:
    day = due_day(datetime.now(UTC), FRESHNESS_DEADLINE_HOUR)
    tick = tick_for(day, daily_tick(daily_evidence_schedule))
    _activate(instance, "evidence_hackernews", ["ai-safety"], tick - timedelta(minutes=1))
    _activate(instance, "evidence_hackernews", ["rate-limiting"], tick + timedelta(minutes=1))
    evaluation = _evaluate(evidence_assets["hackernews"], instance)
    assert not evaluation.passed
    assert evaluation.metadata["missing"].value == f"{day}|ai-safety"
    assert evaluation.metadata["not_due_yet"].value.startswith("rate-limiting: active since ")


def test_in_a_backfill_run_the_check_judges_the_partition_being_run(apisim, instance: DagsterInstance,
                                                                     store_path: Path, topics_file: Path) -> None:
    # Long active and nothing of the due day stored: the hourly evaluation would fail.
    _activate(instance, "evidence_hackernews", ["ai-safety", "rate-limiting"], datetime(2026, 1, 1, tzinfo=UTC))
    evaluation = _evaluate(evidence_assets["hackernews"], instance, "2026-01-02|rate-limiting",
                           **_hn(apisim, store_path, topics_file))
    assert evaluation.passed
    assert evaluation.metadata["partitions"].value == "2026-01-02|rate-limiting"
    assert evaluation.metadata["missing"].value == ""


def test_day_partitioned_assets_get_the_same_check_counted_from_activation() -> None:
    stripe = integration_assets["stripe_charges"]
    check = partition_freshness_check(stripe, tick=daily_tick(daily_integrations_schedule))
    with instance_for_test() as inst:
        first = materialize([stripe, check], instance=inst, selection=AssetSelection.checks(check),
                            resources=RESOURCES).get_asset_check_evaluations()[0]
        assert first.passed and first.metadata["not_due_yet"].value.startswith("the partition: active since ")
        _activate(inst, "stripe_charges", [""], datetime(2026, 1, 1, tzinfo=UTC))
        due = materialize([stripe, check], instance=inst, selection=AssetSelection.checks(check),
                          resources=RESOURCES, raise_on_error=False).get_asset_check_evaluations()[0]
    assert not due.passed and due.metadata["missing"].value == due.metadata["day"].value
    assert due.metadata["due"].value == 1 and "topics" not in due.metadata


def test_unconfigured_sources_have_no_freshness_check_and_say_what_to_set() -> None:
    checked = {k.asset_key.path[-1] for c in freshness_checks for k in c.check_keys}
    assert "evidence_twitter" not in checked and "stripe_charges" not in checked
    assert "Freshness check off" not in (evidence_assets["hackernews"].descriptions_by_key[
        evidence_assets["hackernews"].key])
    twitter = evidence_assets["twitter"]
    assert "Freshness check off: not configured (set TWITTER_BEARER_TOKEN)" in twitter.descriptions_by_key[twitter.key]
    stripe = integration_assets["stripe_charges"]
    assert "STRIPE_API_KEY" in stripe.descriptions_by_key[stripe.key]


def test_the_freshness_sensor_requests_every_check_once_an_hour() -> None:
    with instance_for_test() as inst:
        request = freshness_sensor(build_sensor_context(instance=inst))
    assert isinstance(request, RunRequest) and request.asset_selection == []
    assert set(request.asset_check_keys) == {k for c in freshness_checks for k in c.check_keys}
    assert request.run_key == datetime.now(UTC).strftime("%Y-%m-%dT%H")
    assert build_freshness_sensor(DefaultSensorStatus.STOPPED).default_status == DefaultSensorStatus.STOPPED


def test_due_day_waits_for_the_deadline() -> None:
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
        instance.add_dynamic_partitions("topics", ["data-provenance"])
        requests = list(daily_topic_evidence_schedule(build_schedule_context(instance=instance,
                                                                             scheduled_execution_time=TICK)))
    assert [r.partition_key for r in requests] == ["data-provenance"]
    assert {k.path[-1] for k in requests[0].asset_selection} == {"evidence_local_docs", "evidence_sql"}


def test_a_partition_kept_for_its_data_after_its_topic_left_the_file_is_not_scheduled_or_due(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  rate-limiting:\n    query: rate limiting\n", "utf-8")
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("topics", ["rate-limiting", "retired-topic"])
        requests = list(daily_evidence_schedule(build_schedule_context(instance=instance,
                                                                       scheduled_execution_time=TICK)))
        assert [r.partition_key for r in requests] == ["2026-03-01|rate-limiting"]
        assert scheduled_topics(instance) == ["rate-limiting"]
        topics.unlink()  # no topics file at all: the partitions are all there is
        assert scheduled_topics(instance) == ["rate-limiting", "retired-topic"]
