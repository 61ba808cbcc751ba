"""The e2e code location: the production definitions plus a one-minute schedule the daemon can tick in a test.

Loaded by the temporary workspace the e2e fixture writes; production definitions stay untouched.
"""

from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    Definitions,
    MultiPartitionKey,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from aragora_pipelines.definitions import defs as production_defs
from aragora_pipelines.definitions import evidence_daily_job

# The day the schedule asks for: outside the days the e2e backfill covers, so its run is told apart.
SCHEDULE_DAY = "2026-01-04"
SCHEDULE_ASSET = AssetKey("evidence_hackernews")
RUN_KEY_TAG = "dagster/run_key"  # the system tag a run launched with a run key carries


@schedule(cron_schedule="* * * * *", execution_timezone="UTC", job=evidence_daily_job,
          default_status=DefaultScheduleStatus.RUNNING)
def e2e_every_minute_schedule(context: ScheduleEvaluationContext) -> Iterator[RunRequest | SkipReason]:
    """Every minute: HackerNews evidence of SCHEDULE_DAY for each topic not requested yet.

    A schedule's run key is unique per tick only, so earlier runs are looked up to request each partition once.
    """
    topics = context.instance.get_dynamic_partitions("topics")
    keys = [MultiPartitionKey({"date": SCHEDULE_DAY, "topic": t}) for t in topics]
    due = [k for k in keys if not context.instance.get_run_records(RunsFilter(tags={RUN_KEY_TAG: str(k)}), limit=1)]
    if not due:
        yield SkipReason("every topic's partition was requested already (or the topics sensor has not run yet)")
    for key in due:
        yield RunRequest(run_key=str(key), asset_selection=[SCHEDULE_ASSET], partition_key=key)


defs = Definitions.merge(production_defs, Definitions(schedules=[e2e_every_minute_schedule]))
