"""HackerNews stories and comments as evidence, through the Algolia HN Search API."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import BaseConnector, Evidence, PaginationGuard, evidence_id, split_window
from connectors.exceptions import ConnectorNotFoundError, ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_to_text, iso_utc, log_scale, parse_datetime

log = get_logger(__name__)

MAX_HITS_PER_PAGE = 1000  # Algolia's hitsPerPage ceiling
FRESHNESS_HALF_LIFE_DAYS = 90.0
ITEM_URL = "https://news.ycombinator.com/item?id={}"
_ITEM_TYPES = frozenset({"story", "comment", "poll", "pollopt", "job", "show_hn", "ask_hn"})
_ENDPOINTS = {"relevance": "/search", "date": "/search_by_date"}


def window_filter(since: datetime | None, until: datetime | None) -> str | None:
    """Algolia ``numericFilters`` selecting created_at_i in [since, until) (whole epoch seconds)."""
    parts = []
    if since:
        parts.append(f"created_at_i>={math.ceil(since.timestamp())}")
    if until:
        parts.append(f"created_at_i<{math.ceil(until.timestamp())}")
    return ",".join(parts) or None


def _number(value: Any) -> int:
    """A JSON count, or 0 when it is null, negative or not a number."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _string(value: Any) -> str | None:
    """A JSON text field, or None when it is absent or not text (a broken or hostile answer)."""
    return value if isinstance(value, str) else None


def _children(node: dict[str, Any]) -> list[Any]:
    children = node.get("children")
    return children if isinstance(children, list) else []


def _descendants(item: dict[str, Any]) -> int:
    """How many comments hang below an ``/items`` node (its ``children`` tree, walked without recursion)."""
    count, stack = 0, list(_children(item))
    while stack:
        child = stack.pop()
        if isinstance(child, dict):
            count += 1
            stack.extend(_children(child))
    return count


