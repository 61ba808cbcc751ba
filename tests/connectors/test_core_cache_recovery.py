"""The TTL/LRU cache (fake clock, concurrency) and the recovery strategies."""

from __future__ import annotations

import asyncio
import threading

import pytest

from connectors.cache import TTLCache
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorTimeoutError,
)
from connectors.recovery import RecoveryConfig, RecoveryStrategy, create_recovery_chain, with_recovery
from tests.connectors.core_support import FakeClock

STATS_KEYS = {"entries", "hits", "misses", "evictions", "expired", "max_entries", "ttl_seconds"}


# --- cache ----------------------------------------------------------------------------------------

def test_entries_expire_after_the_ttl() -> None:
    clock = FakeClock()
    cache: TTLCache[str] = TTLCache(max_entries=10, ttl_seconds=60, clock=clock)
    cache.put("a", "alpha")
    clock.advance(59.9)
    assert cache.get("a") == "alpha"
    clock.advance(0.1)
    assert cache.get("a") is None
    stats = cache.stats()
    assert (stats["entries"], stats["hits"], stats["misses"], stats["expired"]) == (0, 1, 1, 1)


def test_ttl_counts_from_the_last_put_not_the_last_get() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(ttl_seconds=10, clock=clock)
    cache.put("k", 1)
    clock.advance(8)
    assert cache.get("k") == 1
    clock.advance(3)
    assert cache.get("k") is None
    cache.put("k", 2)
    clock.advance(8)
    assert cache.get("k") == 2


def test_stats_count_live_entries_only_and_have_every_key() -> None:
    clock = FakeClock()
    cache: TTLCache[int] = TTLCache(max_entries=5, ttl_seconds=10, clock=clock)
    cache.put("old", 1)
    clock.advance(5)
    cache.put("new", 2)
    clock.advance(6)  # "old" is past its TTL but not yet removed
    stats = cache.stats()
    assert set(stats) == STATS_KEYS
    assert (stats["entries"], stats["max_entries"], stats["ttl_seconds"]) == (1, 5, 10)


def test_least_recently_used_entry_is_evicted() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=3, ttl_seconds=60, clock=FakeClock())
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        cache.put(key, value)
    assert cache.get("a") == 1  # "a" is now the most recently used; "b" the least
    cache.put("d", 4)
    assert cache.get("b") is None
    assert [cache.get(k) for k in ("a", "c", "d")] == [1, 3, 4]
    cache.put("c", 30)  # re-putting refreshes recency and does not evict
    assert cache.stats()["evictions"] == 1 and len(cache) == 3


def test_delete_clear_and_invalid_settings() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=3, ttl_seconds=60)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.delete("a")
    cache.delete("missing")
    assert cache.get("a") is None and cache.get("b") == 2
    cache.clear()
    assert len(cache) == 0 and cache.stats()["hits"] == 1  # statistics survive clear()
    for bad in ({"max_entries": 0}, {"ttl_seconds": 0}):
        with pytest.raises(ValueError):
            TTLCache(**bad)


async def test_concurrent_asyncio_tasks_see_a_consistent_cache() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=20, ttl_seconds=60)

    async def worker(n: int) -> None:
        for i in range(50):
            cache.put((n, i), i)
            await asyncio.sleep(0)
            cache.get((n, i))

    await asyncio.gather(*(worker(n) for n in range(20)))
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 1000
    assert stats["evictions"] == 1000 - 20 and stats["entries"] == 20


def test_concurrent_threads_keep_exact_counts() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=50, ttl_seconds=60)
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        barrier.wait()
        for i in range(1000):
            cache.put((n, i), i)
            cache.get((n, i - 1))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = cache.stats()
    assert stats["hits"] + stats["misses"] == 8000
    assert stats["evictions"] == 8000 - 50 and len(cache) == 50


# --- recovery -------------------------------------------------------------------------------------

FAST = {"base_delay": 0.001, "max_delay": 0.005}


class Flaky:
    """An async callable that raises the given errors in turn, then returns ``value``."""

    def __init__(self, *errors: Exception, value: object = "ok") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


def test_strategy_values() -> None:
    assert {s.name for s in RecoveryStrategy} == {  # the guide's four, then the two that know the connector
        "EXPONENTIAL_BACKOFF", "RETRY_ONCE", "FALLBACK", "FAIL_FAST", "REFRESH_CREDENTIALS", "WAIT_FOR_RATE_LIMIT"}
    assert RecoveryStrategy("retry_once") is RecoveryStrategy.RETRY_ONCE


async def test_exponential_backoff_retries_up_to_max_retries() -> None:
    call = Flaky(*[ConnectorTimeoutError("slow")] * 3)
    wrapped = with_recovery(RecoveryConfig(RecoveryStrategy.EXPONENTIAL_BACKOFF, max_retries=3, **FAST))(call)
    assert await wrapped() == "ok" and call.calls == 4

    exhausted = Flaky(*[ConnectorTimeoutError("slow")] * 5)
    with pytest.raises(ConnectorTimeoutError):
        await with_recovery(RecoveryConfig(max_retries=2, **FAST))(exhausted)()
    assert exhausted.calls == 3


async def test_with_recovery_keeps_arguments_and_metadata() -> None:
    @with_recovery(RecoveryConfig(max_retries=1, **FAST))
    async def add(a: int, b: int = 0) -> int:
        """Add two numbers."""
        return a + b

    assert await add(2, b=3) == 5
    assert add.__name__ == "add" and add.__doc__ == "Add two numbers."


async def test_retry_once_retries_exactly_once() -> None:
    call = Flaky(ConnectorAPIError("5xx", status_code=503), ConnectorAPIError("5xx", status_code=503))
    with pytest.raises(ConnectorAPIError):
        await with_recovery(RecoveryConfig(RecoveryStrategy.RETRY_ONCE, **FAST))(call)()
    assert call.calls == 2


async def test_retry_once_then_fallback_chain() -> None:
    chain = create_recovery_chain([
        RecoveryConfig(strategy=RecoveryStrategy.RETRY_ONCE, **FAST),
        RecoveryConfig(strategy=RecoveryStrategy.FALLBACK, fallback_value=[]),
    ])
    failing = Flaky(*[ConnectorTimeoutError("slow")] * 5)
    assert await chain(failing)() == [] and failing.calls == 2

    recovers = Flaky(ConnectorTimeoutError("slow"), value=["evidence"])
    assert await chain(recovers)() == ["evidence"] and recovers.calls == 2


async def test_fail_fast_does_not_retry() -> None:
    call = Flaky(ConnectorTimeoutError("slow"))
    with pytest.raises(ConnectorTimeoutError):
        await with_recovery(RecoveryConfig(RecoveryStrategy.FAIL_FAST, **FAST))(call)()
    assert call.calls == 1


@pytest.mark.parametrize("error", [ConnectorAuthError("bad key"), ConnectorNotFoundError("gone"), ValueError("bug")])
async def test_non_retryable_errors_are_not_retried(error: Exception) -> None:
    call = Flaky(error)
    with pytest.raises(type(error)):
        await with_recovery(RecoveryConfig(max_retries=5, **FAST))(call)()
    assert call.calls == 1


async def test_fallback_covers_connector_errors_only() -> None:
    fallback = with_recovery(RecoveryConfig(RecoveryStrategy.FALLBACK, fallback_value="cached"))
    assert await fallback(Flaky(ConnectorAuthError("bad key")))() == "cached"
    with pytest.raises(ZeroDivisionError):  # a programming error is not papered over
        await fallback(Flaky(ZeroDivisionError()))()


def test_an_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        create_recovery_chain([])
