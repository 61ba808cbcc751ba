"""A full disk (issue 12): an ingest says "disk full while writing <path>; the store is unchanged" in one line,
from the command line and from a Dagster materialization, and the store is exactly as it was.

The disk is a real 16 MB tmpfs (mounting one needs root: the tests skip, saying so, where that is not allowed),
filled with a filler file up to what the case needs: too little room for the staged rows, or room for them
but not for DuckDB's write. After the failure the filler is removed and the store reopened and compared.
"""

from __future__ import annotations

import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterEventType, DagsterInstance, materialize

from aragora_pipelines.cli import main
from aragora_pipelines.definitions import RESOURCES, evidence_assets
from aragora_pipelines.resources import DuckDBStoreResource, TopicsResource, evidence_resource_class
from aragora_pipelines.store import STAGING_DIR, EvidenceStore
from connectors.registry import EVIDENCE_CONNECTORS

DOCS = 40
DOC_CHARS = 20_000  # 40 documents: about 800 KB of staged rows, more than the disk has once it is filled


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of our own, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 16 MB tmpfs to fill (needs root): {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A documents folder (on the ordinary disk) with two small notes about retries."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(2):
        (folder / f"note-{i}.md").write_text(f"# Retry note {i}\n\nRetry with backoff.\n")
    monkeypatch.setenv("ARAGORA_LOCAL_DOCS_ROOT", str(folder))
    return folder


def add_large_documents(folder: Path) -> int:
    """Documents that do not compress much, from a small vocabulary (a small search index); returns their size."""
    rng = random.Random(12)
    vocabulary = [f"{rng.getrandbits(40):x}" for _ in range(300)]
    for i in range(DOCS):
        words = " ".join(rng.choice(vocabulary) for _ in range(DOC_CHARS // 11))
        (folder / f"big-{i}.md").write_text(f"# Retry report {i}\n\nretry {words}\n")
    return sum(path.stat().st_size for path in folder.glob("big-*.md"))


def fill(mount: Path, leave: int) -> Path:
    """A filler file taking all the free space of ``mount`` but ``leave`` bytes."""
    stat = os.statvfs(mount)
    filler = mount / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - leave))
    return filler


def snapshot(db: Path) -> dict[str, Any]:
    """Everything a load writes, read from a fresh reopen of the file, and the verification of the chain."""
    store = EvidenceStore(db, lock_timeout=30)
    return {
        "evidence": store.query("SELECT id, content_hash, last_seen FROM evidence ORDER BY id"),
        "provenance": store.query("SELECT seq, item_id, previous_hash, chain_hash, fetched_at FROM provenance "
                                  "ORDER BY seq"),
        "loads": store.query("SELECT load_id, rows_fetched, status FROM loads ORDER BY load_id"),
        "citations": store.query("SELECT claim_id, evidence_id FROM claim_citations ORDER BY ALL"),
        "problems": store.verify(),
    }


def ingest(capsys: pytest.CaptureFixture[str], db: Path) -> tuple[int, str]:
    status = main(["--db", str(db), "ingest", "local_docs", "--query", "retry", "--claim", "claim_retries", "-q"])
    return status, capsys.readouterr().err


@pytest.mark.parametrize("where", ["staging", "database"])
def test_cli_ingest_on_a_full_disk_says_so_in_one_line_and_leaves_the_store_unchanged(
        where: str, small_disk: Path, docs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = small_disk / "evidence.duckdb"
    assert ingest(capsys, db)[0] == 0
    before = snapshot(db)
    assert len(before["evidence"]) == 2 and before["problems"] == []
    size = add_large_documents(docs)
    # staging: not even room for the staged rows; database: room for them, not for DuckDB's copy as well.
    filler = fill(small_disk, 64 * 1024 if where == "staging" else size + size // 5)
    status, err = ingest(capsys, db)
    filler.unlink()
    assert status == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err and "rollback" not in err, err
    written = str(small_disk / STAGING_DIR / "evidence-") if where == "staging" else f"{db};"
    assert err.startswith(f"aragora-pipelines: error: disk full while writing {written}"), err
    assert err.rstrip().endswith("; the store is unchanged"), err
    assert snapshot(db) == before
    assert list((small_disk / STAGING_DIR).iterdir()) == []  # no staged file left behind
    status, err = ingest(capsys, db)
    assert status == 0, err  # with room again, the same ingest goes through
    assert len(snapshot(db)["evidence"]) == 2 + DOCS


def test_a_materialization_on_a_full_disk_fails_once_with_the_message(
        small_disk: Path, docs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    db = small_disk / "evidence.duckdb"
    assert ingest(capsys, db)[0] == 0
    before = snapshot(db)
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  retries:\n    query: retry\n")
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["retries"])
    size = add_large_documents(docs)
    filler = fill(small_disk, size + size // 5)
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(db)), "topics": TopicsResource(file=str(topics)),
                 "local_docs": evidence_resource_class(EVIDENCE_CONNECTORS["local_docs"])(root=str(docs))}
    result = materialize([evidence_assets["local_docs"]], partition_key="retries", resources=resources,
                         instance=instance, raise_on_error=False,
                         run_config={"ops": {"evidence_local_docs": {"config": {"limit": 1000}}}})
    filler.unlink()
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failures[0].event_specific_data.error.message
    assert f"disk full while writing {db}; the store is unchanged (not retried: free disk space" in message, message
    assert "cannot rollback" not in message
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert snapshot(db) == before
