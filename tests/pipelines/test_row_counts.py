"""`dagster/row_count` is what an asset holds; each load's counts are numbers of their own (plotted per run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import IntMetadataValue

from aragora_pipelines.definitions import evidence_assets
from aragora_pipelines.store import EvidenceStore

LOAD_COUNTS = ("rows_fetched", "rows_new", "rows_changed", "rows_unchanged", "provenance_records")


def _metadata(result: Any, asset: str) -> dict[str, Any]:
    event = next(e for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == asset)
    return dict(event.materialization.metadata)


def test_row_count_is_the_rows_the_source_holds_and_load_counts_stay_per_load(run_assets, store: EvidenceStore,
                                                                              topics_file: Path) -> None:
    # Two topics whose queries match different sample documents.
    topics_file.write_text("topics:\n  ai-safety:\n    query: circuit breaker\n"
                           "  rate-limiting:\n    query: rate limiting\n")
    asset = evidence_assets["local_docs"]
    first = _metadata(run_assets([asset], "ai-safety"), "evidence_local_docs")
    second = _metadata(run_assets([asset], "rate-limiting"), "evidence_local_docs")
    held = store.query("SELECT count(*) FROM evidence WHERE source = 'local_docs'")[0][0]
    assert 0 < first["dagster/row_count"].value <= held == second["dagster/row_count"].value
    # A second topic finds other documents too, so the asset's size is more than the last load's fetch.
    assert second["rows_fetched"].value < held
    assert second["rows_fetched"].value == second["rows_new"].value + second["rows_changed"].value + second[
        "rows_unchanged"].value
    for meta in (first, second):
        assert all(isinstance(meta[name], IntMetadataValue) for name in (*LOAD_COUNTS, "dagster/row_count"))
