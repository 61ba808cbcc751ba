"""GitHub issues and pull requests as evidence, through the REST v3 search API (no CLI)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from connectors.base import BaseConnector, Evidence, PaginationGuard, ceil_time, evidence_id, split_window
from connectors.exceptions import ConnectorNotFoundError, ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import as_count, clamp, freshness, html_to_text, iso_utc, log_scale

log = get_logger(__name__)

SEARCH_CAP = 1000  # the search API returns at most this many results per query
MAX_PER_PAGE = 100
FRESHNESS_HALF_LIFE_DAYS = 180.0

_ASSOCIATION_WEIGHT = {
    "OWNER": 1.0,
    "MEMBER": 0.9,
    "COLLABORATOR": 0.85,
    "CONTRIBUTOR": 0.7,
    "FIRST_TIME_CONTRIBUTOR": 0.5,
    "FIRST_TIMER": 0.45,
    "MANNEQUIN": 0.3,
    "NONE": 0.3,
}
_UNKNOWN_ASSOCIATION_WEIGHT = 0.4
_CONFIRMING_LABELS = {"bug", "confirmed", "verified", "accepted", "security", "regression", "documentation"}
_DOUBTING_LABELS = {"invalid", "wontfix", "won't fix", "duplicate", "question", "spam", "stale", "needs-triage"}
_SORTS = {"best-match", "comments", "reactions", "created", "updated", "interactions"}
_ORDERS = {"asc", "desc"}
_TYPES = {"issue", "pr"}

_SOURCE_ID = re.compile(r"^(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)#(?P<number>\d+)$")
_API_ISSUE_URL = re.compile(r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/issues/(?P<number>\d+)$")
_HTML_ISSUE_URL = re.compile(r"/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?:issues|pull)/(?P<number>\d+)$")


def created_qualifier(since: datetime | None, until: datetime | None) -> str | None:
    """The ``created:`` qualifier selecting [since, until) at GitHub's one-second resolution.

    GitHub ranges ``A..B`` include both ends, so the exclusive end becomes ``ceil(until) - 1 s``.
    """
    start = iso_utc(ceil_time(since)) if since else None
    end = iso_utc(ceil_time(until) - timedelta(seconds=1)) if until else None
    if start and end:
        return f"created:{start}..{end}"
    if start:
        return f"created:>={start}"
    if end:
        return f"created:<={end}"
    return None


def is_pull_request(item: dict[str, Any]) -> bool:
    """Whether a search/issue item is a PR: a ``pull_request`` object with any non-null link.

    Search answers recorded before 2015 carry ``pull_request`` on plain issues too, with every link null.
    """
    link = item.get("pull_request")
    if isinstance(link, dict):
        return any(link.values())
    return bool(link)


def _issue_ref(item: dict[str, Any]) -> tuple[str, str, int] | None:
    """(owner, repo, number) from the item's API URL, else from its web URL."""
    for key, pattern in (("url", _API_ISSUE_URL), ("html_url", _HTML_ISSUE_URL)):
        match = pattern.search(str(item.get(key) or ""))
        if match:
            return match["owner"], match["repo"], int(match["number"])
    return None


