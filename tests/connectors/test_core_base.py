"""Evidence and the BaseConnector lifecycle: lazy client, event loops, close, credentials, provenance, health."""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.base import Evidence, PaginationGuard, evidence_id, split_window, to_utc
from connectors.credentials import EnvCredentialProvider
from connectors.exceptions import ConnectorAuthError, ConnectorParseError, ConnectorValidationError
from connectors.provenance import ProvenanceManager, SourceType, SupportType
from tests.connectors.core_support import HN_ID_OFFSET, HNTestConnector, TokenHNConnector

HITS = {"hits": [{"objectID": "40000005", "title": "Breakers", "story_text": "half-open trials"}]}


def evidence(**overrides: object) -> Evidence:
    """A complete Evidence with every field set."""
    fields = {
        "id": "github:acme/repo#1", "source_type": SourceType.CODE_REPOSITORY, "source_id": "acme/repo#1",
        "content": "Retry with backoff", "title": "Issue 1", "created_at": "2026-01-01T00:00:00Z",
        "author": "octocat", "url": "https://github.com/acme/repo/issues/1", "confidence": 0.8,
        "freshness": 0.6, "authority": 0.9, "metadata": {"labels": ["bug"], "comments": 3},
    }
    return Evidence(**{**fields, **overrides})


# --- Evidence -------------------------------------------------------------------------------------

def test_reliability_score_formula() -> None:
    assert evidence().reliability_score == pytest.approx(0.4 * 0.8 + 0.3 * 0.6 + 0.3 * 0.9)
    assert evidence(confidence=1.0, freshness=1.0, authority=1.0).reliability_score == pytest.approx(1.0)
    assert evidence(confidence=0.0, freshness=0.0, authority=0.0).reliability_score == 0.0


def test_content_hash_is_stable_and_ignores_scores_and_metadata() -> None:
    base = evidence()
    assert base.content_hash == evidence().content_hash and len(base.content_hash) == 64
    assert evidence(confidence=0.1, freshness=0.2, authority=0.3, metadata={}).content_hash == base.content_hash
    for changed in ({"content": "Retry without backoff"}, {"title": "Issue 2"}, {"url": "https://x.test"},
                    {"author": "someone"}, {"created_at": "2026-01-02T00:00:00Z"}):
        assert evidence(**changed).content_hash != base.content_hash, changed
    # created_at is hashed in canonical UTC form, so a timestamp read back from storage hashes the same
    for same_moment in ("2026-01-01T00:00:00+00:00", "2026-01-01T01:00:00+01:00", "2026-01-01 00:00:00"):
        assert evidence(created_at=same_moment).content_hash == base.content_hash, same_moment


def test_to_dict_from_dict_round_trip_through_json() -> None:
    original = evidence()
    data = json.loads(json.dumps(original.to_dict()))
    assert data["source_type"] == "code_repository"
    assert data["reliability_score"] == pytest.approx(original.reliability_score)
    assert data["content_hash"] == original.content_hash
    rebuilt = Evidence.from_dict(data)
    assert rebuilt == original and rebuilt.source_type is SourceType.CODE_REPOSITORY


@pytest.mark.parametrize("field", ["confidence", "freshness", "authority"])
@pytest.mark.parametrize("value", [-0.01, 1.01, math.nan, "0.5", None])
def test_out_of_range_scores_raise(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        evidence(**{field: value})


def test_small_helpers() -> None:
    assert evidence_id("hackernews", 8863) == "hackernews:8863"
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    assert split_window(since, until) == ((since, since + timedelta(days=1)), (since + timedelta(days=1), until))
    assert to_utc(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert to_utc(datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))) == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert to_utc(None) is None


def test_pagination_guard_stops_on_a_repeated_cursor() -> None:
    guard = PaginationGuard("GitHub", "search")
    guard.check("cursor-1")
    guard.check("cursor-2")
    with pytest.raises(ConnectorParseError, match="cursor-1") as caught:
        guard.check("cursor-1")
    assert caught.value.connector == "GitHub"
    bounded = PaginationGuard("GitHub", "search", max_pages=2)
    bounded.check(1)
    bounded.check(2)
    with pytest.raises(ConnectorParseError, match="more than 2 pages"):
        bounded.check(3)


# --- client lifecycle -------------------------------------------------------------------------------

async def test_works_without_the_context_manager_and_closes_cleanly(apisim) -> None:
    connector = HNTestConnector(base_url=apisim.hn)
    results = await connector.search("lazy client", limit=3)
    assert [e.source_id for e in results] == [str(HN_ID_OFFSET + i) for i in range(3)]
    client = connector.client
    assert not client.is_closed
    await connector.close()
    assert client.is_closed
    await connector.close()  # a second close is harmless
    assert len(await connector.search("reopened", limit=1)) == 1  # and the connector is usable again
    await connector.close()


