"""RedditConnector: search listings, after-cursor paging, app-only OAuth, parsed from recorded real bodies."""

from __future__ import annotations

import base64
import copy
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.exceptions import ConnectorAuthError, ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.reddit import RedditConnector, time_filter

ANON_SEARCH = re.compile(r"^https://www\.reddit\.com/search\.json\?")
OAUTH_SEARCH = re.compile(r"^https://oauth\.reddit\.com/search\?")
TOKEN_URL = "https://www.reddit.com/api/v1/access_token"
CLIENT_ID, CLIENT_SECRET = "app-id-4f2a9c", "app-secret-Zq81xLm3"
ACCESS_TOKEN = "reddit-access-token-77c1e9d2"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

RealApi = Callable[[str], Any]


def make(**kwargs: Any) -> RedditConnector:
    """A connector with fast retry and rate-limit knobs."""
    return RedditConnector(rate_limit=(1000, 1.0), base_delay=0.01, max_delay=0.05, **kwargs)


@pytest.fixture
async def reddit() -> AsyncIterator[RedditConnector]:
    """An anonymous connector, closed after the test."""
    connector = make()
    yield connector
    await connector.close()


@pytest.fixture
def listing(realapi: RealApi) -> dict[str, Any]:
    """A deep copy of the recorded /r/all search listing (6 t3 children, after=null)."""
    return copy.deepcopy(realapi("reddit/search_all_listing.json"))


def page(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    return {"kind": "Listing", "data": {"children": children, "after": after, "before": None, "modhash": ""}}


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def token_response(httpx_mock: HTTPXMock, token: str = ACCESS_TOKEN) -> None:
    httpx_mock.add_response(
        method="POST", url=TOKEN_URL, match_headers={"Authorization": BASIC},
        match_content=b"grant_type=client_credentials",
        json={"access_token": token, "token_type": "bearer", "expires_in": 86400, "scope": "*"},
    )


# --- anonymous search over the recorded listing -------------------------------------------------

async def test_search_parses_the_recorded_listing(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    httpx_mock.add_response(url=ANON_SEARCH, json=listing)

    results = await reddit.search("praw oauth search", limit=10)

    assert [e.id for e in results] == [
        "reddit:t3_3gpbiu", "reddit:t3_3x4kt2", "reddit:t3_3b4erh", "reddit:t3_1qvzkd", "reddit:t3_3qc02b",
        "reddit:t3_4at068",
    ]  # after=null: the listing is exhausted before the limit
    first = results[0]
    assert first.source_type is SourceType.FORUM
    assert first.source_id == "t3_3gpbiu"
    assert first.title.startswith("[PRAW][OAuth2Util] Problem using get_banned()")
    assert first.author == "dClauzel"
    assert first.created_at == "2015-08-12T09:08:34Z"
    assert first.url == "https://www.reddit.com/r/redditdev/comments/3gpbiu/prawoauth2util_problem_using_get_banned_raise/"
    assert first.metadata["permalink"] == "/r/redditdev/comments/3gpbiu/prawoauth2util_problem_using_get_banned_raise/"
    assert first.metadata["subreddit"] == "redditdev"
    assert first.metadata["score"] == 0
    assert first.metadata["num_comments"] == 21
    assert first.metadata["over_18"] is False
    assert first.metadata["is_self"] is True
    assert first.metadata["edited"] == "2015-08-13T06:35:18Z"
    assert first.metadata["upvote_ratio"] is None  # not in this 2016 recording
    assert "Problem solved with this" in first.content
    assert "reddit's API" in first.content  # &#39; decoded
    assert not re.search(r"</?(?:div|p|pre|code|a|hr|h1)\b", first.content)  # tags gone, code text kept
    assert "<module>" in first.content  # &lt;module&gt; inside a code block is text
    assert "SC_OFF" not in first.content
    assert "たびたび話題になる" in results[-1].title

    [request] = httpx_mock.get_requests()
    assert params(request) == {
        "q": "praw oauth search", "sort": "relevance", "t": "all", "type": "link", "limit": "10", "count": "0",
        "raw_json": "1",
    }
    assert request.headers["User-Agent"].startswith("python:aragora-pipelines:")
    assert "Authorization" not in request.headers


async def test_a_subreddit_listing_of_t5_children_is_skipped_without_crashing(
    reddit: RedditConnector, httpx_mock: HTTPXMock, realapi: RealApi, listing: dict[str, Any]
) -> None:
    subreddits = realapi("reddit/subreddits_search_listing.json")
    mixed = page(subreddits["data"]["children"][:3] + listing["data"]["children"][:1] + [{"kind": "t1"}, None], None)
    httpx_mock.add_response(url=ANON_SEARCH, json=subreddits)
    httpx_mock.add_response(url=ANON_SEARCH, json=mixed)

    assert await reddit.search("praw") == []
    assert [e.id for e in await reddit.search("praw")] == ["reddit:t3_3gpbiu"]


async def test_search_follows_the_after_cursor_and_honours_the_limit_exactly(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    children = listing["data"]["children"]
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children[:3], "t3_3b4erh"))
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children[3:], "t3_4at068"))

    results = await reddit.search("praw", limit=5)

    assert [e.source_id for e in results] == ["t3_3gpbiu", "t3_3x4kt2", "t3_3b4erh", "t3_1qvzkd", "t3_3qc02b"]
    first, second = httpx_mock.get_requests()
    assert params(first)["limit"] == "5" and "after" not in params(first)
    assert params(second)["after"] == "t3_3b4erh"
    assert params(second)["count"] == "3"
    assert params(second)["limit"] == "2"


