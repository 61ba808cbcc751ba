"""Recovery that knows the connector (issue 13): credential refresh on an auth error, waiting out a rate
limit, the circuit breaker consulted before each retry, and an escalation callback."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from connectors.credentials import CachedCredentialProvider
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorNotFoundError,
    ConnectorRateLimitError,
    ConnectorTimeoutError,
)
from connectors.progress import ProgressEvent, observe
from connectors.recovery import RecoveryConfig, RecoveryStrategy, create_recovery_chain, with_recovery
from connectors.resilience import CircuitBreaker
from tests.connectors.core_support import FakeClock, TokenHNConnector

FAST = {"base_delay": 0.001, "max_delay": 0.005}
OLD, NEW = "old-token-aaaa1111", "new-token-bbbb2222"
SEARCH = "https://hn.test/search?query=q&page=0&hitsPerPage=1"
HIT = {"hits": [{"objectID": "40000001", "title": "t", "story_text": "s", "created_at_i": 1_700_000_000}]}


class Flaky:
    """An async callable that raises the given errors in turn, then returns ``value``."""

    def __init__(self, *errors: Exception, value: object = "ok") -> None:
        self.errors, self.value, self.calls = list(errors), value, 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class Vault:
    """A user's provider (``get(name)`` only) whose token is rotated by the test; it records reading threads."""

    def __init__(self) -> None:
        self.token = OLD
        self.threads: list[int] = []

    def get(self, name: str) -> str | None:
        self.threads.append(threading.get_ident())
        return self.token if name == "HNTEST_TOKEN" else None


def _connector(vault: Vault) -> TokenHNConnector:
    provider = CachedCredentialProvider(vault, ttl=300, clock=FakeClock())
    return TokenHNConnector(base_url="https://hn.test", credential_provider=provider, rate_limit=False)


# --- refresh credentials on an auth error -----------------------------------------------------------

async def test_an_auth_error_rereads_the_credentials_once_then_retries(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARCH, match_headers={"Authorization": f"Bearer {OLD}"}, status_code=401)
    httpx_mock.add_response(url=SEARCH, match_headers={"Authorization": f"Bearer {NEW}"}, json=HIT)
    vault = Vault()
    connector = _connector(vault)
    vault.token = NEW  # rotated after the connector read it (and while the cache still holds the old one)

    @with_recovery(RecoveryConfig(RecoveryStrategy.REFRESH_CREDENTIALS, connector=connector))
    async def search() -> list:
        return await connector.search("q", limit=1)

    loop_thread = threading.get_ident()
    assert [e.source_id for e in await search()] == ["40000001"]
    assert len(httpx_mock.get_requests()) == 2
    assert len(vault.threads) == 2 and vault.threads[1] != loop_thread  # one re-read, off the event loop
    await connector.close()


async def test_a_second_auth_error_is_raised_after_one_refresh(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=SEARCH, status_code=401, is_reusable=True)
    vault = Vault()
    connector = _connector(vault)
    vault.token = NEW
    search = with_recovery(RecoveryConfig(RecoveryStrategy.REFRESH_CREDENTIALS, connector=connector))(
        lambda: connector.search("q", limit=1))
    with pytest.raises(ConnectorAuthError):
        await search()
    assert len(httpx_mock.get_requests()) == 2 and len(vault.threads) == 2

    unchanged = Flaky(ConnectorAuthError("HTTP 401"))  # refresh found the same credentials: no doomed retry
    with pytest.raises(ConnectorAuthError):
        await with_recovery(RecoveryConfig(RecoveryStrategy.REFRESH_CREDENTIALS, refresh=lambda: False))(unchanged)()
    assert unchanged.calls == 1
    await connector.close()


def test_refresh_credentials_needs_something_to_refresh() -> None:
    with pytest.raises(ValueError, match=r"connector=.*refresh="):
        RecoveryConfig(RecoveryStrategy.REFRESH_CREDENTIALS)


