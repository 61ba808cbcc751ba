"""NewsAPI evidence connector: news articles from ``GET /v2/everything``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from connectors.base import BaseConnector, Evidence, PaginationGuard, in_window, send_bounded
from connectors.base import evidence_id as scoped_id
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorError,
    ConnectorParseError,
    ConnectorQuotaError,
    ConnectorRateLimitError,
    ConnectorValidationError,
    error_from_response,
    parse_retry_after,
)
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_to_text, iso_utc, parse_datetime, query_terms

log = get_logger(__name__)


class NewsAPIResultsCapError(ConnectorQuotaError):
    """NewsAPI's ``maximumResultsReached``: the plan caps how deep a query may page (100 results on Developer)."""


# NewsAPI's documented error codes -> our hierarchy. They arrive with HTTP 400/401/426/429/500, and the
# status alone would mislabel some of them (426 is not an API failure, apiKeyExhausted is a quota).
_CODE_ERRORS: dict[str, type[ConnectorError]] = {
    "apiKeyInvalid": ConnectorAuthError,
    "apiKeyMissing": ConnectorAuthError,
    "apiKeyDisabled": ConnectorAuthError,
    "apiKeyExhausted": ConnectorQuotaError,
    "rateLimited": ConnectorRateLimitError,
    "maximumResultsReached": NewsAPIResultsCapError,
    "parameterInvalid": ConnectorValidationError,
    "parametersMissing": ConnectorValidationError,
    "sourcesTooMany": ConnectorValidationError,
    "sourceDoesNotExist": ConnectorValidationError,
    "unexpectedError": ConnectorAPIError,
}

# Authority by publisher domain (subdomains inherit). Wire services and papers of record first,
# then established general and technology press, press-release wires, and self-publishing platforms.
_DOMAIN_AUTHORITY: dict[str, float] = {
    **dict.fromkeys(
        ("reuters.com", "apnews.com", "bbc.co.uk", "bbc.com", "nytimes.com", "wsj.com", "ft.com", "bloomberg.com",
         "economist.com", "theguardian.com", "washingtonpost.com", "npr.org", "nature.com", "science.org"),
        0.9,
    ),
    **dict.fromkeys(
        ("cnbc.com", "cnn.com", "latimes.com", "axios.com", "politico.com", "theatlantic.com", "aljazeera.com",
         "time.com", "abcnews.go.com", "cbsnews.com", "nbcnews.com", "lemonde.fr", "spiegel.de"),
        0.8,
    ),
    **dict.fromkeys(
        ("arstechnica.com", "wired.com", "theverge.com", "techcrunch.com", "zdnet.com", "engadget.com",
         "venturebeat.com", "theregister.com"),
        0.75,
    ),
    **dict.fromkeys(("prnewswire.com", "businesswire.com", "globenewswire.com"), 0.4),
    **dict.fromkeys(("medium.com", "substack.com", "blogspot.com", "wordpress.com"), 0.3),
}
_CURATED_SOURCE_AUTHORITY = 0.55  # a publisher in NewsAPI's own source index (source.id set), not in the table
_UNKNOWN_SOURCE_AUTHORITY = 0.45

_SORT_ORDERS = ("relevancy", "popularity", "publishedAt")
_LANGUAGES = ("ar", "de", "en", "es", "fr", "he", "it", "nl", "no", "pt", "ru", "sv", "ud", "zh")
_TRUNCATION = re.compile(r"\s*…?\s*\[\+(\d+) chars\]\s*$")
_REMOVED = "[Removed]"  # NewsAPI's placeholder for articles taken down by the publisher
_MAX_QUERY_CHARS = 500


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def domain_authority(url: str, curated: bool) -> float:
    """Authority of a publisher from the documented domain table (longest matching suffix wins)."""
    host = (urlsplit(url).hostname or "").lower().removeprefix("www.")
    labels = host.split(".")
    for start in range(len(labels) - 1):
        score = _DOMAIN_AUTHORITY.get(".".join(labels[start:]))
        if score is not None:
            return score
    return _CURATED_SOURCE_AUTHORITY if curated else _UNKNOWN_SOURCE_AUTHORITY