async def test_a_repeated_after_cursor_raises_instead_of_looping(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    children = listing["data"]["children"]
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children[:1], "t3_same"))
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children[1:2], "t3_same"))

    with pytest.raises(ConnectorParseError, match="t3_same"):
        await reddit.search("praw", limit=50)


async def test_subreddit_option_restricts_the_search(reddit: RedditConnector, httpx_mock: HTTPXMock) -> None:
    subreddit_search = re.compile(r"^https://www\.reddit\.com/r/redditdev/search\.json\?")
    httpx_mock.add_response(url=subreddit_search, json=page([], None))

    await reddit.search("praw", subreddit="r/redditdev", sort="top")

    assert params(httpx_mock.get_requests()[0])["restrict_sr"] == "1"
    assert params(httpx_mock.get_requests()[0])["sort"] == "top"


@pytest.mark.parametrize(
    ("options", "message"),
    [({"subreddit": "no spaces!"}, "subreddit must be"), ({"sort": "best"}, "sort must be"),
     ({"time_filter": "decade"}, "time_filter must be"), ({"flair": "x"}, "unknown search option")],
)
async def test_bad_options_are_refused_before_any_request(
    reddit: RedditConnector, httpx_mock: HTTPXMock, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConnectorValidationError, match=message):
        await reddit.search("praw", **options)
    assert httpx_mock.get_requests() == []


# --- time window --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("age", "expected"),
    [(timedelta(minutes=30), "hour"), (timedelta(hours=20), "day"), (timedelta(days=3), "week"),
     (timedelta(days=20), "month"), (timedelta(days=200), "year"), (timedelta(days=800), "all")],
)
def test_time_filter_is_the_narrowest_period_reaching_since(age: timedelta, expected: str) -> None:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    assert time_filter(now - age, now) == expected
    assert time_filter(None) == "all"


async def test_window_picks_t_and_filters_created_utc_exactly(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    since, until = now - timedelta(days=3), now - timedelta(days=1)
    children = listing["data"]["children"][:4]
    for child, moment in zip(children, (now - timedelta(hours=2), since + timedelta(hours=1), until, since),
                             strict=True):
        child["data"]["created_utc"] = moment.timestamp()
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children, None))

    results = await reddit.search("praw", limit=10, since=since, until=until)

    assert [e.source_id for e in results] == ["t3_3x4kt2", "t3_1qvzkd"]  # until is exclusive, since inclusive
    request = httpx_mock.get_requests()[0]
    assert params(request)["t"] == "week"
    assert params(request)["limit"] == "100"  # windowed searches read full pages


