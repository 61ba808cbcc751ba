"""Parsers fuzzed at the HTTP boundary: whatever a server answers, only ConnectorParseError or
ConnectorValidationError escape a connector (None or empty results are fine), never anything else.

Every HTTP evidence connector and every integration connector gets, through an ``httpx.MockTransport``
(the connector's own ``transport=`` knob, so nothing of ours is patched), bodies drawn by hypothesis:
random JSON whose keys come from the recorded real bodies of that API, real bodies with one value
replaced by random JSON, real bodies cut anywhere, unmodified real bodies (so a later request of a
multi-step flow sees the fuzz), random bytes and, for the XML and HTML formats, random documents
of their shape. Each request of an example takes the next drawn body.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter

from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.arxiv import ArXivConnector
from connectors.base import Evidence
from connectors.docusign import DocuSignConnector, DocuSignCredentials
from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.github import GitHubConnector
from connectors.hackernews import HackerNewsConnector
from connectors.hubspot import HubSpotConnector, HubSpotCredentials
from connectors.local_docs import LocalDocsConnector
from connectors.newsapi import NewsAPIConnector
from connectors.pagerduty import PagerDutyConnector, PagerDutyCredentials
from connectors.provenance import SourceType
from connectors.reddit import RedditConnector
from connectors.resilience import reset_circuit_breakers
from connectors.sec import SECConnector
from connectors.stripe import StripeConnector, StripeCredentials
from connectors.text import strip_terminal_controls
from connectors.twitter import TwitterConnector
from connectors.web import WebConnector
from connectors.whisper import WhisperConnector
from connectors.wikipedia import WikipediaConnector
from tests.conftest import realapi_path

ALLOWED = (ConnectorParseError, ConnectorValidationError)
QUICK: dict[str, Any] = {"max_retries": 0, "base_delay": 0.001, "max_delay": 0.002, "rate_limit": False,
                         "timeout": 5.0}
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))  # FUZZ_EXAMPLES=600 digs deeper (about 2.5 min)

# --- bodies -------------------------------------------------------------------------------------------
SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=30) | st.sampled_from(["", "0", "-1", "1970-01-01T00:00:00Z", "2026-13-45", "null",
                                                     "https://", "javascript:alert(1)", "\ud800", "\x00"]))


def random_json(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON values whose object keys are mostly the API's own, so the parser's paths are reached."""
    key = st.sampled_from(keys) | st.text(max_size=10) if keys else st.text(max_size=10)
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=6),
                        max_leaves=30)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:3]):
            found += _paths(v, (*prefix, i))
    return found


def _replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    doc = copy.deepcopy(doc)
    node = doc
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return doc


def _keys(doc: Any) -> set[str]:
    if isinstance(doc, dict):
        return set(doc) | {k for v in doc.values() for k in _keys(v)}
    if isinstance(doc, list):
        return {k for v in doc for k in _keys(v)}
    return set()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


def json_bodies(samples: list[Any]) -> st.SearchStrategy[bytes]:
    """Bodies for a JSON API whose real answers are ``samples`` (parsed)."""
    keys = sorted({k for doc in samples for k in _keys(doc)})
    raw = [_dumps(doc) for doc in samples]
    mutated = st.sampled_from(samples).flatmap(
        lambda doc: st.tuples(st.sampled_from(_paths(doc)), random_json(keys)).map(
            lambda pv, doc=doc: _dumps(_replaced(doc, *pv))))
    return st.one_of(
        random_json(keys).map(_dumps),
        mutated,
        mutated,
        st.tuples(st.sampled_from(raw), st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
        st.sampled_from(raw),
        st.binary(max_size=300),
    )


XML_TEXT = st.text(max_size=40) | st.sampled_from(["&amp;", "&bogus;", "<", "]]>", "2026-99-99", "",
                                                  "http://arxiv.org/abs/", "\x01"])


@st.composite
def atom_feed(draw: st.DrawFn) -> bytes:
    """An Atom document of arXiv's shape with random (possibly ill-formed) element text."""
    entries = "".join(
        "<entry>" + "".join(f"<{tag}>{draw(XML_TEXT)}</{tag}>" for tag in draw(st.lists(st.sampled_from(
            ["id", "title", "summary", "published", "updated", "author", "link", "category"]), max_size=8)))
        + "</entry>"
        for _ in range(draw(st.integers(0, 3))))
    total = draw(st.sampled_from(["1", "-5", "x", "99999999999999999999", ""]))
    return ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">'
            f"<opensearch:totalResults>{total}</opensearch:totalResults>{entries}</feed>").encode(
                "utf-8", "surrogatepass")


