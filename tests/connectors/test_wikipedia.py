"""WikipediaConnector: Action API search + extracts and REST summaries, parsed from recorded real bodies."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.provenance import SourceType
from connectors.text import html_to_text
from connectors.wikipedia import WikipediaConnector

SEARCH = re.compile(r"^https://en\.wikipedia\.org/w/api\.php\?.*\blist=search\b")
EXTRACTS = re.compile(r"^https://en\.wikipedia\.org/w/api\.php\?.*\bprop=extracts\b")
SUMMARY = "https://en.wikipedia.org/api/rest_v1/page/summary/"

RealApi = Callable[[str], Any]


def make(**kwargs: Any) -> WikipediaConnector:
    """A connector with fast retry and rate-limit knobs."""
    return WikipediaConnector(rate_limit=(1000, 1.0), base_delay=0.01, max_delay=0.05, **kwargs)


@pytest.fixture
async def wiki() -> AsyncIterator[WikipediaConnector]:
    """A default (en.wikipedia.org) connector, closed after the test."""
    connector = make()
    yield connector
    await connector.close()


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def hit(title: str, timestamp: str | None = "2024-05-01T10:00:00Z", **extra: Any) -> dict[str, Any]:
    """A modern list=search hit with the srprop fields the connector asks for."""
    return {"ns": 0, "title": title, "pageid": abs(hash(title)) % 10_000_000, "size": 20_000, "wordcount": 3_000,
            "snippet": f'<span class="searchmatch">{title}</span> is a page', "timestamp": timestamp, **extra}


def search_body(hits: list[dict[str, Any]], offset: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"batchcomplete": True, "query": {"searchinfo": {"totalhits": 99}, "search": hits}}
    if offset is not None:
        body["continue"] = {"sroffset": offset, "continue": "-||"}
    return body


def pages_body(*pages: dict[str, Any]) -> dict[str, Any]:
    return {"batchcomplete": True, "query": {"pages": list(pages)}}


# --- search: recorded bodies ------------------------------------------------------------------

async def test_search_pages_through_legacy_query_continue_and_stops_at_the_exact_limit(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    obama = realapi("wikipedia/action_query_list_search_barack_obama.json")
    butterfly = realapi("wikipedia/action_query_list_search_suggestion_butteryfly.json")
    httpx_mock.add_response(url=SEARCH, json=obama)
    httpx_mock.add_response(url=EXTRACTS, json=pages_body(
        {"pageid": 534366, "ns": 0, "title": "Barack Obama",
         "extract": "Barack Hussein Obama II is an American politician."}
    ))
    httpx_mock.add_response(url=SEARCH, json=butterfly)
    httpx_mock.add_response(url=EXTRACTS, json=pages_body({"ns": 0, "title": "Butterfly's Tongue", "missing": True}))

    results = await wiki.search("Barack Obama", limit=11)

    assert len(results) == 11
    assert [e.title for e in results[:10]] == [h["title"] for h in obama["query"]["search"]]
    first, last = results[0], results[-1]
    assert first.id == "wikipedia:en:Barack_Obama"
    assert first.source_id == "en:Barack_Obama"
    assert first.source_type is SourceType.ENCYCLOPEDIA
    assert first.content == "Barack Hussein Obama II is an American politician."
    assert first.metadata["total_hits"] == 12987
    assert first.metadata["search_rank"] == 1
    assert results[4].id == "wikipedia:en:List_of_federal_judges_appointed_by_Barack_Obama"
    assert last.id == "wikipedia:en:Butterfly's_Tongue"
    assert last.content == "Butterfly's Tongue"  # no extract, snippet or description: the title stands in
    assert last.metadata["search_suggestion"] == "butterfly"
    assert last.metadata["search_rank"] == 11

    search1, extracts1, search2, extracts2 = httpx_mock.get_requests()
    assert params(search1)["srsearch"] == "Barack Obama"
    assert params(search1)["srlimit"] == "11"
    assert "sroffset" not in params(search1)
    assert params(extracts1)["titles"] == "|".join(h["title"] for h in obama["query"]["search"])
    assert params(extracts1)["exintro"] == "1" and params(extracts1)["explaintext"] == "1"
    assert params(search2)["sroffset"] == "10"  # from query-continue.search.sroffset
    assert params(search2)["srlimit"] == "1"  # only what is still missing
    assert params(extracts2)["titles"] == "Butterfly's Tongue"


async def test_search_follows_modern_continue_and_reads_pageterms_from_formatversion_2_pages(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    generator = realapi("wikipedia/action_query_generator_search.json")  # a formatversion=2 pages array
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Queens"), hit("Queens Boulevard")], offset=2))
    httpx_mock.add_response(url=EXTRACTS, json=generator)
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Briarwood, Queens")]))
    httpx_mock.add_response(url=EXTRACTS, json=generator)

    results = await wiki.search("queens", limit=10)

    assert [e.id for e in results] == [
        "wikipedia:en:Queens", "wikipedia:en:Queens_Boulevard", "wikipedia:en:Briarwood,_Queens"
    ]  # the source is exhausted before the limit
    queens = results[0]
    assert queens.metadata["description"] == "borough of New York City, New York, United States"
    assert queens.metadata["thumbnail"].endswith("285px-Queens_Montage_2012_1.png")
    assert queens.content == "Queens is a page"  # the searchmatch snippet as text
    assert queens.metadata["snippet"] == "Queens is a page"
    assert queens.created_at == "2024-05-01T10:00:00Z"
    assert results[1].metadata["description"] is None  # that page has no terms
    second_search = httpx_mock.get_requests()[2]
    assert params(second_search)["sroffset"] == "2"
    assert params(second_search)["continue"] == "-||"


async def test_search_body_with_pages_and_redirects_from_a_prefixsearch_answer(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    body = realapi("wikipedia/action_query_generator_prefixsearch.json")  # list=search + pages + redirects
    httpx_mock.add_response(url=SEARCH, json=body)
    httpx_mock.add_response(url=EXTRACTS, json=body)

    [result] = await wiki.search("aba", limit=1)

    assert result.id == "wikipedia:en:Abama_Open_de_Canarias"
    assert result.metadata["pageid"] == 13777854
    assert result.metadata["search_suggestion"] == "ababa"


async def test_extract_titles_follow_the_redirects_the_api_reports(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    prefix = realapi("wikipedia/action_query_generator_prefixsearch.json")  # redirects Abama -> Narthecium
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Abama"), hit("Abamax")]))
    httpx_mock.add_response(url=EXTRACTS, json=prefix)

    results = await wiki.search("abama", limit=2)

    assert [e.metadata["description"] for e in results] == ["genus of plants", "chemical compound"]


# --- search: behaviour ------------------------------------------------------------------------

async def test_extracts_are_requested_in_batches_of_twenty(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    titles = [f"Page {i}" for i in range(25)]
    httpx_mock.add_response(url=SEARCH, json=search_body([hit(t) for t in titles]))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body(*({"title": t, "extract": f"{t} text"} for t in titles[:20])))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body(*({"title": t, "extract": f"{t} text"} for t in titles[20:])))

    results = await wiki.search("page", limit=25)

    assert [e.content for e in results] == [f"{t} text" for t in titles]
    batches = [params(r)["titles"].split("|") for r in httpx_mock.get_requests(url=EXTRACTS)]
    assert [len(b) for b in batches] == [20, 5]


async def test_extract_continuation_is_followed_and_merged(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Alpha"), hit("Beta")]))
    first = {"continue": {"excontinue": 1, "continue": "||"},  # no batchcomplete: Beta's extract is still due
             "query": {"pages": [{"title": "Alpha", "extract": "Alpha text"}, {"title": "Beta"}]}}
    httpx_mock.add_response(url=EXTRACTS, json=first)
    second = pages_body({"title": "Alpha"}, {"title": "Beta", "extract": "Beta text"})
    httpx_mock.add_response(url=EXTRACTS, json=second)

    results = await wiki.search("alpha beta", limit=2)

    assert [e.content for e in results] == ["Alpha text", "Beta text"]
    assert params(httpx_mock.get_requests(url=EXTRACTS)[1])["excontinue"] == "1"


async def test_disambiguation_pages_are_flagged_and_scored_low(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Mercury"), hit("Mercury (planet)", size=100_000)]))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body(
        {"title": "Mercury", "extract": "Mercury may refer to:", "pageprops": {"disambiguation": ""}},
        {"title": "Mercury (planet)", "extract": "Mercury is the first planet.", "pageprops": {}},
    ))

    ambiguous, planet = await wiki.search("mercury", limit=2)

    assert ambiguous.metadata["disambiguation"] is True
    assert planet.metadata["disambiguation"] is False
    assert ambiguous.authority < planet.authority and ambiguous.confidence < planet.confidence
    assert planet.confidence == pytest.approx(0.9)  # a 100 kB article is fully developed


async def test_window_sorts_by_last_edit_and_stops_once_edits_are_older_than_since(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock
) -> None:
    hits = [hit("Too new", "2024-03-05T00:00:00Z"), hit("Inside", "2024-02-20T00:00:00Z"),
            hit("Undated", None), hit("Also inside", "2024-02-01T00:00:00Z"), hit("Too old", "2024-01-15T00:00:00Z")]
    httpx_mock.add_response(url=SEARCH, json=search_body(hits, offset=5))  # never asked for: stopped early
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())

    results = await wiki.search(
        "topic", limit=10, since=datetime(2024, 2, 1, tzinfo=UTC), until=datetime(2024, 3, 1, tzinfo=UTC)
    )

    assert [e.title for e in results] == ["Inside", "Also inside"]
    [search] = httpx_mock.get_requests(url=SEARCH)
    assert params(search)["srsort"] == "last_edit_desc"


async def test_window_keeps_paging_when_the_wiki_ignores_the_sort(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock
) -> None:
    unsorted = [hit("Old", "2020-01-01T00:00:00Z"), hit("Inside", "2024-02-10T00:00:00Z")]
    httpx_mock.add_response(url=SEARCH, json=search_body(unsorted, offset=2))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Later inside", "2024-02-05T00:00:00Z")]))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())

    results = await wiki.search("topic", limit=5, since=datetime(2024, 2, 1, tzinfo=UTC))

    assert [e.title for e in results] == ["Inside", "Later inside"]


async def test_null_and_missing_fields_are_tolerated(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    nulls = {"ns": 0, "title": "Nullish", "pageid": None, "size": None, "wordcount": None, "snippet": None,
             "timestamp": None}
    httpx_mock.add_response(url=SEARCH, json={"query": {"searchinfo": None, "search": [nulls, None, {"ns": 0}]},
                                              "continue": None})
    httpx_mock.add_response(url=EXTRACTS, json={"query": {"pages": [
        {"title": "Nullish", "extract": None, "pageprops": None, "terms": None, "thumbnail": None, "length": None}
    ], "redirects": None}})

    [result] = await wiki.search("nullish", limit=3)

    assert result.content == "Nullish"
    assert result.created_at is None
    assert result.freshness == 0.5  # unknown edit time
    assert result.metadata["disambiguation"] is False


async def test_a_repeated_continuation_raises_instead_of_looping(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("One")], offset=1))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())
    httpx_mock.add_response(url=SEARCH, json=search_body([hit("Two")], offset=1))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())

    with pytest.raises(ConnectorParseError, match="twice"):
        await wiki.search("loop", limit=5)


async def test_http_401_raises_auth_error(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARCH, status_code=401, json={"error": {"code": "unauthorized"}})

    with pytest.raises(ConnectorAuthError) as err:
        await wiki.search("anything")
    assert err.value.status_code == 401


async def test_api_error_object_in_a_200_answer_becomes_a_validation_error(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=SEARCH, json={"error": {"code": "badvalue", "info": "Unrecognized value for srsort"}})

    with pytest.raises(ConnectorValidationError, match="badvalue"):
        await wiki.search("anything")


@pytest.mark.parametrize(
    ("query", "options", "message"),
    [("", {}, "query is empty"), ("x", {"sort": "sideways"}, "sort must be"), ("x", {"lang": "de"}, "unknown")],
)
async def test_bad_search_input_is_refused_before_any_request(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, query: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConnectorValidationError, match=message):
        await wiki.search(query, **options)
    assert httpx_mock.get_requests() == []


async def test_wikipedia_needs_no_credentials() -> None:
    connector = make()
    assert connector.is_configured
    assert connector.missing_credentials() == []


# --- base URL, language, User-Agent ----------------------------------------------------------

async def test_language_selects_the_host_and_the_id_prefix(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=re.compile(r"^https://de\.wikipedia\.org/w/api\.php\?.*list=search"),
                            json=search_body([hit("Berlin")]))
    httpx_mock.add_response(url=re.compile(r"^https://de\.wikipedia\.org/w/api\.php\?.*prop=extracts"),
                            json=pages_body({"title": "Berlin", "extract": "Berlin ist die Hauptstadt."}))
    async with make(language="de", contact="ops@example.org") as connector:
        [result] = await connector.search("Berlin", limit=1)

    assert result.id == "wikipedia:de:Berlin"
    assert result.metadata["language"] == "de"
    agent = httpx_mock.get_requests()[0].headers["User-Agent"]
    assert agent.startswith("aragora-pipelines/") and "ops@example.org" in agent


async def test_env_base_url_serves_both_the_action_api_and_rest(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch, realapi: RealApi
) -> None:
    monkeypatch.setenv("ARAGORA_WIKIPEDIA_BASE_URL", "http://mirror.test/")
    httpx_mock.add_response(url=re.compile(r"^http://mirror\.test/w/api\.php\?.*list=search"),
                            json=realapi("wikipedia/action_query_list_search_suggestion_butteryfly.json"))
    httpx_mock.add_response(url=re.compile(r"^http://mirror\.test/w/api\.php\?.*prop=extracts"), json=pages_body())
    httpx_mock.add_response(url="http://mirror.test/api/rest_v1/page/summary/Moscow",
                            json=realapi("wikipedia/rest_page_summary_moscow.json"))
    async with make() as connector:
        assert connector.base_url == "http://mirror.test"
        [hit_result] = await connector.search("butteryfly", limit=1)
        result = await connector.fetch("Moscow")
    assert hit_result.url == "http://mirror.test/wiki/Butterfly's_Tongue"
    assert result is not None and result.id == "wikipedia:en:Moscow"


def test_a_bad_language_code_is_refused() -> None:
    with pytest.raises(ConnectorValidationError, match="language"):
        make(language="EN/../x")


# --- fetch: REST summaries ---------------------------------------------------------------------

async def test_fetch_parses_the_moscow_summary_and_caches_it(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    body = realapi("wikipedia/rest_page_summary_moscow.json")
    httpx_mock.add_response(url=f"{SUMMARY}Moscow", json=body)

    result = await wiki.fetch("wikipedia:en:Moscow")
    again = await wiki.fetch("en:Moscow")

    assert result is not None and again is result
    assert len(httpx_mock.get_requests()) == 1
    assert result.id == "wikipedia:en:Moscow"
    assert result.title == "Moscow"
    assert result.content == body["extract"]
    assert result.created_at == "2021-03-30T08:43:22Z"
    assert result.url == "https://en.wikipedia.org/wiki/Moscow"
    assert result.metadata["wikibase_item"] == "Q649"
    assert result.metadata["coordinates"] == {"lat": 55.75583333, "lon": 37.61722222}
    assert result.metadata["revision"] == "1015030565"
    assert result.metadata["description"] == "Capital and largest city of Russia"
    assert result.metadata["disambiguation"] is False
    assert 0.0 < result.freshness < 0.5  # years since the last edit, decayed smoothly
    assert result.authority == 0.85


async def test_fetch_turns_extract_html_into_text(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    body = realapi("wikipedia/rest_page_summary_fermats_last_theorem.json")
    html_only = {**body, "extract": None}
    httpx_mock.add_response(url=f"{SUMMARY}Fermat%27s_Last_Theorem", json=html_only)

    result = await wiki.fetch("Fermat's Last Theorem")

    assert result is not None
    assert result.id == "wikipedia:en:Fermat's_Last_Theorem"
    assert result.title == "Fermat's Last Theorem"
    assert "<" not in result.content and "texhtml" not in result.content
    assert result.content.startswith("In number theory, Fermat's Last Theorem states that no three positive integers")
    assert result.content == html_to_text(body["extract_html"])


async def test_fetch_flags_a_disambiguation_summary(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    body = copy.deepcopy(realapi("wikipedia/rest_page_summary_moscow.json"))
    body["type"] = "disambiguation"
    httpx_mock.add_response(url=f"{SUMMARY}Moscow", json=body)

    result = await wiki.fetch("Moscow")

    assert result is not None and result.metadata["disambiguation"] is True
    assert result.authority == 0.4


async def test_fetch_follows_a_title_redirect_on_the_same_site(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock, realapi: RealApi
) -> None:
    httpx_mock.add_response(url=f"{SUMMARY}Moskva", status_code=302, headers={"Location": "Moscow"})
    httpx_mock.add_response(url=f"{SUMMARY}Moscow", json=realapi("wikipedia/rest_page_summary_moscow.json"))

    result = await wiki.fetch("Moskva")

    assert result is not None and result.id == "wikipedia:en:Moscow"


async def test_fetch_refuses_a_redirect_to_another_host(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{SUMMARY}Elsewhere", status_code=302, headers={"Location": "https://evil.test/x"})

    with pytest.raises(ConnectorParseError, match="another host"):
        await wiki.fetch("Elsewhere")


async def test_fetch_returns_none_on_404(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{SUMMARY}No_such_page_xyz", status_code=404,
                            json={"type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found",
                                  "title": "Not found.", "detail": "Page or revision not found."})

    assert await wiki.fetch("No such page xyz") is None


async def test_fetch_tolerates_a_summary_of_nulls(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{SUMMARY}Blank", json={
        "type": None, "title": None, "titles": None, "extract": None, "extract_html": None, "timestamp": None,
        "content_urls": None, "coordinates": None, "thumbnail": None, "revision": None, "description": None,
    })

    result = await wiki.fetch("Blank")

    assert result is not None
    assert result.id == "wikipedia:en:Blank" and result.title == "Blank"
    assert result.url == "https://en.wikipedia.org/wiki/Blank"
    assert result.freshness == 0.5


async def test_fetch_refuses_an_id_of_another_language(wiki: WikipediaConnector, httpx_mock: HTTPXMock) -> None:
    with pytest.raises(ConnectorValidationError, match="language='de'"):
        await wiki.fetch("wikipedia:de:Berlin")
    with pytest.raises(ConnectorValidationError, match="ids look like"):
        await wiki.fetch("wikipedia:")
    assert httpx_mock.get_requests() == []


async def test_freshness_decays_smoothly_with_the_last_edit(
    wiki: WikipediaConnector, httpx_mock: HTTPXMock
) -> None:
    now = datetime.now(UTC)
    edits = [now.replace(year=now.year - years).strftime("%Y-%m-%dT%H:%M:%SZ") for years in (0, 1, 3)]
    httpx_mock.add_response(url=SEARCH, json=search_body([hit(f"P{i}", ts) for i, ts in enumerate(edits)]))
    httpx_mock.add_response(url=EXTRACTS, json=pages_body())

    scores = [e.freshness for e in await wiki.search("p", limit=3)]

    assert scores[0] > 0.99 and 1.0 > scores[0] > scores[1] > scores[2] > 0.0