async def test_sort_new_stops_paging_at_the_first_post_older_than_since(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    now = datetime.now(UTC)
    children = listing["data"]["children"][:3]
    for child, hours in zip(children, (1, 5, 30), strict=True):
        child["data"]["created_utc"] = (now - timedelta(hours=hours)).timestamp()
    httpx_mock.add_response(url=ANON_SEARCH, json=page(children, "t3_more"))  # "more" is never requested

    results = await reddit.search("praw", limit=10, since=now - timedelta(hours=23), sort="new")

    assert [e.source_id for e in results] == ["t3_3gpbiu", "t3_3x4kt2"]
    assert params(httpx_mock.get_requests()[0])["t"] == "day"


# --- app-only OAuth -----------------------------------------------------------------------------

async def test_oauth_gets_a_token_once_and_searches_oauth_reddit_com_with_bearer(
    httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    token_response(httpx_mock)
    httpx_mock.add_response(url=OAUTH_SEARCH, match_headers={"Authorization": f"bearer {ACCESS_TOKEN}"},
                            json=listing, is_reusable=True)
    async with make(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as connector:
        assert connector.oauth and connector.is_configured
        first = await connector.search("praw", limit=2)
        await connector.search("praw", limit=1)

    assert [e.id for e in first] == ["reddit:t3_3gpbiu", "reddit:t3_3x4kt2"]
    assert first[0].url.startswith("https://www.reddit.com/r/redditdev/")
    assert len(httpx_mock.get_requests(method="POST")) == 1  # the token is reused
    assert params(httpx_mock.get_requests(url=OAUTH_SEARCH)[0])["raw_json"] == "1"


def test_oauth_mode_uses_the_oauth_rate_limit_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", CLIENT_SECRET)
    connector = RedditConnector()
    assert connector.oauth
    assert connector.base_url == "https://oauth.reddit.com"
    assert connector.rate_limit == (100, 60.0)
    monkeypatch.delenv("REDDIT_CLIENT_ID")
    monkeypatch.delenv("REDDIT_CLIENT_SECRET")
    assert RedditConnector().rate_limit == (10, 60.0)


async def test_an_expired_token_is_renewed_once_after_a_401(httpx_mock: HTTPXMock, listing: dict[str, Any]) -> None:
    token_response(httpx_mock, "reddit-old-token-1234")
    httpx_mock.add_response(url=OAUTH_SEARCH, status_code=401, json={"message": "Unauthorized", "error": 401})
    token_response(httpx_mock, "reddit-new-token-5678")
    httpx_mock.add_response(url=OAUTH_SEARCH, match_headers={"Authorization": "bearer reddit-new-token-5678"},
                            json=listing)
    async with make(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as connector:
        results = await connector.search("praw", limit=1)
    assert len(results) == 1


async def test_a_persistent_401_raises_auth_error_without_leaking_the_token(httpx_mock: HTTPXMock) -> None:
    token_response(httpx_mock)
    token_response(httpx_mock)
    httpx_mock.add_response(url=OAUTH_SEARCH, status_code=401, json={"message": "Unauthorized", "error": 401},
                            is_reusable=True)
    async with make(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as connector:
        with pytest.raises(ConnectorAuthError) as err:
            await connector.search("praw")
    text = f"{err.value} {err.value!r} {err.value.details}"
    assert err.value.status_code == 401
    assert ACCESS_TOKEN not in text and CLIENT_SECRET not in text


async def test_rejected_app_credentials_name_the_env_vars_and_hide_the_secret(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, status_code=401,
                            json={"message": "Unauthorized", "error": 401})
    async with make(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as connector:
        with pytest.raises(ConnectorAuthError, match="REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET") as err:
            await connector.search("praw")
    assert CLIENT_SECRET not in f"{err.value!r}" and BASIC.split()[1] not in f"{err.value!r}"


async def test_a_token_answer_without_access_token_is_an_auth_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="POST", url=TOKEN_URL, json={"error": "unsupported_grant_type"})
    async with make(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as connector:
        with pytest.raises(ConnectorAuthError, match="unsupported_grant_type"):
            await connector.search("praw")


async def test_half_a_credential_pair_is_refused_before_any_request(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_ID", CLIENT_ID)
    connector = make()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="REDDIT_CLIENT_SECRET"):
        await connector.search("praw")
    with pytest.raises(ConnectorAuthError, match="REDDIT_CLIENT_SECRET"):
        await connector.fetch("t3_3gpbiu")
    assert httpx_mock.get_requests() == []


async def test_anonymous_401_raises_auth_error(reddit: RedditConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=ANON_SEARCH, status_code=401, json={"message": "Unauthorized", "error": 401})
    with pytest.raises(ConnectorAuthError):
        await reddit.search("praw")


# --- fetch --------------------------------------------------------------------------------------

async def test_fetch_reads_by_id_and_caches(
    reddit: RedditConnector, httpx_mock: HTTPXMock, listing: dict[str, Any]
) -> None:
    httpx_mock.add_response(url="https://www.reddit.com/by_id/t3_3x4kt2.json?raw_json=1",
                            json=page(listing["data"]["children"][1:2], None))

    result = await reddit.fetch("reddit:t3_3x4kt2")
    again = await reddit.fetch("3x4kt2")

    assert result is not None and again is result
    assert result.id == "reddit:t3_3x4kt2"
    assert result.author == "GrinningMouth38"
    assert result.content.startswith("As the title says.")
    assert result.metadata["num_comments"] == 5


async def test_fetch_returns_none_for_an_empty_listing_or_404(
    reddit: RedditConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url="https://www.reddit.com/by_id/t3_zzz.json?raw_json=1", json=page([], None))
    httpx_mock.add_response(url="https://www.reddit.com/by_id/t3_yyy.json?raw_json=1", status_code=404,
                            json={"message": "Not Found", "error": 404})
    assert await reddit.fetch("t3_zzz") is None
    assert await reddit.fetch("reddit:t3_yyy") is None


async def test_fetch_refuses_a_malformed_id(reddit: RedditConnector, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ConnectorValidationError, match="t3_abc123"):
        await reddit.fetch("reddit:t1_../../x")
    assert httpx_mock.get_requests() == []


# --- mapping and scores ---------------------------------------------------------------------------

async def test_null_fields_are_tolerated(reddit: RedditConnector, httpx_mock: HTTPXMock) -> None:
    nulls = {"name": "t3_null1", "id": "null1", "title": None, "selftext": None, "selftext_html": None,
             "score": None, "num_comments": None, "upvote_ratio": None, "created_utc": None, "author": "[deleted]",
             "permalink": None, "url": None, "subreddit": None, "edited": False, "over_18": None}
    httpx_mock.add_response(url=ANON_SEARCH, json={"kind": "Listing", "data": {
        "children": [{"kind": "t3", "data": nulls}, {"kind": "t3", "data": None}], "after": None}})

    [result] = await reddit.search("anything")

    assert result.id == "reddit:t3_null1"
    assert result.author is None and result.created_at is None and result.url is None
    assert result.metadata["edited"] is None and result.metadata["score"] == 0
    assert result.freshness == 0.5


async def test_scores_follow_upvote_ratio_comments_score_and_age(
    reddit: RedditConnector, httpx_mock: HTTPXMock
) -> None:
    now = datetime.now(UTC).timestamp()

    def post(name: str, ratio: float, comments: int, score: int, age_days: float) -> dict[str, Any]:
        return {"kind": "t3", "data": {"name": name, "title": name, "upvote_ratio": ratio, "num_comments": comments,
                                       "score": score, "created_utc": now - age_days * 86400}}

    httpx_mock.add_response(url=ANON_SEARCH, json=page(
        [post("t3_good", 0.97, 400, 5000, 1), post("t3_poor", 0.3, 2, 1, 90)], None))

    good, poor = await reddit.search("x", limit=2)

    assert 1.0 >= good.confidence > poor.confidence >= 0.0
    assert 0.6 >= good.authority > poor.authority >= 0.2
    assert 1.0 > good.freshness > poor.freshness > 0.0
    assert good.metadata["upvote_ratio"] == 0.97
