"""HackerNewsConnector: Algolia search and items through the HTTP boundary, with recorded Algolia bodies."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.hackernews import HackerNewsConnector, window_filter
from connectors.provenance import SourceType

API = "https://hn.algolia.com/api/v1"
SEARCH = re.compile(r"https://hn\.algolia\.com/api/v1/search\?.*")
BY_DATE = re.compile(r"https://hn\.algolia\.com/api/v1/search_by_date\?.*")
FAST = {"base_delay": 0.01, "max_delay": 0.05}
DAY = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
DAY_FILTER = "created_at_i>=1767225600,created_at_i<1767312000"


@pytest.fixture
def hn() -> HackerNewsConnector:
    return HackerNewsConnector(**FAST)


def fake_hits(template: dict[str, Any], ids: range, created: int = 1_767_225_600) -> list[dict[str, Any]]:
    """Copies of a recorded hit with new objectIDs (and creation times one second apart)."""
    return [dict(template, objectID=str(i), created_at_i=created + n) for n, i in enumerate(ids)]


def page_body(hits: list[dict[str, Any]], page: int, nb_pages: int, nb_hits: int, per_page: int) -> dict[str, Any]:
    return {"hits": hits, "page": page, "nbPages": nb_pages, "nbHits": nb_hits, "hitsPerPage": per_page}


# --- parsing the recorded bodies ---------------------------------------------------------

async def test_search_parses_recorded_algolia_body(httpx_mock, realapi, hn):
    httpx_mock.add_response(url=SEARCH, json=realapi("hackernews/algolia_search_by_url.json"))
    results = await hn.search("https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc")

    assert [e.id for e in results] == [
        "hackernews:8828543", "hackernews:11516582", "hackernews:13566801", "hackernews:8830693",
    ]
    first = results[0]
    assert first.source_type is SourceType.FORUM
    assert first.source_id == "8828543"
    assert first.title == "Why aren\u2019t we using SSH for everything?"
    assert first.content == first.title  # story_text is "" for a link story
    assert first.author == "dkua"
    assert first.created_at == "2015-01-02T21:05:46Z"
    assert first.url == "https://news.ycombinator.com/item?id=8828543"
    assert first.metadata == {
        "type": "story", "points": 270, "num_comments": 103, "story_id": None, "parent_id": None,
        "story_url": "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc",
    }


async def test_scores_grow_with_points_and_comments(httpx_mock, realapi, hn):
    httpx_mock.add_response(url=SEARCH, json=realapi("hackernews/algolia_search_by_url.json"))
    by_id = {e.source_id: e for e in await hn.search("ssh")}
    popular, quiet = by_id["8828543"], by_id["8830693"]  # 270 points/103 comments vs 3 points/0 comments
    assert popular.authority > quiet.authority
    assert popular.confidence > quiet.confidence
    assert 0.3 <= quiet.confidence < popular.confidence <= 0.7
    for evidence in by_id.values():
        assert 0.0 <= evidence.freshness < 0.05  # 2015-2017 stories, half-life 90 days


async def test_freshness_decays_smoothly_with_age(httpx_mock, realapi, hn):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    now = int(datetime.now(UTC).timestamp())
    ages = (0, 45, 90, 365)
    hits = [dict(template, objectID=str(n), created_at_i=now - days * 86400) for n, days in enumerate(ages)]
    httpx_mock.add_response(url=SEARCH, json=page_body(hits, 0, 1, 4, 10))
    fresh = [e.freshness for e in await hn.search("x")]
    assert fresh[0] == pytest.approx(1.0, abs=1e-3)
    assert fresh[2] == pytest.approx(0.5, abs=1e-3)  # half-life 90 days
    assert fresh[0] > fresh[1] > fresh[2] > fresh[3] > 0


async def test_null_and_missing_fields_never_crash(httpx_mock, hn):
    hits = [
        {"objectID": "1", "title": None, "story_text": None, "comment_text": "<p>Just a &quot;reply&quot;</p>",
         "story_title": "Parent story", "points": None, "num_comments": None, "created_at_i": None,
         "created_at": None, "_tags": None, "author": None},
        {"title": "no objectID"},
        "not a hit",
    ]
    httpx_mock.add_response(url=SEARCH, json=page_body(hits, 0, 1, 3, 10))
    [evidence] = await hn.search("reply")
    assert evidence.id == "hackernews:1"
    assert evidence.title == "Parent story"
    assert evidence.content == 'Just a "reply"'
    assert evidence.created_at is None and evidence.author is None
    assert evidence.freshness == 0.5
    assert evidence.authority == pytest.approx(0.1)
    assert evidence.metadata["points"] == 0 and evidence.metadata["type"] is None


async def test_body_without_hits_is_a_parse_error(httpx_mock, hn):
    httpx_mock.add_response(url=SEARCH, json={"message": "oops"})
    with pytest.raises(ConnectorParseError, match="hits"):
        await hn.search("x")


# --- request shape -----------------------------------------------------------------------

async def test_search_request_parameters(httpx_mock, hn):
    httpx_mock.add_response(url=SEARCH, json=page_body([], 0, 0, 0, 5))
    assert await hn.search("rate limiting", limit=5, tags="story") == []
    [request] = httpx_mock.get_requests()
    assert request.url.path == "/api/v1/search"
    assert dict(request.url.params) == {"query": "rate limiting", "tags": "story", "hitsPerPage": "5", "page": "0"}
    assert "aragora-pipelines" in request.headers["User-Agent"]


async def test_sort_by_date_uses_search_by_date_and_window_filter(httpx_mock, hn):
    httpx_mock.add_response(url=BY_DATE, json=page_body([], 0, 0, 0, 100))
    await hn.search("", limit=500, since=DAY[0], until=DAY[1], sort="date", tags="comment")
    [request] = httpx_mock.get_requests()
    assert request.url.path == "/api/v1/search_by_date"
    assert request.url.params["numericFilters"] == DAY_FILTER
    assert request.url.params["hitsPerPage"] == "100"
    assert request.url.params["tags"] == "comment"


def test_window_filter_is_half_open_in_epoch_seconds():
    assert window_filter(*DAY) == DAY_FILTER
    assert window_filter(DAY[0], None) == "created_at_i>=1767225600"
    assert window_filter(None, DAY[1] - timedelta(microseconds=1)) == "created_at_i<1767312000"
    assert window_filter(None, None) is None


async def test_hits_per_page_is_configurable(httpx_mock):
    httpx_mock.add_response(url=SEARCH, json=page_body([], 0, 0, 0, 1000))
    await HackerNewsConnector(hits_per_page=1000, **FAST).search("x", limit=5000)
    assert httpx_mock.get_requests()[0].url.params["hitsPerPage"] == "1000"


@pytest.mark.parametrize("bad", [0, 1001, "100"])
def test_hits_per_page_out_of_range_is_rejected(bad):
    with pytest.raises(ConnectorValidationError, match="hits_per_page"):
        HackerNewsConnector(hits_per_page=bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": -1}, "limit"),
        ({"sort": "points"}, "sort must be"),
        ({"colour": "red"}, "unknown search option"),
        ({"since": DAY[1], "until": DAY[0]}, "before"),
    ],
)
async def test_bad_search_input_is_rejected(hn, kwargs, message):
    with pytest.raises(ConnectorValidationError, match=message):
        await hn.search("x", **kwargs)


def test_defaults_base_url_env_and_no_limiter(monkeypatch):
    assert HackerNewsConnector().base_url == API
    assert HackerNewsConnector().rate_limit is None
    monkeypatch.setenv("ARAGORA_HACKERNEWS_BASE_URL", "http://127.0.0.1:9/hn/api/v1")
    assert HackerNewsConnector().base_url == "http://127.0.0.1:9/hn/api/v1"


# --- pagination --------------------------------------------------------------------------

def paged_server(template: dict[str, Any], total: int, delay: float = 0.0, stats: dict[str, int] | None = None):
    """An async Algolia fake serving ``total`` hits in pages (reports the pages it was asked for)."""

    async def serve(request: httpx.Request) -> httpx.Response:
        if stats is not None:
            stats["in_flight"] += 1
            stats["peak"] = max(stats["peak"], stats["in_flight"])
        await asyncio.sleep(delay)
        if stats is not None:
            stats["in_flight"] -= 1
        page, size = int(request.url.params["page"]), int(request.url.params["hitsPerPage"])
        ids = range(page * size, min(total, (page + 1) * size))
        return httpx.Response(200, json=page_body(fake_hits(template, ids), page, -(-total // size), total, size))

    return serve


async def test_pagination_honours_limit_exactly(httpx_mock, realapi, hn):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    httpx_mock.add_callback(paged_server(template, total=480), url=SEARCH, is_reusable=True)
    results = await hn.search("x", limit=250)

    assert len(results) == 250 == len({e.id for e in results})
    assert [e.source_id for e in results[:2]] == ["0", "1"] and results[-1].source_id == "249"
    assert sorted(int(r.url.params["page"]) for r in httpx_mock.get_requests()) == [0, 1, 2]


async def test_source_exhausted_before_limit(httpx_mock, realapi, hn):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    httpx_mock.add_callback(paged_server(template, total=230), url=SEARCH, is_reusable=True)
    assert len(await hn.search("x", limit=1000)) == 230
    assert len(httpx_mock.get_requests()) == 3


async def test_remaining_pages_are_fetched_concurrently_within_max_concurrency(httpx_mock, realapi):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    stats = {"in_flight": 0, "peak": 0}
    httpx_mock.add_callback(paged_server(template, total=1000, delay=0.02, stats=stats), url=SEARCH, is_reusable=True)
    connector = HackerNewsConnector(hits_per_page=100, max_concurrency=4, **FAST)
    results = await connector.search("x", limit=1000)

    assert len(results) == 1000
    assert stats["peak"] == 4  # pages 1..9 overlapped, never more than max_concurrency at once


async def test_server_repeating_a_page_raises_parse_error(httpx_mock, realapi, hn):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    stuck = page_body(fake_hits(template, range(10)), page=0, nb_pages=5, nb_hits=50, per_page=10)
    httpx_mock.add_response(url=SEARCH, json=stuck, is_reusable=True)  # ignores ?page=
    with pytest.raises(ConnectorParseError, match="twice"):
        await hn.search("x", limit=50)


def capped_server(template: dict[str, Any], created: list[int]):
    """An Algolia fake honouring numericFilters that, like Algolia, serves only the first 1000 hits per query."""

    def serve(request: httpx.Request) -> httpx.Response:
        lo, hi = map(int, re.fullmatch(r"created_at_i>=(\d+),created_at_i<(\d+)",
                                       request.url.params["numericFilters"]).groups())
        chosen = [ts for ts in created if lo <= ts < hi]
        page, size = int(request.url.params["page"]), int(request.url.params["hitsPerPage"])
        nb_pages = min(-(-len(chosen) // size), 1000 // size)
        hits = [dict(template, objectID=str(ts), created_at_i=ts) for ts in chosen[page * size:(page + 1) * size]]
        return httpx.Response(200, json=page_body(hits if page < nb_pages else [], page, nb_pages, len(chosen), size))

    return serve


async def test_hits_beyond_algolias_cap_split_the_window(httpx_mock, realapi, hn):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]
    start = int(DAY[0].timestamp())
    created = [start + 30 * n for n in range(2500)]  # 2500 stories over ~21 hours
    httpx_mock.add_callback(capped_server(template, created), url=BY_DATE, is_reusable=True)
    results = await hn.search("", limit=2500, since=DAY[0], until=DAY[1], sort="date")

    assert len(results) == 2500 == len({e.id for e in results})
    filters = {r.url.params["numericFilters"] for r in httpx_mock.get_requests()}
    assert DAY_FILTER in filters
    assert "created_at_i>=1767225600,created_at_i<1767268800" in filters  # first half of the day


async def test_over_cap_without_window_returns_what_is_reachable_and_warns(httpx_mock, realapi, hn, caplog):
    template = realapi("hackernews/algolia_search_by_url.json")["hits"][0]

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        ids = range(page * 100, (page + 1) * 100)
        return httpx.Response(200, json=page_body(fake_hits(template, ids), page, 10, 5000, 100))

    httpx_mock.add_callback(serve, url=SEARCH, is_reusable=True)
    with caplog.at_level(logging.WARNING, logger="connectors.hackernews"):
        results = await hn.search("x", limit=2000)
    assert len(results) == 1000
    assert "since/until" in caplog.text


# --- fetch -------------------------------------------------------------------------------

async def test_fetch_story_with_comment_tree(httpx_mock, realapi, hn):
    httpx_mock.add_response(url=f"{API}/items/8828543", json=realapi("hackernews/algolia_item_8828543.json"))
    story = await hn.fetch("hackernews:8828543")

    assert story.id == "hackernews:8828543"
    assert story.title == "Why aren\u2019t we using SSH for everything?"
    assert story.author == "dkua"
    assert story.created_at == "2015-01-02T21:05:46Z"
    assert story.metadata["points"] == 270
    assert story.metadata["num_comments"] == 104  # every node of the nested children tree
    assert story.metadata["type"] == "story"
    assert story.metadata["story_url"] == "https://medium.com/@shazow/ssh-how-does-it-even-9e43586e4ffc"
    assert await hn.fetch("8828543") is story  # bare id, from the cache
    assert len(httpx_mock.get_requests()) == 1


async def test_search_and_fetch_give_the_same_id_and_content_hash(httpx_mock, realapi, hn):
    httpx_mock.add_response(url=SEARCH, json=realapi("hackernews/algolia_search_by_url.json"))
    httpx_mock.add_response(url=f"{API}/items/8828543", json=realapi("hackernews/algolia_item_8828543.json"))
    searched = (await hn.search("ssh", limit=1))[0]
    fetched = await hn.fetch(searched.id)
    assert (fetched.id, fetched.source_id) == (searched.id, searched.source_id)
    assert fetched.content_hash == searched.content_hash


async def test_fetch_comment_turns_html_into_text(httpx_mock, realapi, hn):
    comment = copy.deepcopy(realapi("hackernews/algolia_item_8828543.json")["children"][0])
    httpx_mock.add_response(url=f"{API}/items/8829186", json=comment)
    evidence = await hn.fetch("8829186")

    assert evidence.content.startswith("Somewhat relevant: I think Mosh solves a few problems that SSH lacks.")
    assert "https://news.ycombinator.com/item?id=8252093" in evidence.content
    assert "<p>" not in evidence.content and "&#x2F;" not in evidence.content
    assert evidence.metadata["type"] == "comment"
    assert evidence.metadata["parent_id"] == 8828543


async def test_fetch_missing_item_returns_none(httpx_mock, hn):
    httpx_mock.add_response(url=f"{API}/items/1", status_code=404, json={"error": "Not Found"})
    assert await hn.fetch("1") is None


@pytest.mark.parametrize("bad", ["abc", "", "github:1", "hackernews:12a", "\u00b2"])
async def test_fetch_rejects_malformed_ids(hn, bad):
    with pytest.raises(ConnectorValidationError, match="HackerNews ids"):
        await hn.fetch(bad)


# --- the loopback simulator ------------------------------------------------------------------

async def test_simulator_search_returns_exact_limit_over_several_pages(apisim):
    before = apisim.stats()["requests"]
    async with HackerNewsConnector(base_url=apisim.hn, **FAST) as connector:
        results = await connector.search("evidence", limit=250)
    assert len(results) == 250 == len({e.id for e in results})
    assert apisim.stats()["requests"] - before == 3  # pages 0, 1, 2 of 100 hits
    assert results[0].id == "hackernews:40000000" and results[-1].id == "hackernews:40000249"


async def test_simulator_full_ingest_by_date_with_window(apisim):
    async with HackerNewsConnector(base_url=apisim.hn, **FAST) as connector:
        results = await connector.search("", limit=10_000, since=DAY[0], until=DAY[1], sort="date")
    assert len({e.id for e in results}) == len(results) == apisim.truth("hn", since=DAY[0], until=DAY[1])["count"]
