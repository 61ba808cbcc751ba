"""Recovery strategies for async calls: backoff retries, a single retry, fallback, fail fast.

Retries go through :func:`connectors.resilience.retry_async`, the same loop the
connectors use, so backoff, jitter and Retry-After behave identically everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ParamSpec, TypeVar

from connectors.exceptions import ConnectorError, is_retryable_error
from connectors.redact import get_logger
from connectors.resilience import retry_async

P = ParamSpec("P")
T = TypeVar("T")
AsyncFn = Callable[P, Awaitable[T]]
log = get_logger(__name__)


class RecoveryStrategy(StrEnum):
    """How a failing call is recovered."""

    EXPONENTIAL_BACKOFF = "exponential_backoff"
    RETRY_ONCE = "retry_once"
    FALLBACK = "fallback"
    FAIL_FAST = "fail_fast"


@dataclass
class RecoveryConfig:
    """One recovery step: its strategy and knobs."""

    strategy: RecoveryStrategy = RecoveryStrategy.EXPONENTIAL_BACKOFF
    max_retries: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    fallback_value: Any = None
    retry_on: Callable[[BaseException], bool] = field(default=is_retryable_error)
    fallback_on: tuple[type[BaseException], ...] = (ConnectorError,)


def with_recovery(config: RecoveryConfig) -> Callable[[AsyncFn], AsyncFn]:
    """Decorate an async function with the strategy in ``config``."""

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
        name = getattr(fn, "__qualname__", "call")

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            strategy = config.strategy
            if strategy is RecoveryStrategy.FAIL_FAST:
                return await fn(*args, **kwargs)
            if strategy is RecoveryStrategy.FALLBACK:
                try:
                    return await fn(*args, **kwargs)
                except config.fallback_on as exc:
                    log.info("%s failed (%s); using the fallback value", name, exc)
                    return config.fallback_value
            retries = 1 if strategy is RecoveryStrategy.RETRY_ONCE else config.max_retries
            return await retry_async(
                lambda: fn(*args, **kwargs),
                operation=name,
                max_retries=retries,
                base_delay=config.base_delay,
                max_delay=config.max_delay,
                retry_on=config.retry_on,
            )

        return wrapper

    return decorate


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
