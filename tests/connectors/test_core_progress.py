"""Progress events from the request path: answered pages, retries with their wait, rate-limit pauses."""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.progress import ProgressEvent, notify, observe
from tests.connectors.core_support import HNTestConnector

BODY = {"hits": [{"objectID": "1", "title": "t", "story_text": "s", "url": "https://example.org/1",
                  "created_at": "2026-01-01T00:00:00Z"}]}


def test_a_retried_page_reports_the_failure_the_wait_and_the_answer(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=503, json={"message": "down"})
    httpx_mock.add_response(json=BODY)
    events: list[ProgressEvent] = []
    connector = HNTestConnector(base_url="http://hn.test", base_delay=0.01, rate_limit=False)
    with observe(events.append):
        asyncio.run(connector.search("x", limit=1))
    assert [(e.kind, e.status) for e in events] == [("response", 503), ("retry", None), ("response", 200)]
    retry = events[1]
    assert retry.connector == "HNTest" and retry.attempt == 1 and retry.detail == "HTTP 503" and retry.seconds > 0
    assert retry.operation == events[0].operation == "GET /search"


def test_a_429_is_reported_as_a_wait_and_pacing_as_a_rate_limit_wait(httpx_mock: Any) -> None:
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "0"}, json={"message": "slow down"})
    httpx_mock.add_response(json=BODY)
    httpx_mock.add_response(json=BODY)
    events: list[ProgressEvent] = []
    connector = HNTestConnector(base_url="http://paced.test", base_delay=0.01, rate_limit=(1, 0.05))

    async def two_searches() -> None:
        await connector.search("x", limit=1)
        await connector.search("y", limit=1)

    with observe(events.append):
        asyncio.run(two_searches())
    waits = [e for e in events if e.kind == "wait"]
    assert any(e.detail == "HTTP 429" for e in waits)
    assert any(e.detail.startswith("rate limit 1 per 0.05s") and e.seconds > 0 for e in waits)


def test_without_an_observer_nothing_is_reported_and_observers_do_not_leak() -> None:
    seen: list[ProgressEvent] = []
    notify("items", "x", count=1)  # no observer: a no-op
    with observe(seen.append):
        notify("items", "x", count=2)
    notify("items", "x", count=3)
    assert [e.count for e in seen] == [2]
