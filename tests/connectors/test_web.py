"""WebConnector: the SSRF guard, redirects, size and type limits, extraction, caching, Brave and SearxNG search.

No recorded Brave or SearxNG body exists under shared/realapi; the search bodies below are written from
the shapes the two APIs document (Brave: ``web.results[]`` with title/url/description/page_age and
``query.more_results_available``; SearxNG ``format=json``: ``results[]`` with url/title/content/engines/
score/publishedDate). DNS is the boundary for host names: ``socket.getaddrinfo`` is replaced by a table.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock, IteratorStream

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorNetworkError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.web import (
    WebConnector,
    blocked_reason,
    brave_freshness,
    domain_authority,
    literal_address,
    normalize_url,
)

PUBLIC_IP = "93.184.216.34"
FAST = {"rate_limit": (1000.0, 1.0), "base_delay": 0.01, "max_delay": 0.05, "max_retries": 1}
BRAVE = re.compile(r"https://api\.search\.brave\.com/res/v1/web/search\?.*")
SEARX = re.compile(r"http://searx\.local:8888/search\?.*")
ARTICLE = """<html><head><title>Rate limiting explained | Example</title>
<meta name="author" content="Ada Lovelace"><meta property="article:published_time" content="{date}">
</head><body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<article><h1>Rate limiting explained</h1>
<p>Token buckets refill at a steady rate and allow short bursts. This paragraph explains the token bucket
algorithm in enough words to count as the main content of the page for the extractor.</p>
<p>Leaky buckets smooth traffic. Another paragraph with more detail so that the article body is long.</p>
</article><footer>Copyright Example Corp. Cookie settings.</footer><script>var tracking = 1;</script>
</body></html>"""


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host name -> addresses served by socket.getaddrinfo; unknown names fail like NXDOMAIN."""
    table: dict[str, list[str]] = {"example.org": [PUBLIC_IP], "www.nasa.gov": ["23.22.39.120"]}

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def web(dns: dict[str, list[str]]) -> WebConnector:
    return WebConnector(**FAST)


def html_page(httpx_mock: HTTPXMock, url: str, body: str, **kwargs: Any) -> None:
    httpx_mock.add_response(url=url, text=body, headers={"Content-Type": "text/html; charset=utf-8"}, **kwargs)


# --- SSRF guard --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://[::1]:8080/", "loopback"),
        ("http://10.0.0.1/", "private"),
        ("http://192.168.1.10/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        ("http://2130706433/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://0x7f.1/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[2002:7f00:1::1]/", "loopback"),
        ("http://100.64.1.1/", "carrier-grade NAT"),
        ("http://169.254.1.1/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
    ],
)
async def test_literal_addresses_outside_the_public_internet_are_refused_without_dns(
    web: WebConnector, dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, url: str, reason: str
) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a literal address must not be resolved")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(ConnectorValidationError, match="is not allowed") as info:
        await web.fetch(url)
    assert reason in str(info.value)


async def test_a_host_name_resolving_to_loopback_is_refused(web: WebConnector, dns: dict[str, list[str]]) -> None:
    dns["sneaky.example"] = ["127.0.0.1"]
    with pytest.raises(ConnectorValidationError, match=r"127\.0\.0\.1 \(loopback\); that address is not allowed"):
        await web.fetch("http://sneaky.example/")


async def test_every_resolved_address_is_checked(web: WebConnector, dns: dict[str, list[str]]) -> None:
    dns["mixed.example"] = [PUBLIC_IP, "10.1.2.3"]
    with pytest.raises(ConnectorValidationError, match="private"):
        await web.fetch("https://mixed.example/page")
    dns["six.example"] = ["2606:4700::1111", "fe80::1"]
    with pytest.raises(ConnectorValidationError, match="link-local"):
        await web.fetch("https://six.example/page")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("ftp://example.org/x", "only http and https"),
        ("gopher://example.org/", "only http and https"),
        ("http://user:secret@example.org/", "credentials"),
        ("http:///nohost", "no host"),
    ],
)
async def test_other_schemes_credentials_and_hostless_urls_are_refused(
    web: WebConnector, url: str, message: str
) -> None:
    with pytest.raises(ConnectorValidationError, match=message):
        await web.fetch(url)


