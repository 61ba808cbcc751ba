"""The Dagster code location: assets from the connector registry, resources, jobs, schedules, sensors."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationConditionSensorDefinition,
    DailyPartitionsDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    define_asset_job,
    schedule,
    sensor,
)

from aragora_pipelines.resources import (
    DuckDBStoreResource,
    TopicsResource,
    evidence_resource_class,
    integration_resource_class,
)
from aragora_pipelines.topics import load_topics
from assets.catalog import evidence_catalog_asset
from assets.evidence import evidence_asset
from assets.freshness import partition_freshness_checks
from assets.integrations import integration_asset
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

SAMPLE_DIR = Path(__file__).with_name("sample")
START_DATE = os.environ.get("ARAGORA_START_DATE", "2026-01-01")
EMBEDDED_SOURCES = ("local_docs", "sql")

# Per-API concurrency: at most this many steps of one API run at once across all runs, so a
# backfill cannot exceed the API's published limits (each connector also paces its own requests).
POOL_LIMITS = {
    "arxiv_api": 1,        # one request per 3 s
    "sec_api": 2,          # 10 requests/s shared
    "github_api": 1,       # search: 30 requests/min
    "twitter_api": 1,      # recent search: 450 requests / 15 min
    "reddit_api": 1,       # 100 requests/min with OAuth, 10 anonymous
    "newsapi_api": 1,      # 100 requests/day on the developer plan
    "wikipedia_api": 2,
    "hackernews_api": 4,
    "web_api": 2,
    "whisper_api": 1,
    "local_docs_api": 4,   # local files and databases: bounded only to spare the machine
    "sql_api": 4,
    "hubspot_api": 1,      # search: 4 requests/s per account
    "docusign_api": 1,     # 3,000 calls/hour per account
    "stripe_api": 2,
    "pagerduty_api": 2,
}

daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
topic_partitions = DynamicPartitionsDefinition(name="topics")
evidence_partitions = MultiPartitionsDefinition({"date": daily_partitions, "topic": topic_partitions})

evidence_assets = {
    source: evidence_asset(
        source,
        partitions_def=evidence_partitions if cls.HAS_TIME_AXIS else topic_partitions,
        has_time_axis=cls.HAS_TIME_AXIS,
    )
    for source, cls in EVIDENCE_CONNECTORS.items()
}
integration_assets = {
    f"{service}_{object_type}": integration_asset(service, object_type, partitions_def=daily_partitions)
    for service, (cls, _) in INTEGRATION_CONNECTORS.items()
    for object_type in cls.OBJECT_TYPES
}
catalog = evidence_catalog_asset(list(evidence_assets.values()))

timed_sources = [s for s, cls in EVIDENCE_CONNECTORS.items() if cls.HAS_TIME_AXIS]
untimed_sources = [s for s, cls in EVIDENCE_CONNECTORS.items() if not cls.HAS_TIME_AXIS]

evidence_daily_job = define_asset_job(
    "evidence_daily", selection=[evidence_assets[s] for s in timed_sources],
    description="Evidence from every time-aware source for one day and topic.")
evidence_topics_job = define_asset_job(
    "evidence_by_topic", selection=[evidence_assets[s] for s in untimed_sources],
    description="Evidence from sources without a time axis (documents, databases, audio) for one topic.")
embedded_default_job = define_asset_job(
    "embedded_default", selection=[evidence_assets[s] for s in EMBEDDED_SOURCES],
    description="The offline default: the sample documents and the sample database, per topic.")
catalog_job = define_asset_job("evidence_catalog_refresh", selection=[catalog])
integrations_daily_job = define_asset_job(
    "integrations_daily", selection=list(integration_assets.values()),
    description="Every integration object type for one day.")


def _resources() -> dict[str, object]:
    """The store, the topics file and one resource per connector (offline defaults for the samples)."""
    defaults = {
        "local_docs": {"root": os.environ.get("ARAGORA_LOCAL_DOCS_ROOT") or str(SAMPLE_DIR / "docs")},
        "sql": {"dsn": os.environ.get("ARAGORA_SQL_DSN") or f"sqlite:///{SAMPLE_DIR / 'articles.sqlite'}",
                "options": {"table": os.environ.get("ARAGORA_SQL_TABLE", "articles")}},
    }
    resources: dict[str, object] = {"store": DuckDBStoreResource(), "topics": TopicsResource()}
    for source, cls in EVIDENCE_CONNECTORS.items():
        resources[source] = evidence_resource_class(cls)(**defaults.get(source, {}))
    for service, (cls, creds) in INTEGRATION_CONNECTORS.items():
        resources[service] = integration_resource_class(cls, creds)()
    return resources


RESOURCES = _resources()


def configured(source: str) -> bool:
    """Whether the connector behind ``source`` has its credentials (checked without any request)."""
    try:
        connector = RESOURCES[source].build()  # type: ignore[attr-defined]
    except Exception:  # missing credentials raise while building integration connectors
        return False
    return bool(getattr(connector, "is_configured", True))


def _latest_day(now: datetime) -> str:
    return (now.astimezone(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def _evidence_requests(context: ScheduleEvaluationContext, sources: list[str], timed: bool
                       ) -> Iterator[RunRequest | SkipReason]:
    """One run per topic over the configured ``sources``: yesterday's day x topic partition, or the topic."""
    day = _latest_day(context.scheduled_execution_time)
    topics = context.instance.get_dynamic_partitions("topics")
    selection = [AssetKey(f"evidence_{s}") for s in sources if configured(s)]
    if not topics or not selection:
        yield SkipReason("no topics yet, or none of these evidence sources is configured")
        return
    for topic in topics:
        key = MultiPartitionKey({"date": day, "topic": topic}) if timed else topic
        yield RunRequest(run_key=f"{day}|{topic}", asset_selection=selection, partition_key=key)


