"""Circuit breaker (fake clock), the breaker registry, rate limiting and the retry policy of BaseConnector."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pytest_httpx import HTTPXMock

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorNetworkError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorRateLimitError,
    ConnectorTimeoutError,
    ConnectorValidationError,
    parse_retry_after,
)
from connectors.github import GitHubConnector
from connectors.resilience import (
    AsyncRateLimiter,
    CircuitBreaker,
    CircuitState,
    get_circuit_breaker,
    get_rate_limiter,
    reset_circuit_breakers,
)
from connectors.stripe import StripeConnector, StripeCredentials
from tests.connectors.core_support import FakeClock, HNTestConnector

BASE = "https://hn.example.test/api"
HITS = {"hits": [{"objectID": "40000001", "title": "t", "story_text": "s"}]}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every ``asyncio.sleep`` delay (tenacity's backoff goes through it) and sleep for 0 instead."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay: float, result: object = None) -> object:
        recorded.append(delay)
        await real_sleep(0)
        return result

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    return recorded


def breaker(clock: FakeClock, **config: float) -> CircuitBreaker:
    """A breaker on the fake clock: 3 failures open it for 10 s unless ``config`` says otherwise."""
    settings = {"failure_threshold": 3, "cooldown_seconds": 10.0, **config}
    return CircuitBreaker("test", clock=clock, **settings)


def trip(b: CircuitBreaker) -> None:
    """Record failures until the breaker opens."""
    for _ in range(b.failure_threshold):
        b.record_failure()
    assert b.state is CircuitState.OPEN


# --- circuit breaker ------------------------------------------------------------------------------

def test_breaker_opens_after_n_consecutive_failures() -> None:
    b = breaker(FakeClock())
    b.record_failure()
    b.record_failure()
    assert b.state is CircuitState.CLOSED and b.can_proceed() and b.failures == 2
    b.record_failure()
    assert b.state is CircuitState.OPEN
    assert not b.can_proceed()


def test_a_success_resets_the_consecutive_failure_count() -> None:
    b = breaker(FakeClock())
    for outcome in ("fail", "fail", "ok", "fail", "fail"):
        b.record_failure() if outcome == "fail" else b.record_success()
    assert b.state is CircuitState.CLOSED and b.failures == 2


def test_cooldown_remaining_decreases_until_half_open() -> None:
    clock = FakeClock()
    b = breaker(clock)
    assert b.cooldown_remaining() == 0.0
    trip(b)
    assert b.cooldown_remaining() == 10.0
    clock.advance(4)
    assert b.cooldown_remaining() == pytest.approx(6.0) and not b.can_proceed()
    clock.advance(5.9)
    assert b.state is CircuitState.OPEN
    clock.advance(0.1)
    assert b.cooldown_remaining() == 0.0 and b.state is CircuitState.HALF_OPEN


def test_half_open_admits_only_the_allowed_trial_calls() -> None:
    clock = FakeClock()
    b = breaker(clock, half_open_max_calls=2, success_threshold=3)
    trip(b)
    clock.advance(10)
    assert [b.can_proceed() for _ in range(4)] == [True, True, False, False]
    b.record_success()  # a trial finished: its slot is free again
    assert b.state is CircuitState.HALF_OPEN
    assert [b.can_proceed() for _ in range(2)] == [True, False]


def test_a_trial_failure_reopens_for_a_full_cooldown() -> None:
    clock = FakeClock()
    b = breaker(clock)
    trip(b)
    clock.advance(10)
    assert b.can_proceed()
    b.record_failure()
    assert b.state is CircuitState.OPEN and b.cooldown_remaining() == 10.0 and not b.can_proceed()


def test_success_threshold_trial_successes_close_the_breaker() -> None:
    clock = FakeClock()
    b = breaker(clock, half_open_max_calls=1, success_threshold=2)
    trip(b)
    clock.advance(10)
    assert b.can_proceed()
    b.record_success()
    assert b.state is CircuitState.HALF_OPEN
    assert b.can_proceed()
    b.record_success()
    assert b.state is CircuitState.CLOSED and b.failures == 0 and b.can_proceed()


def test_a_trial_that_never_reports_back_does_not_wedge_the_breaker() -> None:
    clock = FakeClock()
    b = breaker(clock)
    trip(b)
    clock.advance(10)
    assert b.can_proceed() and not b.can_proceed()
    clock.advance(10)  # the trial was lost (cancelled task): after a cooldown another is admitted
    assert b.can_proceed()


def test_reset_closes_and_invalid_settings_are_refused() -> None:
    b = breaker(FakeClock())
    trip(b)
    b.reset()
    assert b.state is CircuitState.CLOSED and b.can_proceed()
    for bad in ({"failure_threshold": 0}, {"half_open_max_calls": 0}, {"success_threshold": 0}):
        with pytest.raises(ValueError):
            CircuitBreaker("bad", **bad)


def test_registry_returns_one_breaker_per_name() -> None:
    first = get_circuit_breaker("stripe_api", failure_threshold=2)
    assert get_circuit_breaker("stripe_api") is first
    assert get_circuit_breaker("stripe_api", failure_threshold=9).failure_threshold == 2  # config only on creation
    assert get_circuit_breaker("github_api") is not first
    reset_circuit_breakers()
    assert get_circuit_breaker("stripe_api") is not first


def test_registry_is_thread_safe() -> None:
    barrier = threading.Barrier(16)
    found: list[CircuitBreaker] = []

    def worker() -> None:
        barrier.wait()
        found.append(get_circuit_breaker("shared"))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(found) == 16 and len({id(b) for b in found}) == 1


def test_many_threads_recording_keep_exact_counts() -> None:
    b = CircuitBreaker("threads", failure_threshold=100_000)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(2000):
            b.record_failure()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b.failures == 16_000 and b.state is CircuitState.CLOSED


def test_half_open_admits_exactly_the_trial_budget_under_thread_contention() -> None:
    clock = FakeClock()
    b = breaker(clock, half_open_max_calls=3)
    trip(b)
    clock.advance(10)
    barrier = threading.Barrier(32)
    admitted: list[bool] = []

    def worker() -> None:
        barrier.wait()
        admitted.append(b.can_proceed())

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert admitted.count(True) == 3


# --- rate limiter ---------------------------------------------------------------------------------

def test_rate_limiter_paces_requests_evenly() -> None:
    clock = FakeClock()
    limiter = AsyncRateLimiter(rate=2, period=1.0, clock=clock)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.5, 1.0]
    clock.advance(1.0)
    assert limiter.reserve() == pytest.approx(0.5)
    clock.advance(100)  # idle time does not bank a burst beyond the configured one
    assert [limiter.reserve() for _ in range(2)] == [0.0, 0.5]


def test_rate_limiter_burst_lets_the_first_requests_through() -> None:
    clock = FakeClock()
    limiter = AsyncRateLimiter(rate=1, period=1.0, burst=3, clock=clock)
    assert [limiter.reserve() for _ in range(5)] == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_rate_limiter_validates_and_is_shared_per_key() -> None:
    with pytest.raises(ValueError):
        AsyncRateLimiter(rate=0)
    with pytest.raises(ValueError):
        AsyncRateLimiter(rate=1, period=1, burst=0)
    assert get_rate_limiter("api.test|core", 5) is get_rate_limiter("api.test|core", 5)


async def test_rate_limiter_really_waits() -> None:
    limiter = AsyncRateLimiter(rate=20, period=1.0)  # one request per 50 ms
    started = time.monotonic()
    for _ in range(5):
        await limiter.acquire()
    assert time.monotonic() - started >= 0.19


async def test_connector_requests_go_through_the_rate_limiter(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=HITS, is_reusable=True)
    connector = HNTestConnector(base_url="https://paced.example.test", rate_limit=(10, 1.0))
    started = time.monotonic()
    for _ in range(4):
        await connector.search("x", limit=1)
    assert time.monotonic() - started >= 0.29
    await connector.close()


# --- retry through BaseConnector._request_with_retry ---------------------------------------------

def connector(**kwargs: float) -> HNTestConnector:
    """The HN test connector with fast retry knobs."""
    settings = {"max_retries": 3, "base_delay": 0.01, "max_delay": 0.05, **kwargs}
    return HNTestConnector(base_url=BASE, **settings)


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
        429, 500, 502, 503, 504,
    ],
    ids=lambda f: str(f) if isinstance(f, int) else type(f).__name__,
)
async def test_retryable_failures_are_retried(httpx_mock: HTTPXMock, sleeps: list[float],
                                              failure: int | Exception) -> None:
    for _ in range(2):
        if isinstance(failure, int):
            httpx_mock.add_response(status_code=failure, json={"message": "try later"})
        else:
            httpx_mock.add_exception(failure)
    httpx_mock.add_response(json=HITS)
    c = connector()
    results = await c.search("q", limit=1)
    assert [e.source_id for e in results] == ["40000001"]
    assert len(httpx_mock.get_requests()) == 3
    await c.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [(400, ConnectorValidationError), (401, ConnectorAuthError), (403, ConnectorAuthError),
     (404, ConnectorNotFoundError), (409, ConnectorValidationError), (422, ConnectorValidationError)],
)
async def test_other_4xx_are_never_retried(httpx_mock: HTTPXMock, status: int, error: type[Exception]) -> None:
    httpx_mock.add_response(status_code=status, json={"message": "no"})
    c = connector()
    with pytest.raises(error) as caught:
        await c.search("q")
    assert caught.value.status_code == status and caught.value.connector == "HNTest"
    assert len(httpx_mock.get_requests()) == 1
    await c.close()


async def test_a_redirect_off_the_api_host_is_a_clear_error_and_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=301, headers={"Location": "https://new.example.test/api/search?api_key=k9k9k9k9"})
    c = connector()
    expected = r"redirect \(HTTP 301\) to https://new\.example\.test/.* leaves https://hn\.example\.test; not followed"
    with pytest.raises(ConnectorAPIError, match=expected) as caught:
        await c.search("q")
    assert caught.value.status_code == 301 and "k9k9k9k9" not in str(caught.value)
    assert len(httpx_mock.get_requests()) == 1
    await c.close()


async def test_parse_errors_are_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(text='{"hits": [{"objectID": ')
    c = connector()
    with pytest.raises(ConnectorParseError, match="not valid JSON"):
        await c.search("q")
    assert len(httpx_mock.get_requests()) == 1
    await c.close()


async def test_a_wrong_shape_is_a_parse_error_and_not_retried(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json={"results": []})
    c = connector()
    with pytest.raises(ConnectorParseError, match="no 'hits' list"):
        await c.search("q")
    assert len(httpx_mock.get_requests()) == 1
    await c.close()


async def test_retry_parse_errors_opt_in_retries_bad_bodies(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(text="<html>proxy error</html>")
    httpx_mock.add_response(json=HITS)
    c = connector(retry_parse_errors=True)
    assert len(await c.search("q", limit=1)) == 1
    await c.close()


async def test_retries_stop_after_max_retries_with_the_last_error(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, json={"message": "unavailable"}, is_reusable=True)
    c = connector(max_retries=2)
    with pytest.raises(ConnectorAPIError) as caught:
        await c.search("q")
    assert caught.value.status_code == 503
    assert len(httpx_mock.get_requests()) == 3
    await c.close()


@pytest.mark.parametrize(
    ("failure", "error"),
    [(httpx.ReadTimeout("slow"), ConnectorTimeoutError), (httpx.ConnectError("down"), ConnectorNetworkError)],
)
async def test_exhausted_transport_failures_surface_mapped(
    httpx_mock: HTTPXMock, failure: Exception, error: type[Exception]
) -> None:
    httpx_mock.add_exception(failure, is_reusable=True)
    c = connector(max_retries=1)
    with pytest.raises(error) as caught:
        await c.search("q")
    assert caught.value.connector == "HNTest"
    assert len(httpx_mock.get_requests()) == 2
    await c.close()


async def test_backoff_is_exponential_and_capped_at_max_delay(httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    uncapped = connector(max_retries=3, base_delay=0.01, max_delay=10.0, enable_circuit_breaker=False)
    with pytest.raises(ConnectorAPIError):
        await uncapped.search("q")
    assert len(sleeps) == 3
    for n, delay in enumerate(sleeps):  # base * 2**n plus jitter in [0, base]
        assert 0.01 * 2**n <= delay <= 0.01 * 2**n + 0.01

    sleeps.clear()
    capped = connector(max_retries=4, base_delay=1.0, max_delay=0.05, enable_circuit_breaker=False)
    with pytest.raises(ConnectorAPIError):
        await capped.search("q")
    assert sleeps == [0.05] * 4
    await uncapped.close()
    await capped.close()


async def test_retry_after_is_honoured(httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "2"})
    httpx_mock.add_response(json=HITS)
    c = connector(max_delay=30.0)
    assert len(await c.search("q", limit=1)) == 1
    assert sleeps == [2.0]
    await c.close()


async def test_retry_after_http_date_is_honoured(httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    httpx_mock.add_response(status_code=429, headers={"Retry-After": when})
    httpx_mock.add_response(json=HITS)
    c = connector(max_delay=30.0)
    await c.search("q", limit=1)
    assert len(sleeps) == 1 and 1.5 <= sleeps[0] <= 3.0
    await c.close()


async def test_retry_after_is_waited_in_full_not_cut_to_max_delay(httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "20"})
    httpx_mock.add_response(json=HITS)
    c = connector(max_delay=0.05, max_retry_wait=30)
    await c.search("q", limit=1)
    assert sleeps == [20.0]  # was min(20, max_delay): a request the server had forbidden
    await c.close()


async def test_github_403_rate_limit_is_retried(httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    reset = str(int(time.time()) + 1)
    httpx_mock.add_response(status_code=403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
                            json={"message": "API rate limit exceeded"})
    httpx_mock.add_response(json=HITS)
    c = connector(max_delay=5.0)
    assert len(await c.search("q", limit=1)) == 1
    assert len(sleeps) == 1 and 0.0 <= sleeps[0] <= 1.0
    await c.close()


async def test_every_failed_attempt_counts_on_the_breaker(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    c = connector(max_retries=2, circuit_failure_threshold=10)
    with pytest.raises(ConnectorAPIError):
        await c.search("q")
    assert c.breaker.failures == 3 and c.breaker.state is CircuitState.CLOSED
    await c.close()


async def test_breaker_opening_mid_retry_stops_the_retries(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    c = connector(max_retries=5, circuit_failure_threshold=2, circuit_cooldown_seconds=30.0)
    with pytest.raises(ConnectorCircuitOpenError) as caught:
        await c.search("q")
    assert 0 < caught.value.cooldown_remaining <= 30.0 and caught.value.connector == "HNTest"
    assert len(httpx_mock.get_requests()) == 2
    with pytest.raises(ConnectorCircuitOpenError):  # fails fast: no request while open
        await c.search("q")
    assert len(httpx_mock.get_requests()) == 2
    await c.close()


async def test_an_answered_client_error_does_not_count_as_a_breaker_failure(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503)
    httpx_mock.add_response(status_code=404)
    c = connector(max_retries=3, circuit_failure_threshold=10)
    with pytest.raises(ConnectorNotFoundError):
        await c.search("q")
    assert c.breaker.failures == 0
    await c.close()


async def test_breaker_is_shared_by_connectors_of_the_same_host(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    first = connector(max_retries=0, circuit_failure_threshold=1)
    second = connector(max_retries=0)
    assert first.breaker is second.breaker
    with pytest.raises(ConnectorAPIError):
        await first.search("q")
    with pytest.raises(ConnectorCircuitOpenError):
        await second.search("q")
    assert connector(enable_circuit_breaker=False).breaker is None
    await first.close()
    await second.close()


async def test_concurrent_searches_share_one_client(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(json=HITS, is_reusable=True)
    c = connector(max_concurrency=2)
    results = await asyncio.gather(*(c.search("q", limit=1) for _ in range(10)))
    assert all(len(r) == 1 for r in results) and len(httpx_mock.get_requests()) == 10
    await c.close()


# --- Retry-After, end to end (issue 13) and 429s on the breaker (issue 12) -----------------------

def answers(httpx_mock: HTTPXMock, *replies: httpx.Response, received: asyncio.Event | None = None
            ) -> list[tuple[float, float, str]]:
    """Serve ``replies`` in order; return (monotonic, wall-clock, query) of every request as the mock receives it."""
    seen: list[tuple[float, float, str]] = []
    queue = list(replies)

    def reply(request: httpx.Request) -> httpx.Response:
        seen.append((time.monotonic(), time.time(), request.url.params.get("query", "")))
        if received is not None:
            received.set()
        return queue.pop(0)

    httpx_mock.add_callback(reply, is_reusable=True)
    return seen


def limited(status: int = 429, body: str = "slow down", **headers: str) -> httpx.Response:
    """A rate-limit answer with ``headers`` (Retry_After -> Retry-After)."""
    return httpx.Response(status, headers={k.replace("_", "-"): v for k, v in headers.items()}, json={"message": body})


async def test_retry_after_beyond_max_retry_wait_raises_after_exactly_one_request(
        httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    seen = answers(httpx_mock, limited(Retry_After="120"), httpx.Response(200, json=HITS))
    c = connector(max_retries=3, max_retry_wait=5)
    with pytest.raises(ConnectorRateLimitError) as caught:
        await c.search("q", limit=1)
    assert caught.value.retry_after == 120.0 and caught.value.status_code == 429
    assert len(seen) == 1 and sleeps == []  # no request inside the window the server forbade, no wait either
    await c.close()


async def test_retry_after_within_max_retry_wait_holds_the_next_request_back(httpx_mock: HTTPXMock) -> None:
    seen = answers(httpx_mock, limited(Retry_After="1"), httpx.Response(200, json=HITS))
    c = connector(max_retry_wait=5)  # max_delay 0.05 must not cut the server's wait short
    assert len(await c.search("q", limit=1)) == 1
    assert len(seen) == 2 and seen[1][0] - seen[0][0] >= 1.0
    await c.close()


async def test_retry_after_http_date_is_never_anticipated(httpx_mock: HTTPXMock) -> None:
    allowed = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)  # HTTP dates have whole seconds
    soon, far = (format_datetime(allowed + timedelta(seconds=s), usegmt=True) for s in (0, 298))
    seen = answers(httpx_mock, limited(Retry_After=soon), httpx.Response(200, json=HITS), limited(Retry_After=far))
    c = connector(max_retry_wait=5)  # max_delay is 0.05 s
    await c.search("q", limit=1)
    assert seen[1][1] >= allowed.timestamp() - 0.001  # the retry went at the named second, not before
    with pytest.raises(ConnectorRateLimitError) as caught:
        await c.search("q", limit=1)
    assert len(seen) == 3 and 295 <= caught.value.retry_after <= 300
    await c.close()


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "90"}, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "{reset}"}],
    ids=["retry-after", "ratelimit-reset"],
)
async def test_github_secondary_limit_403_beyond_the_wait_limit_is_raised_with_its_wait(
        httpx_mock: HTTPXMock, headers: dict[str, str]) -> None:
    reset = str(int(time.time()) + 90)
    seen = answers(httpx_mock, limited(403, "You have exceeded a secondary rate limit",
                                       **{k.replace("-", "_"): v.format(reset=reset) for k, v in headers.items()}))
    gh = GitHubConnector(base_delay=0.01, max_delay=0.05, rate_limit=False, max_retry_wait=5)
    with pytest.raises(ConnectorRateLimitError) as caught:
        await gh.search("x", limit=1)
    assert len(seen) == 1 and caught.value.status_code == 403 and 85 <= caught.value.retry_after <= 90
    await gh.close()


async def test_github_secondary_limit_without_headers_waits_a_minute_then_doubles(
        httpx_mock: HTTPXMock, sleeps: list[float]) -> None:
    secondary = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
    seen = answers(httpx_mock, limited(403, secondary), limited(403, secondary))
    gh = GitHubConnector(base_delay=0.01, max_delay=0.05, rate_limit=False)  # max_retry_wait: the 60 s default
    with pytest.raises(ConnectorRateLimitError) as caught:
        await gh.search("x", limit=1)
    assert sleeps == [60.0] and len(seen) == 2  # GitHub: "wait for at least one minute", then longer
    assert caught.value.retry_after == 120.0  # beyond 60 s: raised for a later (Dagster) retry
    await gh.close()


class PatientAPI(HNTestConnector):
    """An API documenting a 7 s wait after a 429 that names none."""

    RATE_LIMIT_BACKOFF = 7.0


@pytest.mark.parametrize(
    ("make", "first_wait"),
    [(lambda: connector(), 30.0), (lambda: PatientAPI(base_url=BASE, max_delay=0.05), 7.0),
     (lambda: GitHubConnector(max_delay=0.05, rate_limit=False), 60.0)],
    ids=["default", "per-class", "github"],
)
async def test_a_429_without_headers_backs_off_as_the_api_documents(
        httpx_mock: HTTPXMock, sleeps: list[float], make: Any, first_wait: float) -> None:
    answers(httpx_mock, limited(), httpx.Response(200, json={"total_count": 0, "items": [], **HITS}))
    c = make()
    await c.search("q", limit=1)
    assert sleeps == [first_wait]  # not the 1-2 s of plain backoff, nor max_delay
    await c.close()


def test_max_retry_wait_is_a_validated_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert connector().max_retry_wait == 60.0
    monkeypatch.setenv("ARAGORA_MAX_RETRY_WAIT", "15")
    assert connector().max_retry_wait == 15.0 and connector(max_retry_wait=0).max_retry_wait == 0.0
    monkeypatch.setenv("ARAGORA_MAX_RETRY_WAIT", "soon")
    with pytest.raises(ConnectorValidationError, match=r"ARAGORA_MAX_RETRY_WAIT must be a number of seconds >= 0"):
        connector()
    with pytest.raises(ConnectorValidationError, match="max_retry_wait must be"):
        connector(max_retry_wait=-1)


async def test_five_429s_in_a_row_keep_the_breaker_closed(httpx_mock: HTTPXMock) -> None:
    seen = answers(httpx_mock, *[limited(Retry_After="0")] * 5, httpx.Response(200, json=HITS))
    c = connector(max_retries=5, circuit_failure_threshold=5)
    assert len(await c.search("q", limit=1)) == 1  # a rate-limited but healthy API: no ConnectorCircuitOpenError
    assert len(seen) == 6 and c.breaker.state is CircuitState.CLOSED and c.breaker.failures == 0
    await c.close()


async def test_five_429s_in_a_row_keep_an_integration_breaker_closed(httpx_mock: HTTPXMock, realapi: Any) -> None:
    seen = answers(httpx_mock, *[limited(Retry_After="0")] * 5, httpx.Response(200, json=realapi(
        "stripe/customers_list.json")))
    creds = StripeCredentials(secret_key="sk_test_51NzTestKeyAbcdefGhijklmnop")
    async with StripeConnector(creds, max_retries=5, circuit_failure_threshold=5, rate_limit=False) as stripe:
        assert len([c async for c in stripe.list_customers()]) == 10
        assert len(seen) == 6 and stripe.breaker.state is CircuitState.CLOSED and stripe.breaker.failures == 0


async def test_a_rate_limited_request_frees_its_slot_while_it_waits(httpx_mock: HTTPXMock) -> None:
    received = asyncio.Event()
    seen = answers(httpx_mock, limited(Retry_After="1"), httpx.Response(200, json=HITS),
                   httpx.Response(200, json=HITS), received=received)
    c = connector(max_concurrency=1, rate_limit=(1000, 1.0), max_retry_wait=5)
    first = asyncio.create_task(c.search("first", limit=1))
    await received.wait()  # the first request is answered 429 before the second starts
    second = asyncio.create_task(c.search("second", limit=1))
    await asyncio.gather(first, second)
    assert [query for _, _, query in seen] == ["first", "second", "first"]  # the second went during the wait
    assert seen[2][0] - seen[0][0] >= 1.0 and seen[1][0] < seen[2][0]
    await c.close()


def test_ratelimit_reset_is_read_and_a_wait_that_is_not_finite_is_ignored() -> None:
    assert parse_retry_after({"ratelimit-remaining": "0", "ratelimit-reset": "42"}) == 42.0  # PagerDuty
    assert parse_retry_after({"RateLimit-Reset": "7"}) == 7.0
    assert parse_retry_after({"Retry-After": "inf"}) is None  # never a RetryRequested for ever
    assert parse_retry_after({"Retry-After": "nan", "X-RateLimit-Reset": "5"}) == 5.0
    assert parse_retry_after({"X-RateLimit-Reset": "inf"}) is None
