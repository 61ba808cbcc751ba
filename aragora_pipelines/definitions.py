"""The Dagster code location: assets from the connector registry, resources, jobs, schedules, sensors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

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
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from aragora_pipelines.executor import selected_executor
from aragora_pipelines.maintenance import store_maintenance_job, weekly_store_maintenance_schedule
from aragora_pipelines.resources import (
    DuckDBStoreResource,
    TopicsResource,
    evidence_resource_class,
    integration_resource_class,
)
from aragora_pipelines.sources import EMBEDDED_SOURCES, resource_defaults, source_statuses
from aragora_pipelines.sources import SAMPLE_DIR as SAMPLE_DIR  # re-exported: tests and tools find the samples here
from aragora_pipelines.topics import load_topics, reconcile, scheduled_topics
from assets.catalog import evidence_catalog_asset
from assets.evidence import evidence_asset
from assets.freshness import partition_freshness_checks
from assets.integrations import integration_asset
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

START_DATE = os.environ.get("ARAGORA_START_DATE", "2026-01-01")

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

def _resources() -> dict[str, object]:
    """The store, the topics file and one resource per connector (offline defaults for the samples)."""
    resources: dict[str, object] = {"store": DuckDBStoreResource(), "topics": TopicsResource()}
    for source, cls in EVIDENCE_CONNECTORS.items():
        resources[source] = evidence_resource_class(cls)(**resource_defaults(source))
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


def freshness_note(source: str) -> str:
    """The description line of an asset whose freshness check is not built because ``source`` is not configured."""
    if configured(source):
        return ""
    to_set = next(s.to_set for s in source_statuses() if s.source == source)
    return f"Freshness check off: not configured ({to_set}); reload the code location once set."


daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")
topic_partitions = DynamicPartitionsDefinition(name="topics")
evidence_partitions = MultiPartitionsDefinition({"date": daily_partitions, "topic": topic_partitions})

evidence_assets = {
    source: evidence_asset(
        source,
        partitions_def=evidence_partitions if cls.HAS_TIME_AXIS else topic_partitions,
        has_time_axis=cls.HAS_TIME_AXIS,
        note=freshness_note(source) if cls.HAS_TIME_AXIS else "",
    )
    for source, cls in EVIDENCE_CONNECTORS.items()
}
integration_assets = {
    f"{service}_{object_type}": integration_asset(service, object_type, partitions_def=daily_partitions,
                                                  note=freshness_note(service))
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


def _latest_day(now: datetime) -> str:
    return (now.astimezone(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")


def _evidence_requests(context: ScheduleEvaluationContext, sources: list[str], timed: bool
                       ) -> Iterator[RunRequest | SkipReason]:
    """One run per topic over the configured ``sources``: yesterday's day x topic partition, or the topic."""
    day = _latest_day(context.scheduled_execution_time)
    topics = scheduled_topics(context.instance)
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
def topics_sensor(context: SensorEvaluationContext) -> SensorResult:
    """Keep the ``topics`` partitions in step with the topics YAML, the one truth (see ``topics.reconcile``):
    new topics get a partition, UI-added partitions are written back, removed topics lose theirs unless materialized."""
    apply_pool_limits(context.instance)
    sync = reconcile(context.instance, context.cursor)
    for note in sync.notes:
        context.log.info(note)
    requests = ([topic_partitions.build_add_request(sync.add)] if sync.add else []) + (
        [topic_partitions.build_delete_request(sync.delete)] if sync.delete else [])
    return SensorResult(dynamic_partitions_requests=requests, cursor=sync.cursor,
                        skip_reason=None if requests else "; ".join(sync.notes) or "topics are in sync")


# Per-partition freshness: each day's partition must exist by 06:00 UTC the next day, once the schedule that
# produces it ticked after the source and the topic became active (assets/freshness.py). Dagster's
# build_time_partition_freshness_checks fails a never-materialized asset at once and does not know day x topic
# partitions, so it is not used. Checks are built for configured sources only (decided at load time): one
# without credentials cannot run, so its check could only be red; its description says what to set. The
# FreshnessPolicy on every asset stays.
FRESHNESS_DEADLINE_HOUR = 6
FRESHNESS_SENSOR_INTERVAL = 3600


def daily_tick(schedule_def: ScheduleDefinition) -> time:
    """The UTC time of day a daily schedule ticks, from its cron string."""
    minute, hour = str(schedule_def.cron_schedule).split()[:2]
    return time(int(hour), int(minute))


freshness_checks = [
    *partition_freshness_checks([evidence_assets[s] for s in timed_sources if configured(s)],
                                tick=daily_tick(daily_evidence_schedule), deadline_hour=FRESHNESS_DEADLINE_HOUR,
                                topics_of=scheduled_topics),
    *partition_freshness_checks([a for key, a in integration_assets.items() if configured(key.split("_", 1)[0])],
                                tick=daily_tick(daily_integrations_schedule), deadline_hour=FRESHNESS_DEADLINE_HOUR),
]
freshness_job = define_asset_job(
    "freshness_checks", selection=AssetSelection.checks(*freshness_checks),
    description="The daily partition freshness check of every configured source.")


def build_freshness_sensor(default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING) -> SensorDefinition:
    """Hourly: one run evaluating every freshness check (``default_status`` lets a test instance start it off)."""

    @sensor(name="freshness_checks_sensor", job=freshness_job, minimum_interval_seconds=FRESHNESS_SENSOR_INTERVAL,
            default_status=default_status)
    def _freshness(context: SensorEvaluationContext) -> RunRequest:
        keys = [key for check in freshness_checks for key in check.check_keys]
        return RunRequest(run_key=datetime.now(UTC).strftime("%Y-%m-%dT%H"), asset_selection=[],
                          asset_check_keys=keys)

    return _freshness


def build_catalog_automation_sensor(default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING
                                    ) -> AutomationConditionSensorDefinition:
    """Evaluates the catalog's automation condition: the views and the full-text index follow every load."""
    return AutomationConditionSensorDefinition(
        "evidence_catalog_automation", target=AssetSelection.assets(catalog), default_status=default_status,
        minimum_interval_seconds=60)


freshness_sensor = build_freshness_sensor()
catalog_automation_sensor = build_catalog_automation_sensor()

defs = Definitions(
    assets=[*evidence_assets.values(), *integration_assets.values(), catalog],
    asset_checks=freshness_checks,
    jobs=[evidence_daily_job, evidence_topics_job, embedded_default_job, catalog_job, integrations_daily_job,
          freshness_job, store_maintenance_job],
    schedules=[daily_evidence_schedule, daily_topic_evidence_schedule, daily_integrations_schedule,
               weekly_store_maintenance_schedule],
    sensors=[topics_sensor, freshness_sensor, catalog_automation_sensor],
    resources=RESOURCES,
    executor=selected_executor(),
)
