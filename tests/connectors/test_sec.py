"""SECConnector against the recorded Tesla submissions and company_tickers bodies, and EFTS bodies written from
EDGAR full-text search's documented (Elasticsearch) shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.exceptions import ConnectorAuthError, ConnectorNotFoundError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.sec import SECConnector, form_info

UA = "Aragora Research research@aragora.example"
TSLA_CIK = 1318605
TICKERS_URL = "https://www.sec.gov/files/company_tickers.json"
TSLA_URL = "https://data.sec.gov/submissions/CIK0001318605.json"
OLDER_URL = "https://data.sec.gov/submissions/CIK0001318605-submissions-001.json"
EFTS = re.compile(r"https://efts\.sec\.gov/LATEST/search-index\?.*")


def make(**kwargs: Any) -> SECConnector:
    options: dict[str, Any] = {"user_agent": UA, "rate_limit": (1000, 1.0), "base_delay": 0.01, "max_delay": 0.05}
    options.update(kwargs)
    return SECConnector(**options)


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def recent_rows(submissions: dict[str, Any]) -> list[dict[str, Any]]:
    """The recorded columnar arrays as rows (the test's own oracle)."""
    recent = submissions["filings"]["recent"]
    return [{k: recent[k][i] for k in recent} for i in range(len(recent["accessionNumber"]))]


def older_page() -> dict[str, Any]:
    """An older submissions page in the documented columnar shape (CIK##########-submissions-001.json)."""
    rows = [
        ("0001193125-13-480999", "2013-12-10", "8-K", "d640000d8k.htm", "FORM 8-K", "8.01,9.01"),
        ("0001193125-13-470000", "2013-11-05", "10-Q", "d600000d10q.htm", "FORM 10-Q", ""),
        ("0001193125-13-300000", "2013-07-01", "4", "xslF345X03/doc4.xml", "FORM 4 SUBMISSION", ""),
    ]
    keys = ("accessionNumber", "filingDate", "form", "primaryDocument", "primaryDocDescription", "items")
    page: dict[str, Any] = {key: [row[i] for row in rows] for i, key in enumerate(keys)}
    page.update(reportDate=["", "2013-09-30", ""], isXBRL=[0, 1, 0], isInlineXBRL=[0, 0, 0])
    return page


def efts_hit(n: int, *, form: str = "10-K", file_date: str = "2023-01-31", doc: str | None = None,
             score: float = 10.0, **source: Any) -> dict[str, Any]:
    adsh = f"0000950170-23-{n:06d}"
    body = {
        "ciks": ["0001318605"],
        "period_ending": "2022-12-31",
        "file_num": ["001-34756"],
        "display_names": ["Tesla, Inc.  (TSLA)  (CIK 0001318605)"],
        "xsl": None,
        "sequence": 1,
        "root_forms": [form],
        "file_date": file_date,
        "biz_states": ["TX"],
        "sics": ["3711"],
        "form": form,
        "adsh": adsh,
        "film_num": ["23571530"],
        "biz_locations": ["Austin, TX"],
        "file_type": form,
        "file_description": "Annual report",
        "inc_states": ["DE"],
        "items": [],
    }
    body.update(source)
    return {"_index": "edgar_file", "_id": f"{adsh}:{doc or f'tsla-{n}.htm'}", "_score": score, "_source": body}


def efts_page(hits: list[dict[str, Any]], total: int) -> dict[str, Any]:
    return {
        "took": 12,
        "timed_out": False,
        "_shards": {"total": 50, "successful": 50, "skipped": 0, "failed": 0},
        "hits": {"total": {"value": total, "relation": "eq"}, "max_score": 10.0, "hits": hits},
        "aggregations": {"form_filter": {"buckets": []}},
    }


@pytest.fixture
def tesla(realapi) -> dict[str, Any]:
    return realapi("sec_edgar/submissions_CIK0001318605_tesla.json")


@pytest.fixture
def tickers(realapi) -> dict[str, Any]:
    return realapi("sec_edgar/company_tickers_first300.json")


async def test_missing_user_agent_is_refused_before_any_request(httpx_mock):
    connector = SECConnector()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="SEC_USER_AGENT"):
        await connector.search("going concern")
    assert httpx_mock.get_requests() == []


async def test_user_agent_without_an_email_is_refused(httpx_mock, monkeypatch):
    monkeypatch.setenv("SEC_USER_AGENT", "Aragora Research")
    connector = SECConnector()
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match=re.escape("Company Name admin@example.com")):
        await connector.fetch(f"sec:{TSLA_CIK}:0001564590-22-037979")
    assert httpx_mock.get_requests() == []


