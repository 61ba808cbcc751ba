"""Circuit breakers, the tenacity-based retry loop, and per-host rate limiting.

The breaker has a real half-open state: after the cooldown only a bounded number of
trial calls pass; a trial failure reopens it and enough trial successes close it.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from connectors.exceptions import (
    ConnectorCircuitOpenError,
    ConnectorRateLimitError,
    ConnectorValidationError,
    is_retryable_error,
    map_exception,
)
from connectors.progress import notify
from connectors.redact import get_logger

T = TypeVar("T")
Clock = Callable[[], float]
log = get_logger(__name__)


class CircuitState(StrEnum):
    """The three states of a circuit breaker."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Thread-safe breaker: closed -> open after N consecutive failures -> half-open -> closed."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        cooldown_seconds: float = 60.0,
        half_open_max_calls: int = 1,
        success_threshold: int = 1,
        clock: Clock = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or half_open_max_calls < 1 or success_threshold < 1:
            raise ValueError("failure_threshold, half_open_max_calls and success_threshold must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self.half_open_max_calls = half_open_max_calls
        self.success_threshold = success_threshold
        self._clock = clock
        self._lock = threading.RLock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials_in_flight = 0
        self._trial_successes = 0
        self._last_trial_at = 0.0

    def _refresh(self) -> None:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.cooldown_seconds:
            self._state = CircuitState.HALF_OPEN
            self._trials_in_flight = 0
            self._trial_successes = 0

    @property
    def state(self) -> CircuitState:
        """The current state, moving open -> half-open once the cooldown has passed."""
        with self._lock:
            self._refresh()
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures counted while closed."""
        return self._failures

    def can_proceed(self) -> bool:
        """Whether a call may go ahead now; in half-open this admits (and counts) a trial call."""
        with self._lock:
            self._refresh()
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                return False
            now = self._clock()
            # A trial that never reported back must not wedge the breaker forever.
            if self._trials_in_flight and now - self._last_trial_at >= self.cooldown_seconds:
                self._trials_in_flight = 0
            if self._trials_in_flight < self.half_open_max_calls:
                self._trials_in_flight += 1
                self._last_trial_at = now
                return True
            return False

    def record_success(self) -> None:
        """Count a success: resets failures when closed; closes after enough half-open trials."""
        with self._lock:
            self._refresh()
            if self._state is CircuitState.HALF_OPEN:
                self._trials_in_flight = max(0, self._trials_in_flight - 1)
                self._trial_successes += 1
                if self._trial_successes >= self.success_threshold:
                    self._close()
            else:
                self._failures = 0

    def record_failure(self) -> None:
        """Count a failure: opens after the threshold when closed, reopens at once when half-open."""
        with self._lock:
            self._refresh()
            if self._state is CircuitState.HALF_OPEN:
                self._open()
            elif self._state is CircuitState.CLOSED:
                self._failures += 1
                if self._failures >= self.failure_threshold:
                    self._open()

    def cooldown_remaining(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when not open)."""
        with self._lock:
            self._refresh()
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self.cooldown_seconds - (self._clock() - self._opened_at))

    def reset(self) -> None:
        """Force the breaker closed (operators and tests)."""
        with self._lock:
            self._close()

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._trials_in_flight = 0
        self._trial_successes = 0
        log.warning("circuit %s opened for %.1fs", self.name, self.cooldown_seconds)

    def _close(self) -> None:
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._trials_in_flight = 0
        self._trial_successes = 0

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value}, failures={self._failures})"


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def get_circuit_breaker(name: str, **config: Any) -> CircuitBreaker:
    """The process-wide breaker called ``name``; ``config`` applies when it is first created."""
    with _breakers_lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = _breakers[name] = CircuitBreaker(name, **config)
        return breaker


def reset_circuit_breakers() -> None:
    """Forget every named breaker (a fresh process state, for tests and long-lived workers)."""
    with _breakers_lock:
        _breakers.clear()


# --- Rate limiting ------------------------------------------------------------------------

