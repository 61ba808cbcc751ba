"""BaseConnector against the loopback simulator's injected faults: 503, 429, hangs, truncated bodies, breakers."""

from __future__ import annotations

import asyncio
import time

import pytest

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorCircuitOpenError,
    ConnectorParseError,
    ConnectorTimeoutError,
)
from connectors.resilience import CircuitState
from tests.connectors.core_support import HNTestConnector

FAST = {"base_delay": 0.01, "max_delay": 0.05}


async def test_503s_are_retried_until_the_call_succeeds(make_sim) -> None:
    sim = make_sim(records=50, fail_rate=0.5)
    connector = HNTestConnector(base_url=sim.hn, max_retries=20, circuit_failure_threshold=50, **FAST)
    results = await connector.search("retry", limit=5)
    assert len(results) == 5
    stats = sim.stats()
    assert stats["faults"]["fail"] >= 1, "the simulator's seeded rolls must inject at least one 503 here"
    assert stats["requests"] == stats["faults"]["fail"] + 1
    await connector.close()


async def test_a_429_with_retry_after_waits_about_that_long(make_sim) -> None:
    sim = make_sim(records=50, ratelimit_every=2)
    connector = HNTestConnector(base_url=sim.hn, max_retries=3, base_delay=0.01, max_delay=5.0)
    await connector.search("first", limit=1)  # request 1 is answered
    started = time.monotonic()
    assert len(await connector.search("second", limit=1)) == 1  # request 2: 429 Retry-After: 1, then request 3
    assert time.monotonic() - started >= 0.95
    assert sim.stats()["faults"]["ratelimit"] == 1 and sim.stats()["requests"] == 3
    await connector.close()


async def test_a_hang_longer_than_the_timeout_becomes_a_timeout_error(make_sim) -> None:
    sim = make_sim(records=50, hang_rate=1.0, hang_s=2)
    connector = HNTestConnector(base_url=sim.hn, timeout=0.3, max_retries=1, **FAST)
    started = time.monotonic()
    with pytest.raises(ConnectorTimeoutError) as caught:
        await connector.search("hang")
    assert caught.value.connector == "HNTest"
    assert time.monotonic() - started < 1.9  # gave up on its own timeout, not the server's 2 s hang
    assert sim.stats()["requests"] == 2  # a timeout is retried
    await connector.close()


async def test_a_truncated_body_is_a_parse_error_and_not_retried(make_sim) -> None:
    sim = make_sim(records=50, garbage_rate=1.0)
    connector = HNTestConnector(base_url=sim.hn, max_retries=3, **FAST)
    with pytest.raises(ConnectorParseError, match="not valid JSON"):
        await connector.search("garbage", limit=5)
    stats = sim.stats()
    assert stats["requests"] == 1 and stats["faults"]["garbage"] == 1
    await connector.close()


async def test_breaker_opens_fails_fast_half_opens_and_reopens_on_a_failing_service(make_sim) -> None:
    sim = make_sim(records=50, fail_rate=1.0)
    connector = HNTestConnector(
        base_url=sim.hn, max_retries=0, circuit_failure_threshold=2, circuit_cooldown_seconds=0.2, **FAST
    )
    breaker = connector.breaker

    for _ in range(2):  # two consecutive failures open it
        with pytest.raises(ConnectorAPIError):
            await connector.search("down")
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(ConnectorCircuitOpenError) as caught:  # fails fast without a request
        await connector.search("down")
    assert 0 < caught.value.cooldown_remaining <= 0.2
    assert sim.stats()["requests"] == 2

    await asyncio.sleep(0.25)
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(ConnectorAPIError):  # the trial call fails: open again, for a full cooldown
        await connector.search("down")
    assert breaker.state is CircuitState.OPEN and breaker.cooldown_remaining() > 0.1
    with pytest.raises(ConnectorCircuitOpenError):
        await connector.search("down")
    assert sim.stats()["requests"] == 3
    await connector.close()


async def test_breaker_closes_when_a_trial_succeeds_on_a_healthy_service(make_sim) -> None:
    sim = make_sim(records=50, latency_ms=250)
    breaker_settings = {"circuit_failure_threshold": 2, "circuit_cooldown_seconds": 0.2, "max_retries": 0, **FAST}
    # Same name and host, so both share one breaker: an impatient client trips it with timeouts,
    # a patient one is admitted as the half-open trial and closes it.
    impatient = HNTestConnector(base_url=sim.hn, timeout=0.05, **breaker_settings)
    patient = HNTestConnector(base_url=sim.hn, timeout=5.0, **breaker_settings)
    breaker = patient.breaker
    assert impatient.breaker is breaker

    for _ in range(2):
        with pytest.raises(ConnectorTimeoutError):
            await impatient.search("slow")
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(ConnectorCircuitOpenError):
        await patient.search("slow")

    await asyncio.sleep(0.25)
    assert breaker.state is CircuitState.HALF_OPEN
    assert len(await patient.search("ok", limit=3)) == 3  # the trial succeeds and closes it
    assert breaker.state is CircuitState.CLOSED and breaker.failures == 0
    assert len(await patient.search("ok", limit=3)) == 3
    await impatient.close()
    await patient.close()


async def test_health_check_reports_an_open_breaker(make_sim) -> None:
    sim = make_sim(records=10, fail_rate=1.0)
    connector = HNTestConnector(base_url=sim.hn, max_retries=0, circuit_failure_threshold=1, **FAST)
    assert (await connector.health_check())["healthy"] is True
    with pytest.raises(ConnectorAPIError):
        await connector.search("down")
    health = await connector.health_check()
    assert health["circuit_state"] == "open" and health["healthy"] is False
    assert sim.stats()["requests"] == 1  # health_check itself sends nothing
    await connector.close()