async def test_a_redirect_to_loopback_is_refused_before_it_is_followed(
    web: WebConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url="http://example.org/start", status_code=302, headers={"Location": "http://127.0.0.1/admin"})
    with pytest.raises(ConnectorValidationError, match=r"'http://127\.0\.0\.1/admin'.*loopback"):
        await web.fetch("http://example.org/start")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["http://example.org/start"]


async def test_a_redirect_to_a_host_resolving_to_metadata_is_refused(
    web: WebConnector, httpx_mock: HTTPXMock, dns: dict[str, list[str]]
) -> None:
    dns["metadata.example"] = ["169.254.169.254"]
    httpx_mock.add_response(url="https://example.org/a", status_code=301, headers={"Location": "http://metadata.example/"})
    with pytest.raises(ConnectorValidationError, match="cloud metadata"):
        await web.fetch("https://example.org/a")


@pytest.mark.parametrize("allow_private_networks", [False, True])
@pytest.mark.parametrize("location", ["http://0177.0.0.1:8080/admin", "//0177.0.0.1/admin"])
async def test_a_redirect_to_an_octal_host_is_refused_once_not_retried_as_a_network_error(
    dns: dict[str, list[str]], httpx_mock: HTTPXMock, location: str, allow_private_networks: bool
) -> None:
    # httpx cannot parse the octal form (its RemoteProtocolError would look like a retryable network error)
    httpx_mock.add_response(url="http://example.org/start", status_code=302, headers={"Location": location})
    connector = WebConnector(allow_private_networks=allow_private_networks, **FAST)
    reason = "invalid URL" if allow_private_networks else r"127\.0\.0\.1 \(loopback\)"
    with pytest.raises(ConnectorValidationError, match=rf"will not fetch 'http://0177\.0\.0\.1.*{reason}"):
        await connector.fetch("http://example.org/start")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["http://example.org/start"]


async def test_redirects_are_followed_by_hand_and_counted(web: WebConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="http://example.org/old", status_code=301, headers={"Location": "/new"})
    httpx_mock.add_response(url="http://example.org/new", status_code=307, headers={"Location": "https://www.nasa.gov/x"})
    html_page(httpx_mock, "https://www.nasa.gov/x", ARTICLE.format(date="2024-01-02"))
    evidence = await web.fetch("http://example.org/old")
    assert evidence is not None
    assert evidence.id == "web:http://example.org/old"
    assert evidence.url == "https://www.nasa.gov/x"
    assert evidence.metadata["redirects"] == 2
    assert evidence.authority == 0.85  # authority follows the page that answered


async def test_more_than_five_redirects_is_an_error(web: WebConnector, httpx_mock: HTTPXMock) -> None:
    for hop in range(6):
        httpx_mock.add_response(url=f"http://example.org/{hop}", status_code=302, headers={"Location": f"/{hop + 1}"})
    with pytest.raises(ConnectorAPIError, match="more than 5 redirects"):
        await web.fetch("http://example.org/0")


async def test_private_networks_are_allowed_only_when_asked(httpx_mock: HTTPXMock) -> None:
    html_page(httpx_mock, "http://127.0.0.1:8000/local", "<html><body><p>Local test page.</p></body></html>")
    connector = WebConnector(allow_private_networks=True, **FAST)
    evidence = await connector.fetch("http://127.0.0.1:8000/local")
    assert evidence is not None and "Local test page." in evidence.content
    with pytest.raises(ConnectorValidationError, match="cloud metadata"):
        await connector.fetch("http://169.254.169.254/latest/meta-data/")


async def test_an_unresolvable_host_is_a_network_error(web: WebConnector) -> None:
    with pytest.raises(ConnectorNetworkError, match="cannot resolve"):
        await web.fetch("https://no-such-host.example/")


