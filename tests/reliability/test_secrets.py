"""A recognisable fake token, used by a real Dagster materialization and by failing ingests, appears nowhere:
not in the DuckDB file, the Dagster event log and run record, exception text, or captured logs and output.

The token comes the way a deployment gives it (the GITHUB_TOKEN environment variable, read through the
credential provider); the mocked API must receive it (requests are matched on the Authorization header),
and the answers try to smuggle it back: in an issue URL's query, in a label, in an error body and header.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import traceback
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, MultiPartitionKey, materialize
from dagster._serdes import serialize_value
from pytest_httpx import HTTPXMock

from aragora_pipelines.definitions import RESOURCES, evidence_assets
from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.resources import DuckDBStoreResource, TopicsResource, evidence_resource_class
from aragora_pipelines.store import EvidenceStore
from connectors.exceptions import ConnectorAPIError, ConnectorAuthError, ConnectorNetworkError
from connectors.github import GitHubConnector

TOKEN = "zzcanary-7f3a9c51e0b24d6e-do-not-leak"  # no well-known prefix: only its registration can hide it
SEARCH = re.compile(r"https://api\.github\.com/search/issues\?.*")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PARTITION = MultiPartitionKey({"date": "2026-01-01", "topic": "rate-limiting"})
QUICK = {"max_retries": 1, "base_delay_seconds": 0.01, "max_delay_seconds": 0.05}


@pytest.fixture(autouse=True)
def github_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)


@pytest.fixture
def captured(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
    """Everything logged (any level) and printed, as one text, read at the end of a test."""
    caplog.set_level(logging.DEBUG)

    def text() -> str:
        out = capsys.readouterr()
        return caplog.text + out.out + out.err

    return text


def search_body(realapi: Any) -> dict[str, Any]:
    """The recorded search answer, dated inside the partition, with the token smuggled into a URL and a label."""
    body = copy.deepcopy(realapi("github/search_issues_multi.json"))
    for item in body["items"]:
        item["created_at"] = item["updated_at"] = "2026-01-01T12:00:00Z"
    body["items"][0]["html_url"] += f"?access_token={TOKEN}"
    body["items"][1]["labels"] = [{"name": TOKEN}, {"name": "bug"}]
    return body


def run_github_asset(tmp_path: Path, instance: DagsterInstance, store: EvidenceStore) -> Any:
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  rate-limiting:\n    query: rate limiting\n")
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(store.path)),
                 "topics": TopicsResource(file=str(topics)),
                 "github": evidence_resource_class(GitHubConnector)(rate_limit_per_second=1000.0, **QUICK)}
    return materialize([evidence_assets["github"]], partition_key=PARTITION, resources=resources, instance=instance,
                       raise_on_error=False)


def run_text(instance: DagsterInstance, run_id: str) -> str:
    """Every event of the run (messages, metadata, errors with their stacks) and the run record, serialized."""
    events = [serialize_value(entry) for entry in instance.all_logs(run_id)]
    return "\n".join([*events, serialize_value(instance.get_run_by_id(run_id))])


def store_bytes(store: EvidenceStore) -> bytes:
    """The database file and anything DuckDB keeps beside it (WAL)."""
    return b"".join(path.read_bytes() for path in store.path.parent.glob(store.path.name + "*") if path.is_file())


@pytest.fixture
def instance() -> DagsterInstance:
    inst = DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("topics", ["rate-limiting"])
    return inst


def test_a_materialization_with_a_token_leaves_no_trace_of_it(
        tmp_path: Path, httpx_mock: HTTPXMock, realapi: Any, instance: DagsterInstance, captured) -> None:
    httpx_mock.add_response(url=SEARCH, match_headers=AUTH, json=search_body(realapi))
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)

    result = run_github_asset(tmp_path, instance, store)

    assert result.success
    assert store.counts()["evidence"] == 6  # the load happened, with the smuggled values in it
    assert store.query("SELECT count(*) FROM evidence WHERE url LIKE '%access_token=%'") == [(1,)]
    assert TOKEN.encode() not in store_bytes(store)
    assert TOKEN not in run_text(instance, result.run_id)
    assert TOKEN not in captured()


def test_a_failing_materialization_leaves_no_trace_of_the_token(
        tmp_path: Path, httpx_mock: HTTPXMock, instance: DagsterInstance, captured) -> None:
    # A 401 whose body and headers echo the credential back, as some servers and proxies do.
    httpx_mock.add_response(url=SEARCH, match_headers=AUTH, status_code=401,
                            json={"message": f"Bad credentials: {TOKEN}"}, headers={"X-Echo": TOKEN})
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)

    result = run_github_asset(tmp_path, instance, store)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "Bad credentials" in failure.message and "not retried" in failure.message
    assert TOKEN not in failure.to_string()
    assert TOKEN not in run_text(instance, result.run_id)
    assert not store.path.exists() or TOKEN.encode() not in store_bytes(store)
    assert TOKEN not in captured()


@pytest.mark.parametrize(("status", "error"), [(401, ConnectorAuthError), (500, ConnectorAPIError)])
def test_a_failing_ingest_keeps_the_token_out_of_the_exception_and_the_logs(
        tmp_path: Path, httpx_mock: HTTPXMock, captured, status: int, error: type[Exception]) -> None:
    httpx_mock.add_response(url=SEARCH, match_headers=AUTH, status_code=status, is_reusable=True,
                            text=f"upstream said: token={TOKEN} Authorization: Bearer {TOKEN} {TOKEN}")
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)
    connector = GitHubConnector(max_retries=2, base_delay=0.01, max_delay=0.05, rate_limit=False)

    with pytest.raises(error) as caught:
        ingest_evidence(connector, store, query="rate limiting", limit=10)

    assert len(httpx_mock.get_requests()) == (1 if status == 401 else 3)  # 5xx retried, 401 not
    texts = [str(caught.value), repr(caught.value), str(caught.value.details), str(caught.value.__cause__ or "")]
    assert all(TOKEN not in text for text in texts)
    assert f"HTTP {status}" in str(caught.value)
    assert not store.path.exists()  # fetching failed before the store was touched
    assert TOKEN not in captured()


# --- a pasted or odd token, through a real socket (the loopback simulator), so httpx and h11 really run ---------

FRAGMENT = "7f3a9c51e0b24d6e"  # in every canary below: a leak of any part of a token shows it
PASTED = {
    "line break": f"{TOKEN}\r\n",
    "percent and carriage return": f"zzcanary%2F{FRAGMENT}%-do-not-leak\r",  # redaction once stopped at the '%'
}


def run_github_asset_on(sim: Any, tmp_path: Path, instance: DagsterInstance) -> Any:
    """The GitHub asset against the simulator (which answers any token), credentials read from GITHUB_TOKEN."""
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  rate-limiting:\n    query: rate limiting\n")
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(tmp_path / "evidence.duckdb")),
                 "topics": TopicsResource(file=str(topics)),
                 "github": evidence_resource_class(GitHubConnector)(base_url=sim.github, rate_limit_per_second=1000.0,
                                                                    **QUICK)}
    return materialize([evidence_assets["github"]], partition_key=PARTITION, resources=resources, instance=instance,
                       raise_on_error=False)


@pytest.mark.parametrize("pasted", PASTED.values(), ids=PASTED.keys())
def test_a_pasted_token_is_trimmed_and_leaves_no_trace(
        apisim: Any, tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, captured,
        pasted: str) -> None:
    # Before: httpx refused the header ("Illegal header value b'Bearer <key>\r'") and the key went to the event log.
    monkeypatch.setenv("GITHUB_TOKEN", pasted)

    result = run_github_asset_on(apisim, tmp_path, instance)

    assert result.success
    assert FRAGMENT not in run_text(instance, result.run_id)
    assert FRAGMENT not in captured()


def test_a_token_with_a_control_character_inside_is_refused_by_name(
        apisim: Any, tmp_path: Path, instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch, captured) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", f"zzcanary-{FRAGMENT}\x1b[8m-do-not-leak")

    result = run_github_asset_on(apisim, tmp_path, instance)

    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "GITHUB_TOKEN" in failure.message and "U+001B" in failure.message
    assert FRAGMENT not in run_text(instance, result.run_id)
    assert FRAGMENT not in captured()


@pytest.mark.parametrize("pasted", PASTED.values(), ids=PASTED.keys())
def test_an_error_raised_inside_httpx_is_redacted_down_its_whole_chain(
        apisim: Any, monkeypatch: pytest.MonkeyPatch, captured, pasted: str) -> None:
    # A header with a line break reaches h11 (here sent per request, as a token an API handed back could be):
    # httpx, httpcore and h11 each quote it, and a traceback prints every one of them.
    monkeypatch.setenv("GITHUB_TOKEN", pasted)
    connector = GitHubConnector(base_url=apisim.github, max_retries=0, rate_limit=False)

    async def call() -> None:
        async with connector:
            await connector._request("GET", "/search/issues", params={"q": "x"},
                                     headers={"Authorization": f"Bearer {pasted}"})

    with pytest.raises(ConnectorNetworkError, match="Illegal header value") as caught:
        asyncio.run(call())

    printed = "".join(traceback.format_exception(caught.value))
    assert "LocalProtocolError" in printed  # the chain is there, only redacted
    assert FRAGMENT not in printed
    assert FRAGMENT not in captured()
