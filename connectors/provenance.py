"""Provenance: source types, a hash-chained record of every piece of evidence, claim citations.

Each record's ``chain_hash`` is ``sha256(content_hash | previous_hash | timestamp)``, a
formula SQL can recompute, so a changed, removed or reordered record breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from connectors.base import Evidence

GENESIS_HASH = "0" * 64


class SourceType(StrEnum):
    """What kind of source a piece of evidence came from."""

    WEB_SEARCH = "web_search"
    DOCUMENT = "document"
    CODE_REPOSITORY = "code_repository"
    ACADEMIC_PAPER = "academic_paper"
    ENCYCLOPEDIA = "encyclopedia"
    NEWS = "news"
    FORUM = "forum"
    SOCIAL_MEDIA = "social_media"
    DATABASE = "database"
    REGULATORY_FILING = "regulatory_filing"
    AUDIO_TRANSCRIPT = "audio_transcript"
    BUSINESS_SYSTEM = "business_system"


class SupportType(StrEnum):
    """How a piece of evidence bears on a claim."""

    SUPPORTS = "supports"
    CONTRADICTS = "contradicts"
    CONTEXTUALIZES = "contextualizes"


def utc_timestamp(moment: datetime | None = None) -> str:
    """A canonical UTC timestamp string (microseconds, ``Z``), the form chain hashes are computed on."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compute_chain_hash(content_hash: str, previous_hash: str, timestamp: str) -> str:
    """``sha256(content_hash || '|' || previous_hash || '|' || timestamp)`` as hex."""
    return hashlib.sha256(f"{content_hash}|{previous_hash}|{timestamp}".encode()).hexdigest()


@dataclass(frozen=True)
class ProvenanceRecord:
    """One link of the chain: which evidence, which content, when, fetched by what."""

    id: str
    evidence_id: str
    source_type: str
    source_id: str
    content_hash: str
    previous_hash: str
    chain_hash: str
    timestamp: str
    connector: str = ""
    connector_version: str = ""
    claim_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def recompute_hash(self) -> str:
        """The chain hash this record should carry given its fields."""
        return compute_chain_hash(self.content_hash, self.previous_hash, self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Citation:
    """A claim citing a piece of evidence."""

    claim_id: str
    evidence_id: str
    support: SupportType = SupportType.SUPPORTS
    relevance: float = 1.0
    note: str = ""
    created_at: str = field(default_factory=utc_timestamp)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "support": self.support.value}


@dataclass(frozen=True)
class ChainVerification:
    """The outcome of :meth:`ProvenanceManager.verify_chain`; truthy when the chain is intact."""

    valid: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""

    def __bool__(self) -> bool:
        return self.valid


def verify_records(records: list[ProvenanceRecord]) -> ChainVerification:
    """Check that each record links to the one before and that its hash matches its fields."""
    previous = GENESIS_HASH
    for index, record in enumerate(records):
        if record.previous_hash != previous:
            return ChainVerification(
                False, index, index, f"record {record.id} does not link to the record before it "
                "(a record was removed, inserted or reordered)"
            )
        if record.recompute_hash() != record.chain_hash:
            return ChainVerification(False, index, index, f"record {record.id} was changed after it was written")
        previous = record.chain_hash
    return ChainVerification(True, len(records))


class ProvenanceManager:
    """An append-only, thread-safe provenance chain with claim citations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[ProvenanceRecord] = []
        self._citations: list[Citation] = []

    @property
    def records(self) -> list[ProvenanceRecord]:
        """A copy of the chain, oldest first."""
        with self._lock:
            return list(self._records)

    @property
    def citations(self) -> list[Citation]:
        """A copy of every citation, oldest first."""
        with self._lock:
            return list(self._citations)

    @property
    def head_hash(self) -> str:
        """The chain hash of the newest record (the genesis hash when empty)."""
        with self._lock:
            return self._records[-1].chain_hash if self._records else GENESIS_HASH

    def record_evidence(
        self,
        evidence: Evidence,
        *,
        connector: str = "",
        connector_version: str = "",
        claim_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        timestamp: str | None = None,
    ) -> ProvenanceRecord:
        """Append a record for ``evidence`` (and cite it for ``claim_id`` when given)."""
        timestamp = timestamp or utc_timestamp()
        with self._lock:
            previous = self._records[-1].chain_hash if self._records else GENESIS_HASH
            content_hash = evidence.content_hash
            chain_hash = compute_chain_hash(content_hash, previous, timestamp)
            record = ProvenanceRecord(
                id=f"prov_{chain_hash[:24]}",
                evidence_id=evidence.id,
                source_type=str(evidence.source_type),
                source_id=evidence.source_id,
                content_hash=content_hash,
                previous_hash=previous,
                chain_hash=chain_hash,
                timestamp=timestamp,
                connector=connector,
                connector_version=connector_version,
                claim_id=claim_id,
                metadata=dict(metadata or {}),
            )
            self._records.append(record)
        if claim_id:
            self.cite(claim_id, evidence.id)
        return record

    def cite(
        self,
        claim_id: str,
        evidence_id: str,
        support: SupportType | str = SupportType.SUPPORTS,
        relevance: float = 1.0,
        note: str = "",
    ) -> Citation:
        """Record that ``claim_id`` cites ``evidence_id`` with a support type."""
        if not 0.0 <= relevance <= 1.0:
            raise ValueError(f"relevance must be within [0, 1], got {relevance}")
        citation = Citation(claim_id, evidence_id, SupportType(support), relevance, note)
        with self._lock:
            self._citations.append(citation)
        return citation

    def citations_for(self, claim_id: str) -> list[Citation]:
        """The citations of one claim."""
        return [c for c in self.citations if c.claim_id == claim_id]

    def history(self, evidence_id: str) -> list[ProvenanceRecord]:
        """Every record of one piece of evidence, oldest first."""
        return [r for r in self.records if r.evidence_id == evidence_id]

    def verify_chain(self) -> ChainVerification:
        """Detect a changed, removed or reordered record."""
        return verify_records(self.records)

    def export(self) -> dict[str, Any]:
        """The chain and citations as a JSON-ready dict (round-trips through :meth:`load`)."""
        return {
            "version": 1,
            "records": [r.to_dict() for r in self.records],
            "citations": [c.to_dict() for c in self.citations],
        }

    def to_json(self) -> str:
        """:meth:`export` as a JSON string."""
        return json.dumps(self.export(), sort_keys=True)

    @classmethod
    def load(cls, data: dict[str, Any] | str) -> ProvenanceManager:
        """Rebuild a manager from :meth:`export` output; the chain is verified on load."""
        if isinstance(data, str):
            data = json.loads(data)
        manager = cls()
        manager._records = [ProvenanceRecord(**r) for r in data.get("records", [])]
        manager._citations = [
            Citation(**{**c, "support": SupportType(c["support"])}) for c in data.get("citations", [])
        ]
        result = manager.verify_chain()
        if not result:
            raise ValueError(f"provenance export does not verify: {result.reason}")
        return manager
