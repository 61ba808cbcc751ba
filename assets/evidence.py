"""Evidence assets: one per source, partitioned by day x topic (or topic only for sources without time)."""


from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    PartitionsDefinition,
    RetryPolicy,
    TableColumn,
    TableSchema,
    asset,
)

from aragora_pipelines.ingest import DEFAULT_EVIDENCE_LIMIT
from assets.policies import DAILY_FRESHNESS, INGEST_RETRY_POLICY, WEEKLY_FRESHNESS, connector_failures

EVIDENCE_TABLE_SCHEMA = TableSchema(columns=[
    TableColumn("id", "VARCHAR", description="source:source_id, stable across runs"),
    TableColumn("source", "VARCHAR"), TableColumn("source_id", "VARCHAR"), TableColumn("source_type", "VARCHAR"),
    TableColumn("title", "VARCHAR"), TableColumn("content", "VARCHAR"), TableColumn("url", "VARCHAR"),
    TableColumn("author", "VARCHAR"), TableColumn("created_at", "TIMESTAMPTZ"),
    TableColumn("confidence", "DOUBLE"), TableColumn("freshness", "DOUBLE"), TableColumn("authority", "DOUBLE"),
    TableColumn("reliability_score", "DOUBLE"), TableColumn("metadata", "JSON"),
    TableColumn("content_hash", "VARCHAR"), TableColumn("first_seen", "TIMESTAMPTZ"),
    TableColumn("last_seen", "TIMESTAMPTZ"),
])

CHECKS = {
    "unique_ids": "Every id occurs once in the table.",
    "scores_in_range": "confidence, freshness, authority and reliability are within [0, 1].",
    "provenance_chain_intact": "The provenance hash chain of this partition's items recomputes.",
    "no_secrets_stored": "No token, key or credential-looking value in stored URLs or metadata.",
}


class EvidenceConfig(Config):
    """Run config of an evidence asset."""

    limit: int = DEFAULT_EVIDENCE_LIMIT


def partition_window(context: AssetExecutionContext) -> tuple[str, datetime | None, datetime | None]:
    """(topic, since, until) of the partition being materialized; no window for topic-only partitions."""
    key = context.partition_key
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
        since = datetime.fromisoformat(dims["date"]).replace(tzinfo=UTC)
        return dims["topic"], since, since + timedelta(days=1)
    return key, None, None


def check_results(store: Any, table: str, source: str | None, partition_key: str, asset_key: str,
                  ids: list[str]) -> list[AssetCheckResult]:
    """Run the four data checks against the store after a load."""
    duplicates = store.duplicate_ids(table)
    out_of_range = store.scores_out_of_range(source) if source else 0
    broken = store.verify(partition_key=partition_key, asset_key=asset_key)
    secrets = store.secret_findings(table, ids)
    return [
        AssetCheckResult(check_name="unique_ids", passed=duplicates == 0, metadata={"duplicates": duplicates}),
        AssetCheckResult(check_name="scores_in_range", passed=out_of_range == 0,
                         metadata={"rows_out_of_range": out_of_range}),
        AssetCheckResult(check_name="provenance_chain_intact", passed=not broken,
                         metadata={"problems": len(broken), "first_problem": broken[0] if broken else ""}),
        AssetCheckResult(check_name="no_secrets_stored", passed=not secrets,
                         metadata={"findings": len(secrets), "first_finding": secrets[0] if secrets else ""}),
    ]


def load_metadata(result: Any, rows_held: int, table: str, schema: TableSchema, preview: str) -> dict[str, Any]:
    """What every materialization reports: the rows the asset holds, this load's counts, schema and a preview.

    ``dagster/row_count`` is the asset's size (all its rows in ``table``); the per-load counts are numbers
    of their own, so the UI plots them per materialization.
    """
    return {
        "dagster/row_count": MetadataValue.int(rows_held),
        "rows_fetched": MetadataValue.int(result.rows_fetched),
        "rows_new": MetadataValue.int(result.rows_new),
        "rows_changed": MetadataValue.int(result.rows_changed),
        "rows_unchanged": MetadataValue.int(result.rows_unchanged),
        "rows_outside_window": MetadataValue.int(result.rows_outside_window),
        "items_skipped": MetadataValue.int(result.items_skipped),
        "provenance_records": MetadataValue.int(result.provenance_records),
        "load_seconds": round(result.duration_s, 3),
        "dagster/column_schema": schema,
        "dagster/table_name": table,
        "preview": MetadataValue.md(preview),
    }


def evidence_asset(source: str, *, partitions_def: PartitionsDefinition, has_time_axis: bool,
                   retry_policy: RetryPolicy = INGEST_RETRY_POLICY, note: str = "") -> AssetsDefinition:
    """The asset that ingests one evidence source into the ``evidence`` table (``note`` ends its description)."""
    name = f"evidence_{source}"

    @asset(
        name=name,
        group_name="evidence",
        partitions_def=partitions_def,
        retry_policy=retry_policy,
        freshness_policy=DAILY_FRESHNESS if has_time_axis else WEEKLY_FRESHNESS,
        pool=f"{source}_api",
        kinds={"duckdb"},
        required_resource_keys={"store", "topics", source},
        check_specs=[AssetCheckSpec(check, asset=name, description=text) for check, text in CHECKS.items()],
        metadata={"dagster/table_name": "evidence", "source": source},
        description=f"Evidence from {source} for each topic"
        + (" and day" if has_time_axis else "") + ", merged into the DuckDB `evidence` table with provenance."
        + (f" {note}" if note else ""),
    )
    def _evidence(context: AssetExecutionContext, config: EvidenceConfig) -> MaterializeResult:
        topic_key, since, until = partition_window(context)
        topic = context.resources.topics.topic(topic_key)
        store_resource = context.resources.store
        with connector_failures():
            connector = getattr(context.resources, source).build()
            result = store_resource.ingest_evidence(
                connector, query=topic.query, limit=config.limit, since=since, until=until,
                run_id=context.run.run_id, asset_key=name, partition_key=str(context.partition_key),
                claim_id=topic.claim_id,
            )
        store = store_resource.get_store()
        context.log.info(f"{name}[{context.partition_key}]: {result.rows_fetched} fetched, {result.rows_new} new, "
                         f"{result.rows_changed} changed, {result.rows_unchanged} unchanged")
        for _, reason in getattr(connector, "skipped", ()):  # files LocalDocs could not read, in the run's log
            context.log.warning(f"{name}: skipped a file: {reason}")
        return MaterializeResult(
            metadata=load_metadata(result, store.rows_held("evidence", source), "evidence", EVIDENCE_TABLE_SCHEMA,
                                   store.preview("evidence", result.ids)),
            check_results=check_results(store, "evidence", source, str(context.partition_key), name, result.ids),
        )

    return _evidence
