"""NewsAPIConnector against bodies written from NewsAPI's documented /v2/everything shape (no recording exists)."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorQuotaError,
    ConnectorRateLimitError,
    ConnectorValidationError,
)
from connectors.newsapi import NewsAPIConnector, NewsAPIResultsCapError
from connectors.provenance import SourceType

KEY = "newsapi-test-key-0123456789"
EVERYTHING = re.compile(r"https://newsapi\.org/v2/everything\?.*")
NOW = datetime.now(UTC).replace(microsecond=0)


def article(n: int, *, url: str | None = None, published: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """One article in the documented shape."""
    body = {
        "source": {"id": "reuters", "name": "Reuters"},
        "author": f"Reporter {n}",
        "title": f"Battery recycling story {n}",
        "description": f"<p>Plants <b>recover</b> lithium &amp; cobalt, part {n}.</p>",
        "url": url or f"https://www.reuters.com/business/story-{n}/",
        "urlToImage": f"https://www.reuters.com/img/{n}.jpg",
        "publishedAt": (published or NOW - timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "content": f"Battery recycling plants opened this week in story {n}… [+2817 chars]",
    }
    body.update(fields)
    return body


def page(articles: list[dict[str, Any]], total: int | None = None) -> dict[str, Any]:
    return {"status": "ok", "totalResults": len(articles) if total is None else total, "articles": articles}


def error_body(code: str, message: str = "details") -> dict[str, Any]:
    return {"status": "error", "code": code, "message": message}


def make(**kwargs: Any) -> NewsAPIConnector:
    options: dict[str, Any] = {"api_key": KEY, "rate_limit": (1000, 1.0), "base_delay": 0.01, "max_delay": 0.05}
    options.update(kwargs)
    return NewsAPIConnector(**options)


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


async def test_unconfigured_connector_names_the_env_var_before_any_request(httpx_mock):
    connector = NewsAPIConnector()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="NEWSAPI_KEY"):
        await connector.search("batteries")
    assert httpx_mock.get_requests() == []


async def test_key_is_read_from_the_environment_and_sent_only_in_the_header(httpx_mock, monkeypatch):
    monkeypatch.setenv("NEWSAPI_KEY", KEY)
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1)]))
    connector = NewsAPIConnector(rate_limit=(1000, 1.0))
    assert connector.is_configured and connector.is_available
    await connector.search("batteries")
    request = httpx_mock.get_requests()[0]
    assert request.headers["X-Api-Key"] == KEY
    assert KEY not in str(request.url)
    assert "aragora-pipelines" in request.headers["User-Agent"]


async def test_article_fields_become_evidence(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1)]))
    [evidence] = await make().search("battery recycling")
    url = "https://www.reuters.com/business/story-1/"
    assert evidence.id == "newsapi:" + hashlib.sha256(url.encode()).hexdigest()[:16]
    assert evidence.source_type is SourceType.NEWS
    assert evidence.url == url and evidence.author == "Reporter 1"
    assert evidence.title == "Battery recycling story 1"
    assert evidence.content.startswith("Plants recover lithium & cobalt, part 1.")
    assert "[+2817 chars]" not in evidence.content
    assert evidence.metadata["content_truncated_chars"] == 2817
    assert evidence.metadata["source_name"] == "Reuters"
    assert evidence.created_at == (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_null_and_missing_fields_do_not_crash(httpx_mock):
    sparse = {"source": None, "author": None, "title": "Only a title", "description": None,
              "url": "https://example.org/a", "urlToImage": None, "publishedAt": None, "content": None}
    httpx_mock.add_response(url=EVERYTHING, json=page([sparse, {"title": "no url at all"}]))
    [evidence] = await make().search("anything")
    assert evidence.content == "Only a title" and evidence.author is None and evidence.created_at is None
    assert evidence.freshness == 0.5 and evidence.authority == 0.45


async def test_removed_articles_are_skipped(httpx_mock):
    removed = article(2, url="https://removed.com", title="[Removed]", description="[Removed]")
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1), removed]))
    results = await make().search("battery")
    assert [e.title for e in results] == ["Battery recycling story 1"]


async def test_limit_is_honoured_across_pages(httpx_mock):
    first = [article(n) for n in range(100)]
    second = [article(n) for n in range(100, 200)]
    httpx_mock.add_response(url=EVERYTHING, json=page(first, total=500))
    httpx_mock.add_response(url=EVERYTHING, json=page(second, total=500))
    results = await make().search("battery", limit=150)
    assert len(results) == 150 and len({e.id for e in results}) == 150
    sent = [params(r) for r in httpx_mock.get_requests()]
    assert [(p["page"], p["pageSize"]) for p in sent] == [("1", "100"), ("2", "100")]


async def test_paging_stops_when_the_source_is_exhausted(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(n) for n in range(7)], total=7))
    results = await make().search("battery", limit=50)
    assert len(results) == 7 and len(httpx_mock.get_requests()) == 1


async def test_window_is_sent_and_enforced(httpx_mock):
    since, until = NOW - timedelta(days=2), NOW - timedelta(days=1)
    inside = article(1, published=since + timedelta(hours=3))
    too_new = article(2, published=until)
    too_old = article(3, published=since - timedelta(seconds=1))
    httpx_mock.add_response(url=EVERYTHING, json=page([inside, too_new, too_old]))
    results = await make().search("battery", since=since, until=until)
    assert [e.url for e in results] == [inside["url"]]
    sent = params(httpx_mock.get_requests()[0])
    assert sent["from"] == since.strftime("%Y-%m-%dT%H:%M:%S") and sent["to"] == until.strftime("%Y-%m-%dT%H:%M:%S")


async def test_sort_and_language_options_are_passed_and_validated(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1)]))
    await make().search("battery", sort_by="relevancy", language="de", domains=["reuters.com", "ft.com"])
    sent = params(httpx_mock.get_requests()[0])
    assert (sent["sortBy"], sent["language"], sent["domains"]) == ("relevancy", "de", "ft.com,reuters.com")
    with pytest.raises(ConnectorValidationError, match="sort_by"):
        await make().search("battery", sort_by="newest")
    with pytest.raises(ConnectorValidationError, match="unknown search option"):
        await make().search("battery", sortBy="relevancy")
    with pytest.raises(ConnectorValidationError, match="non-empty query"):
        await make().search("  ")


async def test_results_cap_after_a_page_returns_what_was_gathered(httpx_mock, caplog):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(n) for n in range(100)], total=900))
    httpx_mock.add_response(url=EVERYTHING, status_code=426, json=error_body("maximumResultsReached"))
    with caplog.at_level(logging.WARNING, logger="connectors.newsapi"):
        results = await make().search("battery", limit=250)
    assert len(results) == 100
    assert "result cap" in caplog.text


async def test_results_cap_with_nothing_gathered_raises_a_quota_error(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, status_code=426, json=error_body("maximumResultsReached"))
    with pytest.raises(ConnectorQuotaError) as info:
        await make().search("battery")
    assert isinstance(info.value, NewsAPIResultsCapError) and info.value.status_code == 426


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (401, "apiKeyInvalid", ConnectorAuthError),
        (401, "apiKeyMissing", ConnectorAuthError),
        (401, "apiKeyDisabled", ConnectorAuthError),
        (429, "apiKeyExhausted", ConnectorQuotaError),
        (429, "rateLimited", ConnectorRateLimitError),
        (400, "parameterInvalid", ConnectorValidationError),
        (400, "parametersMissing", ConnectorValidationError),
        (400, "sourceDoesNotExist", ConnectorValidationError),
    ],
)
async def test_error_codes_map_from_the_body(httpx_mock, status, code, error):
    httpx_mock.add_response(url=EVERYTHING, status_code=status, json=error_body(code, f"bad key {KEY}"))
    with pytest.raises(error) as info:
        await make(max_retries=0).search("battery")
    assert code in str(info.value) and KEY not in str(info.value) and KEY not in repr(info.value)


async def test_rate_limited_answer_is_retried(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, status_code=429, json=error_body("rateLimited"),
                            headers={"Retry-After": "0"})
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1)]))
    results = await make(max_retries=1).search("battery")
    assert len(results) == 1 and len(httpx_mock.get_requests()) == 2


async def test_fetch_answers_from_articles_seen_by_search(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1)]))
    connector = make()
    [found] = await connector.search("battery")
    assert await connector.fetch(found.id) == found
    assert await connector.fetch(found.source_id) == found
    assert await connector.fetch(found.url) == found
    assert await connector.fetch("newsapi:0000000000000000") is None
    assert len(httpx_mock.get_requests()) == 1


async def test_ids_are_stable_across_searches(httpx_mock):
    httpx_mock.add_response(url=EVERYTHING, json=page([article(1), article(2)]), is_reusable=True)
    first = [e.id for e in await make().search("battery")]
    second = [e.id for e in await make().search("battery")]
    assert first == second


async def test_scores_follow_domain_age_and_completeness(httpx_mock):
    wire = article(1, published=NOW - timedelta(days=1))
    blog = article(2, url="https://someone.substack.com/p/batteries", published=NOW - timedelta(days=20),
                   source={"id": None, "name": "Substack"}, author=None, description=None, content=None)
    unknown = article(3, url="https://news.example.net/x", source={"id": None, "name": "Example"})
    httpx_mock.add_response(url=EVERYTHING, json=page([wire, blog, unknown]))
    by_url = {e.url: e for e in await make().search("battery recycling")}
    wire_e, blog_e, unknown_e = by_url[wire["url"]], by_url[blog["url"]], by_url[unknown["url"]]
    assert wire_e.authority == 0.9 and blog_e.authority == 0.3 and unknown_e.authority == 0.45
    assert 0.0 < blog_e.freshness < wire_e.freshness < 1.0
    assert blog_e.confidence < wire_e.confidence <= 1.0


async def test_base_url_comes_from_the_environment(httpx_mock, monkeypatch):
    monkeypatch.setenv("ARAGORA_NEWSAPI_BASE_URL", "http://newsapi.mirror.test")
    httpx_mock.add_response(url=re.compile(r"http://newsapi\.mirror\.test/v2/everything\?.*"), json=page([]))
    assert await make().search("battery") == []