@schedule(cron_schedule="0 3 * * *", execution_timezone="UTC", job=evidence_daily_job,
          default_status=DefaultScheduleStatus.RUNNING)
def daily_evidence_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    """Every day, for each topic: yesterday's partition of every configured time-aware source."""
    yield from _evidence_requests(context, timed_sources, timed=True)


@schedule(cron_schedule="30 3 * * *", execution_timezone="UTC", job=evidence_topics_job,
          default_status=DefaultScheduleStatus.RUNNING)
def daily_topic_evidence_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    """Every day, for each topic: the sources without a time axis (documents, databases, audio)."""
    yield from _evidence_requests(context, untimed_sources, timed=False)


@schedule(cron_schedule="0 4 * * *", execution_timezone="UTC", job=integrations_daily_job,
          default_status=DefaultScheduleStatus.RUNNING)
def daily_integrations_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Every day: yesterday's partition of each configured integration."""
    day = _latest_day(context.scheduled_execution_time)
    selection = [AssetKey(k) for k in integration_assets if configured(k.split("_", 1)[0])]
    if not selection:
        return SkipReason("no integration has credentials; see the README's credentials section")
    return RunRequest(run_key=day, partition_key=day, asset_selection=selection)


def sync_topics(instance: object) -> list[str]:
    """Add the topics file's keys to the ``topics`` dynamic partitions; returns the keys added."""
    existing = set(instance.get_dynamic_partitions("topics"))  # type: ignore[attr-defined]
    new = [key for key in load_topics() if key not in existing]
    if new:
        instance.add_dynamic_partitions("topics", new)  # type: ignore[attr-defined]
    return new


def apply_pool_limits(instance: object) -> None:
    """Set each API pool's concurrency limit on the instance (idempotent)."""
    storage = instance.event_log_storage  # type: ignore[attr-defined]
    for pool, limit in POOL_LIMITS.items():
        storage.set_concurrency_slots(pool, limit)


@sensor(minimum_interval_seconds=30, default_status=DefaultSensorStatus.RUNNING)
def topics_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Mirror the topics YAML into the ``topics`` partitions (topics added in the UI are kept)."""
    apply_pool_limits(context.instance)
    existing = set(context.instance.get_dynamic_partitions("topics"))
    new = [key for key in load_topics() if key not in existing]
    if not new:
        return SkipReason("topics are in sync")
    return SensorResult(dynamic_partitions_requests=[topic_partitions.build_add_request(new)])


# Per-partition freshness: each day's partition must exist by 06:00 UTC the next day. Dagster marks
# these builders "superseded" by FreshnessPolicy, which we also set, but only they check every
# daily partition (a FreshnessPolicy looks at the latest materialization), so both are kept.
# They understand purely day-partitioned assets only; day x topic evidence gets our own check.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", SupersessionWarning)
    freshness_checks = build_time_partition_freshness_checks(
        assets=list(integration_assets.values()), deadline_cron="0 6 * * *")
    freshness_sensor = build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks, default_status=DefaultSensorStatus.RUNNING)

evidence_freshness_checks = partition_freshness_checks([evidence_assets[s] for s in timed_sources], deadline_hour=6)
evidence_freshness_job = define_asset_job(
    "evidence_freshness_checks", selection=AssetSelection.checks(*evidence_freshness_checks),
    description="Checks that every topic's partition of the due day exists.")


@sensor(job=evidence_freshness_job, minimum_interval_seconds=3600, default_status=DefaultSensorStatus.RUNNING)
def evidence_freshness_sensor(context: SensorEvaluationContext) -> RunRequest | SkipReason:
    """Hourly: evaluate the day x topic freshness check of every configured time-aware source."""
    keys = [key for check in evidence_freshness_checks for key in check.check_keys
            if configured(key.asset_key.path[-1].removeprefix("evidence_"))]
    if not keys:
        return SkipReason("no configured time-aware evidence source")
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    return RunRequest(run_key=hour, asset_selection=[], asset_check_keys=keys)

# Evaluates the catalog's automation condition: the views and the full-text index follow every load.
catalog_automation_sensor = AutomationConditionSensorDefinition(
    "evidence_catalog_automation", target=AssetSelection.assets(catalog), default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60)

defs = Definitions(
    assets=[*evidence_assets.values(), *integration_assets.values(), catalog],
    asset_checks=[*freshness_checks, *evidence_freshness_checks],
    jobs=[evidence_daily_job, evidence_topics_job, embedded_default_job, catalog_job, integrations_daily_job,
          evidence_freshness_job],
    schedules=[daily_evidence_schedule, daily_topic_evidence_schedule, daily_integrations_schedule],
    sensors=[topics_sensor, freshness_sensor, evidence_freshness_sensor, catalog_automation_sensor],
    resources=RESOURCES,
)