# --- wait out a rate limit ------------------------------------------------------------------------------

async def test_a_rate_limit_is_waited_out_for_its_retry_after() -> None:
    events: list[ProgressEvent] = []
    call = Flaky(ConnectorRateLimitError("HTTP 429", retry_after=0.05),
                 ConnectorRateLimitError("HTTP 429", retry_after=0.02))
    with observe(events.append):
        assert await with_recovery(RecoveryConfig(RecoveryStrategy.WAIT_FOR_RATE_LIMIT, **FAST))(call)() == "ok"
    assert call.calls == 3
    assert [(e.kind, e.seconds) for e in events] == [("wait", 0.05), ("wait", 0.02)]  # the server's, not backoff


async def test_wait_for_rate_limit_retries_nothing_else_and_raises_a_wait_beyond_its_limit() -> None:
    timeout = Flaky(ConnectorTimeoutError("slow"))
    with pytest.raises(ConnectorTimeoutError):
        await with_recovery(RecoveryConfig(RecoveryStrategy.WAIT_FOR_RATE_LIMIT, **FAST))(timeout)()
    assert timeout.calls == 1
    long_wait = Flaky(ConnectorRateLimitError("HTTP 429", retry_after=120.0))
    with pytest.raises(ConnectorRateLimitError) as caught:
        await with_recovery(RecoveryConfig(RecoveryStrategy.WAIT_FOR_RATE_LIMIT, max_retry_wait=1.0))(long_wait)()
    assert long_wait.calls == 1 and caught.value.retry_after == 120.0


# --- the circuit breaker ----------------------------------------------------------------------------------

async def test_an_open_breaker_stops_the_retries() -> None:
    breaker = CircuitBreaker("recovery-test", failure_threshold=1, clock=FakeClock())
    calls = 0

    async def outage() -> Any:
        nonlocal calls
        calls += 1
        breaker.record_failure()  # the service is down: the breaker opens
        raise ConnectorTimeoutError("slow")

    with pytest.raises(ConnectorCircuitOpenError) as caught:
        await with_recovery(RecoveryConfig(max_retries=5, breaker=breaker, **FAST))(outage)()
    assert calls == 1 and caught.value.cooldown_remaining == 60.0


def test_a_connector_lends_its_breaker() -> None:
    connector = TokenHNConnector(token="t-12345678", base_url="https://hn.test")
    config = RecoveryConfig(connector=connector)
    assert config.breaker is connector.breaker and config.refresh == connector.refresh_credentials


# --- escalation -------------------------------------------------------------------------------------------

async def test_on_escalate_is_called_once_every_strategy_is_exhausted() -> None:
    escalated: list[BaseException] = []

    async def page_someone(error: BaseException) -> None:
        escalated.append(error)

    chain = create_recovery_chain([
        RecoveryConfig(strategy=RecoveryStrategy.RETRY_ONCE, **FAST),
        RecoveryConfig(strategy=RecoveryStrategy.FALLBACK, fallback_value=[], fallback_on=(ConnectorNotFoundError,),
                       on_escalate=page_someone),
    ])
    assert await chain(Flaky(ConnectorNotFoundError("gone")))() == []  # covered by the fallback: no escalation
    assert await chain(Flaky(ConnectorTimeoutError("slow"), value=["x"]))() == ["x"]
    assert escalated == []

    failing = Flaky(*[ConnectorTimeoutError("slow")] * 3)
    with pytest.raises(ConnectorTimeoutError) as caught:
        await chain(failing)()
    assert escalated == [caught.value] and failing.calls == 2

    sync_calls: list[str] = []
    fail_fast = RecoveryConfig(RecoveryStrategy.FAIL_FAST, on_escalate=lambda e: sync_calls.append(str(e)))
    with pytest.raises(ConnectorAuthError):
        await with_recovery(fail_fast)(Flaky(ConnectorAuthError("bad key")))()
    assert sync_calls == ["bad key"]
