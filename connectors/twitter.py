"""Posts on X (Twitter) as evidence, through the API v2 recent (or full-archive) search."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from connectors.base import BaseConnector, Evidence, PaginationGuard, ceil_time, evidence_id, in_window
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import as_count, as_list, clamp, freshness, html_to_text, iso_utc, log_scale, parse_datetime

log = get_logger(__name__)

RECENT_SEARCH_PATH = "/2/tweets/search/recent"
FULL_ARCHIVE_SEARCH_PATH = "/2/tweets/search/all"
LOOKUP_PATH = "/2/tweets"
MIN_RESULTS, MAX_RESULTS = 10, 100  # the API's bounds for max_results
RECENT_SEARCH_SPAN = timedelta(days=7)
END_TIME_LAG = timedelta(seconds=10)  # end_time must be at least 10 s before the request
FRESHNESS_HALF_LIFE_DAYS = 7.0
TWITTER_EPOCH_MS = 1288834974657  # snowflake ids count milliseconds from 2010-11-04T01:42:54.657Z
LAST_SEQUENTIAL_ID = 29_700_859_247  # ids up to this one predate snowflakes and carry no time

TWEET_FIELDS = "created_at,author_id,public_metrics,lang,conversation_id,note_tweet,referenced_tweets"
USER_FIELDS = "username,name,verified,verified_type"
_TWEET_ID = re.compile(r"^\d{1,20}$")
_SORT_ORDERS = {"recency", "relevancy"}
_ABSENT_PROBLEMS = ("resource-not-found", "resource-unavailable", "not-authorized-for-resource")
_VERIFIED_AUTHORITY = {"government": 0.75, "business": 0.65, "blue": 0.4}
_LEGACY_VERIFIED_AUTHORITY = 0.6
_UNVERIFIED_AUTHORITY = 0.25


def snowflake_time(tweet_id: object) -> datetime | None:
    """When a post was created, read from its snowflake id (None for pre-2010 sequential ids)."""
    try:
        value = int(str(tweet_id))
    except ValueError:
        return None
    if value <= LAST_SEQUENTIAL_ID:
        return None
    return datetime.fromtimestamp(((value >> 22) + TWITTER_EPOCH_MS) / 1000, UTC)


def created_time(tweet: dict[str, Any]) -> datetime | None:
    """A post's ``created_at``, else the time in its snowflake id."""
    return parse_datetime(tweet.get("created_at")) or snowflake_time(tweet.get("id"))


