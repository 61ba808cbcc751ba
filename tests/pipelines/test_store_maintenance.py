"""The store_maintenance job on both backends: it runs, reports what it did, and the store still verifies."""

from __future__ import annotations

from aragora_pipelines.definitions import defs
from aragora_pipelines.maintenance import store_maintenance_job
from aragora_pipelines.resources import DuckDBStoreResource
from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.provenance import SourceType

CTX = LoadContext(connector="LocalDocs", run_id="run-1", asset_key="evidence_local_docs", partition_key="topic")


def test_the_weekly_schedule_runs_store_maintenance() -> None:
    schedule = defs.resolve_schedule_def("weekly_store_maintenance")
    assert schedule.job_name == "store_maintenance" and schedule.cron_schedule == "0 5 * * 0"


def test_maintenance_reports_what_it_did_and_keeps_the_store_intact(store_spec: tuple[str, str | None]) -> None:
    spec, data_path = store_spec
    store = EvidenceStore(spec, lock_timeout=30, data_path=data_path)
    for round_ in range(4):  # several small loads: small files and snapshots to merge and expire
        store.load_evidence([Evidence(id=f"local_docs:{i}", source_type=SourceType.DOCUMENT, source_id=str(i),
                                      title=f"doc {i}", content=f"round {round_} {i}", created_at="2026-01-01")
                             for i in range(30)], CTX)
    result = store_maintenance_job.execute_in_process(
        resources={"store": DuckDBStoreResource(store=spec, data_path=data_path)},
        run_config={"ops": {"maintain_store": {"config": {"retention_days": 0}}}})
    assert result.success
    (materialization,) = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in materialization.event_specific_data.metadata.items()}
    assert metadata["backend"] == store.backend
    if store.backend == "ducklake":
        assert metadata["snapshots_expired"] > 0 and metadata["snapshots"] >= 1
        assert {"files_merged", "old_files_deleted", "orphans_deleted", "inlined_flushed"} <= set(metadata)
    else:
        assert metadata["checkpoint"] is True and metadata["file_bytes"] > 0
    assert store.verify() == []
    assert store.query("SELECT count(*), max(seq) FROM provenance WHERE item_id = 'local_docs:7'") == [(4, 4)]
    assert store.query("SELECT content FROM evidence WHERE id = 'local_docs:7'") == [("round 3 7",)]
