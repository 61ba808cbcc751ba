"""Per-partition freshness for day x topic evidence assets.

Dagster's built-in partition freshness checks only understand purely time-partitioned
assets; these checks do the same for day x topic: once a day's deadline has passed, every
topic's partition of that day must have been materialized.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MultiPartitionKey,
    asset_check,
)

CHECK_NAME = "daily_partitions_fresh"


def due_day(now: datetime, deadline_hour: int) -> str:
    """The newest day whose partitions must exist at ``now`` (yesterday once the deadline has passed)."""
    now = now.astimezone(UTC)
    lag = 1 if now.hour >= deadline_hour else 2
    return (now - timedelta(days=lag)).strftime("%Y-%m-%d")


def partition_freshness_check(asset_def: AssetsDefinition, deadline_hour: int = 6) -> AssetChecksDefinition:
    """A check on ``asset_def``: every topic's partition of the due day is materialized."""

    @asset_check(asset=asset_def, name=CHECK_NAME, blocking=False,
                 description=f"Every topic's partition of yesterday exists by {deadline_hour:02d}:00 UTC.")
    def _fresh(context: AssetCheckExecutionContext) -> AssetCheckResult:
        day = due_day(datetime.now(UTC), deadline_hour)
        topics = context.instance.get_dynamic_partitions("topics")
        done = context.instance.get_materialized_partitions(asset_def.key)
        missing = sorted(t for t in topics if str(MultiPartitionKey({"date": day, "topic": t})) not in done)
        return AssetCheckResult(passed=not missing, severity=AssetCheckSeverity.WARN,
                                metadata={"day": day, "topics": len(topics), "missing_topics": ", ".join(missing)})

    return _fresh


def partition_freshness_checks(assets: Sequence[AssetsDefinition], deadline_hour: int = 6
                               ) -> list[AssetChecksDefinition]:
    """One freshness check per day x topic asset."""
    return [partition_freshness_check(a, deadline_hour) for a in assets]
