"""The ``store_maintenance`` job: weekly housekeeping of the evidence store, what it did reported as metadata.

On DuckLake: inlined rows flushed and small Parquet files merged, snapshots older than the retention expired,
their files and orphaned files deleted. On a DuckDB file: a CHECKPOINT. See :meth:`EvidenceStore.maintain`.
"""

# No `from __future__ import annotations`: Dagster reads the op's config and resource types from its signature.
from dagster import Config, DefaultScheduleStatus, OpExecutionContext, Output, ScheduleDefinition, job, op

from aragora_pipelines.resources import DuckDBStoreResource


class MaintenanceConfig(Config):
    """How long past snapshots stay queryable (``query --as-of``) before maintenance expires them."""

    retention_days: float = 7.0


@op(name="maintain_store")
def maintain_store(context: OpExecutionContext, config: MaintenanceConfig,
                   store: DuckDBStoreResource) -> Output[None]:
    """Run the store's maintenance and report each step's count as output metadata."""
    report = store.get_store().maintain(config.retention_days)
    context.log.info(f"store maintenance: {report}")
    return Output(None, metadata=report)


@job(name="store_maintenance", description="Merge small files, expire old snapshots, delete unused files "
     "(DuckLake); checkpoint (DuckDB file).")
def store_maintenance_job() -> None:
    """The maintenance job (one op)."""
    maintain_store()


weekly_store_maintenance_schedule = ScheduleDefinition(
    name="weekly_store_maintenance", job=store_maintenance_job, cron_schedule="0 5 * * 0", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING)