def test_guard_helpers() -> None:
    assert literal_address("2130706433") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("0177.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert literal_address("example.org") is None and literal_address("cafe") is None
    assert blocked_reason(ipaddress.ip_address(PUBLIC_IP)) is None
    assert blocked_reason(ipaddress.ip_address("64:ff9b::7f00:1")) == "loopback"  # NAT64 of 127.0.0.1
    assert blocked_reason(ipaddress.ip_address("10.0.0.1"), allow_private_networks=True) is None
    assert blocked_reason(ipaddress.ip_address("169.254.169.254"), allow_private_networks=True) is not None


# --- limits and extraction ---------------------------------------------------------------------


async def test_html_main_text_is_extracted_with_title_author_and_date(web: WebConnector, httpx_mock: HTTPXMock) -> None:
    published = (datetime.now(UTC) - timedelta(days=90)).strftime("%Y-%m-%d")
    html_page(httpx_mock, "https://example.org/article", ARTICLE.format(date=published))
    evidence = await web.fetch("web:https://example.org/article")
    assert evidence is not None
    assert evidence.source_type is SourceType.WEB_SEARCH
    assert evidence.title == "Rate limiting explained"
    assert evidence.author == "Ada Lovelace"
    assert "Token buckets refill" in evidence.content
    assert "Cookie settings" not in evidence.content and "tracking" not in evidence.content
    assert "Home" not in evidence.content
    assert evidence.created_at == f"{published}T00:00:00Z"
    assert evidence.freshness == pytest.approx(0.5, abs=0.02)  # 90 days at a 90-day half-life
    assert evidence.metadata["extractor"] == "trafilatura"
    assert evidence.metadata["content_type"] == "text/html"
    assert evidence.authority == 0.5
    json.dumps(evidence.to_dict())


async def test_html_falls_back_to_html_to_text_when_trafilatura_finds_no_main_text(
    web: WebConnector, httpx_mock: HTTPXMock
) -> None:
    footer_only = "<html><body><footer>Footer words only here</footer></body></html>"
    html_page(httpx_mock, "https://example.org/footer", footer_only)
    evidence = await web.fetch("https://example.org/footer")
    assert evidence is not None
    assert evidence.content == "Footer words only here"
    assert evidence.metadata["extractor"] == "html_to_text"
    assert evidence.title == "example.org"
    assert evidence.freshness == 0.5  # no date anywhere


async def test_plain_text_and_json_are_kept_verbatim_with_last_modified(
    web: WebConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(
        url="https://example.org/notes.txt",
        text="plain words here",
        headers={"Content-Type": "text/plain", "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"},
    )
    httpx_mock.add_response(url="https://example.org/data", json={"answer": 42})
    text = await web.fetch("https://example.org/notes.txt")
    data = await web.fetch("https://example.org/data")
    assert text is not None and text.content == "plain words here" and text.created_at == "2024-05-01T10:00:00Z"
    assert data is not None and json.loads(data.content) == {"answer": 42}
    assert data.metadata["extractor"] == "verbatim"


@pytest.mark.parametrize("content_type", ["application/pdf", "image/png", "application/octet-stream", None])
async def test_other_content_types_are_refused(
    web: WebConnector, httpx_mock: HTTPXMock, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    httpx_mock.add_response(url="https://example.org/file", content=b"\x00\x01binary", headers=headers)
    with pytest.raises(ConnectorValidationError, match="content type"):
        await web.fetch("https://example.org/file")


async def test_a_declared_length_over_max_bytes_is_refused(dns: dict[str, list[str]], httpx_mock: HTTPXMock) -> None:
    html_page(httpx_mock, "https://example.org/big", "<p>" + "x" * 5000 + "</p>")
    with pytest.raises(ConnectorParseError, match="Content-Length 5007 is over max_bytes=4096"):
        await WebConnector(max_bytes=4096, **FAST).fetch("https://example.org/big")


async def test_a_streamed_body_is_cut_off_past_max_bytes(dns: dict[str, list[str]], httpx_mock: HTTPXMock) -> None:
    served: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index in range(1000):
            served.append(index)
            yield b"y" * 1024

    httpx_mock.add_response(
        url="https://example.org/endless", stream=IteratorStream(chunks()), headers={"Content-Type": "text/plain"}
    )
    with pytest.raises(ConnectorParseError, match="larger than max_bytes=4096"):
        await WebConnector(max_bytes=4096, **FAST).fetch("https://example.org/endless")
    assert len(served) <= 6  # reading stopped, the other ~994 KiB were never pulled


async def test_not_found_is_none_and_server_errors_are_retried(web: WebConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url="https://example.org/gone", status_code=404)
    assert await web.fetch("https://example.org/gone") is None
    httpx_mock.add_response(url="https://example.org/flaky", status_code=503)
    html_page(httpx_mock, "https://example.org/flaky", "<p>Back again.</p>")
    evidence = await web.fetch("https://example.org/flaky")
    assert evidence is not None and evidence.content == "Back again."


async def test_pages_are_cached_and_the_cache_expires(dns: dict[str, list[str]], httpx_mock: HTTPXMock) -> None:
    html_page(httpx_mock, "https://example.org/cached", "<p>Cached page.</p>", is_reusable=True)
    connector = WebConnector(cache_ttl_seconds=0.2, **FAST)
    first = await connector.fetch("https://example.org/cached")
    assert await connector.fetch("web:https://EXAMPLE.org:443/cached#part") is first
    assert len(httpx_mock.get_requests()) == 1
    await asyncio.sleep(0.25)
    again = await connector.fetch("https://example.org/cached")
    assert again is not None and again is not first
    assert len(httpx_mock.get_requests()) == 2
    assert connector.get_cache_stats()["expired"] == 1


async def test_the_brave_token_never_goes_to_fetched_pages(dns: dict[str, list[str]], httpx_mock: HTTPXMock) -> None:
    html_page(httpx_mock, "https://example.org/p", "<p>Page.</p>")
    connector = WebConnector(api_key="brave-secret-token-123", **FAST)
    await connector.fetch("https://example.org/p")
    request = httpx_mock.get_requests()[0]
    assert "x-subscription-token" not in request.headers
    assert "aragora-pipelines" in request.headers["user-agent"]


# --- search ------------------------------------------------------------------------------------


def brave_result(n: int, *, page_age: str | None = "2024-05-10T08:12:00", host: str = "example.org") -> dict[str, Any]:
    result: dict[str, Any] = {
        "title": f"Result {n} about <strong>rate limiting</strong>",
        "url": f"https://{host}/r{n}",
        "is_source_local": False,
        "is_source_both": False,
        "description": f"Snippet {n}: <strong>rate limiting</strong> &amp; token buckets.",
        "profile": {"name": host, "url": f"https://{host}/r{n}", "long_name": host},
        "language": "en",
        "family_friendly": True,
        "type": "search_result",
        "subtype": "generic",
        "meta_url": {"scheme": "https", "netloc": host, "hostname": host, "path": f"> r{n}"},
    }
    if page_age:
        result["page_age"] = page_age
        result["age"] = "May 10, 2024"
    return result


def brave_body(results: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    return {
        "type": "search",
        "query": {"original": "rate limiting", "more_results_available": more, "spellcheck_off": True},
        "mixed": {"type": "mixed", "main": [{"type": "web", "index": 0, "all": False}], "top": [], "side": []},
        "web": {"type": "search", "results": results, "family_friendly": True},
    }


def searx_result(n: int, *, published: str | None = None, engines: int = 2, url: str | None = None) -> dict[str, Any]:
    return {
        "url": url or f"https://docs.example.edu/s{n}",
        "title": f"Searx {n}",
        "content": f"Searx snippet {n} <b>bold</b>",
        "engine": "duckduckgo",
        "parsed_url": ["https", "docs.example.edu", f"/s{n}", "", "", ""],
        "template": "default.html",
        "engines": ["duckduckgo", "brave", "wikipedia", "google"][:engines],
        "positions": [n + 1] * engines,
        "score": 2.0 / (n + 1),
        "category": "general",
        "publishedDate": published,
    }


def searx_body(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "query": "rate limiting",
        "number_of_results": 0,
        "results": results,
        "answers": [],
        "corrections": [],
        "infoboxes": [],
        "suggestions": ["rate limiting algorithm"],
        "unresponsive_engines": [],
    }


async def test_brave_search_maps_title_url_snippet_and_date(httpx_mock: HTTPXMock) -> None:
    body = brave_body([brave_result(1, host="en.wikipedia.org"), brave_result(2, page_age=None)], more=False)
    httpx_mock.add_response(url=BRAVE, json=body)
    connector = WebConnector(api_key="brave-secret-token-123", **FAST)
    results = await connector.search("rate limiting", limit=5)
    request = httpx_mock.get_requests()[0]
    assert request.headers["x-subscription-token"] == "brave-secret-token-123"
    assert dict(request.url.params) == {"q": "rate limiting", "count": "5", "offset": "0"}
    first, second = results
    assert first.id == "web:https://en.wikipedia.org/r1"
    assert first.title == "Result 1 about rate limiting"
    assert first.content == "Snippet 1: rate limiting & token buckets."
    assert first.created_at == "2024-05-10T08:12:00Z"
    assert first.authority == 0.75
    assert first.metadata["backend"] == "brave" and first.metadata["snippet_only"] is True
    assert first.confidence > second.confidence  # rank lowers confidence
    assert second.created_at is None and second.freshness == 0.5
    assert "brave-secret-token-123" not in json.dumps([e.to_dict() for e in results])


async def test_brave_pages_with_offset_until_the_limit_is_reached(httpx_mock: HTTPXMock) -> None:
    page0 = brave_body([brave_result(n) for n in range(20)], more=True)
    page1 = brave_body([brave_result(n) for n in range(20, 40)], more=True)
    httpx_mock.add_response(url=BRAVE, json=page0, match_headers={"X-Subscription-Token": "brave-key-abcdef"})
    httpx_mock.add_response(url=BRAVE, json=page1)
    connector = WebConnector(api_key="brave-key-abcdef", **FAST)
    results = await connector.search("rate limiting", limit=25)
    assert len(results) == 25
    assert len({e.id for e in results}) == 25
    offsets = [r.url.params["offset"] for r in httpx_mock.get_requests()]
    assert offsets == ["0", "1"]
    assert all(r.url.params["count"] == "20" for r in httpx_mock.get_requests())


async def test_brave_stops_when_it_has_no_more_results(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=BRAVE, json=brave_body([brave_result(n) for n in range(3)], more=False))
    assert len(await WebConnector(api_key="brave-key-abcdef", **FAST).search("q", limit=50)) == 3
    httpx_mock.add_response(url=BRAVE, json={"type": "search", "query": {"original": "q"}})  # no "web": no hits
    assert await WebConnector(api_key="brave-key-abcdef", **FAST).search("q") == []


async def test_brave_window_sends_freshness_and_drops_dated_results_outside(httpx_mock: HTTPXMock) -> None:
    results = [
        brave_result(1, page_age="2024-01-10T00:00:00"),
        brave_result(2, page_age="2024-02-01T00:00:00"),  # on until: outside [since, until)
        brave_result(3, page_age=None),
    ]
    httpx_mock.add_response(url=BRAVE, json=brave_body(results, more=False))
    connector = WebConnector(api_key="brave-key-abcdef", **FAST)
    found = await connector.search(
        "q", since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 2, 1, tzinfo=UTC)
    )
    assert httpx_mock.get_requests()[0].url.params["freshness"] == "2024-01-01to2024-01-31"
    assert [e.source_id for e in found] == ["https://example.org/r1", "https://example.org/r3"]


def test_brave_freshness_covers_the_half_open_window() -> None:
    assert brave_freshness(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, 12, tzinfo=UTC)) == (
        "2024-03-01to2024-03-02"
    )
    assert brave_freshness(None, datetime(2024, 3, 2, tzinfo=UTC)) == "1970-01-01to2024-03-01"


async def test_searxng_search_pages_until_empty_and_maps_results(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARX, json=searx_body([searx_result(0, engines=4), searx_result(1, engines=1)]))
    httpx_mock.add_response(url=SEARX, json=searx_body([searx_result(2, published="2024-03-01T00:00:00")]))
    httpx_mock.add_response(url=SEARX, json=searx_body([]))
    connector = WebConnector(search_url="http://searx.local:8888/", **FAST)
    results = await connector.search("rate limiting", limit=10)
    assert [r.url.params["pageno"] for r in httpx_mock.get_requests()] == ["1", "2", "3"]
    assert all(r.url.params["format"] == "json" for r in httpx_mock.get_requests())
    assert [e.source_id for e in results] == [f"https://docs.example.edu/s{n}" for n in range(3)]
    top = results[0]
    assert top.content == "Searx snippet 0 bold" and top.title == "Searx 0"
    assert top.authority == 0.8  # .edu
    assert top.metadata == {**top.metadata, "backend": "searxng", "engines": 4, "rank": 0}
    assert top.confidence > results[1].confidence
    assert results[2].created_at == "2024-03-01T00:00:00Z"


async def test_searxng_limit_is_exact_and_repeated_pages_end_the_search(httpx_mock: HTTPXMock) -> None:
    page = searx_body([searx_result(n) for n in range(4)])
    httpx_mock.add_response(url=SEARX, json=page, is_reusable=True)
    connector = WebConnector(search_url="http://searx.local:8888", **FAST)
    assert len(await connector.search("q", limit=3)) == 3
    assert len(await connector.search("q", limit=10)) == 4  # page 2 repeats page 1: nothing new, stop
    assert len(httpx_mock.get_requests()) == 3


async def test_searxng_window_uses_time_range_and_drops_undated_results(httpx_mock: HTTPXMock) -> None:
    now = datetime.now(UTC)
    inside = (now - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S")
    outside = (now - timedelta(days=40)).strftime("%Y-%m-%dT%H:%M:%S")
    body = searx_body([searx_result(0, published=inside), searx_result(1, published=outside), searx_result(2)])
    httpx_mock.add_response(url=SEARX, json=body)
    httpx_mock.add_response(url=SEARX, json=searx_body([]))
    connector = WebConnector(search_url="http://searx.local:8888", **FAST)
    results = await connector.search("q", since=now - timedelta(days=10))
    assert httpx_mock.get_requests()[0].url.params["time_range"] == "month"
    assert [e.source_id for e in results] == ["https://docs.example.edu/s0"]


async def test_search_results_with_null_fields_do_not_crash(httpx_mock: HTTPXMock) -> None:
    body = searx_body([
        {"url": None, "title": "no url"},
        {"url": "javascript:alert(1)", "title": "not http"},
        {"url": "https://example.org/bare", "title": None, "content": None, "engines": None, "publishedDate": None},
    ])
    httpx_mock.add_response(url=SEARX, json=body)
    httpx_mock.add_response(url=SEARX, json=searx_body([]))
    results = await WebConnector(search_url="http://searx.local:8888", **FAST).search("q")
    assert len(results) == 1
    assert results[0].title == "https://example.org/bare" and results[0].content == ""


async def test_brave_is_preferred_when_both_backends_are_configured(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRAVE_API_KEY", "brave-env-key-123")
    monkeypatch.setenv("ARAGORA_WEB_SEARCH_URL", "http://searx.local:8888")
    httpx_mock.add_response(url=BRAVE, json=brave_body([brave_result(1)], more=False))
    results = await WebConnector(**FAST).search("q")
    assert results[0].metadata["backend"] == "brave"
    assert httpx_mock.get_requests()[0].headers["x-subscription-token"] == "brave-env-key-123"


async def test_search_without_a_backend_names_both_env_vars() -> None:
    connector = WebConnector(**FAST)
    # Not configured for search (what ingestion and the schedules ask); fetch(url) needs nothing.
    assert not connector.is_configured
    assert connector.missing_credentials() == ["BRAVE_API_KEY or ARAGORA_WEB_SEARCH_URL"]
    with pytest.raises(ConnectorAuthError, match=r"BRAVE_API_KEY.*ARAGORA_WEB_SEARCH_URL"):
        await connector.search("q")


async def test_a_brave_auth_failure_does_not_leak_the_key(httpx_mock: HTTPXMock) -> None:
    error = {"type": "ErrorResponse", "error": {"code": "UNAUTHORIZED", "status": 401}}
    httpx_mock.add_response(url=BRAVE, status_code=401, json=error)
    with pytest.raises(ConnectorAuthError) as info:
        await WebConnector(api_key="brave-secret-token-123", **FAST).search("q")
    assert "brave-secret-token-123" not in str(info.value) + repr(info.value)


async def test_search_validates_its_input() -> None:
    connector = WebConnector(search_url="http://searx.local:8888", **FAST)
    with pytest.raises(ConnectorValidationError, match="non-empty query"):
        await connector.search("   ")
    with pytest.raises(ConnectorValidationError, match="limit"):
        await connector.search("q", limit=0)


# --- ids and scores ----------------------------------------------------------------------------


def test_urls_are_normalized_for_stable_ids() -> None:
    assert normalize_url("HTTPS://Example.ORG:443/a/b?x=1#frag") == "https://example.org/a/b?x=1"
    assert normalize_url("http://example.org") == "http://example.org/"
    assert normalize_url("http://example.org:8080/") == "http://example.org:8080/"
    assert normalize_url("http://[::1]:80/") == "http://[::1]/"
    assert normalize_url("http://Bücher.de/") == "http://xn--bcher-kva.de/"


@pytest.mark.parametrize(
    ("host", "authority"),
    [
        ("www.nasa.gov", 0.85),
        ("www.gov.uk", 0.85),
        ("army.mil", 0.85),
        ("mit.edu", 0.8),
        ("www.ox.ac.uk", 0.8),
        ("en.wikipedia.org", 0.75),
        ("www.who.int", 0.85),
        ("github.com", 0.6),
        ("notwikipedia.org", 0.5),
        ("example.com", 0.5),
    ],
)
def test_domain_authority_table(host: str, authority: float) -> None:
    assert domain_authority(host) == authority


def test_bad_knobs_are_rejected() -> None:
    with pytest.raises(ConnectorValidationError, match="max_bytes"):
        WebConnector(max_bytes=0)
    with pytest.raises(ConnectorValidationError, match="max_redirects"):
        WebConnector(max_redirects=-1)


def test_httpx_cannot_parse_octal_hosts_so_the_guard_must_run_first() -> None:
    with pytest.raises(httpx.InvalidURL):
        httpx.URL("http://0177.0.0.1/")


# --- hardening (issue 12): addresses Python 3.11 calls global, DNS rebinding ------------------------------
@pytest.mark.parametrize(("address", "reason"), [
    ("192.0.0.192", "cloud metadata"),  # Oracle Cloud's metadata service; is_global on Python 3.11
    ("100.100.100.200", "cloud metadata"),  # Alibaba Cloud's
    ("192.0.0.8", "not globally routable"),  # IETF protocol assignments, 192.0.0.0/24
    ("fec0::1", "not globally routable"),  # deprecated IPv6 site-local, fec0::/10
    ("fef0::abcd", "not globally routable"),
    ("3fff::1", "not globally routable"),  # IPv6 documentation, RFC 9637
])
async def test_addresses_python_calls_global_but_are_not_are_refused_directly_by_name_and_by_redirect(
    dns: dict[str, list[str]], httpx_mock: HTTPXMock, address: str, reason: str
) -> None:
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(ConnectorValidationError, match=reason):
        await WebConnector(**FAST).fetch(f"http://{literal}/latest/meta-data/")
    dns["inside.example"] = [address]
    with pytest.raises(ConnectorValidationError, match=reason):
        await WebConnector(**FAST).fetch("http://inside.example/")
    httpx_mock.add_response(url="https://example.org/go", status_code=302,
                            headers={"Location": f"http://{literal}/latest/meta-data/"})
    with pytest.raises(ConnectorValidationError, match=reason):
        await WebConnector(**FAST).fetch("https://example.org/go")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["https://example.org/go"]


@pytest.fixture
def loopback_page() -> Iterator[tuple[int, list[str]]]:
    """A real HTTP server on 127.0.0.1 serving one page; yields (port, Host headers of the requests it got)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hosts.append(self.headers.get("Host", ""))
            body = b"<html><head><title>Internal admin</title></head><body><p>internal secret</p></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()


def rebinding_dns(monkeypatch: pytest.MonkeyPatch, answers: list[str]) -> list[str]:
    """socket.getaddrinfo answering ``answers`` one per call (the last one from then on); returns the hosts asked."""
    asked: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        asked.append(host)
        ip = answers[min(len(asked), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


async def test_dns_rebinding_between_the_check_and_the_connection_cannot_reach_loopback(
    monkeypatch: pytest.MonkeyPatch, loopback_page: tuple[int, list[str]]
) -> None:
    # Before: the guard resolved rebind.example to a public address, httpx resolved it again, got 127.0.0.1
    # and fetched the internal page. Now the connection is made to the address checked when connecting.
    port, served = loopback_page
    asked = rebinding_dns(monkeypatch, [PUBLIC_IP, "127.0.0.1"])
    with pytest.raises(ConnectorValidationError, match=r"127\.0\.0\.1 \(loopback\)"):
        await WebConnector(**FAST).fetch(f"http://rebind.example:{port}/admin")
    assert served == []
    assert asked == ["rebind.example", "rebind.example"]  # the guard's check, then the connection's own


async def test_a_connection_goes_to_the_checked_address_and_keeps_the_host_name(
    monkeypatch: pytest.MonkeyPatch, loopback_page: tuple[int, list[str]]
) -> None:
    port, served = loopback_page
    rebinding_dns(monkeypatch, ["127.0.0.1"])
    evidence = await WebConnector(allow_private_networks=True, **FAST).fetch(f"http://intranet.example:{port}/")
    assert evidence is not None and "internal secret" in evidence.content
    assert served == [f"intranet.example:{port}"]
