"""The code location loads, and every ingestion asset carries its retry policy, freshness policy and checks."""

from __future__ import annotations

from dagster import AssetKey, Backoff, Definitions, Jitter

from aragora_pipelines.definitions import (
    POOL_LIMITS,
    daily_evidence_schedule,
    daily_integrations_schedule,
    defs,
    evidence_assets,
    integration_assets,
)
from assets.evidence import CHECKS
from assets.integrations import OBJECT_CHECKS
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS


def test_definitions_validate() -> None:
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {"evidence_daily", "evidence_by_topic", "embedded_default", "integrations_daily"} <= {
        j.name for j in repo.get_all_jobs()}


def test_one_evidence_asset_per_registered_source_and_one_asset_per_object_type() -> None:
    assert set(evidence_assets) == set(EVIDENCE_CONNECTORS)
    expected = {f"{s}_{o}" for s, (cls, _) in INTEGRATION_CONNECTORS.items() for o in cls.OBJECT_TYPES}
    assert set(integration_assets) == expected
    assert {"stripe_customers", "stripe_charges", "hubspot_contacts", "pagerduty_incidents",
            "docusign_envelopes"} <= expected


def test_every_ingestion_asset_has_retry_freshness_pool_and_checks() -> None:
    for name, asset_def in {**{f"evidence_{k}": v for k, v in evidence_assets.items()}, **integration_assets}.items():
        key = AssetKey(name)
        policy = asset_def.op.retry_policy
        assert policy is not None and policy.max_retries >= 1, name
        assert policy.backoff is Backoff.EXPONENTIAL and policy.jitter is not None and policy.jitter != Jitter.FULL
        assert asset_def.specs_by_key[key].freshness_policy is not None, name
        assert asset_def.op.pool in POOL_LIMITS, name
        checks = {c.name for c in asset_def.check_specs}
        assert checks == set(CHECKS if name.startswith("evidence_") else OBJECT_CHECKS), name


def test_time_aware_sources_are_day_by_topic_and_the_others_topic_only() -> None:
    for source, cls in EVIDENCE_CONNECTORS.items():
        partitions = evidence_assets[source].partitions_def
        dims = {d.name for d in getattr(partitions, "partitions_defs", [])}
        assert (dims == {"date", "topic"}) if cls.HAS_TIME_AXIS else (partitions.name == "topics"), source


def test_daily_partition_freshness_checks_cover_daily_assets() -> None:
    check_keys = {k.asset_key.path[-1] for k in defs.resolve_asset_graph().asset_check_keys
                  if k.name == "daily_partitions_fresh"}
    # Configured sources only (no credentials in the test environment): the others cannot run.
    assert "evidence_hackernews" in check_keys and "evidence_local_docs" not in check_keys  # topic only: no days
    assert "stripe_charges" not in check_keys and "evidence_twitter" not in check_keys


def test_schedules_target_the_daily_jobs() -> None:
    assert daily_evidence_schedule.cron_schedule == "0 3 * * *"
    assert daily_integrations_schedule.job_name == "integrations_daily"