class NewsAPIConnector(BaseConnector):
    """News articles from NewsAPI's ``/v2/everything`` search (https://newsapi.org/docs/endpoints/everything).

    Ids: ``newsapi:<first 16 hex of sha256(article url)>`` — the URL is the only stable key NewsAPI gives.
    Window: ``since``/``until`` become ``from``/``to`` and are enforced again on ``publishedAt`` ([since, until));
    an article without a parseable date is dropped when a window is given.
    Order: ``sort_by`` (default ``publishedAt``, newest first; or ``relevancy``/``popularity``).
    Pages: ``pageSize`` = min(limit, 100), ``page`` 1, 2, ... until ``limit`` or ``totalResults`` is reached.
    Plan cap: ``maximumResultsReached`` (Developer plan: 100 results per query) ends paging with a warning log
    when results were already gathered; it raises :class:`NewsAPIResultsCapError` only when nothing can be returned.
    ``fetch``: NewsAPI has no by-id endpoint, so ``fetch`` answers from articles cached by earlier searches
    (by id or url) and returns None otherwise; no request is sent.
    Scores:
      - authority: publisher domain table (0.9 wires/papers of record ... 0.3 self-publishing platforms);
        0.55 for other NewsAPI-indexed sources (``source.id`` set), 0.45 for the rest.
      - confidence: 0.35 + 0.1 author named + 0.15 description + 0.1 content + 0.3 x share of query terms found in
        the title, description and content (NewsAPI matches full text we cannot see; visible matches count more).
      - freshness: ``freshness(publishedAt, half_life_days=7)``, a smooth exponential decay.
    Errors are mapped from the JSON body's ``code`` (see ``_CODE_ERRORS``), not the HTTP status alone.
    RATE_LIMIT: one request per second. The Developer plan allows 100 requests a day (paid plans far more);
    the daily quota is enforced by NewsAPI (``rateLimited``/``apiKeyExhausted``), pacing here avoids bursts.
    The key travels in the ``X-Api-Key`` header, never in the URL.
    """

    SOURCE = "newsapi"
    DEFAULT_BASE_URL = "https://newsapi.org"
    ENV_NAME = "NEWSAPI"
    CREDENTIALS = {"api_key": "NEWSAPI_KEY"}
    REQUIRED_CREDENTIALS = ("api_key",)
    RATE_LIMIT = (1, 1.0)
    MAX_PAGE_SIZE = 100
    FRESHNESS_HALF_LIFE_DAYS = 7.0

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._api_key = self._credential("api_key", api_key)

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "NewsAPI"

    @property
    def source_type(self) -> SourceType:
        """News articles."""
        return SourceType.NEWS

    def _default_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self._api_key} if self._api_key else {}

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Articles matching ``query`` published in [since, until); kwargs ``sort_by``, ``language``, ``domains``."""
        self._check_limit(limit)
        since, until = self._check_window(since, until)
        params = self._search_params(query, since, until, kwargs)
        page_size = min(limit, self.MAX_PAGE_SIZE)
        terms = query_terms(query)
        guard = PaginationGuard(self.name, "search")
        results: list[Evidence] = []
        seen: set[str] = set()
        page = 1
        while len(results) < limit:
            guard.check(page)
            try:
                body = await self._everything({**params, "pageSize": page_size, "page": page})
            except NewsAPIResultsCapError:
                if not results:
                    raise
                log.warning(
                    "%s: the plan's result cap was reached at page %d; returning the %d articles gathered "
                    "(limit %d)", self.name, page, len(results), limit,
                )
                break
            articles = body.get("articles") or []
            for article in articles:
                evidence = self._to_evidence(article, terms) if isinstance(article, Mapping) else None
                if evidence is None or evidence.id in seen or not in_window(evidence.created_at, since, until):
                    continue
                seen.add(evidence.id)
                self._cache_put(evidence.id, evidence)
                results.append(evidence)
            total = body.get("totalResults")
            exhausted = isinstance(total, int) and page * page_size >= total
            if len(articles) < page_size or exhausted:
                break
            page += 1
        return results[:limit]

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """An article seen by an earlier search, by evidence id, bare hash or URL (NewsAPI has no by-id lookup)."""
        self.require_configured()
        key = evidence_id.strip()
        if key.startswith(("http://", "https://")):
            key = _url_key(key)
        key = key.removeprefix(f"{self.SOURCE}:")
        return self._cache_get(scoped_id(self.SOURCE, key))

    # --- request -------------------------------------------------------------------------
    def _search_params(
        self, query: str, since: datetime | None, until: datetime | None, options: dict[str, Any]
    ) -> dict[str, Any]:
        self._check_options(options, ("sort_by", "language", "domains"))
        query = (query or "").strip()
        domains = options.get("domains")
        if isinstance(domains, list | tuple | set):
            domains = ",".join(sorted(str(d).strip() for d in domains if str(d).strip()))
        if not query and not domains:
            raise ConnectorValidationError("NewsAPI needs a non-empty query (or domains=...)", connector=self.name)
        if len(query) > _MAX_QUERY_CHARS:
            raise ConnectorValidationError(
                f"NewsAPI queries are limited to {_MAX_QUERY_CHARS} characters (got {len(query)})", connector=self.name
            )
        params: dict[str, Any] = {"sortBy": options.get("sort_by") or "publishedAt"}
        if params["sortBy"] not in _SORT_ORDERS:
            raise ConnectorValidationError(
                f"sort_by must be one of {', '.join(_SORT_ORDERS)}, got {params['sortBy']!r}", connector=self.name
            )
        language = options.get("language")
        if language is not None:
            if language not in _LANGUAGES:
                raise ConnectorValidationError(
                    f"language must be one of {', '.join(_LANGUAGES)}, got {language!r}", connector=self.name
                )
            params["language"] = language
        if query:
            params["q"] = query
        if domains:
            params["domains"] = domains
        if since:
            params["from"] = since.strftime("%Y-%m-%dT%H:%M:%S")
        if until:
            params["to"] = until.strftime("%Y-%m-%dT%H:%M:%S")
        return params

    async def _everything(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of ``/v2/everything``, with NewsAPI's error codes mapped from the body."""

        async def call() -> dict[str, Any]:
            response = await send_bounded(self.client, "GET", "/v2/everything", self, "GET /v2/everything",
                                          params=params)
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.status_code >= 400 or (isinstance(body, dict) and body.get("status") == "error"):
                raise self._error(response, body)
            if not isinstance(body, dict) or not isinstance(body.get("articles") or [], list):
                raise ConnectorParseError("/v2/everything: expected an object with an 'articles' list",
                                          connector=self.name)
            return body

        return await self._request_with_retry(call, "GET /v2/everything")

    def _error(self, response: httpx.Response, body: Any) -> ConnectorError:
        code = body.get("code") if isinstance(body, dict) else None
        error_type = _CODE_ERRORS.get(str(code))
        if error_type is None:
            return error_from_response(response, self.name)
        message = f"NewsAPI {code} (HTTP {response.status_code}): {body.get('message') or 'no message'}"
        if error_type is ConnectorAuthError:
            message += "; check NEWSAPI_KEY"
        retry_after = parse_retry_after(response.headers) if error_type is ConnectorRateLimitError else None
        return error_type(
            message, connector=self.name, status_code=response.status_code, retry_after=retry_after,
            details={"code": code},
        )

    # --- parsing -------------------------------------------------------------------------
    def _to_evidence(self, article: Mapping[str, Any], terms: list[str]) -> Evidence | None:
        url = str(article.get("url") or "").strip()
        title = html_to_text(article.get("title"))
        if not url or title == _REMOVED:
            return None
        source = article.get("source") if isinstance(article.get("source"), Mapping) else {}
        description = html_to_text(article.get("description"))
        raw_content = html_to_text(article.get("content"))
        truncated = _TRUNCATION.search(raw_content)
        content = _TRUNCATION.sub("", raw_content).strip()
        author = html_to_text(article.get("author")) or None
        published = parse_datetime(article.get("publishedAt"))
        body = "\n\n".join(dict.fromkeys(part for part in (description, content) if part)) or title
        visible = f"{title}\n{body}".lower()
        matched = sum(1 for term in terms if term in visible) / len(terms) if terms else 0.0
        confidence = 0.35 + 0.1 * bool(author) + 0.15 * bool(description) + 0.1 * bool(content) + 0.3 * matched
        key = _url_key(url)
        return Evidence(
            id=scoped_id(self.SOURCE, key),
            source_type=SourceType.NEWS,
            source_id=key,
            content=body,
            title=title or url,
            created_at=iso_utc(published),
            author=author,
            url=url,
            confidence=clamp(confidence),
            freshness=freshness(published, self.FRESHNESS_HALF_LIFE_DAYS),
            authority=domain_authority(url, curated=bool(source.get("id"))),
            metadata={
                "source_name": source.get("name"),
                "source_key": source.get("id"),
                "domain": (urlsplit(url).hostname or "").lower(),
                "image_url": article.get("urlToImage"),
                "published_at": article.get("publishedAt"),
                "content_truncated_chars": int(truncated.group(1)) if truncated else 0,
            },
        )
