"""Shared pieces of the core test suite: a fake clock and a tiny connector for the simulator's HN route."""

from __future__ import annotations

from typing import Any

from connectors.base import BaseConnector, Evidence, evidence_id
from connectors.exceptions import ConnectorParseError
from connectors.provenance import SourceType
from connectors.text import iso_utc

HN_ID_OFFSET = 40_000_000  # the simulator's HN objectID of record i is 40_000_000 + i


class FakeClock:
    """A monotonic clock the test moves by hand (breakers, caches and limiters accept ``clock=``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


def hit_to_evidence(hit: dict[str, Any], source: str, source_type: SourceType) -> Evidence:
    """Map one HN Algolia hit (as the simulator serves it) to Evidence."""
    return Evidence(
        id=evidence_id(source, hit["objectID"]),
        source_type=source_type,
        source_id=str(hit["objectID"]),
        content=hit.get("story_text") or "",
        title=hit.get("title") or "",
        created_at=iso_utc(hit.get("created_at_i")),
        author=hit.get("author"),
        url=hit.get("url"),
        metadata={"points": hit.get("points")},
    )


def hits_of(data: Any, connector: str) -> list[dict[str, Any]]:
    """The ``hits`` list of an HN search body, or ConnectorParseError when the body has another shape."""
    if not isinstance(data, dict) or not isinstance(data.get("hits"), list):
        raise ConnectorParseError("HN search: body has no 'hits' list", connector=connector)
    return data["hits"]


class HNTestConnector(BaseConnector):
    """A minimal evidence connector over ``GET {base}/search?query=&page=&hitsPerPage=`` (HN Algolia shape).

    Scores are the Evidence defaults: the suite tests the core, not a ranking.
    """

    SOURCE = "hntest"
    ENV_NAME = "HNTEST"

    @property
    def name(self) -> str:
        """Connector name used in errors and breaker names."""
        return "HNTest"

    @property
    def source_type(self) -> SourceType:
        """HN is a forum."""
        return SourceType.FORUM

    async def search(self, query: str, limit: int = 10, **kwargs: Any) -> list[Evidence]:
        """The first ``limit`` hits of page 0."""
        self._check_limit(limit)
        data = await self._get_json("/search", {"query": query, "page": 0, "hitsPerPage": limit})
        return [hit_to_evidence(hit, self.SOURCE, self.source_type) for hit in hits_of(data, self.name)[:limit]]

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One item: the simulator serves record i as page i of size 1 (its search ignores the query)."""
        object_id = evidence_id.removeprefix(f"{self.SOURCE}:")
        if not object_id.isdigit() or int(object_id) < HN_ID_OFFSET:
            return None
        cached = self._cache_get(object_id)
        if cached is not None:
            return cached
        data = await self._get_json("/search", {"query": "", "page": int(object_id) - HN_ID_OFFSET, "hitsPerPage": 1})
        hits = [h for h in hits_of(data, self.name) if str(h.get("objectID")) == object_id]
        if not hits:
            return None
        evidence = hit_to_evidence(hits[0], self.SOURCE, self.source_type)
        self._cache_put(object_id, evidence)
        return evidence


class TokenHNConnector(HNTestConnector):
    """The HN test connector with a required bearer token read from ``HNTEST_TOKEN``."""

    CREDENTIALS = {"token": "HNTEST_TOKEN"}
    REQUIRED_CREDENTIALS = ("token",)

    def __init__(self, *, token: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._token = self._credential("token", token)

    def _default_headers(self) -> dict[str, str]:
        """Bearer auth."""
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

