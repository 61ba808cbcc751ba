"""Every command and asset on a DuckLake store (Postgres catalog): `make run`, the README's queries, time travel,
readers that never wait for a writer."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aragora_pipelines import main as make_run
from aragora_pipelines.resources import open_store
from aragora_pipelines.store import EvidenceStore, LoadContext, StoreError
from connectors.base import Evidence
from connectors.provenance import SourceType
from tests.pipelines.conftest import run_cli as run
from tests.pipelines.test_query import QUERIES
from tests.support.legacy import v3_store

CTX = LoadContext(connector="LocalDocs", run_id="run-1", asset_key="evidence_local_docs", partition_key="topic")


def doc(i: int, content: str = "body") -> Evidence:
    return Evidence(id=f"local_docs:{i}", source_type=SourceType.DOCUMENT, source_id=str(i), title=f"circuit {i}",
                    content=f"{content} {i}", created_at="2026-01-01T00:00:00Z")


@pytest.fixture
def lake(postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EvidenceStore:
    """ARAGORA_STORE names an empty DuckLake store (its own Postgres database), as a deployment would set it."""
    monkeypatch.setenv("ARAGORA_STORE", f"ducklake:postgres:{postgres_dsn}")
    monkeypatch.setenv("ARAGORA_STORE_DATA_PATH", str(tmp_path / "lake"))
    return open_store()


@pytest.fixture
def made_lake(lake: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> EvidenceStore:
    """`make run` with ARAGORA_STORE set: the offline default materialized through Dagster into the lake."""
    for name in ("DAGSTER_HOME", "ARAGORA_TOPICS_FILE", "ARAGORA_LOCAL_DOCS_ROOT", "ARAGORA_SQL_DSN",
                 "ARAGORA_DUCKDB_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert make_run.main() == 0
    return lake


def test_make_run_writes_the_lake_and_every_readme_query_runs_on_it(capsys: pytest.CaptureFixture[str],
                                                                     made_lake: EvidenceStore) -> None:
    assert made_lake.backend == "ducklake" and made_lake.counts()["evidence"] > 0
    assert made_lake.verify() == []
    for sql in QUERIES:
        if "match_bm25" in sql:  # the BM25 index of a lake lives in a local file: `search` reads it
            continue
        status, out, err = run(capsys, "query", sql)
        assert status == 0, err
        assert "no rows" not in err, sql
    status, out, err = run(capsys, "search", "circuit breaker")
    assert status == 0 and "bm25" in out, err
    status, out, _ = run(capsys, "verify")
    assert status == 0 and out.startswith("provenance chain intact:")
    status, out, _ = run(capsys, "loads")
    assert status == 0 and "evidence_local_docs" in out


def test_query_as_of_a_time_or_snapshot_reads_the_past(capsys: pytest.CaptureFixture[str],
                                                      lake: EvidenceStore) -> None:
    lake.load_evidence([doc(i) for i in range(20)], CTX)
    (judged,) = lake.query("SELECT max(snapshot_time) FROM aragora.snapshots()")[0]
    (snapshot,) = lake.query("SELECT max(snapshot_id) FROM aragora.snapshots()")[0]
    time.sleep(0.05)
    lake.load_evidence([doc(3, "edited")], CTX)
    sql = "SELECT content FROM evidence WHERE id = 'local_docs:3'"
    assert run(capsys, "query", "--format", "csv", sql)[1].splitlines()[1] == "edited 3"
    assert run(capsys, "query", "--format", "csv", "--as-of", judged.isoformat(), sql)[1].splitlines()[1] == "body 3"
    assert run(capsys, "query", "--format", "csv", "--snapshot", str(snapshot), sql)[1].splitlines()[1] == "body 3"
    status, out, _ = run(capsys, "history", "local_docs:3")
    assert status == 0 and "-body 3" in out and "+edited 3" in out


def test_as_of_on_a_duckdb_file_says_it_needs_a_lake(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--db", str(tmp_path / "x.duckdb"), "query", "--snapshot", "1", "SELECT 1")
    assert status == 2 and "need a DuckLake store" in err and len(err.splitlines()) == 1


def test_readers_never_wait_for_a_writer_and_see_the_last_commit(lake: EvidenceStore) -> None:
    lake.load_evidence([doc(i) for i in range(5)], CTX)
    writing, release = threading.Event(), threading.Event()

    def long_load() -> None:  # holds the commit lock and an open transaction that has written rows
        with lake._commit_lock(), lake.writer() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("INSERT INTO sightings SELECT 'evidence', 'local_docs:0', now(), 'x', 'x', 'x'")
            writing.set()
            release.wait(60)
            con.execute("COMMIT")

    writer = threading.Thread(target=long_load)
    writer.start()
    try:
        assert writing.wait(60)
        answers: list[object] = []
        reader = threading.Thread(target=lambda: answers.extend([lake.counts()["evidence"], lake.verify()]))
        reader.start()
        reader.join(60)
        assert answers == [5, []]  # answered while the writer still holds everything
        assert lake.query("SELECT count(*) FROM sightings") == [(0,)]
    finally:
        release.set()
        writer.join(60)
    assert lake.query("SELECT count(*) FROM sightings") == [(1,)]


def test_a_bad_store_setting_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_STORE", "ducklake:mysql:db=x")
    status, _, err = run(capsys, "verify")
    assert status == 2 and "unsupported DuckLake catalog" in err and len(err.splitlines()) == 1
    with pytest.raises(StoreError, match="password=\\*\\*\\*"):
        EvidenceStore("ducklake:postgres:dbname=nowhere host=127.0.0.1 port=1 password=hunter2").query("SELECT 1")


@dataclass
class Charge:
    id: str
    amount: int | None = None
    raw: dict = field(default_factory=dict)


def test_migrate_copies_a_file_store_into_a_lake_with_every_version(capsys: pytest.CaptureFixture[str],
                                                                     postgres_dsn: str, tmp_path: Path) -> None:
    source = EvidenceStore(v3_store(tmp_path / "old.duckdb"), lock_timeout=30)  # a schema-3 file, migrated on the way
    source.load_evidence([doc(1), doc(2)], CTX)
    source.load_evidence([doc(1, "edited")], CTX)
    source.load_objects("stripe_charges", [Charge("ch_9", 9, {"id": "ch_9"})], CTX, "stripe", "charges")
    lake = f"ducklake:postgres:{postgres_dsn}"
    status, out, err = run(capsys, "--db", str(source.path), "migrate", "--to", lake, "--data-path",
                           str(tmp_path / "lake"))
    assert status == 0, out + err
    assert "the copy verifies and its counts match" in out
    target = EvidenceStore(lake)
    for sql in ("SELECT * EXCLUDE (metadata) FROM evidence_versions ORDER BY id, seq",
                "SELECT * FROM provenance ORDER BY item_table, item_id, seq",
                "SELECT * EXCLUDE (raw) FROM stripe_charges ORDER BY id", "SELECT * FROM sightings ORDER BY ALL"):
        assert target.query(sql) == source.query(sql), sql
    assert target.verify() == [] and run(capsys, "search", "circuit", "--store", lake)[0] == 0
    status, _, err = run(capsys, "--db", str(source.path), "migrate", "--to", lake)
    assert status == 2 and "already holds provenance records" in err