def test_works_across_two_separate_event_loops(apisim) -> None:
    connector = HNTestConnector(base_url=apisim.hn)
    first = asyncio.run(connector.search("loop one", limit=2))
    second = asyncio.run(connector.search("loop two", limit=2))
    assert first == second and len(first) == 2
    asyncio.run(connector.close())  # the client of a finished loop closes without raising


# Two asyncio.run() calls on one connector against a keep-alive loopback server, in a fresh interpreter
# where ResourceWarning is an error: a client left open by its finished loop shows up at gc.collect().
_TWO_LOOPS = """
import asyncio, gc, json, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from tests.connectors.core_support import HNTestConnector

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = json.dumps({"hits": [{"objectID": "40000001", "title": "kept alive"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
connector = HNTestConnector(base_url=f"http://127.0.0.1:{server.server_address[1]}", rate_limit=False)
first = asyncio.run(connector.search("one", limit=1))
second = asyncio.run(connector.search("two", limit=1))
asyncio.run(connector.close())
del connector
gc.collect()
server.shutdown()
server.server_close()
print(len(first), len(second))
"""


def test_two_asyncio_runs_leave_no_unclosed_socket_with_resource_warnings_as_errors() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", _TWO_LOOPS], cwd=root, capture_output=True,
        text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "1"]
    assert "ResourceWarning" not in result.stderr and "Exception ignored" not in result.stderr, result.stderr


async def test_async_context_manager_closes_the_client(apisim) -> None:
    async with HNTestConnector(base_url=apisim.hn) as connector:
        assert len(await connector.search("ctx", limit=2)) == 2
        client = connector.client
    assert client.is_closed


async def test_fetch_uses_the_cache(apisim) -> None:
    connector = HNTestConnector(base_url=apisim.hn)
    before = apisim.stats()["requests"]
    first = await connector.fetch(f"hntest:{HN_ID_OFFSET + 4}")
    again = await connector.fetch(str(HN_ID_OFFSET + 4))
    assert first is again and first.id == f"hntest:{HN_ID_OFFSET + 4}"
    assert apisim.stats()["requests"] - before == 1
    assert connector.get_cache_stats()["hits"] == 1
    assert await connector.fetch("hntest:not-a-number") is None
    await connector.close()