def rfc3339(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the form start_time and end_time take."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """X's problem objects (``errors``) of an answer."""
    return [problem for problem in body.get("errors") or [] if isinstance(problem, dict)]


def _describe(problems: list[dict[str, Any]]) -> str:
    """A short human-readable summary of problem objects, for an exception message."""
    return "; ".join(str(p.get("detail") or p.get("title") or p.get("message") or p) for p in problems)[:300]


class TwitterConnector(BaseConnector):
    """Posts from X API v2 ``GET /2/tweets/search/recent`` (the last 7 days), app-only bearer auth.

    ``search`` sends ``query``, ``max_results`` (10..100), ``tweet.fields`` (created_at, author_id,
    public_metrics, lang, conversation_id, note_tweet, referenced_tweets), ``expansions=author_id`` with
    ``user.fields`` (username, name, verified, verified_type), and follows ``meta.next_token`` until
    ``limit`` or the end. ``includes.users`` is joined to set the author; answers without it (as recorded
    with default fields) still parse. Window: since/until go out as ``start_time``/``end_time`` (RFC 3339,
    second precision, end exclusive) and are re-checked on ``created_at``. Recent search covers only the last
    seven days, so an earlier ``since`` is raised to that limit, and a window that ends before it is refused
    with a hint to pass ``full_archive=True`` (``/2/tweets/search/all``, Pro/Enterprise access). Options:
    ``full_archive``, ``sort_order`` (recency, relevancy). ``fetch`` reads ``GET /2/tweets?ids=<id>``;
    X's 200 answer with only ``errors`` (not found, unavailable, protected) means None. Ids are
    ``twitter:<post id>``. When ``created_at`` is absent the time comes from the snowflake id.

    Credentials: ``bearer_token`` / ``TWITTER_BEARER_TOKEN`` (required). Rate limit: recent search allows
    450 requests per 15 minutes per app (Pro tier), so the limiter paces at (450, 900); pass ``rate_limit``
    for a lower tier (Basic: 60 per 15 minutes).

    Scores (all in [0, 1]):
    - confidence = 0.3 + 0.35 * log_scale(like_count, 10 000) + 0.35 * log_scale(retweet_count + quote_count,
      1 000): how widely the post was endorsed and shared.
    - authority by the author's verification: government 0.75, business 0.65, legacy ``verified`` 0.6,
      paid (blue) 0.4, unverified or unknown 0.25.
    - freshness = 0.5 ** (days since created_at / 7).
    """

    SOURCE: ClassVar[str] = "twitter"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://api.twitter.com"
    ENV_NAME: ClassVar[str | None] = "TWITTER"
    CREDENTIALS: ClassVar[dict[str, str]] = {"bearer_token": "TWITTER_BEARER_TOKEN"}
    REQUIRED_CREDENTIALS: ClassVar[tuple[str, ...]] = ("bearer_token",)
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (450, 900.0)

    def __init__(self, *, base_url: str | None = None, bearer_token: str | None = None, **kwargs: Any) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._bearer_token = self._credential("bearer_token", bearer_token)

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "Twitter"

    @property
    def source_type(self) -> SourceType:
        """X is social media."""
        return SourceType.SOCIAL_MEDIA

    def _default_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._bearer_token}"} if self._bearer_token else {}

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
        self.require_configured()
        since, until = self._check_window(since, until)
        query = self._required_query(query)
        self._check_options(kwargs, ("full_archive", "sort_order"))
        full_archive = bool(kwargs.get("full_archive"))
        params: dict[str, Any] = {
            "query": query,
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": USER_FIELDS,
        }
        sort_order = kwargs.get("sort_order")
        if sort_order is not None:
            if sort_order not in _SORT_ORDERS:
                raise ConnectorValidationError(
                    f"sort_order must be 'recency' or 'relevancy', got {sort_order!r}", connector=self.name
                )
            params["sort_order"] = sort_order
        window = self._window_params(since, until, full_archive)
        if window is None:
            return []
        params.update(window)
        path = FULL_ARCHIVE_SEARCH_PATH if full_archive else RECENT_SEARCH_PATH
        guard = PaginationGuard(self.name, f"Twitter {path}")
        found: dict[str, Evidence] = {}
        token: str | None = None
        while len(found) < want:
            page = {**params, "max_results": max(MIN_RESULTS, min(MAX_RESULTS, want - len(found)))}
            if token:
                page["next_token"] = token
            body = await self._get_json(path, page, operation=f"Twitter GET {path}")
            if not isinstance(body, dict):
                raise ConnectorParseError(f"GET {path}: expected a JSON object", connector=self.name)
            if "data" not in body and _problems(body) and not body.get("meta"):
                raise ConnectorAPIError(f"GET {path}: {_describe(_problems(body))}", connector=self.name)
            users = self._users(body)
            for tweet in as_list(body.get("data")):
                if not isinstance(tweet, dict) or not tweet.get("id") or len(found) >= want:
                    continue
                created = created_time(tweet)
                if not in_window(created, since, until):
                    continue
                evidence = self._to_evidence(tweet, users)
                found.setdefault(evidence.id, evidence)
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            token = meta.get("next_token") or None
            if not token:
                break
            guard.check(token)
        return list(found.values())

    def _window_params(
        self, since: datetime | None, until: datetime | None, full_archive: bool
    ) -> dict[str, str] | None:
        """start_time/end_time for [since, until) within what the endpoint serves; None when nothing can match."""
        now = datetime.now(UTC)
        latest = now - END_TIME_LAG
        if since and since >= latest:
            return None  # the window has not happened yet
        start = since
        if not full_archive:
            earliest = now - RECENT_SEARCH_SPAN + timedelta(minutes=1)
            if until and until <= earliest:
                raise ConnectorValidationError(
                    f"recent search covers only the last 7 days and the window ends at {rfc3339(until)}; "
                    "pass full_archive=True (X API Pro or Enterprise access) for older posts",
                    connector=self.name,
                )
            if since and since < earliest:
                log.info("Twitter recent search reaches back 7 days only; start_time raised to %s", rfc3339(earliest))
                start = earliest
        params: dict[str, str] = {}
        if start:
            params["start_time"] = rfc3339(start)
        if until and until < latest:
            # end_time is exclusive at second precision: round up so no post of [since, until) is cut off.
            params["end_time"] = rfc3339(ceil_time(until))
        return params

    @staticmethod
    def _users(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """``includes.users`` by id (empty when the answer has no expansions)."""
        includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
        return {
            str(user["id"]): user
            for user in as_list(includes.get("users"))
            if isinstance(user, dict) and user.get("id") is not None
        }

    # --- fetch ----------------------------------------------------------------------------
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One post by ``twitter:<id>`` or its numeric id; None when X says it is missing or unavailable."""
        tweet_id = str(evidence_id or "").strip().removeprefix(f"{self.SOURCE}:")
        if not _TWEET_ID.match(tweet_id):
            raise ConnectorValidationError(
                f"Twitter ids look like 'twitter:1293593516040269825' or the numeric post id, got {evidence_id!r}",
                connector=self.name,
            )
        cached = self._cache_get(tweet_id)
        if cached is not None:
            return cached
        params = {"ids": tweet_id, "tweet.fields": TWEET_FIELDS, "expansions": "author_id", "user.fields": USER_FIELDS}
        try:
            body = await self._get_json(LOOKUP_PATH, params, operation=f"Twitter GET {LOOKUP_PATH}")
        except ConnectorNotFoundError:
            return None
        if not isinstance(body, dict):
            raise ConnectorParseError(f"GET {LOOKUP_PATH}: expected a JSON object", connector=self.name)
        data = body.get("data")
        tweets = data if isinstance(data, list) else [data]
        users = self._users(body)
        for tweet in tweets:
            if isinstance(tweet, dict) and str(tweet.get("id")) == tweet_id:
                evidence = self._to_evidence(tweet, users)
                self._cache_put(tweet_id, evidence)
                return evidence
        problems = _problems(body)
        unexpected = [p for p in problems if not str(p.get("type") or "").endswith(_ABSENT_PROBLEMS)]
        if unexpected:
            raise ConnectorAPIError(f"GET {LOOKUP_PATH}: {_describe(unexpected)}", connector=self.name)
        if problems:
            log.debug("Twitter post %s not available: %s", tweet_id, _describe(problems))
        return None

    # --- mapping --------------------------------------------------------------------------
    def _to_evidence(self, tweet: dict[str, Any], users: dict[str, dict[str, Any]]) -> Evidence:
        """Evidence from a v2 post object and the expanded users."""
        tweet_id = str(tweet["id"])
        note = tweet.get("note_tweet") if isinstance(tweet.get("note_tweet"), dict) else {}
        text = html_to_text(note.get("text") or tweet.get("text"))
        user = users.get(str(tweet.get("author_id")), {})
        username = user.get("username")
        created = created_time(tweet)
        metrics = tweet.get("public_metrics") if isinstance(tweet.get("public_metrics"), dict) else {}
        likes = as_count(metrics.get("like_count"))
        shares = as_count(metrics.get("retweet_count")) + as_count(metrics.get("quote_count"))
        first_line = text.split("\n", 1)[0]
        headline = first_line if len(first_line) <= 100 else first_line[:99] + "…"
        referenced = [
            {"type": ref.get("type"), "id": str(ref.get("id"))}
            for ref in tweet.get("referenced_tweets") or []
            if isinstance(ref, dict)
        ]
        return Evidence(
            id=evidence_id(self.SOURCE, tweet_id),
            source_type=self.source_type,
            source_id=tweet_id,
            title=f"@{username}: {headline}" if username else headline,
            content=text,
            created_at=iso_utc(created),
            author=f"@{username}" if username else (str(tweet["author_id"]) if tweet.get("author_id") else None),
            url=f"https://x.com/{username}/status/{tweet_id}" if username else f"https://x.com/i/web/status/{tweet_id}",
            confidence=clamp(0.3 + 0.35 * log_scale(likes, 10_000) + 0.35 * log_scale(shares, 1_000)),
            authority=self._authority(user),
            freshness=freshness(created, FRESHNESS_HALF_LIFE_DAYS),
            metadata={
                "author_id": str(tweet["author_id"]) if tweet.get("author_id") is not None else None,
                "username": username,
                "author_name": user.get("name"),
                "verified": bool(user.get("verified")) if user else None,
                "verified_type": user.get("verified_type"),
                "lang": tweet.get("lang"),
                "conversation_id": str(tweet["conversation_id"]) if tweet.get("conversation_id") else None,
                "public_metrics": {str(k): v for k, v in metrics.items() if isinstance(v, int)},
                "referenced_tweets": referenced,
                "edit_history_tweet_ids": [str(i) for i in as_list(tweet.get("edit_history_tweet_ids"))],
                "created_at_from": "api" if tweet.get("created_at") else ("snowflake" if created else None),
            },
        )

    @staticmethod
    def _authority(user: dict[str, Any]) -> float:
        """Authority by the author's verification type (see the class docstring)."""
        kind = user.get("verified_type")
        if kind in _VERIFIED_AUTHORITY:
            return _VERIFIED_AUTHORITY[kind]
        return _LEGACY_VERIFIED_AUTHORITY if user.get("verified") is True else _UNVERIFIED_AUTHORITY