class GitHubConnector(BaseConnector):
    """Issues and pull requests from GitHub's REST v3 issue search, with time-window slicing.

    ``search`` calls ``GET /search/issues`` (``per_page`` up to 100, Link-header pagination); since/until
    append ``created:A..B``; when ``total_count`` exceeds the API's 1000-result cap and more is wanted, the
    window is halved recursively. Keyword filters: ``sort`` (comments, reactions, created, updated, ...),
    ``order`` (asc/desc), ``repo`` ("owner/name") and ``type`` ("issue"/"pr"). ``fetch("owner/repo#12")``
    reads ``GET /repos/owner/repo/issues/12``.

    Rate limit: the search API allows 30 requests/min with a token and 10/min without, so the limiter
    paces at that rate (every request, including fetch, shares it). 403/429 rate-limit answers (primary and
    secondary) are retried after ``Retry-After``/``X-RateLimit-Reset`` by the core, waiting in-process up to
    ``max_retry_wait`` and raising a longer wait for a later retry; one naming no time waits at least a
    minute, doubling after each, as GitHub's REST docs ask (``RATE_LIMIT_BACKOFF``).

    Scores (all in [0, 1]):
    - authority = 0.4 * association weight (OWNER 1.0, MEMBER 0.9, COLLABORATOR 0.85, CONTRIBUTOR 0.7,
      FIRST_TIME_CONTRIBUTOR 0.5, FIRST_TIMER 0.45, NONE/MANNEQUIN 0.3, absent 0.4)
      + 0.3 * log_scale(reactions.total_count, 100) + 0.3 * log_scale(comments, 50).
    - confidence: by state (merged PR 0.8, closed completed 0.7, closed 0.6, open 0.5, closed not_planned
      0.35), +0.1 with a confirming label (bug, confirmed, verified, ...), -0.2 with a doubting one
      (invalid, wontfix, duplicate, question, ...), clamped to [0.05, 0.95].
    - freshness = 0.5 ** (days since updated_at / 180).
    """

    SOURCE: ClassVar[str] = "github"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://api.github.com"
    ENV_NAME: ClassVar[str | None] = "GITHUB"
    CREDENTIALS: ClassVar[dict[str, str]] = {"token": "GITHUB_TOKEN"}
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (10, 60.0)  # anonymous search; 30/min with a token
    AUTHENTICATED_RATE_LIMIT: ClassVar[tuple[float, float]] = (30, 60.0)
    RATE_LIMIT_BACKOFF: ClassVar[float] = 60.0  # secondary limit without headers: "wait for at least one minute"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        token: str | None = None,
        rate_limit: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, rate_limit=rate_limit, **kwargs)
        self._token = self._credential("token", token)
        if rate_limit is None and self._token:
            self.rate_limit = self.AUTHENTICATED_RATE_LIMIT

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "GitHub"

    @property
    def source_type(self) -> SourceType:
        """GitHub is a code repository."""
        return SourceType.CODE_REPOSITORY

    def _default_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

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
        """Issues and PRs matching ``query`` created in [since, until), at most ``limit`` of them."""
        want = self._check_limit(limit)
        since, until = self._check_window(since, until)
        base_q, params = self._query_parts(query, since, until, kwargs)
        items: dict[str, Evidence] = {}
        await self._search_window(base_q, params, since, until, want, items)
        return list(items.values())

    def _query_parts(
        self, query: str, since: datetime | None, until: datetime | None, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The query text with the filter qualifiers, and the sort/order parameters."""
        self._check_options(options, ("sort", "order", "repo", "type"))
        query = (query or "").strip()
        if not query and not (since or until or options.get("repo")):
            raise ConnectorValidationError(
                "query is empty: give search text, a repo or a time window", connector=self.name
            )
        if "created:" in query and (since or until):
            raise ConnectorValidationError(
                "query already has a created: qualifier; pass the window either in the query or as since/until",
                connector=self.name,
            )
        parts = [query] if query else []
        if options.get("repo"):
            parts.append(f"repo:{options['repo']}")
        kind = options.get("type")
        if kind is not None:
            if kind not in _TYPES:
                raise ConnectorValidationError(f"type must be 'issue' or 'pr', got {kind!r}", connector=self.name)
            parts.append(f"is:{kind}")
        params: dict[str, Any] = {}
        for key, allowed in (("sort", _SORTS), ("order", _ORDERS)):
            value = options.get(key)
            if value is not None:
                if value not in allowed:
                    raise ConnectorValidationError(
                        f"{key} must be one of {sorted(allowed)}, got {value!r}", connector=self.name
                    )
                params[key] = value
        return " ".join(parts), params

    async def _search_window(
        self,
        base_q: str,
        params: dict[str, Any],
        since: datetime | None,
        until: datetime | None,
        want: int,
        items: dict[str, Evidence],
    ) -> None:
        """Collect up to ``want`` new items of one window into ``items``, halving it past the 1000 cap."""
        q = " ".join(filter(None, [base_q, created_qualifier(since, until)]))
        target = len(items) + want
        first = {**params, "q": q, "per_page": min(MAX_PER_PAGE, want), "page": 1}
        body, next_url = await self._search_page("/search/issues", first)
        total = as_count(body.get("total_count"))
        if total > SEARCH_CAP and want > SEARCH_CAP:
            if since and until and until - since > timedelta(seconds=1):
                for lo, hi in split_window(since, until):
                    if len(items) < target:
                        await self._search_window(base_q, params, lo, hi, target - len(items), items)
                return
            log.warning(
                "GitHub search %r matches %d items but the API returns at most %d per query; "
                "pass since/until so the window can be split",
                q, total, SEARCH_CAP,
            )
        guard = PaginationGuard(self.name, "GitHub search")
        while True:
            for raw in body.get("items") or []:
                evidence = self._to_evidence(raw) if isinstance(raw, dict) else None
                if evidence is not None and len(items) < target:
                    items.setdefault(evidence.id, evidence)
            if not next_url or len(items) >= target:
                return
            guard.check(next_url)
            body, next_url = await self._search_page(next_url, None)

    async def _search_page(self, url: str, params: dict[str, Any] | None) -> tuple[dict[str, Any], str | None]:
        """One search page: its JSON object and the rel="next" link."""
        response: httpx.Response = await self._request(
            "GET", url, params=params, operation="GET /search/issues", parse="response"
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConnectorParseError("GET /search/issues: expected a JSON object", connector=self.name)
        if body.get("incomplete_results"):
            log.warning("GitHub search timed out server-side; page %s may be incomplete", url)
        return body, self._next_link(response)

    def _next_link(self, response: httpx.Response) -> str | None:
        """The rel="next" URL of a Link header; a link to another host is refused (it would get our token)."""
        link = response.links.get("next", {}).get("url")
        if not link:
            return None
        expected = urlsplit(self.base_url or "").netloc
        if urlsplit(link).netloc not in ("", expected):
            raise ConnectorParseError(
                f"GitHub search: next-page link points to another host ({urlsplit(link).netloc}); not following it",
                connector=self.name,
            )
        return link

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One issue or PR by ``owner/repo#number`` (or ``github:owner/repo#number``); None when absent."""
        source_id = str(evidence_id).removeprefix(f"{self.SOURCE}:")
        match = _SOURCE_ID.match(source_id)
        if not match:
            raise ConnectorValidationError(
                f"GitHub ids look like 'owner/repo#123' or 'github:owner/repo#123', got {evidence_id!r}",
                connector=self.name,
            )
        cached = self._cache_get(source_id)
        if cached is not None:
            return cached
        path = f"/repos/{match['owner']}/{match['repo']}/issues/{match['number']}"
        try:
            body = await self._get_json(path, operation="GET /repos/{owner}/{repo}/issues/{number}")
        except ConnectorNotFoundError:
            return None
        if not isinstance(body, dict):
            raise ConnectorParseError(f"GET {path}: expected a JSON object", connector=self.name)
        evidence = self._to_evidence(body)
        if evidence is None:
            raise ConnectorParseError(f"GET {path}: the answer names no repository and number", connector=self.name)
        self._cache_put(source_id, evidence)
        return evidence

    # --- mapping --------------------------------------------------------------------------
    def _to_evidence(self, item: dict[str, Any]) -> Evidence | None:
        """Evidence from a search or issue item (None when it names no repository and number)."""
        ref = _issue_ref(item)
        if ref is None:
            log.debug("GitHub item without a repository/number skipped: %r", item.get("id"))
            return None
        owner, repo, number = ref
        source_id = f"{owner}/{repo}#{number}"
        title = html_to_text(item.get("title"))
        labels = [str(label.get("name")) for label in item.get("labels") or [] if isinstance(label, dict)]
        reactions = item.get("reactions") if isinstance(item.get("reactions"), dict) else {}
        user = item.get("user") if isinstance(item.get("user"), dict) else {}
        pull = is_pull_request(item)
        comments = as_count(item.get("comments"))
        reaction_count = as_count(reactions.get("total_count"))
        return Evidence(
            id=evidence_id(self.SOURCE, source_id),
            source_type=self.source_type,
            source_id=source_id,
            title=title,
            content=html_to_text(item.get("body")) or title,
            created_at=iso_utc(item.get("created_at")),
            author=user.get("login"),
            url=item.get("html_url") or f"https://github.com/{owner}/{repo}/issues/{number}",
            confidence=self._confidence(item, labels, pull),
            authority=self._authority(item.get("author_association"), reaction_count, comments),
            freshness=freshness(item.get("updated_at") or item.get("created_at"), FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "repo": f"{owner}/{repo}",
                "number": number,
                "is_pull_request": pull,
                "state": item.get("state"),
                "state_reason": item.get("state_reason"),
                "labels": labels,
                "comments": comments,
                "reactions": reaction_count,
                "author_association": item.get("author_association"),
                "updated_at": iso_utc(item.get("updated_at")),
                "closed_at": iso_utc(item.get("closed_at")),
                "merged_at": iso_utc(_pull_request(item).get("merged_at")),
            },
        )

    @staticmethod
    def _authority(association: object, reactions: int, comments: int) -> float:
        weight = _ASSOCIATION_WEIGHT.get(str(association), _UNKNOWN_ASSOCIATION_WEIGHT)  # None -> "None": unknown
        return clamp(0.4 * weight + 0.3 * log_scale(reactions, 100) + 0.3 * log_scale(comments, 50))

    @staticmethod
    def _confidence(item: dict[str, Any], labels: list[str], pull: bool) -> float:
        state, reason = item.get("state"), item.get("state_reason")
        merged = pull and bool(_pull_request(item).get("merged_at"))
        if merged:
            score = 0.8
        elif state == "closed" and reason == "not_planned":
            score = 0.35
        elif state == "closed" and reason == "completed":
            score = 0.7
        elif state == "closed":
            score = 0.6
        else:
            score = 0.5
        names = {label.lower() for label in labels}
        if names & _CONFIRMING_LABELS:
            score += 0.1
        if names & _DOUBTING_LABELS:
            score -= 0.2
        return clamp(score, 0.05, 0.95)


def _pull_request(item: dict[str, Any]) -> dict[str, Any]:
    """The item's ``pull_request`` object ({} when absent or not an object)."""
    link = item.get("pull_request")
    return link if isinstance(link, dict) else {}
