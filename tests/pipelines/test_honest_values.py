"""Stored values mean what they say, and the command line says what it is: timestamps, citations, windows, JSON."""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import MultiPartitionKey

from aragora_pipelines.definitions import evidence_assets
from aragora_pipelines.ingest import within_window
from aragora_pipelines.store import SCHEMA_VERSION, EvidenceStore, LoadContext, StoreError
from connectors.base import Evidence
from connectors.provenance import SourceType, compute_chain_hash, utc_timestamp
from tests.conftest import realapi_path
from tests.pipelines.conftest import run_cli as run
from tests.pipelines.test_query import readme_queries
from tests.support.legacy import v3_store

CTX = LoadContext(connector="HackerNews", connector_version="1", request="search q", run_id="run-1",
                  asset_key="evidence_hackernews", partition_key="2026-01-01|ai", claim_id="claim-1")
DAY = MultiPartitionKey({"date": "2026-01-01", "topic": "ai-safety"})
NOON = int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp())


def item(i: int, content: str = "body", metadata: dict[str, Any] | None = None) -> Evidence:
    return Evidence(id=f"hackernews:{i}", source_type=SourceType.FORUM, source_id=str(i), content=f"{content} {i}",
                    title=f"title {i}", created_at="2026-01-01T00:00:00Z", metadata=metadata or {"points": i})


def strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity (Python's default accepts them; JSON does not)."""
    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def readme_chain_query() -> str:
    return next(q for q in readme_queries() if "AS broken" in q)


# --- provenance.fetched_at is a timestamp ---------------------------------------------------------
def test_fetched_at_is_a_timestamp_whose_canonical_text_recomputes_every_chain_hash(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "s.duckdb", lock_timeout=30)
    store.load_evidence([item(i) for i in range(3)], CTX)
    store.load_evidence([item(0, "edited")], CTX)
    assert store.columns("provenance")[7] == ("fetched_at", "TIMESTAMP WITH TIME ZONE")
    rows = store.query("SELECT item_table, item_id, seq, content_hash, previous_hash, fetched_at, connector, "
                       "connector_version, request, run_id, asset_key, partition_key, claim_id, load_id, chain_hash "
                       "FROM provenance ORDER BY item_id, seq")
    assert len(rows) == 4 and all(isinstance(r[5], datetime) for r in rows)
    # The hash covers the whole record: a compact JSON array of every field, fetched_at in its canonical text.
    canonical = [json.dumps([*map(str, r[:5]), utc_timestamp(r[5]), *r[6:14]], separators=(",", ":"),
                            ensure_ascii=False) for r in rows]
    assert [hashlib.sha256(text.encode()).hexdigest() for text in canonical] == [r[14] for r in rows]
    assert store.verify() == []
    # README query 7, from a client whose session time zone is not UTC.
    con = duckdb.connect(str(store.path), read_only=True)
    con.execute("SET TimeZone = 'America/New_York'")
    assert con.execute(readme_chain_query()).fetchall() == [(0,)]
    con.close()


def schema_1_store(path: Path) -> list[tuple[Any, ...]]:
    """A store as schema version 1 wrote it (fetched_at text, support 'supports'); returns its provenance records
    (item, fetched_at, chain hash) in the order written."""
    v3_store(path)
    con = duckdb.connect(str(path))
    before = con.execute("SELECT item_id, fetched_at, chain_hash FROM provenance ORDER BY seq").fetchall()
    con.execute("ALTER TABLE provenance ALTER COLUMN fetched_at SET DATA TYPE VARCHAR "
                "USING strftime(fetched_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')")
    con.execute("UPDATE claim_citations SET support = 'supports'")
    con.execute("ALTER TABLE claim_citations ALTER COLUMN support SET NOT NULL")
    con.execute("DELETE FROM schema_version WHERE version > 1")
    text = con.execute("SELECT content_hash, previous_hash, chain_hash, fetched_at FROM provenance ORDER BY seq"
                       ).fetchall()
    con.close()
    # Exactly what version 1 stored: utc_timestamp text, hashed as such.
    assert [r[3] for r in text] == [utc_timestamp(f) for _, f, _ in before]
    assert all(compute_chain_hash(c, p, f) == h for c, p, h, f in text)
    return before


def test_a_schema_1_store_migrates_forward_without_loss_and_still_verifies(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    before = schema_1_store(path)
    store = EvidenceStore(path, lock_timeout=30)
    assert store.verify() == []  # the first read migrates the file, then verifies it
    assert store.query("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    assert dict(store.columns("provenance"))["fetched_at"] == "TIMESTAMP WITH TIME ZONE"
    assert store.query("SELECT item_id, fetched_at, chain_hash FROM provenance ORDER BY fetched_at, item_id, seq"
                       ) == sorted(before, key=lambda r: (r[1], r[0]))
    assert store.query("SELECT DISTINCT support FROM claim_citations") == [(None,)]
    store.load_evidence([item(1, "edited again")], CTX)  # a new record links onto a migrated one
    assert store.counts()["provenance"] == len(before) + 1
    assert store.verify() == []


def test_migration_refuses_fetched_at_text_it_cannot_keep_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    schema_1_store(path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE provenance SET fetched_at = 'yesterday' WHERE seq = 2")
    con.close()
    store = EvidenceStore(path, lock_timeout=30)
    with pytest.raises(StoreError, match="provenance seq 2 has a fetched_at that is not a canonical UTC timestamp"):
        store.initialize()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT max(version) FROM schema_version").fetchall() == [(1,)]
    assert con.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'provenance' "
                       "AND column_name = 'fetched_at'").fetchall() == [("VARCHAR",)]
    con.close()


# --- citations ------------------------------------------------------------------------------------
def test_citations_are_stored_unassessed_never_as_supports(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "s.duckdb", lock_timeout=30)
    store.load_evidence([item(i) for i in range(4)], CTX)
    assert store.query("SELECT count(*), count(support) FROM claim_citations") == [(4, 0)]
    store.refresh_views()
    assert store.query("SELECT DISTINCT support FROM evidence_by_claim WHERE claim_id = 'claim-1'") == [(None,)]


# --- the window -----------------------------------------------------------------------------------
def hn_body_ignoring_the_window() -> dict[str, Any]:
    """Four real Algolia hits (2015-2017), the first two moved into DAY and the last without a creation time."""
    body = copy.deepcopy(json.loads(realapi_path("hackernews/algolia_search_by_url.json").read_text()))
    for offset, hit in enumerate(body["hits"][:2]):
        hit["created_at_i"], hit["created_at"] = NOON + offset, None
    del body["hits"][3]["created_at_i"], body["hits"][3]["created_at"]
    return body


def test_items_outside_the_partition_window_are_dropped_and_counted_in_metadata(httpx_mock: Any, run_assets: Any,
                                                                              store: EvidenceStore) -> None:
    body = hn_body_ignoring_the_window()
    httpx_mock.add_response(json=body)
    result = run_assets([evidence_assets["hackernews"]], DAY, hackernews={
        "base_url": "https://hn.example/api/v1", "max_retries": 1, "base_delay_seconds": 0.01,
        "max_delay_seconds": 0.05, "timeout_seconds": 5})
    assert result.success
    meta = next(e for e in result.get_asset_materialization_events()).materialization.metadata
    assert (meta["rows_outside_window"].value, meta["rows_new"].value) == (1, 3)
    stored = [r[0] for r in store.query("SELECT source_id FROM evidence ORDER BY source_id")]
    assert stored == sorted(str(h["objectID"]) for i, h in enumerate(body["hits"]) if i != 2)


def test_ingest_says_how_many_items_it_dropped_outside_since_until(capsys: pytest.CaptureFixture[str],
                                                                 httpx_mock: Any, tmp_path: Path) -> None:
    httpx_mock.add_response(json=hn_body_ignoring_the_window())
    db = tmp_path / "cli.duckdb"
    status, out, err = run(capsys, "--db", str(db), "ingest", "hackernews", "--query", "rust",
                           "--since", "2026-01-01", "--until", "2026-01-02")
    assert status == 0, err
    assert "3 fetched, 3 new" in out
    assert "note: dropped 1 item(s) the source returned from outside --since/--until (not stored)" in err
    assert EvidenceStore(db).counts()["evidence"] == 3


def test_the_window_is_half_open_and_keeps_items_of_unknown_time() -> None:
    times = ["2026-01-01T00:00:00Z", "2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z", "2025-12-31T23:59:59Z", None]
    items = [Evidence(id=f"x:{i}", source_type=SourceType.FORUM, source_id=str(i), content="c", created_at=t)
             for i, t in enumerate(times)]
    kept, outside = within_window(items, datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC))  # naive is UTC
    assert ([ev.id for ev in kept], outside) == (["x:0", "x:1", "x:4"], 2)
    assert within_window(items, None, None) == (items, 0)


# --- not a store ----------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["verify"], ["query", "SELECT 1 AS one"], ["search", "anything"]])
def test_a_duckdb_file_that_is_not_a_store_is_status_2_saying_so(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                command: list[str]) -> None:
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE weather AS SELECT 1 AS day")
    con.close()
    status, out, err = run(capsys, "--db", str(other), *command)
    assert (status, out) == (2, "")
    assert err == (f"aragora-pipelines: error: {other} is not an aragora evidence store (no provenance table); "
                   "point --db or ARAGORA_DUCKDB_PATH at the evidence database (default data/aragora.duckdb)\n")


def test_verify_of_an_empty_store_is_intact(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    EvidenceStore(tmp_path / "empty.duckdb").initialize()
    status, out, _ = run(capsys, "--db", str(tmp_path / "empty.duckdb"), "verify")
    assert (status, out) == (0, "provenance chain intact: 0 records over 0 evidence rows\n")


# --- JSON output ----------------------------------------------------------------------------------
NAN_SQL = """SELECT id, metadata, 'nan'::DOUBLE AS missing, '-inf'::DOUBLE AS low, [1.5, 'inf'::DOUBLE] AS series,
                    {'score': 'nan'::DOUBLE} AS nested
             FROM evidence ORDER BY id"""


def test_query_json_nests_json_columns_and_writes_nan_as_null(capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "s.duckdb", lock_timeout=30)
    store.load_evidence([item(1, metadata={"points": 7, "tags": ["a", "b"], "ratio": 0.5})], CTX)
    status, out, err = run(capsys, "--db", str(store.path), "query", NAN_SQL, "--format", "json")
    assert status == 0, err
    assert strict_json(out) == [{"id": "hackernews:1", "metadata": {"points": 7, "ratio": 0.5, "tags": ["a", "b"]},
                                 "missing": None, "low": None, "series": [1.5, None], "nested": {"score": None}}]


def test_query_parquet_keeps_json_columns_as_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "s.duckdb", lock_timeout=30)
    store.load_evidence([item(1)], CTX)
    output = tmp_path / "out.parquet"
    status, _, err = run(capsys, "--db", str(store.path), "query", "SELECT id, metadata FROM evidence",
                         "--format", "parquet", "--output", str(output))
    assert status == 0, err
    table = pq.read_table(output)
    assert isinstance(table.schema.field("metadata").type, pa.JsonType)
    assert json.loads(table.column("metadata")[0].as_py()) == {"points": 1}


# --- --version ------------------------------------------------------------------------------------
def test_version_prints_the_installed_version_without_importing_dagster() -> None:
    code = ("import sys\nfrom aragora_pipelines.cli import main\ntry:\n    main(['--version'])\n"
            "finally:\n    print('dagster' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"aragora-pipelines {importlib.metadata.version('aragora-pipelines')}\n"
    assert done.stderr.strip() == "False"
