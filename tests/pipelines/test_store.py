"""The store on both backends (DuckDB file, DuckLake on Postgres): append-only loads, idempotence, provenance
chain, schema versions, locking."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from aragora_pipelines.store import SCHEMA_VERSION, EvidenceStore, LoadContext, StoreError
from connectors.base import Evidence
from connectors.provenance import SourceType

CTX = LoadContext(connector="HackerNews", connector_version="1", request="search q", run_id="run-1",
                  asset_key="evidence_hackernews", partition_key="2026-01-01|ai", claim_id="claim-1")


def item(i: int, content: str = "body") -> Evidence:
    return Evidence(id=f"hackernews:{i}", source_type=SourceType.FORUM, source_id=str(i), content=f"{content} {i}",
                    title=f"title {i}", created_at="2026-01-01T00:00:00Z", url=f"https://news.example/{i}",
                    author="pg", confidence=0.6, freshness=0.9, authority=0.4, metadata={"points": i})


@pytest.fixture
def store(store_spec: tuple[str, str | None]) -> EvidenceStore:
    spec, data_path = store_spec
    return EvidenceStore(spec, lock_timeout=30, data_path=data_path)


def test_first_load_inserts_rows_provenance_citations_and_a_loads_row(store: EvidenceStore) -> None:
    result = store.load_evidence([item(i) for i in range(50)], CTX)
    assert (result.rows_fetched, result.rows_new, result.provenance_records) == (50, 50, 50)
    assert store.counts() == {"evidence": 50, "provenance": 50, "loads": 1, "claim_citations": 50}
    row = store.query("SELECT source, source_id, reliability_score, metadata->>'points' FROM evidence "
                      "WHERE id = 'hackernews:7'")[0]
    assert row == ("hackernews", "7", pytest.approx(0.4 * 0.6 + 0.3 * 0.9 + 0.3 * 0.4), "7")
    assert store.verify() == []


def test_reloading_unchanged_data_adds_nothing(store: EvidenceStore) -> None:
    store.load_evidence([item(i) for i in range(20)], CTX)
    again = store.load_evidence([item(i) for i in range(20)], CTX)
    assert (again.rows_new, again.rows_changed, again.rows_unchanged, again.provenance_records) == (0, 0, 20, 0)
    counts = store.counts()
    assert (counts["evidence"], counts["provenance"]) == (20, 20)


def test_changed_item_updates_row_and_appends_one_linked_record(store: EvidenceStore) -> None:
    store.load_evidence([item(i) for i in range(5)], CTX)
    result = store.load_evidence([item(0, "edited"), *[item(i) for i in range(1, 5)]], CTX)
    assert (result.rows_changed, result.provenance_records) == (1, 1)
    assert store.query("SELECT content FROM evidence WHERE id = 'hackernews:0'") == [("edited 0",)]
    chain = store.query("SELECT previous_hash, chain_hash FROM provenance WHERE item_id = 'hackernews:0' ORDER BY seq")
    assert len(chain) == 2 and chain[1][0] == chain[0][1]
    assert store.verify() == []


def test_duplicates_within_one_batch_are_merged(store: EvidenceStore) -> None:
    result = store.load_evidence([item(1), item(1), item(2)], CTX)
    assert result.rows_new == 2


def test_failure_inside_the_transaction_leaves_the_store_unchanged(store: EvidenceStore,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store.load_evidence([item(i) for i in range(3)], CTX)
    before = store.counts()

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("crash before commit")

    monkeypatch.setattr(EvidenceStore, "_log_load", explode)
    with pytest.raises(RuntimeError, match="crash before commit"):
        store.load_evidence([item(i, "new") for i in range(10)], CTX)
    assert store.counts() == before
    assert store.query("SELECT content FROM evidence WHERE id = 'hackernews:0'") == [("body 0",)]


def test_verify_catches_tampered_content_changed_record_and_deleted_record(store: EvidenceStore) -> None:
    store.load_evidence([item(i) for i in range(5)], CTX)
    store.load_evidence([item(1, "v2")], CTX)
    with store.writer() as con:
        con.execute("UPDATE evidence_versions SET content = 'forged' WHERE id = 'hackernews:2'")
        con.execute("UPDATE provenance SET fetched_at = '2020-01-01T00:00:00.000000Z' WHERE item_id = 'hackernews:3'")
        con.execute("DELETE FROM provenance WHERE item_id = 'hackernews:1' AND previous_hash LIKE '0000%'")
        con.execute("DELETE FROM provenance WHERE item_id = 'hackernews:4'")
    problems = "\n".join(store.verify())
    assert "hackernews:2: content changed" in problems
    assert "hackernews:3): chain hash does not match" in problems
    assert "hackernews:1): does not link" in problems
    assert "hackernews:4: no provenance record" in problems


@pytest.mark.parametrize("column, value", [("connector", "Forged"), ("claim_id", "claim-forged"),
                                           ("request", "search other"), ("run_id", "run-x"), ("seq", "7")])
def test_verify_catches_an_edit_of_any_provenance_field(store: EvidenceStore, column: str, value: str) -> None:
    store.load_evidence([item(i) for i in range(3)], CTX)
    with store.writer() as con:
        con.execute(f"UPDATE provenance SET {column} = ? WHERE item_id = 'hackernews:1'", [value])
    assert any("hackernews:1)" in problem for problem in store.verify())
    assert not any("hackernews:0" in problem or "hackernews:2" in problem for problem in store.verify())


def test_verify_catches_a_duplicated_record(store: EvidenceStore) -> None:
    store.load_evidence([item(i) for i in range(3)], CTX)
    with store.writer() as con:
        con.execute("INSERT INTO provenance SELECT * FROM provenance WHERE item_id = 'hackernews:1'")
    assert any("hackernews:1): two records share this seq" in problem for problem in store.verify())


def test_loads_only_append_and_evidence_is_the_latest_version(store: EvidenceStore) -> None:
    store.load_evidence([item(i) for i in range(3)], CTX)
    store.load_evidence([item(0, "v2"), item(1), item(2)], CTX)
    store.load_evidence([item(0, "v3"), item(1)], CTX)
    assert store.query("SELECT id, seq, content FROM evidence_versions WHERE id = 'hackernews:0' ORDER BY seq") == [
        ("hackernews:0", 1, "body 0"), ("hackernews:0", 2, "v2 0"), ("hackernews:0", 3, "v3 0")]
    assert store.query("SELECT content FROM evidence WHERE id = 'hackernews:0'") == [("v3 0",)]
    assert store.query("SELECT item_id, count(*) FROM sightings GROUP BY item_id ORDER BY item_id") == [
        ("hackernews:1", 2), ("hackernews:2", 1)]
    first, last = store.query("SELECT first_seen, last_seen FROM evidence WHERE id = 'hackernews:1'")[0]
    assert last > first
    assert store.query("SELECT item_id, seq FROM provenance ORDER BY item_id, seq") == [
        ("hackernews:0", 1), ("hackernews:0", 2), ("hackernews:0", 3), ("hackernews:1", 1), ("hackernews:2", 1)]
    assert store.verify() == []


def test_secrets_in_urls_and_metadata_never_reach_rows(store: EvidenceStore) -> None:
    ev = item(1)
    ev.url = "https://api.example/x?api_key=supersecretvalue123&q=1"
    ev.metadata = {"authorization": "Bearer abcdefghijklmnop", "note": "token=ghp_abcdefghijklmnopqrstuvwx"}
    store.load_evidence([ev], CTX)
    if store.backend == "duckdb":
        raw = store.path.read_bytes()
    else:
        raw = repr(store.query("SELECT * FROM evidence_versions")).encode()
    for secret in (b"supersecretvalue123", b"abcdefghijklmnop", b"ghp_abcdefghijklmnopqrstuvwx"):
        assert secret not in raw
    assert store.secret_findings("evidence", ["hackernews:1"]) == []
    assert store.verify() == []


@dataclass
class Charge:
    id: str
    amount: int | None = None
    currency: str | None = None
    fee: Decimal | None = None
    created_at: datetime | None = None
    raw: dict = field(default_factory=dict)


def test_integration_objects_get_typed_columns_raw_json_and_provenance(store: EvidenceStore) -> None:
    charges = [Charge(f"ch_{i}", 1000 + i, "usd", Decimal("0.30"), datetime(2026, 1, 2, tzinfo=UTC),
                      {"id": f"ch_{i}", "amount": 1000 + i}) for i in range(4)]
    result = store.load_objects("stripe_charges", charges, CTX, "stripe", "charges")
    assert result.rows_new == 4
    assert dict(store.columns("stripe_charges"))["amount"] == "BIGINT"
    assert store.query("SELECT amount, fee, raw->>'amount' FROM stripe_charges WHERE id = 'ch_2'") == [
        (1002, Decimal("0.300000000"), "1002")]
    assert store.load_objects("stripe_charges", charges, CTX, "stripe", "charges").rows_unchanged == 4
    assert store.verify() == []


def test_newer_schema_is_refused_with_a_clear_message(store: EvidenceStore) -> None:
    store.initialize()
    with store.writer() as con:
        con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match="newer than this aragora-pipelines"):
        store.counts()


def test_older_file_without_version_table_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    duckdb.connect(str(path)).close()
    store = EvidenceStore(path)
    store.load_evidence([item(1)], CTX)
    assert store.query("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]


def test_reading_a_missing_database_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="run `make run`"):
        EvidenceStore(tmp_path / "absent.duckdb").query("SELECT 1")


def _hold_write_lock(path: str, seconds: float, ready: multiprocessing.Event) -> None:
    con = duckdb.connect(path)
    ready.set()
    time.sleep(seconds)
    con.close()


def test_reader_waits_for_another_process_holding_the_file(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "store.duckdb", lock_timeout=30)
    store.load_evidence([item(1)], CTX)
    ready = multiprocessing.get_context("spawn").Event()
    proc = multiprocessing.get_context("spawn").Process(target=_hold_write_lock, args=(str(store.path), 1.5, ready))
    proc.start()
    assert ready.wait(30)
    started = time.monotonic()
    assert store.counts()["evidence"] == 1
    assert time.monotonic() - started > 0.5  # it waited for the writer instead of failing
    proc.join()
