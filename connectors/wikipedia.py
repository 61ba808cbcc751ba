"""Wikipedia articles as evidence: Action API full-text search with intro extracts, REST summaries for fetch."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import httpx

from connectors.base import BaseConnector, Evidence, PaginationGuard, evidence_id
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorRateLimitError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_to_text, int_or_none, iso_utc, log_scale, parse_datetime

log = get_logger(__name__)

ACTION_PATH = "/w/api.php"
SUMMARY_PATH = "/api/rest_v1/page/summary/"
SEARCH_PAGE_SIZE = 50  # hits per list=search request when filtering a window (anonymous cap: 500)
EXTRACT_BATCH = 20  # prop=extracts returns at most 20 intro extracts per request
FRESHNESS_HALF_LIFE_DAYS = 180.0
DEVELOPED_ARTICLE_BYTES = 100_000  # wikitext size at which an article counts as fully developed
MAX_REDIRECTS = 3
_URL_SAFE = ":/(),'"  # characters Wikipedia leaves unescaped in /wiki/ links

_LANGUAGE = re.compile(r"^[a-z]{2,12}(?:-[a-z0-9]{2,12})*$")  # en, simple, zh-yue, be-tarask, zh-min-nan
_SORTS = {
    "relevance", "last_edit_desc", "last_edit_asc", "create_timestamp_desc", "create_timestamp_asc",
    "incoming_links_desc", "incoming_links_asc", "just_match", "none", "random",
}
_RATE_LIMIT_CODES = {"ratelimited", "maxlag"}
_VALIDATION_CODES = {
    "badvalue", "nosuchsrsort", "invalidtitle", "missingparam", "toomanyvalues", "srsearch-text-disabled",
}


def continuation(body: Mapping[str, Any]) -> dict[str, str]:
    """The parameters that fetch the next batch: modern ``continue`` or legacy ``query-continue`` ({} when done)."""
    modern = body.get("continue")
    if isinstance(modern, dict):
        return {str(k): str(v) for k, v in modern.items()}
    legacy = body.get("query-continue")
    merged: dict[str, str] = {}
    if isinstance(legacy, dict):
        for module in legacy.values():
            if isinstance(module, dict):
                merged.update({str(k): str(v) for k, v in module.items()})
    return merged


def _pages_of(query: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``query.pages`` as a list (formatversion=2 sends a list, formatversion=1 an object keyed by page id)."""
    pages = query.get("pages")
    if isinstance(pages, dict):
        pages = list(pages.values())
    return [page for page in pages or [] if isinstance(page, dict) and page.get("title")]


def _aliases(query: Mapping[str, Any]) -> dict[str, str]:
    """Title rewrites the API applied (``normalized`` then ``redirects``): requested title -> final title."""
    mapping: dict[str, str] = {}
    for key in ("normalized", "redirects"):
        for entry in query.get(key) or []:
            if isinstance(entry, dict) and entry.get("from") and entry.get("to"):
                mapping[str(entry["from"])] = str(entry["to"])
    return mapping


def _description(page: Mapping[str, Any]) -> str | None:
    """The short description from ``prop=pageterms`` (``terms.description``), when present."""
    terms = page.get("terms")
    described = terms.get("description") if isinstance(terms, dict) else None
    return str(described[0]) if isinstance(described, list) and described else None


def _thumbnail(page: Mapping[str, Any]) -> str | None:
    """The thumbnail URL of a page or summary, when it has one."""
    thumb = page.get("thumbnail")
    return str(thumb["source"]) if isinstance(thumb, dict) and thumb.get("source") else None


