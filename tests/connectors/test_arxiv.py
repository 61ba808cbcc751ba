"""ArXivConnector: the Atom query API through the HTTP boundary, with recorded arXiv feeds."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connectors.arxiv import ATOM, OPENSEARCH, ArXivConnector, build_search_query
from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.provenance import SourceType

QUERY = re.compile(r"https://export\.arxiv\.org/api/query\?.*")
FAST = {"base_delay": 0.01, "max_delay": 0.05, "rate_limit": (1000, 1.0)}
DAY = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


@pytest.fixture
def arxiv() -> ArXivConnector:
    return ArXivConnector(**FAST)


def feed_pages(recorded: bytes, total: int, ignore_start: bool = False):
    """A fake arXiv serving ``total`` papers built from a recorded entry, paged by start/max_results."""
    ET.register_namespace("", ATOM[1:-1])
    template = ET.fromstring(recorded)
    entry = template.find(f"{ATOM}entry")
    for old in template.findall(f"{ATOM}entry"):
        template.remove(old)

    def serve(request: httpx.Request) -> httpx.Response:
        start = 0 if ignore_start else int(request.url.params["start"])
        size = int(request.url.params["max_results"])
        feed = copy.deepcopy(template)
        feed.find(f"{OPENSEARCH}totalResults").text = str(total)
        feed.find(f"{OPENSEARCH}startIndex").text = str(start)
        for n in range(start, min(total, start + size)):
            item = copy.deepcopy(entry)
            item.find(f"{ATOM}id").text = f"http://arxiv.org/abs/2601.{n:05d}v2"
            feed.append(item)
        return httpx.Response(200, content=ET.tostring(feed), headers={"Content-Type": "application/atom+xml"})

    return serve


# --- parsing the recorded feeds ----------------------------------------------------------

async def test_search_parses_recorded_feed(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_search_testing_max10.xml"))
    results = await arxiv.search("testing", limit=10)

    assert len(results) == 10
    first = results[0]
    assert first.id == "arxiv:2202.12139"
    assert first.source_id == "2202.12139"
    assert first.source_type is SourceType.ACADEMIC_PAPER
    assert first.title == "Testing Deep Learning Models: A First Comparative Study of Multiple Testing Techniques"
    assert first.content.startswith("Deep Learning (DL) has revolutionized the capabilities of vision-based systems")
    assert first.author == "Mohit Kumar Ahuja, Arnaud Gotlieb, Helge Spieker"
    assert first.url == "https://arxiv.org/abs/2202.12139v1"
    assert first.created_at == "2022-02-24T15:05:19Z"
    assert first.metadata == {
        "arxiv_id": "2202.12139",
        "version": 1,
        "authors": ["Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker"],
        "categories": ["cs.SE", "cs.LG"],
        "primary_category": "cs.SE",
        "pdf_url": "https://arxiv.org/pdf/2202.12139v1",
        "doi": "10.1109/ICSTW55395.2022.00035",
        "journal_ref": "Artificial Intelligence in Software Testing @ 2022 IEEE International Conference on "
                       "Software Testing, Verification and Validation Workshops (ICSTW)",
        "comment": "Artificial Intelligence in Software Testing 2022 workshop @ ICST 2022",
        "published": "2022-02-24T15:05:19Z",
        "updated": "2022-02-24T15:05:19Z",
        "peer_reviewed": True,
    }
    assert first.authority == pytest.approx(0.85)  # journal_ref and DOI
    assert first.confidence == pytest.approx(0.7)
    assert results[1].id == "arxiv:2405.13786"


async def test_request_matches_arxivs_query_syntax(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_search_testing_max10.xml"))
    await arxiv.search("testing", limit=10, sort_by="relevance", sort_order="descending")
    [request] = httpx_mock.get_requests()
    assert request.url.path == "/api/query"
    assert dict(request.url.params) == {
        "search_query": "all:testing", "sortBy": "relevance", "sortOrder": "descending",
        "start": "0", "max_results": "10",
    }
    assert "aragora-pipelines" in request.headers["User-Agent"]


async def test_camel_case_sort_options_are_accepted(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_unknown_empty.xml"))
    await arxiv.search("x", sortBy="submittedDate", sortOrder="ascending")
    params = httpx_mock.get_requests()[0].url.params
    assert (params["sortBy"], params["sortOrder"]) == ("submittedDate", "ascending")


def test_query_building():
    assert build_search_query("testing", None, None) == "all:testing"
    assert build_search_query("rate  limiting", None, None) == "all:rate AND all:limiting"
    assert build_search_query("ti:transformer AND cat:cs.LG", None, None) == "ti:transformer AND cat:cs.LG"
    assert build_search_query('"exact phrase"', None, None) == '"exact phrase"'
    assert build_search_query("au:hinton", *DAY) == "(au:hinton) AND submittedDate:[202601010000 TO 202601012359]"
    assert build_search_query("", *DAY) == "submittedDate:[202601010000 TO 202601012359]"
    assert build_search_query("x", DAY[0], None).startswith("(all:x) AND submittedDate:[202601010000 TO ")
    assert build_search_query("x", None, DAY[1]) == "(all:x) AND submittedDate:[199101010000 TO 202601012359]"


async def test_window_is_anded_into_search_query(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_unknown_empty.xml"))
    await arxiv.search("testing", since=DAY[0], until=DAY[1])
    assert httpx_mock.get_requests()[0].url.params["search_query"] == (
        "(all:testing) AND submittedDate:[202601010000 TO 202601012359]"
    )


async def test_empty_feed_returns_no_results(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_unknown_empty.xml"))
    assert await arxiv.search("nothing matches this", limit=50) == []
    assert len(httpx_mock.get_requests()) == 1


@pytest.mark.parametrize(
    ("query", "kwargs", "message"),
    [
        ("", {}, "query is empty"),
        ("x", {"limit": 0}, "limit"),
        ("x", {"sort_by": "citations"}, "sort_by must be one of"),
        ("x", {"sort_order": "up"}, "sort_order must be one of"),
        ("x", {"tags": "story"}, "unknown search option"),
        ("x", {"since": DAY[1], "until": DAY[0]}, "before"),
    ],
)
async def test_bad_search_input_is_rejected(arxiv, query, kwargs, message):
    with pytest.raises(ConnectorValidationError, match=message):
        await arxiv.search(query, **kwargs)


# --- pagination --------------------------------------------------------------------------

async def test_pagination_honours_limit_exactly(httpx_mock, realapi):
    recorded = realapi("arxiv/query_search_testing_max10.xml")
    httpx_mock.add_callback(feed_pages(recorded, total=214881), url=QUERY, is_reusable=True)
    results = await ArXivConnector(page_size=100, **FAST).search("testing", limit=250)

    assert len(results) == 250 == len({e.id for e in results})
    assert results[0].id == "arxiv:2601.00000" and results[-1].id == "arxiv:2601.00249"
    assert results[0].metadata["version"] == 2
    pages = [(r.url.params["start"], r.url.params["max_results"]) for r in httpx_mock.get_requests()]
    assert pages == [("0", "100"), ("100", "100"), ("200", "50")]


async def test_pagination_stops_at_total_results(httpx_mock, realapi):
    recorded = realapi("arxiv/query_search_testing_max10.xml")
    httpx_mock.add_callback(feed_pages(recorded, total=120), url=QUERY, is_reusable=True)
    results = await ArXivConnector(page_size=50, **FAST).search("testing", limit=1000)
    assert len(results) == 120
    assert len(httpx_mock.get_requests()) == 3


async def test_server_repeating_a_start_index_raises_parse_error(httpx_mock, realapi):
    recorded = realapi("arxiv/query_search_testing_max10.xml")
    httpx_mock.add_callback(feed_pages(recorded, total=500, ignore_start=True), url=QUERY, is_reusable=True)
    with pytest.raises(ConnectorParseError, match="twice"):
        await ArXivConnector(page_size=10, **FAST).search("testing", limit=30)


# --- malformed and partial answers -----------------------------------------------------------

async def test_null_and_missing_fields_never_crash(httpx_mock, arxiv):
    feed = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/abs/hep-th/9901001</id>'
            b"<author><name/></author></entry><entry><title>no id</title></entry></feed>")
    httpx_mock.add_response(url=QUERY, content=feed)
    [paper] = await arxiv.search("x")
    assert paper.id == "arxiv:hep-th/9901001"
    assert paper.title == paper.content == "" and paper.author is None and paper.created_at is None
    assert paper.url == "https://arxiv.org/abs/hep-th/9901001"
    assert paper.metadata["version"] is None and paper.metadata["authors"] == []
    assert paper.freshness == 0.5 and paper.authority == pytest.approx(0.6) and paper.confidence == 0.6


async def test_freshness_decays_with_the_latest_version_date(httpx_mock, arxiv):
    now = datetime.now(UTC)
    entries = b"".join(
        b"<entry><id>http://arxiv.org/abs/2101.0000%dv1</id><published>2001-01-01T00:00:00Z</published>"
        b"<updated>%s</updated></entry>" % (n, (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ").encode())
        for n, days in enumerate((0, 182, 365, 1460))
    )
    httpx_mock.add_response(url=QUERY, content=b'<feed xmlns="http://www.w3.org/2005/Atom">%s</feed>' % entries)
    fresh = [e.freshness for e in await ArXivConnector(**FAST).search("x", limit=4)]
    assert fresh[0] == pytest.approx(1.0, abs=1e-3)
    assert fresh[2] == pytest.approx(0.5, abs=1e-3)  # half-life 365 days, from <updated> not <published>
    assert fresh[0] > fresh[1] > fresh[2] > fresh[3] > 0


async def test_withdrawn_paper_has_low_confidence(httpx_mock, arxiv):
    feed = (b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom"><entry>'
            b"<id>http://arxiv.org/abs/2101.00001v3</id><arxiv:comment>This paper has been withdrawn by the author"
            b"</arxiv:comment></entry></feed>")
    httpx_mock.add_response(url=QUERY, content=feed)
    [paper] = await arxiv.search("x")
    assert paper.confidence == 0.2 and paper.metadata["version"] == 3


async def test_invalid_xml_is_a_parse_error(httpx_mock, arxiv):
    httpx_mock.add_response(url=QUERY, content=b"<feed><entry>truncated")
    with pytest.raises(ConnectorParseError, match="Atom"):
        await arxiv.search("x")


async def test_entity_expansion_is_refused(httpx_mock, arxiv):
    bomb = b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "aaaa">]><feed>&a;</feed>'
    httpx_mock.add_response(url=QUERY, content=bomb)
    with pytest.raises(ConnectorParseError):
        await arxiv.search("x")


async def test_api_error_entry_is_a_validation_error(httpx_mock, arxiv):
    feed = (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv.org/api/errors#incorrect_id_format'
            b"</id><title>Error</title><summary>incorrect id format for 1234</summary></entry></feed>")
    httpx_mock.add_response(url=QUERY, content=feed)
    with pytest.raises(ConnectorValidationError, match="incorrect id format for 1234"):
        await arxiv.search("id:1234")


async def test_http_400_is_a_validation_error_without_retry(httpx_mock, arxiv):
    httpx_mock.add_response(url=QUERY, status_code=400, content=b"<feed/>")
    with pytest.raises(ConnectorValidationError):
        await arxiv.search("x")
    assert len(httpx_mock.get_requests()) == 1


async def test_503_is_retried(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, status_code=503, content=b"busy")
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_search_testing_max10.xml"))
    assert len(await arxiv.search("testing", limit=3)) == 3


# --- fetch -------------------------------------------------------------------------------

async def test_fetch_by_id_list(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_list_two.xml"))
    paper = await arxiv.fetch("arxiv:1707.08567")

    assert httpx_mock.get_requests()[0].url.params["id_list"] == "1707.08567"
    assert paper.id == "arxiv:1707.08567"
    assert paper.title == "Proceedings of Workshop AEW10: Concepts in Information Theory and Communications"
    assert len(paper.metadata["authors"]) == 34
    assert paper.author == "Kees A. Schouhamer Immink, Stan Baggen, Ferdaous Chaabane et al."
    assert paper.metadata["comment"] == "44 pages, editors for the proceedings: Yanling Chen and A. J. Han Vinck"
    assert paper.metadata["doi"] is None and paper.metadata["journal_ref"] is None
    assert paper.metadata["primary_category"] == "cs.IT"
    assert paper.authority == pytest.approx(0.6) and paper.confidence == pytest.approx(0.6)
    assert await arxiv.fetch("1707.08567") is paper  # bare id, from the cache
    assert len(httpx_mock.get_requests()) == 1


async def test_fetch_with_version_keeps_one_id_and_records_the_version(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_list_two.xml"))
    paper = await arxiv.fetch("1707.08567v1")
    assert httpx_mock.get_requests()[0].url.params["id_list"] == "1707.08567v1"
    assert paper.id == "arxiv:1707.08567" and paper.metadata["version"] == 1


async def test_fetch_unknown_id_returns_none(httpx_mock, realapi, arxiv):
    httpx_mock.add_response(url=QUERY, content=realapi("arxiv/query_id_unknown_empty.xml"))
    assert await arxiv.fetch("0000.00000") is None


async def test_fetch_404_returns_none(httpx_mock, arxiv):
    httpx_mock.add_response(url=QUERY, status_code=404, content=b"not found")
    assert await arxiv.fetch("2601.00001") is None


@pytest.mark.parametrize("bad", ["", "12345", "arxiv:abc", "2601.1", "github:2601.00001"])
async def test_fetch_rejects_malformed_ids(arxiv, bad):
    with pytest.raises(ConnectorValidationError, match="arXiv ids look like"):
        await arxiv.fetch(bad)


# --- configuration -------------------------------------------------------------------------

def test_defaults_rate_limit_and_env_base_url(monkeypatch):
    assert ArXivConnector.RATE_LIMIT == (1, 3.0)
    assert ArXivConnector().rate_limit == (1, 3.0)
    assert ArXivConnector().base_url == "https://export.arxiv.org"
    monkeypatch.setenv("ARAGORA_ARXIV_BASE_URL", "http://127.0.0.1:9/arxiv")
    assert ArXivConnector().base_url == "http://127.0.0.1:9/arxiv"


@pytest.mark.parametrize("bad", [0, 2001, 10.5])
def test_page_size_out_of_range_is_rejected(bad):
    with pytest.raises(ConnectorValidationError, match="page_size"):
        ArXivConnector(page_size=bad)


# --- the loopback simulator ------------------------------------------------------------------

async def test_simulator_paginates_to_the_exact_limit(apisim):
    async with ArXivConnector(base_url=apisim.arxiv, page_size=100, **FAST) as connector:
        results = await connector.search("cat:cs.DC", limit=250, since=DAY[0], until=DAY[1])
    assert len(results) == 250 == len({e.id for e in results})
    assert results[0].id == "arxiv:2601.00000" and results[-1].id == "arxiv:2601.00249"
    assert results[0].metadata["primary_category"] == "cs.DC" and results[0].metadata["version"] == 1
