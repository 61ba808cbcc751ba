"""The e2e code location: the production definitions plus a one-minute schedule the daemon can tick in a test.

The sensors the backfill instance does not test (freshness checks, catalog automation) start switched off:
they would fire at start-up and compete with the backfill for the CPU. Loaded by the temporary workspace the
e2e fixture writes; production definitions stay untouched.
"""

from __future__ import annotations

from collections.abc import Iterator

from dagster import (
    AssetKey,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    MultiPartitionKey,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from aragora_pipelines.definitions import (
    build_catalog_automation_sensor,
    build_freshness_sensor,
    evidence_daily_job,
)
from aragora_pipelines.definitions import defs as production_defs

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


SWITCHED_OFF = {s.name: s for s in (build_freshness_sensor(DefaultSensorStatus.STOPPED),
                                     build_catalog_automation_sensor(DefaultSensorStatus.STOPPED))}

defs = Definitions(
    assets=production_defs.assets, asset_checks=production_defs.asset_checks, jobs=production_defs.jobs,
    schedules=[*(production_defs.schedules or []), e2e_every_minute_schedule],
    sensors=[SWITCHED_OFF.get(s.name, s) for s in production_defs.sensors or []],
    resources=production_defs.resources,
)
