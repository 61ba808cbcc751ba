"""The combined evidence catalog downstream of every source asset: analyst views over all evidence."""


from collections.abc import Sequence

from dagster import AssetExecutionContext, AssetsDefinition, AutomationCondition, MaterializeResult, asset

from assets.policies import DAILY_FRESHNESS


def evidence_catalog_asset(upstream: Sequence[AssetsDefinition]) -> AssetsDefinition:
    """``evidence_catalog``: refreshes the views over ``evidence`` after the per-source assets load."""

    @asset(
        name="evidence_catalog",
        group_name="evidence",
        deps=list(upstream),
        freshness_policy=DAILY_FRESHNESS,
        # Refresh after any source loads; sources never loaded (no credentials) must not hold it back.
        automation_condition=AutomationCondition.eager().without(~AutomationCondition.any_deps_missing()),
        kinds={"duckdb"},
        required_resource_keys={"store"},
        description="Views over all ingested evidence (current evidence, per-source summary, claims).",
    )
    def _catalog(context: AssetExecutionContext) -> MaterializeResult:
        store = context.resources.store.get_store()
        views = store.refresh_views()
        counts = store.counts()
        return MaterializeResult(metadata={"dagster/row_count": counts["evidence"], "views": ", ".join(views),
                                           "provenance_records": counts["provenance"]})

    return _catalog
