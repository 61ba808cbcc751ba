"""Eight writer processes load overlapping, partly changed items into one store, round after round, on both backends.

Items 0-9 and 18-39 are loaded by all eight writers at once: 0-9 change every round in the same way for everyone
(eight writers race to add the same version: exactly one must), 18-39 never change. Items 10-17 belong to one
writer each, which changes it every round. After every round: no load failed, each item's provenance seq is
1..n without gap or duplicate and linked, ``verify`` passes.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.provenance import SourceType

WRITERS, ROUNDS, ITEMS = 8, 3, 40
SHARED_CHANGING, OWN_CHANGING = range(10), range(10, 18)


def batch(writer: int, rnd: int) -> dict[int, str]:
    """The items ``writer`` loads in round ``rnd``, by number, with their text."""
    shared = {i: f"shared text of round {rnd}" for i in SHARED_CHANGING}
    stable = {i: "stable text" for i in range(OWN_CHANGING.stop, ITEMS)}
    return {**shared, OWN_CHANGING.start + writer: f"text of round {rnd}", **stable}


def load_round(spec: str, data_path: str | None, writer: int, rnd: int) -> tuple[int, int, int]:
    """One writer's load of every item in round ``rnd`` (in its own process): (new, changed, unchanged)."""
    store = EvidenceStore(spec, lock_timeout=120, data_path=data_path)
    items = [Evidence(id=f"hackernews:{i}", source_type=SourceType.FORUM, source_id=str(i), title=f"item {i}",
                      content=f"{text} {i}", created_at="2026-01-01T00:00:00Z")
             for i, text in batch(writer, rnd).items()]
    ctx = LoadContext(connector="HackerNews", run_id=f"run-{rnd}-{writer}", asset_key="evidence_hackernews",
                      partition_key=f"2026-01-0{1 + writer % 4}|topic-{writer % 2}")
    result = store.load_evidence(items, ctx)
    return result.rows_new, result.rows_changed, result.rows_unchanged


@pytest.mark.slow
def test_eight_writers_keep_every_chain_linear_round_after_round(store_spec: tuple[str, str | None]) -> None:
    eight_writers(*store_spec)


@pytest.mark.slow
def test_eight_writers_on_a_lake_with_a_sqlite_catalog(tmp_path: Path) -> None:
    eight_writers(f"ducklake:sqlite:{tmp_path / 'catalog.sqlite'}", str(tmp_path / "lake"))


def eight_writers(spec: str, data_path: str | None) -> None:
    """ROUNDS rounds of WRITERS concurrent loads into the store ``spec``, checked after every round."""
    store = EvidenceStore(spec, lock_timeout=120, data_path=data_path)
    store.initialize()
    with multiprocessing.get_context("spawn").Pool(WRITERS) as pool:
        for rnd in range(1, ROUNDS + 1):
            started = time.monotonic()
            results = pool.starmap(load_round, [(spec, data_path, w, rnd) for w in range(WRITERS)])
            print(f"{store.backend}: round {rnd} of {WRITERS} writers took {time.monotonic() - started:.2f}s")
            assert len(results) == WRITERS  # a failed load raises out of starmap
            assert store.verify() == []
            versions = dict(store.query("SELECT item_id, max(seq) FROM provenance GROUP BY item_id"))
            assert len(versions) == ITEMS
            # Round 1 creates every item once; each later round adds one version to each changing item, once.
            assert versions == {f"hackernews:{i}": rnd if i < OWN_CHANGING.stop else 1 for i in range(ITEMS)}
            assert sum(new for new, _, _ in results) == (ITEMS if rnd == 1 else 0)
            changing = len(SHARED_CHANGING) + len(OWN_CHANGING)
            assert sum(changed for _, changed, _ in results) == (0 if rnd == 1 else changing)
            assert store.query("SELECT count(*) FROM evidence") == [(ITEMS,)]
            assert store.query("SELECT count(*) FROM loads WHERE status = 'success'") == [(WRITERS * rnd,)]
    current = dict(store.query("SELECT id, content FROM evidence"))
    assert current["hackernews:3"] == f"shared text of round {ROUNDS} 3"
    assert current["hackernews:12"] == f"text of round {ROUNDS} 12"
