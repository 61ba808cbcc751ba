"""Per-partition freshness for daily assets: each day's partition must exist by a deadline the next day.

Dagster's built-in partition freshness checks judge every day since the partitions start, so a fresh
deployment is red at once. These checks only count a partition as due when the schedule that produces
it ticked after the asset's source and the topic became active (first seen by this check, kept in the
instance's key-value store); in a run that materializes partitions (schedule, backfill) they judge
exactly those partitions.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, time, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    DagsterInstance,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    asset_check,
)

CHECK_NAME = "daily_partitions_fresh"
ACTIVE_KEY_PREFIX = "aragora/freshness/active/"
DAY_ONLY = ""  # the single "topic" of a day-partitioned asset


def due_day(now: datetime, deadline_hour: int) -> str:
    """The newest day whose partitions must exist at ``now`` (yesterday once the deadline has passed)."""
    now = now.astimezone(UTC)
    lag = 1 if now.hour >= deadline_hour else 2
    return (now - timedelta(days=lag)).strftime("%Y-%m-%d")


def tick_for(day: str, tick: time) -> datetime:
    """When the daily schedule that produces ``day``'s partition runs: ``tick`` UTC on the next day."""
    return datetime.combine(datetime.fromisoformat(day).date() + timedelta(days=1), tick, tzinfo=UTC)


def activation_times(instance: DagsterInstance, asset_key: str, topics: Iterable[str], now: datetime
                     ) -> dict[str, datetime]:
    """When each topic of ``asset_key`` was first seen active; topics seen for the first time get ``now``.

    Kept in the instance's key-value store, so a restart or a new code version keeps the history.
    """
    keys = {topic: f"{ACTIVE_KEY_PREFIX}{asset_key}|{topic}" for topic in topics}
    stored = instance.run_storage.get_cursor_values(set(keys.values()))
    new = {key: now.isoformat() for key in keys.values() if key not in stored}
    if new:
        instance.run_storage.set_cursor_values(new)
    values = {**stored, **new}
    return {topic: datetime.fromisoformat(values[key]) for topic, key in keys.items()}


TopicsOf = Callable[[DagsterInstance], Iterable[str]]


def all_topic_partitions(instance: DagsterInstance) -> list[str]:
    """Every key of the ``topics`` dynamic partitions."""
    return list(instance.get_dynamic_partitions("topics"))


def _partition(day: str, topic: str) -> str:
    return str(MultiPartitionKey({"date": day, "topic": topic})) if topic != DAY_ONLY else day


def partition_freshness_check(asset_def: AssetsDefinition, *, tick: time, deadline_hour: int = 6,
                              topics_of: TopicsOf = all_topic_partitions) -> AssetChecksDefinition:
    """A check on a daily (or day x topic) asset: the due day's partition of every active topic exists.

    ``tick`` is when the asset's daily schedule requests yesterday's partition; ``topics_of`` names the topics the
    schedules act on (the code location passes the topics file's, so a topic kept only for its data is not due).
    """
    by_topic = isinstance(asset_def.partitions_def, MultiPartitionsDefinition)
    what = "Every active topic's partition" if by_topic else "The partition"

    @asset_check(asset=asset_def, name=CHECK_NAME, blocking=False,
                 description=f"{what} of yesterday exists by {deadline_hour:02d}:00 UTC, counted from when the "
                             "source and the topic became active; in a backfill or schedule run: its partitions.")
    def _fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
        now = datetime.now(UTC)
        instance = context.instance
        topics = list(topics_of(instance)) if by_topic else [DAY_ONLY]
        active = activation_times(instance, asset_def.key.to_user_string(), topics, now)
        done = instance.get_materialized_partitions(asset_def.key)
        if context.has_partition_key or context.has_partition_key_range:
            keys = list(context.partition_keys)
            missing = [k for k in keys if k not in done]
            return AssetCheckResult(passed=not missing, severity=AssetCheckSeverity.WARN, metadata={
                "judged": "the partitions of this run", "partitions": ", ".join(keys), "missing": ", ".join(missing)})
        day = due_day(now, deadline_hour)
        scheduled = tick_for(day, tick)
        due = [t for t in topics if active[t] <= scheduled]
        missing = [key for key in (_partition(day, t) for t in due) if key not in done]
        not_due = sorted(set(topics) - set(due))
        metadata: dict[str, str | int] = {"day": day, "schedule_tick": scheduled.isoformat(), "due": len(due),
                                          "missing": ", ".join(missing)}
        if by_topic:
            metadata["topics"] = len(topics)
        if not_due:
            metadata["not_due_yet"] = (f"{', '.join(not_due) if by_topic else 'the partition'}: active since "
                                       f"{min(active[t] for t in not_due):%Y-%m-%d %H:%M} UTC, after that tick")
        return AssetCheckResult(passed=not missing, severity=AssetCheckSeverity.WARN, metadata=metadata)

    return _fresh


def partition_freshness_checks(assets: Sequence[AssetsDefinition], *, tick: time, deadline_hour: int = 6,
                               topics_of: TopicsOf = all_topic_partitions) -> list[AssetChecksDefinition]:
    """One freshness check per daily or day x topic asset."""
    return [partition_freshness_check(a, tick=tick, deadline_hour=deadline_hour, topics_of=topics_of) for a in assets]
