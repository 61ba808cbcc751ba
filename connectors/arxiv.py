"""arXiv papers as evidence, through the arXiv Atom query API (``export.arxiv.org/api/query``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from connectors.base import BaseConnector, Evidence, PaginationGuard, ceil_time, check_count, evidence_id
from connectors.exceptions import ConnectorNotFoundError, ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import freshness, int_or_none, iso_utc

log = get_logger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
MAX_PAGE_SIZE = 2000  # arXiv's documented ceiling for max_results per call
FRESHNESS_HALF_LIFE_DAYS = 365.0
ARXIV_EPOCH = datetime(1991, 1, 1, tzinfo=UTC)
_DATE_FORMAT = "%Y%m%d%H%M"
_MINUTE = timedelta(minutes=1)
_SORT_BY = {"relevance", "lastUpdatedDate", "submittedDate"}
_SORT_ORDER = {"ascending", "descending"}
_OPTION_NAMES = {"sort_by": "sort_by", "sortBy": "sort_by", "sort_order": "sort_order", "sortOrder": "sort_order"}
_QUERY_SYNTAX = re.compile(
    r"\b(?:ti|au|abs|co|jr|cat|rn|id|all|submittedDate|lastUpdatedDate):|\b(?:AND|OR|ANDNOT)\b|[\"()]"
)
_ABS_ID = re.compile(r"/abs/(?P<id>.+?)(?:v(?P<version>\d+))?$")
_BARE_ID = re.compile(r"^(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?$")


def submitted_clause(since: datetime | None, until: datetime | None) -> str | None:
    """``submittedDate:[A TO B]`` selecting [since, until); arXiv ranges include both ends, to the minute."""
    if since is None and until is None:
        return None
    start = ceil_time(since or ARXIV_EPOCH, _MINUTE)  # arXiv's date filter has minute resolution
    end = ceil_time(until or datetime.now(UTC), _MINUTE) - _MINUTE
    return f"submittedDate:[{start.strftime(_DATE_FORMAT)} TO {end.strftime(_DATE_FORMAT)}]"


def build_search_query(query: str, since: datetime | None, until: datetime | None) -> str:
    """The ``search_query``: field syntax passes through, plain words become ``all:`` terms, ANDed with the window."""
    text = (query or "").strip()
    if text and not _QUERY_SYNTAX.search(text):
        text = " AND ".join(f"all:{term}" for term in text.split())
    window = submitted_clause(since, until)
    if text and window:
        return f"({text}) AND {window}"
    return text or window or ""


def _clean(value: str | None) -> str:
    """Text with arXiv's hard line wraps and runs of spaces collapsed."""
    return " ".join(value.split()) if value else ""