class HackerNewsConnector(BaseConnector):
    """HackerNews stories and comments from Algolia's HN Search API (``hn.algolia.com/api/v1``).

    ``search`` calls ``/search`` (relevance) or, with ``sort="date"``, ``/search_by_date``; ``tags``
    ("story", "comment", "(story,poll)", "author_pg", ...) is passed through. since/until become
    ``numericFilters=created_at_i>=A,created_at_i<B``. Page 0 reports ``nbPages``; the remaining pages
    are fetched concurrently (at most ``max_concurrency`` in flight). Algolia serves at most ~1000 hits
    per query (``nbPages`` is capped), so when ``nbHits`` exceeds what the pages reach and more is wanted,
    the window is halved recursively. ``hits_per_page`` defaults to 100 (Algolia allows up to 1000).
    ``fetch`` reads ``/items/{id}`` (a story with its nested comment tree).

    Rate limit: none by default (``RATE_LIMIT = None``). Algolia allows 10,000 requests per hour per IP;
    the core limiter paces evenly (period/rate), so honouring that as (10000, 3600) would space every
    request 0.36 s apart and make a 200-page ingest take 72 s, while a daily window needs a handful of
    requests. A 429 is still retried after its Retry-After. Pass ``rate_limit=(10000, 3600)`` to pace.

    Scores (all in [0, 1]):
    - authority = 0.1 + 0.5 * log_scale(points, 500) + 0.4 * log_scale(num_comments, 300);
    - confidence = 0.3 + 0.4 * log_scale(points, 1000) (a forum: community votes raise it, to 0.7 at most);
    - freshness = 0.5 ** (days since created_at_i / 90).
    """

    SOURCE: ClassVar[str] = "hackernews"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://hn.algolia.com/api/v1"
    ENV_NAME: ClassVar[str | None] = "HACKERNEWS"
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = None

    def __init__(self, *, base_url: str | None = None, hits_per_page: int = 100, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, **kwargs)
        if not isinstance(hits_per_page, int) or not 1 <= hits_per_page <= MAX_HITS_PER_PAGE:
            raise ConnectorValidationError(
                f"hits_per_page must be an integer from 1 to {MAX_HITS_PER_PAGE}, got {hits_per_page!r}",
                connector=self.name,
            )
        self.hits_per_page = hits_per_page

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "HackerNews"

    @property
    def source_type(self) -> SourceType:
        """HackerNews is a forum."""
        return SourceType.FORUM

    # --- search ---------------------------------------------------------------------------
    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Stories/comments matching ``query`` created in [since, until), at most ``limit`` of them."""
        want = self._check_limit(limit)
        since, until = self._check_window(since, until)
        self._check_options(kwargs, ("sort", "tags"))
        sort = kwargs.get("sort") or "relevance"
        if sort not in _ENDPOINTS:
            raise ConnectorValidationError(f"sort must be 'relevance' or 'date', got {sort!r}", connector=self.name)
        params: dict[str, Any] = {"query": query or ""}
        if kwargs.get("tags"):
            params["tags"] = str(kwargs["tags"])
        items: dict[str, Evidence] = {}
        await self._search_window(_ENDPOINTS[sort], params, since, until, want, items)
        return list(items.values())

    async def _search_window(
        self,
        endpoint: str,
        base_params: dict[str, Any],
        since: datetime | None,
        until: datetime | None,
        want: int,
        items: dict[str, Evidence],
    ) -> None:
        """Collect up to ``want`` new hits of one window into ``items``, halving it past Algolia's cap."""
        per_page = min(self.hits_per_page, want)
        params = {**base_params, "hitsPerPage": per_page}
        numeric = window_filter(since, until)
        if numeric:
            params["numericFilters"] = numeric
        guard = PaginationGuard(self.name, f"HackerNews {endpoint}")
        target = len(items) + want

        first = await self._page(endpoint, params, 0, guard)
        nb_hits = _number(first.get("nbHits"))
        nb_pages = _number(first.get("nbPages")) or math.ceil(nb_hits / per_page)
        reachable = nb_pages * (_number(first.get("hitsPerPage")) or per_page)
        if nb_hits > reachable and want > reachable:
            if since and until and until - since > timedelta(seconds=1):
                for lo, hi in split_window(since, until):
                    if len(items) < target:
                        await self._search_window(endpoint, base_params, lo, hi, target - len(items), items)
                return
            log.warning(
                "HackerNews query %r has %d hits but Algolia serves only %d per query; "
                "pass since/until so the window can be split",
                base_params.get("query"), nb_hits, reachable,
            )
        self._collect(self._hits(first), items, target)

        next_page = 1
        while len(items) < target and next_page < nb_pages:
            needed = math.ceil((target - len(items)) / per_page)
            batch = range(next_page, min(nb_pages, next_page + needed))
            for hits in await self._pages(endpoint, params, batch, guard):
                self._collect(hits, items, target)
            next_page = batch.stop

    async def _pages(
        self, endpoint: str, params: dict[str, Any], numbers: range, guard: PaginationGuard
    ) -> list[list[Evidence]]:
        """The hits of pages ``numbers``, fetched concurrently (the core's gate bounds them to ``max_concurrency``).

        Each page is mapped as soon as it arrives, while the others are in flight, and its raw body
        is dropped. The first failure is raised as itself and the pages still in flight are cancelled.
        """
        async def page_hits(number: int) -> list[Evidence]:
            return self._hits(await self._page(endpoint, params, number, guard))

        tasks = [asyncio.ensure_future(page_hits(number)) for number in numbers]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _page(self, endpoint: str, params: dict[str, Any], number: int, guard: PaginationGuard) -> dict[str, Any]:
        """One page of hits; the page number the server reports must not repeat."""
        body = await self._get_json(endpoint, {**params, "page": number}, operation=f"GET {endpoint}")
        if not isinstance(body, dict) or not isinstance(body.get("hits"), list):
            raise ConnectorParseError(f"GET {endpoint}: expected an object with a 'hits' list", connector=self.name)
        reported = body.get("page")
        guard.check(reported if isinstance(reported, int) else number)
        return body

    def _hits(self, body: dict[str, Any]) -> list[Evidence]:
        """The evidence of one page's hits, in page order (hits without an objectID are skipped)."""
        mapped = (self._to_evidence(hit) for hit in body["hits"] if isinstance(hit, dict))
        return [evidence for evidence in mapped if evidence is not None]

    @staticmethod
    def _collect(hits: list[Evidence], items: dict[str, Evidence], target: int) -> None:
        for evidence in hits:
            if len(items) >= target:
                return
            items.setdefault(evidence.id, evidence)

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One item (story, comment, poll, job) by its id or ``hackernews:<id>``; None when absent."""
        source_id = str(evidence_id).removeprefix(f"{self.SOURCE}:")
        if not (source_id.isascii() and source_id.isdigit()):
            raise ConnectorValidationError(
                f"HackerNews ids are numbers like '8863' or 'hackernews:8863', got {evidence_id!r}",
                connector=self.name,
            )
        cached = self._cache_get(source_id)
        if cached is not None:
            return cached
        try:
            item = await self._get_json(f"/items/{source_id}", operation="GET /items/{id}")
        except ConnectorNotFoundError:
            return None
        if not isinstance(item, dict):
            raise ConnectorParseError(f"GET /items/{source_id}: expected a JSON object", connector=self.name)
        kind = item.get("type")
        evidence = self._to_evidence({
            "objectID": item.get("id") or source_id,
            "title": item.get("title"),
            "story_text": item.get("text"),
            "url": item.get("url"),
            "author": item.get("author"),
            "points": item.get("points"),
            "num_comments": _descendants(item),
            "created_at_i": item.get("created_at_i"),
            "created_at": item.get("created_at"),
            "story_id": item.get("story_id"),
            "parent_id": item.get("parent_id"),
            "_tags": [kind] if kind else [],
        })
        self._cache_put(source_id, evidence)
        return evidence

    # --- mapping --------------------------------------------------------------------------
    def _to_evidence(self, hit: dict[str, Any]) -> Evidence | None:
        """Evidence from an Algolia hit (None when it has no objectID)."""
        object_id = hit.get("objectID")
        if object_id is None or object_id == "":
            return None
        object_id = str(object_id)
        title = html_to_text(_string(hit.get("title")) or _string(hit.get("story_title")))
        text = html_to_text(_string(hit.get("story_text")) or _string(hit.get("comment_text")))
        points, comments = _number(hit.get("points")), _number(hit.get("num_comments"))
        created = parse_datetime(hit.get("created_at_i") or hit.get("created_at"))
        tags = hit.get("_tags") if isinstance(hit.get("_tags"), list) else []
        return Evidence(
            id=evidence_id(self.SOURCE, object_id),
            source_type=SourceType.FORUM,
            source_id=object_id,
            title=title,
            content=text or title,
            created_at=iso_utc(created),
            author=_string(hit.get("author")),
            url=ITEM_URL.format(object_id),
            confidence=clamp(0.3 + 0.4 * log_scale(points, 1000)),
            authority=clamp(0.1 + 0.5 * log_scale(points, 500) + 0.4 * log_scale(comments, 300)),
            freshness=freshness(created, FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "type": next((tag for tag in tags if isinstance(tag, str) and tag in _ITEM_TYPES), None),
                "points": points,
                "num_comments": comments,
                "story_url": hit.get("url") or hit.get("story_url"),
                "story_id": hit.get("story_id"),
                "parent_id": hit.get("parent_id"),
            },
        )
