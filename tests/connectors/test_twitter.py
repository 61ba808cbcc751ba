"""TwitterConnector: X API v2 recent search and lookup, parsed from recorded real bodies."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.twitter import TwitterConnector, rfc3339, snowflake_time

RECENT = re.compile(r"^https://api\.twitter\.com/2/tweets/search/recent\?")
ARCHIVE = re.compile(r"^https://api\.twitter\.com/2/tweets/search/all\?")
LOOKUP = re.compile(r"^https://api\.twitter\.com/2/tweets\?")
BEARER = "x-bearer-token-AAAA1c9f77e2"
NOT_FOUND = {"errors": [{
    "value": "1", "detail": "Could not find tweet with ids: [1].", "title": "Not Found Error",
    "resource_type": "tweet", "parameter": "ids", "resource_id": "1",
    "type": "https://api.twitter.com/2/problems/resource-not-found",
}]}

RealApi = Callable[[str], Any]


def make(**kwargs: Any) -> TwitterConnector:
    """A configured connector with fast retry and rate-limit knobs."""
    kwargs.setdefault("bearer_token", BEARER)
    return TwitterConnector(rate_limit=(1000, 1.0), base_delay=0.01, max_delay=0.05, **kwargs)


@pytest.fixture
async def x() -> AsyncIterator[TwitterConnector]:
    """A configured connector, closed after the test."""
    connector = make()
    yield connector
    await connector.close()


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def tweets(start: int, count: int, **fields: Any) -> list[dict[str, Any]]:
    """``count`` recent-looking posts with consecutive snowflake ids from ``start``."""
    return [{"id": str(start - i), "text": f"post {start - i}", **fields} for i in range(count)]


# --- search over recorded bodies ----------------------------------------------------------------

async def test_search_parses_the_recorded_recent_search(
    x: TwitterConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    body = realapi("twitter/tweets_search_recent.json")
    httpx_mock.add_response(url=RECENT, json=body)

    results = await x.search("Tweepy", limit=10)

    assert [e.source_id for e in results] == [t["id"] for t in body["data"]]
    first = results[0]
    assert first.id == "twitter:1578516068309794817"
    assert first.source_type is SourceType.SOCIAL_MEDIA
    assert first.content == "2022-10-07 22:42:12.637103 tweepy"
    assert first.title == "2022-10-07 22:42:12.637103 tweepy"
    assert first.created_at == "2022-10-07T22:42:12Z"  # from the snowflake id: no created_at was recorded
    assert first.metadata["created_at_from"] == "snowflake"
    assert first.metadata["edit_history_tweet_ids"] == ["1578516068309794817"]
    assert first.author is None  # the recording has no includes.users
    assert first.url == "https://x.com/i/web/status/1578516068309794817"
    assert first.authority == 0.25 and first.confidence == 0.3

    [request] = httpx_mock.get_requests()  # next_token present, but the limit is reached
    sent = params(request)
    assert sent["query"] == "Tweepy" and sent["max_results"] == "10"
    assert sent["expansions"] == "author_id"
    assert {"created_at", "author_id", "public_metrics", "lang", "conversation_id"} <= set(
        sent["tweet.fields"].split(",")
    )
    assert {"username", "name", "verified"} <= set(sent["user.fields"].split(","))
    assert request.headers["Authorization"] == f"Bearer {BEARER}"
    assert request.headers["User-Agent"].startswith("aragora-pipelines/")


async def test_full_archive_reads_search_all(x: TwitterConnector, httpx_mock: HTTPXMock, realapi: RealApi) -> None:
    body = realapi("twitter/tweets_search_all.json")
    httpx_mock.add_response(url=ARCHIVE, json=body)

    results = await x.search("Tweepy", limit=3, full_archive=True)

    assert [e.source_id for e in results] == [t["id"] for t in body["data"][:3]]
    assert results[1].content.startswith("RT @t6dr1ve: #TwitterBots go away!")
    assert params(httpx_mock.get_requests()[0])["max_results"] == "10"  # the API's minimum


async def test_search_follows_next_token_and_honours_the_limit_exactly(
    x: TwitterConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    recent = realapi("twitter/tweets_search_recent.json")
    httpx_mock.add_response(url=RECENT, json=recent)
    httpx_mock.add_response(url=RECENT, json={"data": tweets(1578511000000000000, 10),
                                              "meta": {"result_count": 10, "next_token": "page-3"}})
    httpx_mock.add_response(url=RECENT, json={"data": tweets(1578510000000000000, 10),
                                              "meta": {"result_count": 10, "next_token": "page-4"}})

    results = await x.search("Tweepy", limit=25)

    assert len(results) == 25
    assert len({e.id for e in results}) == 25
    first, second, third = (params(r) for r in httpx_mock.get_requests())
    assert first["max_results"] == "25" and "next_token" not in first
    assert second["next_token"] == recent["meta"]["next_token"] and second["max_results"] == "15"
    assert third["next_token"] == "page-3" and third["max_results"] == "10"  # 5 wanted, 10 is the minimum


async def test_a_repeated_next_token_raises_instead_of_looping(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, json={"data": tweets(1578511000000000000, 10), "meta": {"next_token": "same"}})
    httpx_mock.add_response(url=RECENT, json={"data": tweets(1578512000000000000, 10), "meta": {"next_token": "same"}})

    with pytest.raises(ConnectorParseError, match="same"):
        await x.search("loop", limit=100)


# --- expansions, scores and odd answers ---------------------------------------------------------

async def test_includes_users_set_the_author_and_scores(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    now = datetime.now(UTC)
    httpx_mock.add_response(url=RECENT, json={
        "data": [
            {"id": "1800000000000000001", "author_id": "2244994945", "created_at": rfc3339(now - timedelta(hours=1)),
             "text": "Short &amp; sweet", "note_tweet": {"text": "The full long post &amp; more"},
             "lang": "en", "conversation_id": "1800000000000000001",
             "public_metrics": {"retweet_count": 300, "reply_count": 12, "like_count": 5000, "quote_count": 40}},
            {"id": "1800000000000000002", "author_id": "99", "created_at": rfc3339(now - timedelta(days=20)),
             "text": "quiet", "public_metrics": {"retweet_count": 0, "like_count": 1}},
        ],
        "includes": {"users": [
            {"id": "2244994945", "username": "XDevelopers", "name": "Developers", "verified": True,
             "verified_type": "business"},
            {"id": "99", "username": "someone", "name": "Some One", "verified": False},
        ]},
        "meta": {"result_count": 2},
    })

    loud, quiet = await x.search("api", limit=2)

    assert loud.author == "@XDevelopers"
    assert loud.url == "https://x.com/XDevelopers/status/1800000000000000001"
    assert loud.title == "@XDevelopers: The full long post & more"
    assert loud.content == "The full long post & more"  # note_tweet wins, entities decoded
    assert loud.metadata["verified"] is True and loud.metadata["author_name"] == "Developers"
    assert loud.metadata["public_metrics"]["like_count"] == 5000
    assert loud.metadata["created_at_from"] == "api"
    assert loud.authority == 0.65 and quiet.authority == 0.25
    assert 1.0 >= loud.confidence > quiet.confidence >= 0.3
    assert 1.0 > loud.freshness > quiet.freshness > 0.0


async def test_null_fields_are_tolerated(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, json={
        "data": [{"id": "1800000000000000003", "text": None, "author_id": None, "created_at": None,
                  "public_metrics": None, "note_tweet": None, "referenced_tweets": None,
                  "edit_history_tweet_ids": None}, None, {"text": "no id"}],
        "includes": None, "meta": None,
    })

    [result] = await x.search("nulls", limit=5)

    assert result.id == "twitter:1800000000000000003"
    assert result.content == "" and result.author is None
    assert result.created_at is not None  # still dated by its snowflake id


async def test_an_empty_result_has_no_data(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, json={"meta": {"result_count": 0}})
    assert await x.search("nothing matches") == []


async def test_errors_without_data_in_a_search_answer_raise(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, json={"errors": [{"title": "Invalid Request", "detail": "bad operator"}]})
    with pytest.raises(ConnectorAPIError, match="bad operator"):
        await x.search("x")


# --- time window ----------------------------------------------------------------------------------

async def test_window_is_sent_as_start_and_end_time_and_rechecked(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    now = datetime.now(UTC)
    since, until = now - timedelta(days=2, microseconds=500), now - timedelta(days=1, microseconds=500)
    inside = {"id": "1800000000000000010", "text": "in", "created_at": (since + timedelta(hours=1)).isoformat()}
    late = {"id": "1800000000000000011", "text": "late", "created_at": until.isoformat()}
    httpx_mock.add_response(url=RECENT, json={"data": [late, inside], "meta": {"result_count": 2}})

    results = await x.search("q", since=since, until=until)

    assert [e.content for e in results] == ["in"]
    sent = params(httpx_mock.get_requests()[0])
    assert sent["start_time"] == since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert datetime.fromisoformat(sent["end_time"].replace("Z", "+00:00")) >= until  # rounded up, exclusive
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sent["end_time"])


async def test_recent_search_raises_an_old_since_to_seven_days(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, json={"meta": {"result_count": 0}})

    await x.search("q", since=datetime.now(UTC) - timedelta(days=30))

    start = datetime.fromisoformat(params(httpx_mock.get_requests()[0])["start_time"].replace("Z", "+00:00"))
    assert timedelta(days=6, hours=23) < datetime.now(UTC) - start < timedelta(days=7)
    assert "end_time" not in params(httpx_mock.get_requests()[0])


async def test_a_window_older_than_seven_days_needs_full_archive(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    since, until = datetime(2022, 10, 7, tzinfo=UTC), datetime(2022, 10, 8, tzinfo=UTC)
    with pytest.raises(ConnectorValidationError, match="full_archive=True"):
        await x.search("q", since=since, until=until)
    assert httpx_mock.get_requests() == []

    httpx_mock.add_response(url=ARCHIVE, json={"meta": {"result_count": 0}})
    await x.search("q", since=since, until=until, full_archive=True)
    sent = params(httpx_mock.get_requests()[0])
    assert (sent["start_time"], sent["end_time"]) == ("2022-10-07T00:00:00Z", "2022-10-08T00:00:00Z")


async def test_a_window_in_the_future_matches_nothing_without_a_request(
    x: TwitterConnector, httpx_mock: HTTPXMock
) -> None:
    assert await x.search("q", since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [("", {}, "query is empty"), ("q", {"sort_order": "oldest"}, "sort_order"), ("q", {"lang": "en"}, "unknown")],
)
async def test_bad_search_input_is_refused_before_any_request(
    x: TwitterConnector, httpx_mock: HTTPXMock, query: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConnectorValidationError, match=message):
        await x.search(query, **options)
    assert httpx_mock.get_requests() == []


# --- auth -------------------------------------------------------------------------------------------

async def test_unconfigured_connector_names_the_env_var_before_any_request(httpx_mock: HTTPXMock) -> None:
    connector = TwitterConnector()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="TWITTER_BEARER_TOKEN"):
        await connector.search("q")
    with pytest.raises(ConnectorAuthError, match="TWITTER_BEARER_TOKEN"):
        await connector.fetch("1293593516040269825")
    assert httpx_mock.get_requests() == []


async def test_the_bearer_token_is_read_from_the_environment(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWITTER_BEARER_TOKEN", "env-bearer-token-5521")
    httpx_mock.add_response(url=RECENT, match_headers={"Authorization": "Bearer env-bearer-token-5521"},
                            json={"meta": {"result_count": 0}})
    async with TwitterConnector(rate_limit=(1000, 1.0)) as connector:
        assert connector.is_configured
        assert await connector.search("q") == []


async def test_401_raises_auth_error_without_the_token(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=RECENT, status_code=401,
                            json={"title": "Unauthorized", "type": "about:blank", "status": 401,
                                  "detail": "Unauthorized"})
    with pytest.raises(ConnectorAuthError) as err:
        await x.search("q")
    assert err.value.status_code == 401
    assert BEARER not in f"{err.value} {err.value!r} {err.value.details}"


# --- fetch ------------------------------------------------------------------------------------------

async def test_fetch_decodes_surrogate_pairs_and_caches(
    x: TwitterConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    httpx_mock.add_response(url=LOOKUP, json=realapi("twitter/tweets_lookup_by_ids.json"))

    result = await x.fetch("twitter:1293593516040269825")
    again = await x.fetch("1293593516040269825")

    assert result is not None and again is result
    assert result.content.startswith("It\u2019s finally here! 🥁 Say hello to the new #TwitterAPI.")
    assert "\ud83e" not in result.content
    assert result.created_at == "2020-08-12T17:01:42Z"
    [request] = httpx_mock.get_requests()
    assert params(request)["ids"] == "1293593516040269825"
    assert params(request)["expansions"] == "author_id"


async def test_fetch_picks_the_asked_post_from_a_multi_post_answer(
    x: TwitterConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    httpx_mock.add_response(url=LOOKUP, json=realapi("twitter/tweets_lookup_by_ids.json"))

    result = await x.fetch("1293595870563381249")

    assert result is not None
    assert result.content.startswith("Twitter API v2: Early Access released")


async def test_fetch_returns_none_when_x_answers_200_with_only_errors(
    x: TwitterConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=LOOKUP, json=NOT_FOUND)
    assert await x.fetch("1") is None


async def test_fetch_raises_on_an_unexpected_problem(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=LOOKUP, json={"errors": [{
        "title": "Client Forbidden", "detail": "this app is not enrolled",
        "type": "https://api.twitter.com/2/problems/client-forbidden"}]})
    with pytest.raises(ConnectorAPIError, match="not enrolled"):
        await x.fetch("1293593516040269825")


async def test_fetch_refuses_a_non_numeric_id(x: TwitterConnector, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ConnectorValidationError, match="numeric"):
        await x.fetch("twitter:abc")
    assert httpx_mock.get_requests() == []


def test_snowflake_time_reads_creation_from_the_id() -> None:
    assert snowflake_time("1578516068309794817") == datetime(2022, 10, 7, 22, 42, 12, 752000, tzinfo=UTC)
    assert snowflake_time("20") is None  # pre-snowflake ids carry no time
    assert snowflake_time("not-a-number") is None