class AsyncRateLimiter:
    """At most ``rate`` requests per ``period`` seconds, evenly paced (GCRA), loop- and thread-safe.

    Slots are reserved under a thread lock and waited for with ``asyncio.sleep``, so one
    limiter serves every event loop and thread in the process.
    """

    def __init__(self, rate: float, period: float = 1.0, burst: int = 1, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or period <= 0 or burst < 1:
            raise ValueError("rate and period must be > 0 and burst >= 1")
        self.rate, self.period, self.burst = rate, period, burst
        self.interval = period / rate
        self._clock = clock
        self._lock = threading.Lock()
        self._tat = 0.0

    def reserve(self) -> float:
        """Reserve the next slot and return how long to wait for it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            self._tat = tat + self.interval
            return max(0.0, tat - now - (self.burst - 1) * self.interval)

    async def acquire(self) -> None:
        """Wait until a request may be sent."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


RATE_LIMIT_REDIS_ENV = "ARAGORA_RATE_LIMIT_REDIS_URL"
RATE_LIMIT_REDIS_PREFIX = "aragora:ratelimit:"
# GCRA in one atomic step on the server's clock: every process using the key shares one schedule.
_GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or '0'), now)
redis.call('SET', KEYS[1], string.format('%.6f', tat + interval), 'PX', math.ceil((tat + interval - now) * 1000) + 1000)
return string.format('%.6f', math.max(0, tat - now - (burst - 1) * interval))
"""


class RedisRateLimiter(AsyncRateLimiter):
    """The same pacing with its state in Redis, so all workers of a deployment share one API's limit.

    If Redis cannot be reached, a request is paced by this process alone (logged), not failed.
    """

    def __init__(self, url: str, key: str, rate: float, period: float = 1.0, burst: int = 1,
                 prefix: str = RATE_LIMIT_REDIS_PREFIX) -> None:
        super().__init__(rate, period, burst)
        try:
            import redis
        except ImportError as exc:
            raise ImportError(f"{RATE_LIMIT_REDIS_ENV} needs the redis package: pip install -c constraints.txt "
                              "-e '.[scale]'") from exc
        self._redis_errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._script = self._client.register_script(_GCRA_SCRIPT)
        self.key = f"{prefix}{key}"

    def reserve(self) -> float:
        """Reserve the next slot of the shared schedule and return how long to wait for it."""
        try:
            return float(self._script(keys=[self.key], args=[self.interval, self.burst]))
        except self._redis_errors as exc:
            log.warning("shared rate limit %s unavailable (%s); pacing in this process only", self.key,
                        type(exc).__name__)
            return super().reserve()


_limiters: dict[tuple[str, str], AsyncRateLimiter] = {}
_limiters_lock = threading.Lock()


def get_rate_limiter(key: str, rate: float, period: float = 1.0, burst: int = 1) -> AsyncRateLimiter:
    """The limiter for ``key`` (usually a host), created on first use: shared by every process through Redis when
    ``ARAGORA_RATE_LIMIT_REDIS_URL`` is set (several workers calling one API), else process-wide."""
    url = os.environ.get(RATE_LIMIT_REDIS_ENV, "").strip()
    with _limiters_lock:
        limiter = _limiters.get((url, key))
        if limiter is None:
            limiter = _limiters[(url, key)] = (RedisRateLimiter(url, key, rate, period, burst) if url
                                               else AsyncRateLimiter(rate, period, burst))
        return limiter


# --- Retry --------------------------------------------------------------------------------

MAX_RETRY_WAIT_ENV = "ARAGORA_MAX_RETRY_WAIT"
DEFAULT_MAX_RETRY_WAIT = 60.0  # seconds a request may wait out a rate limit in-process
DEFAULT_RATE_LIMIT_BACKOFF = 30.0  # first wait after a rate limit that names no time, for APIs that document none


def max_retry_wait_setting(value: float | None = None, connector: str | None = None) -> float:
    """Seconds a rate-limited request may wait in-process: ``value``, else ``ARAGORA_MAX_RETRY_WAIT``, else 60.

    A longer server-imposed wait is raised to the caller instead (Dagster retries the step after it).
    """
    name = "max_retry_wait"
    if value is None:
        text = os.environ.get(MAX_RETRY_WAIT_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_RETRY_WAIT
        name = MAX_RETRY_WAIT_ENV
        try:
            value = float(text)
        except ValueError:
            value = text  # type: ignore[assignment]  # refused below, with the text shown
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value >= 0):
        raise ConnectorValidationError(
            f"{name} must be a number of seconds >= 0 (0: never wait in-process), got {value!r}", connector=connector
        )
    return float(value)


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    operation: str,
    connector: str | None = None,
    max_retries: int = 3,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    breaker: CircuitBreaker | None = None,
    retry_on: Callable[[BaseException], bool] = is_retryable_error,
    max_retry_wait: float | None = None,
    rate_limit_backoff: float | None = DEFAULT_RATE_LIMIT_BACKOFF,
) -> T:
    """Run ``call`` with retries on retryable errors, exponential jittered backoff and Retry-After.

    A server-imposed wait (``retry_after``) is waited out in full, never cut to ``max_delay``, when it is
    at most ``max_retry_wait`` (see :func:`max_retry_wait_setting`); a longer one is raised at once, without
    another request, for the caller to retry later. A rate limit naming no wait gets ``rate_limit_backoff``
    seconds, doubling with each such answer (the API's documented backoff; None: plain backoff).

    Every attempt asks the breaker first (an open breaker raises
    :class:`ConnectorCircuitOpenError`, which is never retried here) and reports its
    outcome to it: retryable failures count as failures; answered requests, rate limits included
    (a rate limit is not an outage), as successes.
    """
    wait_limit = max_retry_wait_setting(max_retry_wait, connector)
    unannounced = 0  # rate limits answered without a wait so far

    async def attempt() -> T:
        nonlocal unannounced
        if breaker is not None and not breaker.can_proceed():
            remaining = breaker.cooldown_remaining()
            raise ConnectorCircuitOpenError(
                f"{operation}: circuit {breaker.name!r} is open, {remaining:.1f}s remaining",
                connector=connector,
                cooldown_remaining=remaining,
            )
        try:
            result = await call()
        except BaseException as exc:
            mapped = map_exception(exc, operation, connector)
            limited = isinstance(mapped, ConnectorRateLimitError)
            if isinstance(mapped, ConnectorRateLimitError) and mapped.retry_after is None and rate_limit_backoff:
                mapped.retry_after = rate_limit_backoff * 2.0 ** min(unannounced, 32)
                unannounced += 1
            if breaker is not None and isinstance(mapped, Exception):
                if is_retryable_error(mapped) and not limited:
                    breaker.record_failure()
                else:
                    breaker.record_success()  # the service answered: the request was at fault, or too early
            if mapped is exc:
                raise
            raise mapped from exc
        if breaker is not None:
            breaker.record_success()
        return result

    def backoff(attempt_number: int) -> float:
        # base * 2**(n-1) plus jitter in [0, base]; computed here because tenacity's
        # wait_exponential_jitter(initial=...) is deprecated and its replacement is version-dependent.
        return base_delay * 2.0 ** min(attempt_number - 1, 64) + random.uniform(0, base_delay)

    def should_retry(exc: BaseException) -> bool:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and retry_after > wait_limit:
            log.info("%s: the server asks for a %.0fs wait, beyond max_retry_wait %.0fs; raising it for a later retry",
                     operation, retry_after, wait_limit)
            return False
        return retry_on(exc)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:  # never sooner than the server allows (should_retry kept it within the limit)
            return float(retry_after)
        return min(backoff(state.attempt_number), max_delay)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.info("%s: attempt %d failed (%s); retrying", operation, state.attempt_number, exc)
        sleep = state.next_action.sleep if state.next_action else 0.0
        status = getattr(exc, "status_code", None)
        detail = f"HTTP {status}" if status else type(exc).__name__
        kind = "wait" if isinstance(exc, ConnectorRateLimitError) else "retry"
        notify(kind, connector or "", operation=operation, attempt=state.attempt_number, seconds=sleep,
               detail=detail)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception(should_retry),
        before_sleep=before_sleep,
        reraise=True,
    )
    return await retrying(attempt)
