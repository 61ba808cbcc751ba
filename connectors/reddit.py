"""Reddit submissions as evidence, through the search listing (app-only OAuth when credentials are given)."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import BaseConnector, Evidence, PaginationGuard, evidence_id
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.redact import get_logger, register_secret
from connectors.text import as_count, clamp, freshness, html_to_text, int_or_none, iso_utc, log_scale, parse_datetime

log = get_logger(__name__)

OAUTH_BASE_URL = "https://oauth.reddit.com"
TOKEN_PATH = "/api/v1/access_token"  # noqa: S105 (an endpoint path, not a secret)
MAX_PER_PAGE = 100
FRESHNESS_HALF_LIFE_DAYS = 30.0
TOKEN_EXPIRY_MARGIN_SECONDS = 60.0

_SORTS = {"relevance", "hot", "top", "new", "comments"}
# Reddit's ``t`` periods, narrowest first, with the age each one covers.
_PERIODS = (
    ("hour", timedelta(hours=1)),
    ("day", timedelta(days=1)),
    ("week", timedelta(weeks=1)),
    ("month", timedelta(days=31)),
    ("year", timedelta(days=366)),
)
_SUBREDDIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
_FULLNAME = re.compile(r"^(?:t3_)?([0-9a-z]{1,13})$")
_DELETED_AUTHORS = {"[deleted]", "[removed]"}


def time_filter(since: datetime | None, now: datetime | None = None) -> str:
    """The narrowest ``t`` period (hour, day, week, month, year, all) that still reaches back to ``since``."""
    if since is None:
        return "all"
    age = (now or datetime.now(UTC)) - since
    for name, span in _PERIODS:
        if age <= span:
            return name
    return "all"


class RedditConnector(BaseConnector):
    """Reddit link and self posts from ``/search.json`` or ``/r/{subreddit}/search.json``.

    Modes: anonymous (``https://www.reddit.com``, ``*.json`` paths) or app-only OAuth when
    ``client_id``/``client_secret`` (env ``REDDIT_CLIENT_ID``/``REDDIT_CLIENT_SECRET``) are given: a
    ``client_credentials`` token from ``POST /api/v1/access_token`` (HTTP basic auth) is sent as
    ``Authorization: bearer`` to ``https://oauth.reddit.com``, renewed before it expires and once after a
    401. ``base_url`` (env ``ARAGORA_REDDIT_BASE_URL``) replaces both hosts (a mirror or simulator serves
    the token endpoint and the listings). Every request carries ``raw_json=1``.

    Options: ``subreddit`` (restricts the search), ``sort`` (relevance, hot, top, new, comments),
    ``time_filter`` (Reddit's ``t``). Pagination follows the ``after`` cursor (100 per page) until
    ``limit`` or the end of the listing (Reddit stops near 1000 items). Window: ``t`` is the narrowest
    period reaching back to ``since``; ``created_utc`` then keeps exactly [since, until); with
    ``sort="new"`` paging stops at the first post older than ``since``. Non-``t3`` children (subreddits,
    comments) are skipped. ``fetch`` reads ``/by_id/t3_xxx`` and accepts ``reddit:t3_xxx``, ``t3_xxx`` or
    ``xxx``; ids are ``reddit:<fullname>``.

    Rate limit: Reddit allows 100 requests/min per OAuth client and about 10/min without OAuth; the
    limiter paces at the rate of the mode in use. The User-Agent follows Reddit's
    ``<platform>:<app id>:<version>`` rule.

    Scores (all in [0, 1]):
    - confidence = 0.2 + 0.5 * agreement + 0.3 * log_scale(num_comments, 500), agreement = upvote_ratio
      (0.5 when Reddit does not send it): how much of the community agreed, and how much it was discussed.
    - authority = 0.2 + 0.4 * log_scale(max(score, 0), 10 000): community endorsement of user content
      (never above 0.6: a post is not an authoritative source).
    - freshness = 0.5 ** (days since created_utc / 30).
    """

    SOURCE: ClassVar[str] = "reddit"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://www.reddit.com"
    ENV_NAME: ClassVar[str | None] = "REDDIT"
    CREDENTIALS: ClassVar[dict[str, str]] = {"client_id": "REDDIT_CLIENT_ID", "client_secret": "REDDIT_CLIENT_SECRET"}
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (10, 60.0)  # anonymous
    OAUTH_RATE_LIMIT: ClassVar[tuple[float, float]] = (100, 60.0)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        rate_limit: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> None:
        override = base_url or os.environ.get(f"ARAGORA_{self.ENV_NAME}_BASE_URL")
        super().__init__(base_url=base_url, rate_limit=rate_limit, **kwargs)
        self._client_id = self._credential("client_id", client_id)
        self._client_secret = self._credential("client_secret", client_secret)
        self.site_url = self.base_url or "https://www.reddit.com"
        self.oauth = bool(self._client_id and self._client_secret)
        if self.oauth:
            self.base_url = (override or OAUTH_BASE_URL).rstrip("/")
            if rate_limit is None:
                self.rate_limit = self.OAUTH_RATE_LIMIT
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "Reddit"

    @property
    def source_type(self) -> SourceType:
        """Reddit threads are forum discussions."""
        return SourceType.FORUM

    @property
    def user_agent(self) -> str:
        """Reddit's required form: ``<platform>:<app id>:<version> (<description>)``."""
        return self._user_agent or f"python:aragora-pipelines:{self.VERSION} (evidence connector; search and fetch)"

    def missing_credentials(self) -> list[str]:
        """Credentials are optional, but half a pair is a configuration error: name the missing half."""
        have_id, have_secret = bool(self._credentials.get("client_id")), bool(self._credentials.get("client_secret"))
        if have_id and not have_secret:
            return [self.CREDENTIALS["client_secret"]]
        if have_secret and not have_id:
            return [self.CREDENTIALS["client_id"]]
        return []

    # --- OAuth ----------------------------------------------------------------------------
    def _lock(self) -> asyncio.Lock:
        """The token lock of the running event loop (asyncio locks cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._token_lock is None or self._token_lock[0] is not loop:
            self._token_lock = (loop, asyncio.Lock())
        return self._token_lock[1]

    async def _access_token(self) -> str:
        """A valid app-only bearer token, requested from the token endpoint when missing or expiring."""
        async with self._lock():
            if self._token and time.monotonic() < self._token_expires:
                return self._token
            pair = f"{self._client_id}:{self._client_secret}".encode()
            register_secret(base64.b64encode(pair).decode())
            try:
                body = await self._request(
                    "POST",
                    f"{self.site_url}{TOKEN_PATH}",
                    data={"grant_type": "client_credentials"},
                    headers={"Authorization": f"Basic {base64.b64encode(pair).decode()}"},
                    operation="Reddit POST /api/v1/access_token",
                )
            except ConnectorAuthError as exc:
                raise ConnectorAuthError(
                    f"Reddit rejected the app credentials; check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET "
                    f"({exc.message})",
                    connector=self.name,
                    status_code=exc.status_code,
                ) from None
            token = body.get("access_token") if isinstance(body, dict) else None
            if not token:
                error = body.get("error") if isinstance(body, dict) else None
                raise ConnectorAuthError(
                    f"Reddit token endpoint returned no access_token (error: {error or 'none given'}); "
                    "check REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET",
                    connector=self.name,
                )
            register_secret(str(token))
            lifetime = float(body.get("expires_in") or 3600)
            self._token = str(token)
            self._token_expires = time.monotonic() + max(0.0, lifetime - TOKEN_EXPIRY_MARGIN_SECONDS)
            return self._token

    async def _listing(self, path: str, params: dict[str, Any], operation: str) -> dict[str, Any]:
        """GET a listing (``.json`` suffix when anonymous, bearer token with OAuth) as a JSON object."""
        params = {**params, "raw_json": 1}
        if not self.oauth:
            body = await self._get_json(f"{path}.json", params, operation=operation)
        else:
            body = None
            for attempt in range(2):
                headers = {"Authorization": f"bearer {await self._access_token()}"}
                try:
                    body = await self._get_json(path, params, headers=headers, operation=operation)
                    break
                except ConnectorAuthError:
                    self._token = None  # expired or revoked: one retry with a fresh token
                    if attempt:
                        raise
        if not isinstance(body, dict):
            raise ConnectorParseError(f"{operation}: expected a JSON object", connector=self.name)
        return body

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
        """Posts matching ``query`` created in [since, until), at most ``limit`` of them."""
        want = self._check_limit(limit)
        since, until = self._check_window(since, until)
        query = self._required_query(query)
        path, params = self._search_request(query, since, kwargs)
        windowed = since is not None or until is not None
        guard = PaginationGuard(self.name, "Reddit search")
        found: dict[str, Evidence] = {}
        after: str | None = None
        seen = 0
        while len(found) < want:
            page_size = MAX_PER_PAGE if windowed else min(MAX_PER_PAGE, want - len(found))
            page_params = {**params, "limit": page_size, "count": seen}
            if after:
                page_params["after"] = after
            body = await self._listing(path, page_params, "Reddit search")
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            children = data.get("children") or []
            seen += len(children)
            past_window = False
            for post in self._posts(children):
                created = parse_datetime(post.get("created_utc"))
                if windowed and created is None:
                    continue
                if since and created and created < since:
                    past_window = params["sort"] == "new"
                    if past_window:
                        break
                    continue
                if until and created and created >= until:
                    continue
                if len(found) < want:
                    evidence = self._to_evidence(post)
                    found.setdefault(evidence.id, evidence)
            after = data.get("after") or None
            if past_window or not children or not after:
                break
            guard.check(after)
        return list(found.values())

    def _search_request(
        self, query: str, since: datetime | None, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """The listing path and the fixed query parameters of a search."""
        self._check_options(options, ("subreddit", "sort", "time_filter"))
        sort = options.get("sort") or "relevance"
        if sort not in _SORTS:
            raise ConnectorValidationError(f"sort must be one of {sorted(_SORTS)}, got {sort!r}", connector=self.name)
        period = options.get("time_filter") or time_filter(since)
        if period not in {name for name, _ in _PERIODS} | {"all"}:
            raise ConnectorValidationError(
                f"time_filter must be hour, day, week, month, year or all, got {period!r}", connector=self.name
            )
        params: dict[str, Any] = {"q": query, "sort": sort, "t": period, "type": "link"}
        subreddit = options.get("subreddit")
        if subreddit is None:
            return "/search", params
        subreddit = str(subreddit).strip().removeprefix("r/").removeprefix("/r/")
        if not _SUBREDDIT.match(subreddit):
            raise ConnectorValidationError(
                f"subreddit must be a subreddit name such as 'python' (3-21 letters, digits, _), got {subreddit!r}",
                connector=self.name,
            )
        return f"/r/{subreddit}/search", {**params, "restrict_sr": 1}

    @staticmethod
    def _posts(children: Any) -> list[dict[str, Any]]:
        """The ``t3`` (submission) children of a listing; other kinds are skipped."""
        posts = []
        for child in children if isinstance(children, list) else []:
            if not isinstance(child, dict):
                continue
            data = child.get("data")
            if child.get("kind") != "t3" or not isinstance(data, dict) or not (data.get("name") or data.get("id")):
                log.debug("Reddit listing child of kind %r skipped", child.get("kind"))
                continue
            posts.append(data)
        return posts

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One submission by ``reddit:t3_xxx``, ``t3_xxx`` or its base-36 id; None when absent."""
        match = _FULLNAME.match(str(evidence_id or "").strip().removeprefix(f"{self.SOURCE}:"))
        if not match:
            raise ConnectorValidationError(
                f"Reddit ids look like 'reddit:t3_abc123', 't3_abc123' or 'abc123', got {evidence_id!r}",
                connector=self.name,
            )
        fullname = f"t3_{match[1]}"
        cached = self._cache_get(fullname)
        if cached is not None:
            return cached
        try:
            body = await self._listing(f"/by_id/{fullname}", {}, "Reddit GET /by_id")
        except ConnectorNotFoundError:
            return None
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        for post in self._posts(data.get("children")):
            if post.get("name") == fullname or f"t3_{post.get('id')}" == fullname:
                evidence = self._to_evidence(post)
                self._cache_put(fullname, evidence)
                return evidence
        return None

    # --- mapping --------------------------------------------------------------------------
    def _to_evidence(self, post: dict[str, Any]) -> Evidence:
        """Evidence from a ``t3`` listing child's data."""
        fullname = str(post.get("name") or f"t3_{post.get('id')}")
        title = str(post.get("title") or "").strip()  # raw_json=1: titles come unescaped, as plain text
        text = html_to_text(post.get("selftext_html")) or str(post.get("selftext") or "").strip()
        permalink = str(post.get("permalink") or "").split("?", 1)[0]
        score = int_or_none(post.get("score")) or 0
        comments = as_count(post.get("num_comments"))
        ratio = post.get("upvote_ratio")
        ratio_known = isinstance(ratio, int | float) and not isinstance(ratio, bool)
        agreement = clamp(float(ratio)) if ratio_known else 0.5
        author = post.get("author")
        edited = post.get("edited")
        return Evidence(
            id=evidence_id(self.SOURCE, fullname),
            source_type=self.source_type,
            source_id=fullname,
            title=title,
            content=text or title,
            created_at=iso_utc(post.get("created_utc")),
            author=None if not author or author in _DELETED_AUTHORS else str(author),
            url=f"{self.site_url}{permalink}" if permalink else post.get("url"),
            confidence=clamp(0.2 + 0.5 * agreement + 0.3 * log_scale(comments, 500)),
            authority=clamp(0.2 + 0.4 * log_scale(max(score, 0), 10_000)),
            freshness=freshness(post.get("created_utc"), FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "subreddit": post.get("subreddit"),
                "permalink": permalink or None,
                "url": post.get("url"),
                "domain": post.get("domain"),
                "is_self": bool(post.get("is_self")),
                "score": score,
                "upvote_ratio": agreement if ratio_known else None,
                "num_comments": comments,
                "over_18": bool(post.get("over_18")),
                "edited": iso_utc(edited) if edited else None,
                "stickied": bool(post.get("stickied")),
                "locked": bool(post.get("locked")),
                "link_flair_text": post.get("link_flair_text"),
            },
        )
