"""Recovery strategies for async calls: backoff retries, a single retry, fallback, fail fast, and the
ones that know the connector: credential refresh on an auth error, waiting out a rate limit, the
circuit breaker consulted before each retry, and an escalation callback when nothing worked.

Retries go through :func:`connectors.resilience.retry_async`, the same loop the
connectors use, so backoff, jitter and Retry-After behave identically everywhere.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorError,
    ConnectorRateLimitError,
    is_retryable_error,
    map_exception,
)
from connectors.redact import get_logger
from connectors.resilience import CircuitBreaker, CircuitState, retry_async

P = ParamSpec("P")
T = TypeVar("T")
AsyncFn = Callable[P, Awaitable[T]]
log = get_logger(__name__)


class RecoveryStrategy(StrEnum):
    """How a failing call is recovered.

    The guide's four, plus ``REFRESH_CREDENTIALS`` (on an auth error, read the credentials again once,
    then retry once) and ``WAIT_FOR_RATE_LIMIT`` (retry rate limits only, each after its Retry-After).
    """

    EXPONENTIAL_BACKOFF = "exponential_backoff"
    RETRY_ONCE = "retry_once"
    FALLBACK = "fallback"
    FAIL_FAST = "fail_fast"
    REFRESH_CREDENTIALS = "refresh_credentials"
    WAIT_FOR_RATE_LIMIT = "wait_for_rate_limit"


@dataclass
class RecoveryConfig:
    """One recovery step: its strategy and knobs.

    ``connector`` (any connector) lends its circuit breaker and its ``refresh_credentials``; ``breaker`` and
    ``refresh`` (sync or async, returning False when nothing changed) set them directly. An open breaker
    stops the retries with :class:`ConnectorCircuitOpenError`. ``max_retry_wait`` bounds a Retry-After
    waited out in-process (default ``ARAGORA_MAX_RETRY_WAIT``, else 60 s); a longer one is raised at once.
    ``on_escalate(error)`` (sync or async) is called when the error leaves this step: on the last step of
    a chain, when every strategy is exhausted.
    """

    strategy: RecoveryStrategy = RecoveryStrategy.EXPONENTIAL_BACKOFF
    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    fallback_value: Any = None
    retry_on: Callable[[BaseException], bool] = field(default=is_retryable_error)
    fallback_on: tuple[type[BaseException], ...] = (ConnectorError,)
    connector: Any = None
    breaker: CircuitBreaker | None = None
    refresh: Callable[[], Any] | None = None
    max_retry_wait: float | None = None
    on_escalate: Callable[[BaseException], Any] | None = None

    def __post_init__(self) -> None:
        self.strategy = RecoveryStrategy(self.strategy)
        if self.breaker is None and self.connector is not None:
            self.breaker = getattr(self.connector, "breaker", None)
        if self.refresh is None and self.connector is not None:
            self.refresh = getattr(self.connector, "refresh_credentials", None)
        if self.strategy is RecoveryStrategy.REFRESH_CREDENTIALS and self.refresh is None:
            raise ValueError(
                "RecoveryConfig(strategy=REFRESH_CREDENTIALS) needs connector=<a connector with "
                "refresh_credentials> or refresh=<a callable that reads the credentials again>"
            )


async def _settle(value: Any) -> Any:
    """``value``, awaited when it is awaitable (callbacks may be sync or async)."""
    return await value if inspect.isawaitable(value) else value


def _is_auth_error(exc: BaseException) -> bool:
    return isinstance(map_exception(exc, "call"), ConnectorAuthError)


def _is_rate_limit(exc: BaseException) -> bool:
    return isinstance(map_exception(exc, "call"), ConnectorRateLimitError)


def with_recovery(config: RecoveryConfig) -> Callable[[AsyncFn], AsyncFn]:
    """Decorate an async function with the strategy in ``config``."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        name = getattr(fn, "__qualname__", "call")

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await _recover(config, name, lambda: fn(*args, **kwargs))
            except Exception as exc:
                if config.on_escalate is not None:
                    log.warning("%s: recovery exhausted (%s); escalating", name, exc)
                    await _settle(config.on_escalate(exc))
                raise

        return wrapper

    return decorate


async def _recover(config: RecoveryConfig, name: str, call: Callable[[], Awaitable[T]]) -> T:
    """Run ``call`` under ``config``'s strategy; every call after the first asks the breaker first."""
    strategy, calls = config.strategy, 0

    async def attempt() -> T:
        nonlocal calls
        calls += 1
        breaker = config.breaker
        if calls > 1 and breaker is not None and breaker.state is CircuitState.OPEN:
            remaining = breaker.cooldown_remaining()
            raise ConnectorCircuitOpenError(
                f"{name}: circuit {breaker.name!r} is open, {remaining:.1f}s remaining; not retrying",
                cooldown_remaining=remaining,
            )
        return await call()

    if strategy is RecoveryStrategy.FAIL_FAST:
        return await call()
    if strategy is RecoveryStrategy.FALLBACK:
        try:
            return await call()
        except config.fallback_on as exc:
            log.info("%s failed (%s); using the fallback value", name, exc)
            return config.fallback_value
    if strategy is RecoveryStrategy.REFRESH_CREDENTIALS:
        try:
            return await attempt()
        except Exception as exc:
            if not _is_auth_error(exc) or config.refresh is None:
                raise
            log.info("%s: auth error (%s); reading the credentials again", name, exc)
            if await _settle(config.refresh()) is False:
                raise  # the same credentials would fail the same way
        return await attempt()
    retry_on = _is_rate_limit if strategy is RecoveryStrategy.WAIT_FOR_RATE_LIMIT else config.retry_on
    return await retry_async(
        attempt,
        operation=name,
        max_retries=1 if strategy is RecoveryStrategy.RETRY_ONCE else config.max_retries,
        base_delay=config.base_delay,
        max_delay=config.max_delay,
        retry_on=lambda exc: not isinstance(exc, ConnectorCircuitOpenError) and retry_on(exc),
        max_retry_wait=config.max_retry_wait,
    )


def create_recovery_chain(configs: Sequence[RecoveryConfig]) -> Callable[[AsyncFn], AsyncFn]:
    """A decorator applying ``configs`` in order: the first wraps the call, the last wraps them all.

    So ``[RETRY_ONCE, FALLBACK]`` retries once and only then falls back.
    """
    if not configs:
        raise ValueError("create_recovery_chain needs at least one RecoveryConfig")

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        wrapped = fn
        for config in configs:
            wrapped = with_recovery(config)(wrapped)
        return wrapped

    return decorate