class ArXivConnector(BaseConnector):
    """arXiv papers from the Atom query API, parsed with defusedxml.

    ``search`` sends ``search_query``: field syntax (``ti:``, ``au:``, ``abs:``, ``cat:``, AND/OR, quotes)
    passes through; plain words become ``all:word AND all:word``; since/until AND in
    ``submittedDate:[YYYYMMDDHHMM TO YYYYMMDDHHMM]``. Pagination is ``start``/``max_results`` with
    ``page_size`` (default 100, at most 2000) until ``limit`` or ``opensearch:totalResults`` is reached.
    ``sort_by`` (relevance, lastUpdatedDate, submittedDate) and ``sort_order`` (ascending, descending)
    map to sortBy/sortOrder (the camelCase names are accepted too). ``fetch`` sends ``id_list`` and takes
    ``2601.00001``, ``2601.00001v2``, ``hep-th/9901001`` or ``arxiv:2601.00001``.

    Ids are ``arxiv:<id without version>`` so every version maps to one item; the version is metadata.
    Rate limit: one request per 3 s (arXiv's published rule for its API).

    Scores (all in [0, 1]):
    - authority = 0.6 (a moderated preprint) + 0.15 with a journal_ref + 0.1 with a DOI (peer reviewed);
    - confidence = 0.7 when peer reviewed (journal_ref or DOI), else 0.6; 0.2 when the comment says the
      paper was withdrawn;
    - freshness = 0.5 ** (days since updated, else published / 365).
    """

    SOURCE: ClassVar[str] = "arxiv"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://export.arxiv.org"
    ENV_NAME: ClassVar[str | None] = "ARXIV"
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (1, 3.0)

    def __init__(self, *, base_url: str | None = None, page_size: int = 100, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self.page_size = check_count("page_size", page_size, self.name, maximum=MAX_PAGE_SIZE)

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "arXiv"

    @property
    def source_type(self) -> SourceType:
        """arXiv holds academic papers."""
        return SourceType.ACADEMIC_PAPER

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
        """Papers matching ``query`` submitted in [since, until), at most ``limit`` of them."""
        want = self._check_limit(limit)
        since, until = self._check_window(since, until)
        search_query = build_search_query(query, since, until)
        if not search_query:
            raise ConnectorValidationError("query is empty: give search text or a time window", connector=self.name)
        params: dict[str, Any] = {"search_query": search_query, **self._sort_params(kwargs)}
        guard = PaginationGuard(self.name, "arXiv query")
        items: dict[str, Evidence] = {}
        start = 0
        while len(items) < want:
            size = min(self.page_size, want - len(items))
            feed = await self._query({**params, "start": start, "max_results": size})
            total = int_or_none(feed.findtext(f"{OPENSEARCH}totalResults"))
            reported = int_or_none(feed.findtext(f"{OPENSEARCH}startIndex"))
            guard.check(start if reported is None else reported)
            entries = feed.findall(f"{ATOM}entry")
            if not entries:
                if total is not None and start < total:
                    log.warning("arXiv query %r: empty page at start=%d of %d results; stopping", query, start, total)
                break
            for entry in entries:
                evidence = self._to_evidence(entry)
                if evidence is not None and len(items) < want:
                    items.setdefault(evidence.id, evidence)
            start += len(entries)
            # Every result read; a feed without totalResults ends at its first short page.
            if (start >= total) if total is not None else (len(entries) < size):
                break
        return list(items.values())

    def _sort_params(self, options: dict[str, Any]) -> dict[str, str]:
        """sortBy/sortOrder from the keyword options, validated."""
        self._check_options(options, _OPTION_NAMES)
        named = {_OPTION_NAMES[key]: value for key, value in options.items() if value is not None}
        params: dict[str, str] = {}
        for key, api_name, allowed in (("sort_by", "sortBy", _SORT_BY), ("sort_order", "sortOrder", _SORT_ORDER)):
            if key in named:
                if named[key] not in allowed:
                    raise ConnectorValidationError(
                        f"{key} must be one of {sorted(allowed)}, got {named[key]!r}", connector=self.name
                    )
                params[api_name] = named[key]
        return params

    async def _query(self, params: dict[str, Any]) -> Element:
        """GET /api/query and parse the Atom feed (API error entries become validation errors)."""
        body = await self._request("GET", "/api/query", params=params, operation="GET /api/query", parse="bytes")
        try:
            feed = fromstring(body)
        except (ParseError, DefusedXmlException) as exc:
            raise ConnectorParseError(f"GET /api/query: not a valid Atom feed ({exc})", connector=self.name) from None
        if feed.tag != f"{ATOM}feed":
            raise ConnectorParseError(f"GET /api/query: expected an Atom <feed>, got <{feed.tag}>", connector=self.name)
        for entry in feed.findall(f"{ATOM}entry"):
            if "/api/errors" in (entry.findtext(f"{ATOM}id") or ""):
                raise ConnectorValidationError(
                    f"arXiv rejected the query: {_clean(entry.findtext(f'{ATOM}summary')) or 'unknown error'}",
                    connector=self.name,
                )
        return feed

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One paper by arXiv id (a version suffix selects that version); None when arXiv has no such paper."""
        source_id = str(evidence_id).removeprefix(f"{self.SOURCE}:")
        if not _BARE_ID.match(source_id):
            raise ConnectorValidationError(
                f"arXiv ids look like '2601.00001', '2601.00001v2', 'hep-th/9901001' or 'arxiv:2601.00001', "
                f"got {evidence_id!r}",
                connector=self.name,
            )
        cached = self._cache_get(source_id)
        if cached is not None:
            return cached
        try:
            feed = await self._query({"id_list": source_id, "max_results": 1})
        except ConnectorNotFoundError:
            return None
        entries = feed.findall(f"{ATOM}entry")
        evidence = self._to_evidence(entries[0]) if entries else None
        if evidence is not None:
            self._cache_put(source_id, evidence)
        return evidence

    # --- mapping --------------------------------------------------------------------------
    def _to_evidence(self, entry: Element) -> Evidence | None:
        """Evidence from an Atom entry (None when its id is not an arXiv abstract URL)."""
        match = _ABS_ID.search((entry.findtext(f"{ATOM}id") or "").strip())
        if not match:
            log.debug("arXiv entry without an abstract id skipped")
            return None
        arxiv_id = match["id"]
        authors = [name for name in (_clean(a.findtext(f"{ATOM}name")) for a in entry.findall(f"{ATOM}author")) if name]
        categories = [c.get("term", "") for c in entry.findall(f"{ATOM}category") if c.get("term")]
        primary = entry.find(f"{ARXIV}primary_category")
        links = entry.findall(f"{ATOM}link")
        alternate = next((x.get("href") for x in links if x.get("rel") == "alternate"), None)
        pdf = next(
            (x.get("href") for x in links if x.get("title") == "pdf" or x.get("type") == "application/pdf"), None
        )
        doi = _clean(entry.findtext(f"{ARXIV}doi")) or None
        journal_ref = _clean(entry.findtext(f"{ARXIV}journal_ref")) or None
        comment = _clean(entry.findtext(f"{ARXIV}comment")) or None
        published, updated = entry.findtext(f"{ATOM}published"), entry.findtext(f"{ATOM}updated")
        title = _clean(entry.findtext(f"{ATOM}title"))
        peer_reviewed = bool(journal_ref or doi)
        withdrawn = bool(comment and "withdrawn" in comment.lower())
        return Evidence(
            id=evidence_id(self.SOURCE, arxiv_id),
            source_type=SourceType.ACADEMIC_PAPER,
            source_id=arxiv_id,
            title=title,
            content=_clean(entry.findtext(f"{ATOM}summary")) or title,
            created_at=iso_utc(published),
            author=", ".join(authors[:3]) + (" et al." if len(authors) > 3 else "") or None,
            url=alternate or f"https://arxiv.org/abs/{arxiv_id}",
            confidence=0.2 if withdrawn else (0.7 if peer_reviewed else 0.6),
            authority=0.6 + (0.15 if journal_ref else 0.0) + (0.1 if doi else 0.0),
            freshness=freshness(updated or published, FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "arxiv_id": arxiv_id,
                "version": int(match["version"]) if match["version"] else None,
                "authors": authors,
                "categories": categories,
                "primary_category": primary.get("term") if primary is not None else None,
                "pdf_url": pdf,
                "doi": doi,
                "journal_ref": journal_ref,
                "comment": comment,
                "published": iso_utc(published),
                "updated": iso_utc(updated),
                "peer_reviewed": peer_reviewed,
            },
        )