def xml_bodies(samples: list[bytes]) -> st.SearchStrategy[bytes]:
    """Bodies for an XML (Atom) API whose real answers are ``samples``."""
    return st.one_of(
        atom_feed(), atom_feed(),
        st.tuples(st.sampled_from(samples), st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
        st.sampled_from(samples),
        st.binary(max_size=300),
        st.just(b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
                b"<feed><title>&b;</title></feed>"),
    )


HTML_PAGE = (b"<html><head><title>Rate limiting</title><meta name='date' content='2026-01-02'></head><body>"
             b"<article><h1>Rate limiting</h1><p>Token buckets smooth bursts.</p></article></body></html>")


def html_bodies() -> st.SearchStrategy[bytes]:
    """Bodies for a web page: random markup, cut pages, random bytes."""
    tags = st.sampled_from(["p", "div", "script", "style", "title", "h1", "meta", "br", "a", "!--", "![CDATA["])
    markup = st.lists(st.tuples(tags, st.text(max_size=20)), max_size=10).map(
        lambda parts: "".join(f"<{t}>{x}" for t, x in parts).encode("utf-8", "surrogatepass"))
    return st.one_of(markup, st.floats(0, 1).map(lambda f: HTML_PAGE[: int(len(HTML_PAGE) * f)]),
                     st.just(HTML_PAGE), st.binary(max_size=300))


def real(*names: str) -> list[Any]:
    """Recorded real bodies (JSON parsed, others as bytes)."""
    out = []
    for name in names:
        path = realapi_path(name)
        out.append(json.loads(path.read_text("utf-8")) if path.suffix == ".json" else path.read_bytes())
    return out


# Shapes of APIs without a recorded body under shared/realapi (from their documentation).
NEWSAPI = {"status": "ok", "totalResults": 1, "articles": [{
    "source": {"id": None, "name": "Example"}, "author": "A. Writer", "title": "Rate limits",
    "description": "Why", "url": "https://news.example/a", "urlToImage": None,
    "publishedAt": "2026-01-02T03:04:05Z", "content": "Token buckets... [+120 chars]"}]}
BRAVE = {"type": "search", "web": {"results": [{"title": "Rate limiting", "url": "https://example.org/rl",
                                                "description": "Token buckets", "page_age": "2026-01-02T00:00:00",
                                                "age": "2 days ago"}]}}
WHISPER = {"task": "transcribe", "language": "english", "duration": 3.2, "text": "rate limiting matters",
           "segments": [{"id": 0, "start": 0.0, "end": 3.2, "text": "rate limiting matters", "avg_logprob": -0.2,
                         "compression_ratio": 1.1, "no_speech_prob": 0.01}]}


# --- targets ------------------------------------------------------------------------------------------
class Target:
    """A connector, the calls to fuzz on it (the first is its search or listing) and the bodies its API sends."""

    def __init__(self, name: str, bodies: st.SearchStrategy[bytes], content_type: str,
                 build: Callable[[httpx.MockTransport, Path], Any], calls: list[Callable[[Any], Awaitable[Any]]]
                 ) -> None:
        self.name, self.bodies, self.content_type, self.build, self.calls = name, bodies, content_type, build, calls

    def __repr__(self) -> str:
        return self.name


def evidence(cls: type, **kwargs: Any) -> Callable[[httpx.MockTransport, Path], Any]:
    return lambda transport, tmp: cls(transport=transport, **QUICK, **kwargs)


def search(c: Any) -> Awaitable[Any]:
    return c.search("rate limiting", limit=5)


def fetching(evidence_id: str) -> Callable[[Any], Awaitable[Any]]:
    return lambda c: c.fetch(evidence_id)


def listing(*object_types: str) -> list[Callable[[Any], Awaitable[Any]]]:
    async def collect(c: Any, object_type: str) -> list[Any]:
        return [obj async for obj in c.iter_objects(object_type, limit=5)]
    return [lambda c, t=t: collect(c, t) for t in object_types]


def whisper(transport: httpx.MockTransport, tmp: Path) -> WhisperConnector:
    (tmp / "talk.mp3").write_bytes(b"ID3 not really audio")
    return WhisperConnector(transport=transport, api_key="sk-fuzz-not-a-key-000000", audio_dir=tmp, **QUICK)


TARGETS = [
    Target("github", json_bodies(real("github/search_issues_multi.json", "github/search_issues_recent_single.json",
                                      "github/repo_issues_list.json")),
           "application/json", evidence(GitHubConnector), [search, fetching("acme/repo#1")]),
    Target("arxiv", xml_bodies(real("arxiv/query_search_testing_max10.xml", "arxiv/query_id_list_two.xml",
                                    "arxiv/query_id_unknown_empty.xml")),
           "application/atom+xml", evidence(ArXivConnector), [search, fetching("2601.00001")]),
    Target("hackernews", json_bodies(real("hackernews/algolia_search_by_url.json",
                                          "hackernews/algolia_item_8828543.json", "hackernews/item_8863_story.json",
                                          "hackernews/item_2921983_comment.json")),
           "application/json", evidence(HackerNewsConnector), [search, fetching("8863")]),
    Target("wikipedia", json_bodies(real("wikipedia/action_query_list_search_barack_obama.json",
                                         "wikipedia/action_query_generator_search.json",
                                         "wikipedia/rest_page_summary_moscow.json",
                                         "wikipedia/action_query_list_search_suggestion_butteryfly.json")),
           "application/json", evidence(WikipediaConnector), [search, fetching("en:Moscow")]),
    Target("reddit", json_bodies(real("reddit/search_all_listing.json", "reddit/subreddits_search_listing.json")),
           "application/json", evidence(RedditConnector), [search, fetching("t3_abc123")]),
    Target("twitter", json_bodies(real("twitter/tweets_search_recent.json", "twitter/tweets_search_all.json",
                                       "twitter/tweets_lookup_by_ids.json")),
           "application/json", evidence(TwitterConnector, bearer_token="fuzz-bearer-token-0000"),
           [search, fetching("1460323737035677698")]),
    Target("newsapi", json_bodies([NEWSAPI]), "application/json",
           evidence(NewsAPIConnector, api_key="fuzz-newsapi-key-0000"), [search]),
    Target("sec", json_bodies(real("sec_edgar/company_tickers_first300.json",
                                   "sec_edgar/submissions_CIK0001318605_tesla.json")),
           "application/json", evidence(SECConnector, user_agent="Fuzz Tester fuzz@example.org"),
           [search, fetching("1318605:0001628280-24-002390")]),
    Target("web search", json_bodies([BRAVE]), "application/json",
           evidence(WebConnector, api_key="fuzz-brave-key-0000"), [search]),
    Target("web page", html_bodies(), "text/html; charset=utf-8", evidence(WebConnector),
           [fetching("https://93.184.216.34/article")]),
    Target("whisper", json_bodies([WHISPER]), "application/json", whisper, [search, fetching("talk.mp3")]),
    Target("stripe", json_bodies(real("stripe/customers_list.json", "stripe/charges_list_docs_example.json",
                                      "stripe/payment_intents_list.json", "stripe/customer_object_fixture.json")),
           "application/json",
           lambda transport, tmp: StripeConnector(StripeCredentials(secret_key="sk_test_fuzzfuzzfuzz0000"),
                                                  transport=transport, **QUICK),
           [*listing("customers", "charges", "payment_intents"), lambda c: c.get_object("customers", "cus_1")]),
    Target("hubspot", json_bodies(real("hubspot/contacts_list_v3.json", "hubspot/deals_search_v3_paged.json",
                                       "hubspot/tickets_search_v3_paged.json")),
           "application/json",
           lambda transport, tmp: HubSpotConnector(HubSpotCredentials(access_token="pat-na1-fuzz-0000"),
                                                   transport=transport, **QUICK),
           [*listing("contacts", "deals", "tickets"), lambda c: c.get_object("contacts", "1")]),
    Target("docusign", json_bodies(real("docusign/envelopes_list_status_changes.json",
                                        "docusign/envelopes_list_status_changes_folder.json")),
           "application/json",
           lambda transport, tmp: DocuSignConnector(
               DocuSignCredentials(access_token="ds-fuzz-token-0000", account_id="acct-1",
                                   base_url="https://ds.example.test"), transport=transport, **QUICK),
           [*listing("envelopes"), lambda c: c.get_envelope("env-1")]),
    Target("pagerduty", json_bodies(real("pagerduty/incidents_list.json")), "application/json",
           lambda transport, tmp: PagerDutyConnector(PagerDutyCredentials(api_token="pd-fuzz-token-0000"),
                                                     transport=transport, **QUICK),
           [*listing("incidents", "log_entries", "services"), lambda c: c.get_incident("P1")]),
]


async def exercise(target: Target, bodies: list[bytes], call: Callable[[Any], Awaitable[Any]], tmp: Path) -> None:
    """Serve ``bodies`` in turn (the last one repeats) and run ``call`` on a fresh connector."""
    served = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal served
        body = bodies[min(served, len(bodies) - 1)]
        served += 1
        return httpx.Response(200, content=body, headers={"Content-Type": target.content_type})

    connector = target.build(httpx.MockTransport(answer), tmp)
    async with connector:
        await call(connector)


# Answers that crashed a connector when this file first ran (since fixed in connectors/): kept as fixed examples.
REGRESSIONS: dict[str, list[bytes]] = {
    "github": [  # a non-text issue body reached html_to_text (AttributeError)
        b'{"total_count": 1, "items": [{"html_url": "https://github.com/a/b/issues/1", "title": "rate limiting", '
        b'"body": [null]}]}'],
    "reddit": [  # a non-text 'after' cursor reached the PaginationGuard (unhashable list, TypeError)
        b'{"kind": "Listing", "data": {"after": [null], "children": [{"kind": "t3", "data": '
        b'{"id": "abc", "name": "t3_abc", "title": "rate limiting"}}]}}'],
    "twitter": [  # a non-text post text (AttributeError); non-list arrays and next_token (TypeError)
        b'{"data": [{"id": "1", "text": true}], "meta": {"result_count": 1}}',
        b'{"data": [{"id": "1", "text": "rate limiting", "edit_history_tweet_ids": true}]}',
        b'{"data": [{"id": "1", "text": "rate limiting"}], "meta": {"next_token": [null]}}'],
    "newsapi": [  # a non-text article field reached html_to_text (AttributeError)
        b'{"status": "ok", "totalResults": 1, "articles": [{"author": true, "url": "https://a.example/1", '
        b'"title": "rate limiting"}]}'],
    "whisper": [  # a lone surrogate broke writing the transcript cache (UnicodeEncodeError)
        b'{"text": "rate limiting", "segments": [{"text": "rate limiting \\ud800"}]}'],
    "hackernews": [  # a non-text title and author, an unhashable tag (AttributeError, TypeError)
        b'{"hits": [{"objectID": "1", "title": 1, "_tags": [{}], "author": {}}], "nbHits": 1, "nbPages": 1}'],
}
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                         suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
@FUZZ_SETTINGS
@given(data=st.data())
def test_any_answer_raises_only_parse_or_validation_errors(target: Target, data: st.DataObject) -> None:
    bodies = data.draw(st.lists(target.bodies, min_size=1, max_size=3), label="bodies")
    call = data.draw(st.sampled_from(target.calls), label="call")
    reset_circuit_breakers()
    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(*ALLOWED):
        asyncio.run(exercise(target, bodies, call, Path(tmp)))


@pytest.mark.parametrize(("target", "body"), [
    pytest.param(target, body, id=f"{target.name}-{index}")
    for target in TARGETS for index, body in enumerate(REGRESSIONS.get(target.name, []))])
def test_answers_that_once_crashed_a_connector_raise_only_parse_or_validation_errors(target: Target,
                                                                                      body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp, contextlib.suppress(*ALLOWED):
        asyncio.run(exercise(target, [body], target.calls[0], Path(tmp)))


def _pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Rate limiting"})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


LOCAL_SAMPLES = {
    ".md": b"# Rate limiting\n\nToken buckets smooth bursts.\n", ".txt": b"Rate limiting\nToken buckets.\n",
    ".rst": b"Rate limiting\n=============\n\nToken buckets.\n", ".html": HTML_PAGE,
    ".json": b'{"title": "Rate limiting", "body": ["token", "buckets"]}', ".pdf": _pdf(),
}


@st.composite
def local_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A document of a supported type whose bytes are cut, random, random text or random JSON."""
    extension = draw(st.sampled_from(sorted(LOCAL_SAMPLES)))
    sample = LOCAL_SAMPLES[extension]
    body = draw(st.one_of(
        st.floats(0, 1).map(lambda f: sample[: int(len(sample) * f)]),
        st.binary(max_size=300),
        st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
        random_json(["title", "name", "body", "text"]).map(_dumps),
    ))
    return extension, body


@FUZZ_SETTINGS
@given(document=local_file(), call=st.sampled_from(["search", "fetch"]))
def test_local_documents_of_any_content_raise_only_parse_or_validation_errors(document: tuple[str, bytes],
                                                                               call: str) -> None:
    extension, body = document
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"doc{extension}").write_bytes(body)
        connector = LocalDocsConnector(root=tmp)
        with contextlib.suppress(*ALLOWED):
            if call == "search":
                asyncio.run(connector.search("rate limiting", limit=5))
            else:
                asyncio.run(connector.fetch(f"doc{extension}"))


# --- the store takes whatever text the sources and the run context carry ------------------------------
TEXT = st.text(max_size=40) | st.sampled_from(["'; DROP TABLE evidence; --", "?", "\\", "\x00", "\ud800",
                                               "?'?", "$1", "é漢字🙂", "\n\r\t"])


@settings(FUZZ_SETTINGS, max_examples=max(EXAMPLES // 2, 1))  # a DuckDB file per example
@given(title=TEXT, content=TEXT, author=st.none() | TEXT, url=st.none() | TEXT, run_id=TEXT, partition=TEXT,
       request=TEXT, claim=st.none() | TEXT)
def test_any_text_round_trips_through_the_store_and_verifies(title: str, content: str, author: str | None,
                                                            url: str | None, run_id: str, partition: str,
                                                            request: str, claim: str | None) -> None:
    def stored(value: str | None) -> str | None:  # terminal controls are stripped; lone surrogates cannot be UTF-8
        return strip_terminal_controls(value).encode("utf-8", "replace").decode() if value is not None else None

    def in_sql(value: str) -> str:  # run context travels as SQL literals: NUL cannot either
        return value.encode("utf-8", "replace").decode().replace("\x00", "\ufffd")

    item = Evidence(id="hackernews:1", source_type=SourceType.FORUM, source_id="1", title=title, content=content,
                    author=author, metadata={"note": content})
    ctx = LoadContext(connector="HackerNews", request=request, run_id=run_id, partition_key=partition,
                      asset_key="evidence_hackernews", claim_id=claim)
    with tempfile.TemporaryDirectory() as tmp:
        store = EvidenceStore(Path(tmp) / "fuzz.duckdb", lock_timeout=10)
        result = store.load_evidence([item], ctx)
        assert result.rows_new == 1
        row = store.query("SELECT title, content, author FROM evidence")[0]
        assert row == (stored(title), stored(content), stored(author))
        assert store.query("SELECT run_id, partition_key FROM loads") == [(in_sql(run_id), in_sql(partition))]
        assert store.verify() == []
