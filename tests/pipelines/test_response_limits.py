"""An answer over a response limit fails its materialization at once, with the limit named, and is not retried."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dagster import DagsterEventType, RetryPolicy

from aragora_pipelines.definitions import evidence_partitions
from assets.evidence import evidence_asset
from tests.pipelines.test_assets import DAY, HN_FAST, _hn_body

HN = "https://hn.example/api/v1"


@pytest.mark.parametrize(("body", "options", "message"), [
    (b"[" * 2000 + b"]" * 2000, {}, "nests 2000 levels deep, over max_json_depth=256"),
    (json.dumps(_hn_body()).encode(), {"max_response_bytes": 1000}, "is over max_response_bytes=1000"),
], ids=["deep-json", "resource-option-cap"])
def test_a_response_over_a_limit_fails_the_step_without_retries(
    httpx_mock: Any, run_assets: Any, store: Any, body: bytes, options: dict[str, Any], message: str
) -> None:
    # the resource retries parse errors and the policy allows a retry: neither may repeat a limit's failure
    asset = evidence_asset("hackernews", partitions_def=evidence_partitions, has_time_axis=True,
                           retry_policy=RetryPolicy(max_retries=1))
    httpx_mock.add_response(content=body, headers={"Content-Type": "application/json"})
    result = run_assets([asset], DAY, hackernews={"base_url": HN, **HN_FAST, "options": options})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert message in str(failure.event_specific_data.error)
    assert not [e for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(httpx_mock.get_requests()) == 1
    assert not store.path.exists() or store.counts()["evidence"] == 0