class WikipediaConnector(BaseConnector):
    """Wikipedia articles from one language edition (``language="en"`` by default).

    ``search`` pages through the Action API's ``list=search`` (``srsearch``, ``srlimit``, ``sroffset``;
    both the modern ``continue`` and the legacy ``query-continue`` shapes), then reads each hit's intro
    as plain text with ``prop=extracts`` (``exintro``, ``explaintext``, batches of 20), its short
    description (``pageterms``), thumbnail, canonical URL and the ``disambiguation`` page property.
    Options: ``sort`` (CirrusSearch ``srsort``: relevance, last_edit_desc, ...). ``fetch`` reads the REST
    summary ``/api/rest_v1/page/summary/{title}`` (following title redirects); it accepts
    ``"wikipedia:en:Title"``, ``"en:Title"`` or a bare title. Ids are ``wikipedia:<lang>:<Title_with_underscores>``.

    ``base_url`` is the site root (default ``https://{language}.wikipedia.org``, env
    ``ARAGORA_WIKIPEDIA_BASE_URL``); the Action API is at ``/w/api.php`` and REST at ``/api/rest_v1/`` below it,
    as on every Wikimedia wiki.

    Time window: CirrusSearch cannot filter by date, so since/until keep hits whose last edit
    (``timestamp``) falls in [since, until); hits without a timestamp are dropped when a window is given.
    With ``since`` the search sorts by ``last_edit_desc`` (unless ``sort`` says otherwise) and stops as soon
    as the edits are older than ``since``, provided the answers really are in that order.

    Rate limit: Wikimedia publishes no hard read limit for the Action API (it asks for serial, considerate
    use) and caps REST at 200 requests/s; we pace at 10 requests/s, and send a User-Agent with contact
    details as its policy asks (``contact=`` or ``ARAGORA_WIKIPEDIA_CONTACT``).

    Scores (all in [0, 1]):
    - authority = 0.85 for an article (a curated tertiary source, not primary evidence), 0.4 for a
      disambiguation page (navigation, it asserts nothing).
    - confidence = 0.45 + 0.45 * development, development = log_scale(wikitext bytes, 100 000) (search
      ``size`` or info ``length``; 0.5 when unknown, as for REST summaries); 0.3 for disambiguation pages.
    - freshness = 0.5 ** (days since the last edit / 180); ``created_at`` is that last-edit time.
    """

    SOURCE: ClassVar[str] = "wikipedia"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://en.wikipedia.org"
    ENV_NAME: ClassVar[str | None] = "WIKIPEDIA"
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (10, 1.0)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        language: str = "en",
        contact: str | None = None,
        **kwargs: Any,
    ) -> None:
        language = str(language or "").strip().lower()
        if not _LANGUAGE.match(language):
            raise ConnectorValidationError(
                f"language must be a Wikipedia language code such as 'en', 'de' or 'zh-yue', got {language!r}",
                connector="Wikipedia",
            )
        self.language = language
        self.contact = contact or os.environ.get("ARAGORA_WIKIPEDIA_CONTACT") or None
        env_url = os.environ.get(f"ARAGORA_{self.ENV_NAME}_BASE_URL")
        super().__init__(base_url=base_url or env_url or f"https://{language}.wikipedia.org", **kwargs)

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "Wikipedia"

    @property
    def source_type(self) -> SourceType:
        """Wikipedia is an encyclopedia."""
        return SourceType.ENCYCLOPEDIA

    @property
    def user_agent(self) -> str:
        """Wikimedia's User-Agent policy: client/version (contact) library/version."""
        if self._user_agent:
            return self._user_agent
        contact = f"; {self.contact}" if self.contact else ""
        return f"aragora-pipelines/{self.VERSION} (Wikipedia evidence connector{contact}) httpx/{httpx.__version__}"

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
        """Articles matching ``query`` whose last edit is in [since, until), at most ``limit`` of them."""
        want = self._check_limit(limit)
        since, until = self._check_window(since, until)
        query = self._required_query(query)
        sort = self._sort_option(kwargs, since)
        windowed = since is not None or until is not None
        params: dict[str, Any] = {
            "action": "query",
            "list": "search",
            "srsearch": query,
            "srprop": "snippet|timestamp|wordcount|size",
            "srinfo": "totalhits|suggestion",
            "srnamespace": 0,
            "format": "json",
            "formatversion": 2,
        }
        if sort:
            params["srsort"] = sort
        guard = PaginationGuard(self.name, "Wikipedia search")
        found: dict[str, Evidence] = {}
        cont: dict[str, str] = {}
        rank = 0
        previous: datetime | None = None
        in_edit_order = sort == "last_edit_desc"
        while len(found) < want:
            page_size = SEARCH_PAGE_SIZE if windowed else min(SEARCH_PAGE_SIZE, want - len(found))
            body = await self._action({**params, **cont, "srlimit": page_size}, "list=search")
            result = body.get("query") if isinstance(body.get("query"), dict) else {}
            hits = [hit for hit in result.get("search") or [] if isinstance(hit, dict) and hit.get("title")]
            info = result.get("searchinfo") if isinstance(result.get("searchinfo"), dict) else {}
            chosen: list[tuple[int, dict[str, Any]]] = []
            older_seen = False
            for hit in hits:
                rank += 1
                edited = parse_datetime(hit.get("timestamp"))
                if edited and previous and edited > previous:
                    in_edit_order = False  # the wiki ignored srsort; never stop early on its order
                previous = edited or previous
                if windowed and edited is None:
                    continue
                if since and edited and edited < since:
                    older_seen = True
                    continue
                if until and edited and edited >= until:
                    continue
                chosen.append((rank, hit))
            chosen = chosen[: want - len(found)]
            pages = await self._pages([str(hit["title"]) for _, hit in chosen])
            for hit_rank, hit in chosen:
                evidence = self._hit_evidence(hit, pages.get(str(hit["title"])), hit_rank, info)
                found.setdefault(evidence.id, evidence)
            cont = continuation(body)
            if (older_seen and in_edit_order) or not hits or not cont:
                break  # in last-edit order, everything after an edit older than since is older still
            guard.check(tuple(sorted(cont.items())))
        return list(found.values())[:want]

    def _sort_option(self, options: dict[str, Any], since: datetime | None) -> str | None:
        """The validated ``srsort``: the caller's, else last_edit_desc when a lower bound is given."""
        self._check_options(options, ("sort",))
        sort = options.get("sort")
        if sort is not None and sort not in _SORTS:
            raise ConnectorValidationError(f"sort must be one of {sorted(_SORTS)}, got {sort!r}", connector=self.name)
        return sort or ("last_edit_desc" if since else None)

    async def _action(self, params: Mapping[str, Any], operation: str) -> dict[str, Any]:
        """One Action API call; an ``error`` object in a 200 answer becomes the matching connector error."""
        body = await self._get_json(ACTION_PATH, params, operation=f"Wikipedia {operation}")
        if not isinstance(body, dict):
            raise ConnectorParseError(f"Wikipedia {operation}: expected a JSON object", connector=self.name)
        error = body.get("error")
        if isinstance(error, dict):
            code, info = str(error.get("code") or "unknown"), str(error.get("info") or "")
            message = f"Wikipedia {operation}: API error {code}: {info}"
            if code in _RATE_LIMIT_CODES:
                raise ConnectorRateLimitError(message, connector=self.name)
            if code in _VALIDATION_CODES or code.startswith("bad"):
                raise ConnectorValidationError(message, connector=self.name)
            raise ConnectorAPIError(message, connector=self.name)
        warnings = body.get("warnings")
        if warnings:
            log.debug("Wikipedia %s warnings: %s", operation, warnings)
        return body

    async def _pages(self, titles: list[str]) -> dict[str, dict[str, Any]]:
        """Extract, description, properties and URL of each title (keyed by the title asked for)."""
        by_title: dict[str, dict[str, Any]] = {}
        aliases: dict[str, str] = {}
        for start in range(0, len(titles), EXTRACT_BATCH):
            batch = titles[start : start + EXTRACT_BATCH]
            params = {
                "action": "query",
                "prop": "extracts|pageprops|info|pageterms|pageimages",
                "titles": "|".join(batch),
                "exintro": 1,
                "explaintext": 1,
                "exlimit": "max",
                "ppprop": "disambiguation",
                "inprop": "url",
                "wbptterms": "description",
                "piprop": "thumbnail",
                "pithumbsize": 320,
                "pilimit": "max",
                "redirects": 1,
                "format": "json",
                "formatversion": 2,
            }
            guard = PaginationGuard(self.name, "Wikipedia extracts")
            cont: dict[str, str] = {}
            while True:
                body = await self._action({**params, **cont}, "prop=extracts")
                result = body.get("query") if isinstance(body.get("query"), dict) else {}
                aliases.update(_aliases(result))
                for page in _pages_of(result):
                    by_title.setdefault(str(page["title"]), {}).update(page)
                cont = continuation(body)
                if "batchcomplete" in body or not cont:  # every prop of these titles is in; nothing to continue
                    break
                guard.check(tuple(sorted(cont.items())))
        resolved: dict[str, dict[str, Any]] = {}
        for title in titles:
            final = title
            for _ in range(MAX_REDIRECTS + 1):  # normalized -> redirect target, never a cycle
                if final not in aliases:
                    break
                final = aliases[final]
            page = by_title.get(final)
            if page is not None and not page.get("missing"):
                resolved[title] = page
        return resolved

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One article's REST summary by ``wikipedia:<lang>:<Title>``, ``<lang>:<Title>`` or title; None if absent."""
        title = self._title_of(evidence_id)
        key = evidence_id_for(self.language, title)
        cached = self._cache_get(key)
        if cached is not None:
            return cached
        url = f"{SUMMARY_PATH}{quote(title, safe='')}"
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response: httpx.Response = await self._request(
                    "GET", url, operation="Wikipedia GET page/summary", parse="response"
                )
                if not response.is_redirect:
                    break
                url = self._same_site(response)
            else:
                raise ConnectorParseError(f"page/summary/{title}: too many redirects", connector=self.name)
        except ConnectorNotFoundError:
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConnectorParseError(f"page/summary/{title}: expected a JSON object", connector=self.name)
        evidence = self._summary_evidence(body, title)
        self._cache_put(key, evidence)
        self._cache_put(evidence.id, evidence)
        return evidence

    def _title_of(self, evidence_id: str) -> str:
        """The article title (underscores) from a full id, a ``lang:Title`` source id or a bare title."""
        text = str(evidence_id or "").strip().removeprefix(f"{self.SOURCE}:")
        prefix, sep, rest = text.partition(":")
        if sep and _LANGUAGE.match(prefix):  # titles start upper-case, language codes lower-case
            if prefix != self.language:
                raise ConnectorValidationError(
                    f"{evidence_id!r} is on {prefix}.wikipedia but this connector reads {self.language}; "
                    f"use WikipediaConnector(language={prefix!r})",
                    connector=self.name,
                )
            text = rest
        title = text.strip().replace(" ", "_").strip("_")
        if not title:
            raise ConnectorValidationError(
                f"Wikipedia ids look like 'wikipedia:en:Title' or a page title, got {evidence_id!r}",
                connector=self.name,
            )
        return title

    def _same_site(self, response: httpx.Response) -> str:
        """The redirect target of a REST answer, refused when it leaves this wiki."""
        target = response.url.join(response.headers.get("location", ""))
        if target.host != urlsplit(self.base_url or "").hostname:
            raise ConnectorParseError(
                f"page/summary redirected to another host ({target.host}); not following it", connector=self.name
            )
        return str(target)

    # --- mapping --------------------------------------------------------------------------
    def _hit_evidence(
        self, hit: Mapping[str, Any], page: Mapping[str, Any] | None, rank: int, info: Mapping[str, Any]
    ) -> Evidence:
        """Evidence from a ``list=search`` hit and its ``prop=extracts`` page (which may be absent)."""
        page = page or {}
        snippet = html_to_text(hit.get("snippet"))
        description = _description(page)
        size = int_or_none(hit.get("size")) or int_or_none(page.get("length"))
        return self._evidence(
            title=str(hit["title"]),
            content=html_to_text(page.get("extract")) or snippet or description or str(hit["title"]),
            last_edit=hit.get("timestamp"),
            disambiguation=isinstance(page.get("pageprops"), dict) and "disambiguation" in page["pageprops"],
            size=size,
            url=page.get("canonicalurl") or page.get("fullurl"),
            metadata={
                "pageid": int_or_none(hit.get("pageid")) or int_or_none(page.get("pageid")),
                "description": description,
                "snippet": snippet or None,
                "wordcount": int_or_none(hit.get("wordcount")),
                "size": size,
                "lastrevid": int_or_none(page.get("lastrevid")),
                "thumbnail": _thumbnail(page),
                "search_rank": rank,
                "total_hits": int_or_none(info.get("totalhits")),
                "search_suggestion": info.get("suggestion"),
            },
        )

    def _summary_evidence(self, body: Mapping[str, Any], asked: str) -> Evidence:
        """Evidence from a REST ``page/summary`` answer."""
        titles = body.get("titles") if isinstance(body.get("titles"), dict) else {}
        title = str(titles.get("normalized") or body.get("title") or titles.get("canonical") or asked)
        urls = body.get("content_urls") if isinstance(body.get("content_urls"), dict) else {}
        desktop = urls.get("desktop") if isinstance(urls.get("desktop"), dict) else {}
        coordinates = body.get("coordinates") if isinstance(body.get("coordinates"), dict) else None
        page_type = body.get("type")
        return self._evidence(
            title=html_to_text(title),
            content=str(body.get("extract") or "").strip() or html_to_text(body.get("extract_html"))
            or str(body.get("description") or ""),
            last_edit=body.get("timestamp"),
            disambiguation=page_type == "disambiguation",
            size=None,
            url=desktop.get("page"),
            canonical=titles.get("canonical"),
            metadata={
                "pageid": int_or_none(body.get("pageid")),
                "description": body.get("description"),
                "type": page_type,
                "revision": str(body["revision"]) if body.get("revision") is not None else None,
                "wikibase_item": body.get("wikibase_item"),
                "coordinates": {"lat": coordinates.get("lat"), "lon": coordinates.get("lon")} if coordinates else None,
                "thumbnail": _thumbnail(body),
            },
        )

    def _evidence(
        self,
        *,
        title: str,
        content: str,
        last_edit: object,
        disambiguation: bool,
        size: int | None,
        url: object,
        metadata: dict[str, Any],
        canonical: object = None,
    ) -> Evidence:
        """The Evidence of one page, with the scores the class docstring documents."""
        key = str(canonical or title).replace(" ", "_")
        development = log_scale(size, DEVELOPED_ARTICLE_BYTES) if size else 0.5
        return Evidence(
            id=evidence_id_for(self.language, key),
            source_type=self.source_type,
            source_id=f"{self.language}:{key}",
            title=title,
            content=content,
            created_at=iso_utc(last_edit),
            author="Wikipedia contributors",
            url=str(url) if url else f"{self.base_url}/wiki/{quote(key, safe=_URL_SAFE)}",
            confidence=0.3 if disambiguation else clamp(0.45 + 0.45 * development),
            authority=0.4 if disambiguation else 0.85,
            freshness=freshness(last_edit, FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "language": self.language,
                "disambiguation": disambiguation,
                "last_edited": iso_utc(last_edit),
                **metadata,
            },
        )


def evidence_id_for(language: str, title: str) -> str:
    """The stable id of a page: ``wikipedia:<lang>:<Title_with_underscores>``."""
    return evidence_id(WikipediaConnector.SOURCE, f"{language}:{title.replace(' ', '_')}")
