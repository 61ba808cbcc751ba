"""Integration assets: one per service object type, daily partitions on created/updated time."""


from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    PartitionsDefinition,
    RetryPolicy,
    TableColumn,
    TableSchema,
    asset,
)

from assets.evidence import CHECKS, check_results, load_metadata
from assets.policies import DAILY_FRESHNESS, INGEST_RETRY_POLICY, connector_failures

OBJECT_CHECKS = {k: v for k, v in CHECKS.items() if k != "scores_in_range"}


class IntegrationConfig(Config):
    """Run config of an integration asset (no limit by default: a day is read whole)."""

    limit: int | None = None


def integration_asset(service: str, object_type: str, *, partitions_def: PartitionsDefinition,
                      retry_policy: RetryPolicy = INGEST_RETRY_POLICY, note: str = "") -> AssetsDefinition:
    """The asset that reads one day of ``service`` ``object_type`` into ``<service>_<object_type>``.

    ``note`` ends its description (e.g. why its freshness check is off).
    """
    name = f"{service}_{object_type}"

    @asset(
        name=name,
        group_name=service,
        partitions_def=partitions_def,
        retry_policy=retry_policy,
        freshness_policy=DAILY_FRESHNESS,
        pool=f"{service}_api",
        kinds={"duckdb"},
        required_resource_keys={"store", service},
        check_specs=[AssetCheckSpec(check, asset=name, description=text) for check, text in OBJECT_CHECKS.items()],
        metadata={"dagster/table_name": name, "service": service},
        description=f"{service} {object_type} created or updated each day, typed columns plus the raw object."
        + (f" {note}" if note else ""),
    )
    def _objects(context: AssetExecutionContext, config: IntegrationConfig) -> MaterializeResult:
        window = context.partition_time_window
        store_resource = context.resources.store
        with connector_failures():
            connector = getattr(context.resources, service).build()
            result = store_resource.ingest_objects(
                connector, service=service, object_type=object_type, since=window.start, until=window.end,
                limit=config.limit, run_id=context.run.run_id, asset_key=name, partition_key=context.partition_key,
            )
        store = store_resource.get_store()
        schema = TableSchema(columns=[TableColumn(c, t) for c, t in store.columns(name)])
        checks = [c for c in check_results(store, name, None, context.partition_key, name, result.ids)
                  if c.check_name in OBJECT_CHECKS]
        return MaterializeResult(
            metadata=load_metadata(result, store.rows_held(name), name, schema, store.preview(name, result.ids)),
            check_results=checks)

    return _objects
