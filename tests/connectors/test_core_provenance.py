"""Provenance: source types, the hash chain and its verification, citations, export/load."""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading

import pytest

from connectors.base import Evidence
from connectors.provenance import (
    GENESIS_HASH,
    Citation,
    ProvenanceManager,
    ProvenanceRecord,
    SourceType,
    SupportType,
    compute_chain_hash,
    verify_records,
)


def item(n: int, content: str = "") -> Evidence:
    """A small piece of evidence number ``n``."""
    return Evidence(id=f"web:{n}", source_type=SourceType.WEB_SEARCH, source_id=f"https://example.test/{n}",
                    content=content or f"page {n} says something", title=f"Page {n}")


def chain(length: int = 4) -> ProvenanceManager:
    """A manager holding ``length`` records."""
    manager = ProvenanceManager()
    for n in range(length):
        manager.record_evidence(item(n), connector="Web", connector_version="0.1.0")
    return manager


def test_source_types_include_the_guide_web_search() -> None:
    assert SourceType.WEB_SEARCH == "web_search"
    assert SourceType("web_search") is SourceType.WEB_SEARCH
    assert {"DOCUMENT", "CODE_REPOSITORY", "ACADEMIC_PAPER", "NEWS", "FORUM"} <= {s.name for s in SourceType}


def test_records_form_a_hash_chain() -> None:
    manager = chain(3)
    records = manager.records
    assert records[0].previous_hash == GENESIS_HASH
    for before, after in itertools.pairwise(records):
        assert after.previous_hash == before.chain_hash
    for record, n in zip(records, range(3), strict=True):
        assert record.content_hash == item(n).content_hash
        assert record.chain_hash == compute_chain_hash(record.content_hash, record.previous_hash, record.timestamp)
        assert record.id == f"prov_{record.chain_hash[:24]}"
        assert (record.evidence_id, record.source_type, record.connector) == (f"web:{n}", "web_search", "Web")
    assert manager.head_hash == records[-1].chain_hash
    assert ProvenanceManager().head_hash == GENESIS_HASH


def test_intact_chain_verifies() -> None:
    result = chain(5).verify_chain()
    assert result and result.valid and result.checked == 5 and result.broken_at is None
    assert ProvenanceManager().verify_chain()


def test_a_changed_record_is_detected() -> None:
    records = chain().records
    records[2] = dataclasses.replace(records[2], content_hash=item(99).content_hash)
    result = verify_records(records)
    assert not result and result.broken_at == 2 and "changed" in result.reason


def test_a_changed_timestamp_is_detected() -> None:
    records = chain().records
    records[1] = dataclasses.replace(records[1], timestamp="2020-01-01T00:00:00.000000Z")
    assert verify_records(records).broken_at == 1


def test_a_removed_record_is_detected() -> None:
    records = chain().records
    del records[1]
    result = verify_records(records)
    assert not result and result.broken_at == 1 and "removed" in result.reason


def test_reordered_records_are_detected() -> None:
    records = chain().records
    records[1], records[2] = records[2], records[1]
    assert verify_records(records).broken_at == 1


def test_a_changed_item_gets_a_new_record_linked_to_the_old_one() -> None:
    manager = ProvenanceManager()
    first = manager.record_evidence(item(1, "version one"))
    second = manager.record_evidence(item(1, "version two"))
    assert [r.id for r in manager.history("web:1")] == [first.id, second.id]
    assert second.previous_hash == first.chain_hash and second.content_hash != first.content_hash


def test_citations_with_support_types() -> None:
    manager = ProvenanceManager()
    manager.record_evidence(item(1), claim_id="claim_a")
    manager.cite("claim_a", "web:2", SupportType.CONTRADICTS, relevance=0.4, note="says the opposite")
    manager.cite("claim_a", "web:3", "contextualizes")
    manager.cite("claim_b", "web:1", SupportType.SUPPORTS)
    supports = [(c.evidence_id, c.support, c.relevance) for c in manager.citations_for("claim_a")]
    assert supports == [("web:1", SupportType.SUPPORTS, 1.0), ("web:2", SupportType.CONTRADICTS, 0.4),
                        ("web:3", SupportType.CONTEXTUALIZES, 1.0)]
    assert [c.evidence_id for c in manager.citations_for("claim_b")] == ["web:1"]
    assert {s.value for s in SupportType} == {"supports", "contradicts", "contextualizes"}


def test_invalid_citations_are_refused() -> None:
    manager = ProvenanceManager()
    with pytest.raises(ValueError, match="relevance"):
        manager.cite("claim", "web:1", relevance=1.5)
    with pytest.raises(ValueError):
        manager.cite("claim", "web:1", "endorses")
    assert manager.citations == []


def test_export_load_round_trip() -> None:
    manager = chain(3)
    manager.cite("claim_x", "web:0", SupportType.CONTRADICTS, relevance=0.25, note="n")
    text = manager.to_json()
    loaded = ProvenanceManager.load(text)
    assert loaded.records == manager.records and loaded.citations == manager.citations
    assert all(isinstance(r, ProvenanceRecord) for r in loaded.records)
    assert all(isinstance(c, Citation) and isinstance(c.support, SupportType) for c in loaded.citations)
    assert ProvenanceManager.load(json.loads(text)).export() == manager.export()
    assert loaded.head_hash == manager.head_hash
    loaded.record_evidence(item(9))  # a loaded chain keeps growing from its head
    assert loaded.verify_chain() and loaded.records[-1].previous_hash == manager.head_hash


@pytest.mark.parametrize("tamper", ["change", "remove", "reorder"])
def test_loading_a_tampered_export_raises(tamper: str) -> None:
    data = chain(4).export()
    records = data["records"]
    if tamper == "change":
        records[1]["content_hash"] = "f" * 64
    elif tamper == "remove":
        del records[2]
    else:
        records[0], records[1] = records[1], records[0]
    with pytest.raises(ValueError, match="does not verify"):
        ProvenanceManager.load(data)


def test_concurrent_recording_keeps_one_unbroken_chain() -> None:
    manager = ProvenanceManager()
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(50):
            manager.record_evidence(item(n * 100 + i))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(manager.records) == 400 and manager.verify_chain()