async def test_base_url_comes_from_the_environment_and_requests_carry_a_user_agent(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARAGORA_HNTEST_BASE_URL", "https://mirror.example.test/hn/")
    httpx_mock.add_response(url="https://mirror.example.test/hn/search?query=q&page=0&hitsPerPage=1", json=HITS)
    connector = HNTestConnector()
    assert connector.base_url == "https://mirror.example.test/hn"
    assert HNTestConnector(base_url="https://explicit.test").base_url == "https://explicit.test"
    await connector.search("q", limit=1)
    user_agent = httpx_mock.get_requests()[0].headers["User-Agent"]
    assert user_agent.startswith("aragora-pipelines/") and "HNTest" in user_agent
    await connector.close()


async def test_request_parse_modes(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(text="plain body", headers={"Link": '<https://x.test/2>; rel="next"'}, is_reusable=True)
    connector = HNTestConnector(base_url="https://modes.example.test")
    assert await connector._request("GET", "/a", parse="text") == "plain body"
    assert await connector._request("GET", "/a", parse="bytes") == b"plain body"
    response = await connector._request("GET", "/a", parse="response")
    assert isinstance(response, httpx.Response) and response.links["next"]["url"] == "https://x.test/2"
    await connector.close()


@pytest.mark.parametrize("limit", [0, -1, 2.5, "10"])
async def test_invalid_limit_is_a_validation_error(limit: object) -> None:
    connector = HNTestConnector(base_url="https://never.example.test")
    with pytest.raises(ConnectorValidationError, match="limit must be a positive integer"):
        await connector.search("q", limit=limit)


# --- credentials --------------------------------------------------------------------------------------

async def test_missing_required_credential_fails_before_any_request(httpx_mock: HTTPXMock) -> None:
    connector = TokenHNConnector(base_url="https://hn.example.test")
    assert not connector.is_configured and connector.missing_credentials() == ["HNTEST_TOKEN"]
    with pytest.raises(ConnectorAuthError, match="HNTEST_TOKEN") as caught:
        await connector.search("q")
    assert caught.value.connector == "HNTest"
    with pytest.raises(ConnectorAuthError, match="HNTEST_TOKEN"):
        await connector.fetch(f"hntest:{HN_ID_OFFSET}")
    assert httpx_mock.get_requests() == []


async def test_credential_from_env_is_sent_and_redacted_from_errors(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hn-env-token-Z81kq"  # no recognisable shape: only its registration can hide it
    monkeypatch.setenv("HNTEST_TOKEN", token)
    httpx_mock.add_response(json=HITS)
    httpx_mock.add_response(status_code=401, json={"message": f"token {token} was revoked ({token})"})
    connector = TokenHNConnector(base_url="https://hn.example.test")
    assert connector.is_configured
    await connector.search("q", limit=1)
    assert httpx_mock.get_requests()[0].headers["Authorization"] == f"Bearer {token}"
    with pytest.raises(ConnectorAuthError) as caught:
        await connector.search("q", limit=1)
    assert token not in str(caught.value) and token not in repr(caught.value)
    assert token not in json.dumps(caught.value.details)
    await connector.close()


async def test_explicit_provider_and_explicit_value(httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALT_HNTEST_TOKEN", "from-prefixed-env-1")
    via_provider = TokenHNConnector(base_url="https://hn.example.test",
                                    credential_provider=EnvCredentialProvider(prefix="ALT_"))
    explicit = TokenHNConnector(base_url="https://hn.example.test", token="explicit-token-2")
    assert via_provider.is_configured and explicit.is_configured
    assert (via_provider._token, explicit._token) == ("from-prefixed-env-1", "explicit-token-2")


# --- provenance and health ------------------------------------------------------------------------------

async def test_search_and_record_records_provenance_and_cites_the_claim(apisim) -> None:
    provenance = ProvenanceManager()
    connector = HNTestConnector(base_url=apisim.hn, provenance=provenance)
    results = await connector.search_and_record("breakers", claim_id="claim_42", limit=3)
    assert len(results) == 3
    for (item, record), stored in zip(results, provenance.records, strict=True):
        assert record == stored
        assert (record.evidence_id, record.content_hash, record.connector, record.claim_id) == (
            item.id, item.content_hash, "HNTest", "claim_42")
        assert record.connector_version == connector.VERSION and record.metadata == {"query": "breakers"}
    citations = provenance.citations_for("claim_42")
    assert [c.evidence_id for c in citations] == [e.id for e, _ in results]
    assert all(c.support is SupportType.SUPPORTS for c in citations)
    assert provenance.verify_chain()
    await connector.close()


async def test_a_recorded_real_algolia_body_records_and_round_trips(httpx_mock: HTTPXMock, realapi) -> None:
    body = realapi("hackernews/algolia_search_by_url.json")
    httpx_mock.add_response(json=body)
    provenance = ProvenanceManager()
    connector = HNTestConnector(base_url="https://hn.algolia.test/api/v1", provenance=provenance)
    results = await connector.search_and_record("https://medium.com/@shazow", claim_id="claim_ssh", limit=4)
    assert [e.source_id for e, _ in results] == [hit["objectID"] for hit in body["hits"]]
    first = results[0][0]
    assert (first.title, first.author, first.created_at) == (
        "Why aren\u2019t we using SSH for everything?", "dkua", "2015-01-02T21:05:46Z")
    for item, _ in results:
        assert Evidence.from_dict(json.loads(json.dumps(item.to_dict()))) == item
    assert len(provenance.records) == 4 and provenance.verify_chain()
    await connector.close()


async def test_search_and_record_without_a_manager_returns_no_records(apisim) -> None:
    connector = HNTestConnector(base_url=apisim.hn)
    results = await connector.search_and_record("breakers", limit=2)
    assert [record for _, record in results] == [None, None]
    await connector.close()


async def test_health_check_sends_nothing_and_reports_configuration(httpx_mock: HTTPXMock) -> None:
    health = await TokenHNConnector(base_url="https://hn.example.test").health_check()
    assert health["name"] == "HNTest" and health["base_url"] == "https://hn.example.test"
    assert health["available"] is True and health["configured"] is False
    assert health["missing_credentials"] == ["HNTEST_TOKEN"]
    assert health["circuit_state"] == "closed" and health["healthy"] is False
    assert set(health["cache"]) == {"entries", "hits", "misses", "evictions", "expired", "max_entries", "ttl_seconds"}
    disabled = await HNTestConnector(base_url="https://hn.example.test", enable_circuit_breaker=False).health_check()
    assert disabled["circuit_state"] == "disabled" and disabled["healthy"] is True
    assert httpx_mock.get_requests() == []