async def test_company_filings_by_ticker_parse_the_recorded_bodies(httpx_mock, tesla, tickers):
    httpx_mock.add_response(url=TICKERS_URL, json=tickers)
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    results = await make().search("", ticker="tsla", limit=3)
    newest = recent_rows(tesla)[:3]
    assert [e.metadata["accession"] for e in results] == [r["accessionNumber"] for r in newest]
    first, row = results[0], newest[0]
    assert first.id == f"sec:{TSLA_CIK}:{row['accessionNumber']}"
    assert first.source_type is SourceType.REGULATORY_FILING
    assert first.url == (f"https://www.sec.gov/Archives/edgar/data/{TSLA_CIK}/"
                         f"{row['accessionNumber'].replace('-', '')}/{row['primaryDocument']}")
    assert first.title == f"Tesla, Inc. (TSLA) {row['form']} ({row['filingDate']})"
    assert first.created_at == f"{row['filingDate']}T00:00:00Z"
    assert "None" not in first.content and "PALO ALTO, CA" in first.content
    for request in httpx_mock.get_requests():
        assert request.headers["User-Agent"] == UA


async def test_company_filings_respect_the_window_newest_first(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    since, until = day("2022-08-01"), day("2022-10-01")
    results = await make().search("", cik="0001318605", since=since, until=until, limit=1000)
    expected = [r["accessionNumber"] for r in recent_rows(tesla) if "2022-08-01" <= r["filingDate"] < "2022-10-01"]
    assert expected and [e.metadata["accession"] for e in results] == expected
    dates = [e.metadata["filed"] for e in results]
    assert dates == sorted(dates, reverse=True)


async def test_forms_filter_and_query_terms(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    httpx_mock.add_response(url=OLDER_URL, json=older_page())
    connector = make()
    annual = await connector.search("*", cik=TSLA_CIK, forms="10-K", limit=100)
    assert len(annual) == sum(r["form"] == "10-K" for r in recent_rows(tesla))
    assert {e.metadata["form"] for e in annual} == {"10-K"}
    results = await connector.search("results of operations", cik=TSLA_CIK, forms=["8-K"], limit=100)
    assert results and all("2.02" in e.metadata["items"] for e in results)


async def test_limit_is_exact_and_paging_reaches_older_submission_files(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla, is_reusable=True)
    httpx_mock.add_response(url=OLDER_URL, json=older_page())
    results = await make().search("", cik=TSLA_CIK, since=day("2013-06-01"), until=day("2014-01-01"), limit=1000)
    recent = [r for r in recent_rows(tesla) if r["filingDate"] < "2014-01-01"]
    assert len(results) == len(recent) + 3
    assert [e.metadata["accession"] for e in results[-3:]] == [
        "0001193125-13-480999", "0001193125-13-470000", "0001193125-13-300000"]
    assert "8.01 other events" in results[-3].content
    exact = await make().search("", cik=TSLA_CIK, limit=7)
    assert len(exact) == 7
    assert [str(r.url) for r in httpx_mock.get_requests()] == [TSLA_URL, OLDER_URL, TSLA_URL]


async def test_older_pages_outside_the_window_are_not_requested(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    results = await make().search("", cik=TSLA_CIK, since=day("2014-01-01"), limit=5000)
    assert len(results) == sum(r["filingDate"] >= "2014-01-01" for r in recent_rows(tesla))
    assert [str(r.url) for r in httpx_mock.get_requests()] == [TSLA_URL]


async def test_ticker_list_and_submissions_are_cached(httpx_mock, tesla, tickers):
    httpx_mock.add_response(url=TICKERS_URL, json=tickers)
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    connector = make()
    await connector.search("", ticker="TSLA")
    await connector.search("", ticker="TSLA", forms="8-K")
    assert len(httpx_mock.get_requests()) == 2


async def test_unknown_ticker_is_a_validation_error(httpx_mock, tickers):
    httpx_mock.add_response(url=TICKERS_URL, json=tickers)
    with pytest.raises(ConnectorValidationError, match="ZZZZ"):
        await make().search("", ticker="ZZZZ")


async def test_unknown_company_is_not_found(httpx_mock):
    httpx_mock.add_response(url="https://data.sec.gov/submissions/CIK0000000042.json", status_code=404)
    with pytest.raises(ConnectorNotFoundError):
        await make().search("", cik=42)


async def test_full_text_search_sends_the_window_and_pages_by_offset(httpx_mock):
    first = [efts_hit(n) for n in range(100)]
    second = [efts_hit(n) for n in range(100, 150)]
    httpx_mock.add_response(url=EFTS, json=efts_page(first, total=150))
    httpx_mock.add_response(url=EFTS, json=efts_page(second, total=150))
    results = await make().search('"going concern"', limit=120, forms=["10-K", "8-K"],
                                  since=day("2023-01-01"), until=day("2023-02-01"))
    assert len(results) == 120
    sent = [dict(r.url.params) for r in httpx_mock.get_requests()]
    assert [p["from"] for p in sent] == ["0", "100"]
    assert sent[0]["q"] == '"going concern"' and sent[0]["forms"] == "10-K,8-K"
    assert (sent[0]["dateRange"], sent[0]["startdt"], sent[0]["enddt"]) == ("custom", "2023-01-01", "2023-01-31")


async def test_full_text_hits_become_filing_evidence(httpx_mock):
    exhibit = efts_hit(1, doc="ex21.htm", score=5.0, sequence=3, file_type="EX-21")
    outside = efts_hit(2, file_date="2023-03-01")
    sparse = {"_id": "0000950170-23-000003:x.htm", "_source": {"ciks": ["1318605"], "display_names": None,
                                                               "form": None, "file_date": None, "items": None}}
    garbage = {"_id": None, "_source": None}
    hits = [efts_hit(1), exhibit, outside, sparse, garbage]
    httpx_mock.add_response(url=EFTS, json=efts_page(hits, total=5), is_reusable=True)
    results = await make().search("battery", since=day("2023-01-01"), until=day("2023-02-01"))
    assert [e.id for e in results] == ["sec:1318605:0000950170-23-000001"]  # exhibit collapsed, others outside
    evidence = results[0]
    assert evidence.url == "https://www.sec.gov/Archives/edgar/data/1318605/000095017023000001/tsla-1.htm"
    assert evidence.author == "Tesla, Inc. (TSLA)"
    assert "for the period ending 2022-12-31" in evidence.content and "Austin, TX" in evidence.content
    assert evidence.confidence == 1.0 and evidence.authority == 0.95
    unwindowed_sparse = await make().search("battery")
    assert "sec:1318605:0000950170-23-000003" in [e.id for e in unwindowed_sparse]
    assert "dateRange" not in httpx_mock.get_requests()[-1].url.params


async def test_full_text_search_needs_a_query(httpx_mock):
    with pytest.raises(ConnectorValidationError, match="needs a query"):
        await make().search("  ")


async def test_one_base_url_maps_all_three_hosts(httpx_mock, tesla, tickers):
    root = "http://edgar.mirror.test"
    httpx_mock.add_response(url=f"{root}/www/files/company_tickers.json", json=tickers)
    httpx_mock.add_response(url=f"{root}/data/submissions/CIK0001318605.json", json=tesla)
    httpx_mock.add_response(url=re.compile(rf"{re.escape(root)}/efts/LATEST/search-index\?.*"),
                            json=efts_page([efts_hit(1)], total=1))
    connector = make(base_url=root)
    [filing] = await connector.search("", ticker="TSLA", limit=1)
    assert filing.url.startswith(f"{root}/www/Archives/edgar/data/1318605/")
    assert len(await connector.search("battery")) == 1


async def test_base_url_env_override(httpx_mock, monkeypatch, tesla):
    monkeypatch.setenv("ARAGORA_SEC_BASE_URL", "http://sim.test")
    httpx_mock.add_response(url="http://sim.test/data/submissions/CIK0001318605.json", json=tesla)
    assert len(await make().search("", cik=TSLA_CIK, limit=2)) == 2


async def test_fetch_by_id_reads_the_submissions(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    row = next(r for r in recent_rows(tesla) if r["form"] == "10-K")
    connector = make()
    evidence = await connector.fetch(f"sec:{TSLA_CIK}:{row['accessionNumber']}")
    assert evidence is not None and evidence.metadata["form"] == "10-K" and evidence.authority == 0.95
    bare = await connector.fetch(f"{TSLA_CIK}:{row['accessionNumber'].replace('-', '')}")
    assert bare == evidence


async def test_fetch_unknown_filing_or_company_returns_none(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    httpx_mock.add_response(url=OLDER_URL, json=older_page())
    httpx_mock.add_response(url="https://data.sec.gov/submissions/CIK0000000042.json", status_code=404)
    connector = make()
    assert await connector.fetch(f"sec:{TSLA_CIK}:0009999999-99-999999") is None
    assert await connector.fetch("sec:42:0009999999-99-999999") is None
    assert await connector.fetch(f"sec:{TSLA_CIK}:0001193125-13-470000") is not None  # found on the older page
    with pytest.raises(ConnectorValidationError):
        await connector.fetch("sec:tesla:123")


async def test_scores_from_form_type_and_filing_date(httpx_mock, tesla):
    httpx_mock.add_response(url=TSLA_URL, json=tesla)
    httpx_mock.add_response(url=OLDER_URL, json=older_page())
    results = await make().search("", cik=TSLA_CIK, limit=5000)
    by_form = {}
    for evidence in results:
        by_form.setdefault(evidence.metadata["form"], evidence)
    assert by_form["10-K"].authority > by_form["8-K"].authority > by_form["4"].authority
    assert by_form["10-K/A"].authority == pytest.approx(0.9)
    assert form_info("424B5") == (0.7, "prospectus") and form_info("NO SUCH FORM")[0] == 0.5
    assert 0.0 < results[-1].freshness < results[0].freshness < 1.0
    xbrl = next(e for e in results if e.metadata["xbrl"])
    plain = next(e for e in results if not e.metadata["xbrl"])
    assert xbrl.confidence > plain.confidence

