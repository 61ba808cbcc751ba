"""A store written by schema 3 (the store before it became append-only) migrates to schema 4 without loss.

tests/fixtures/store_v3 (see tests/support/legacy.py) holds changed evidence with kept texts, citations, an
unchanged re-load (last_seen later than the last change), an integration table with a changed object and a
webhook delivery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from aragora_pipelines.inspection import item_history
from aragora_pipelines.store import SCHEMA_VERSION, EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.provenance import SourceType
from tests.pipelines.test_query import QUERIES
from tests.support.legacy import v3_store

EVIDENCE = ("id, source, source_id, source_type, title, content, url, author, created_at, confidence, freshness, "
            "authority, reliability_score, CAST(metadata AS VARCHAR), content_hash, first_seen, last_seen, "
            "last_run_id, last_partition_key")
RECORD = ("item_table, item_id, content_hash, previous_hash, chain_hash, fetched_at, connector, connector_version, "
          "request, run_id, asset_key, partition_key, claim_id")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Everything the old schema held, in a form both schemas answer."""
    return {
        "evidence": con.execute(f"SELECT {EVIDENCE} FROM evidence ORDER BY id").fetchall(),
        "records": sorted(con.execute(f"SELECT {RECORD} FROM provenance").fetchall()),
        "citations": con.execute("SELECT * FROM claim_citations ORDER BY ALL").fetchall(),
        "loads": con.execute("SELECT * FROM loads ORDER BY ALL").fetchall(),
        "charges": con.execute("SELECT id, amount, fee, CAST(raw AS VARCHAR), content_hash, first_seen, last_seen "
                               "FROM stripe_charges ORDER BY id").fetchall(),
        "deliveries": con.execute("SELECT * FROM webhook_deliveries").fetchall(),
    }


def test_a_schema_3_store_migrates_to_append_only_without_loss(tmp_path: Path) -> None:
    path = v3_store(tmp_path / "v3.duckdb")
    con = duckdb.connect(str(path), read_only=True)
    before = snapshot(con)
    order = [r[0] for r in con.execute("SELECT item_id || '/' || chain_hash FROM provenance ORDER BY seq").fetchall()]
    con.close()
    assert before["evidence"] and before["charges"] and len(before["records"]) == 11

    store = EvidenceStore(path, lock_timeout=30)
    store.initialize()
    assert store.query("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    with store.reader() as con:
        assert snapshot(con) == before
        # Each item's records keep their order, now numbered 1..n per item.
        seqs = con.execute("SELECT item_id, list(seq ORDER BY seq) FROM provenance GROUP BY item_id").fetchall()
        assert all(s == list(range(1, len(s) + 1)) for _, s in seqs)
        migrated = [r[0] for r in con.execute(
            "SELECT item_id || '/' || chain_hash FROM provenance ORDER BY fetched_at, item_id").fetchall()]
    assert sorted(migrated) == sorted(order)
    assert store.verify() == []
    # Every text the old store kept is a version now: hackernews:0 changed twice, all three texts are there.
    texts = [v.text for v in item_history(store, "hackernews:0")]
    assert [t.split("\n\n")[1] if t else None for t in texts] == ["body 0", "v2 0", "v3 0"]


def test_a_migrated_store_takes_new_loads_and_verifies_in_sql_alone(tmp_path: Path) -> None:
    store = EvidenceStore(v3_store(tmp_path / "v3.duckdb"), lock_timeout=30)
    ctx = LoadContext(connector="HackerNews", connector_version="2", request="search q", run_id="run-9",
                      asset_key="evidence_hackernews", partition_key="ai")
    edited = Evidence(id="hackernews:0", source_type=SourceType.FORUM, source_id="0", content="v4 0", title="title 0",
                      created_at="2026-01-01T00:00:00Z", url="https://news.example/0", author="pg")
    result = store.load_evidence([edited], ctx)
    assert (result.rows_changed, result.provenance_records) == (1, 1)
    assert store.query("SELECT seq, hash_format FROM provenance WHERE item_id = 'hackernews:0' ORDER BY seq") == [
        (1, 1), (2, 1), (3, 1), (4, 2)]
    assert store.query("SELECT content FROM evidence WHERE id = 'hackernews:0'") == [("v4 0",)]
    assert store.verify() == []
    (chain_query,) = [q for q in QUERIES if q.startswith("-- 7.")]
    assert store.query(chain_query) == [(0,)]
    with store.writer() as con:  # a whole-record hash: editing the connector of the new record is detected
        con.execute("UPDATE provenance SET connector = 'Forged' WHERE item_id = 'hackernews:0' AND seq = 4")
    assert store.query(chain_query) == [(1,)]
    assert store.verify()[0].startswith("provenance seq 4 (evidence hackernews:0): chain hash does not match")


@pytest.mark.parametrize("table", ["evidence", "stripe_charges"])
def test_loads_after_migration_never_update_a_row(tmp_path: Path, table: str) -> None:
    store = EvidenceStore(v3_store(tmp_path / "v3.duckdb"), lock_timeout=30)
    store.initialize()
    assert store.query("SELECT table_type FROM information_schema.tables WHERE table_name = ?", [table]) == [
        ("VIEW",)]
