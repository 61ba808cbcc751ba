"""End to end: `aragora-pipelines backfill` against the real `dagster dev` and the simulator as HackerNews.

The command launches the backfill the UI's dialog launches and follows it; the webserver and the store must
then agree with it. Also pins what Dagster answers for a partition key in the wrong order.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aragora_pipelines.store import EvidenceStore
from tests.e2e.conftest import LOCATION, TOPIC, DagsterDev

pytestmark = pytest.mark.e2e

DAYS = ["2026-01-01", "2026-01-02"]  # the e2e schedule asks for 2026-01-04: its run stays apart
UNTIL = "2026-01-03"
PARTITIONS = [f"{day}|{TOPIC}" for day in DAYS]
CLI = Path(sys.executable).with_name("aragora-pipelines")
BACKFILL_TIMEOUT = 240.0
LAUNCHED = re.compile(r"^launched backfill (\w+): evidence_hackernews, 2 partitions \(2 days x 1 topic\); (\S+)$",
                      re.MULTILINE)
BACKFILL_RUNS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status partitionNames runs { runId status tags { key value } } }
  }
}"""
LAUNCH = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on Error { message }
  }
}"""


def day_start(day: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def test_the_cli_backfill_runs_every_partition_and_stores_the_simulators_records(dagster_dev: DagsterDev) -> None:
    result = subprocess.run(
        [str(CLI), "backfill", "hackernews", "--topic", TOPIC, "--since", DAYS[0], "--until", UNTIL,
         "--url", dagster_dev.url],
        capture_output=True, text=True, timeout=BACKFILL_TIMEOUT, check=False)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{dagster_dev.log_tail()}"
    launched = LAUNCHED.search(result.stdout)
    assert launched, result.stdout
    backfill_id, page = launched.groups()
    assert page == f"{dagster_dev.url}/runs/b/{backfill_id}"
    assert result.stdout.splitlines()[-1] == f"backfill {backfill_id} COMPLETED_SUCCESS: 2/2 partitions materialized"
    assert f"backfill {backfill_id}: 2/2 partitions done, 0 failed, 0 in progress (COMPLETED_SUCCESS)" in result.stderr

    # The webserver agrees: the backfill succeeded with one successful run per partition, all runs ended.
    state = dagster_dev.graphql(BACKFILL_RUNS, {"id": backfill_id})["partitionBackfillOrError"]
    assert state["status"] == "COMPLETED_SUCCESS"
    assert sorted(state["partitionNames"]) == PARTITIONS
    runs = {r["runId"]: {t["key"]: t["value"] for t in r["tags"]} | {"status": r["status"]} for r in state["runs"]}
    assert sorted(tags["dagster/partition"] for tags in runs.values()) == PARTITIONS
    assert {tags["status"] for tags in runs.values()} == {"SUCCESS"}
    assert {tags["dagster/code_location"] for tags in runs.values()} == {LOCATION}

    # The store holds exactly the simulator's records of those days, each day's loaded by that day's run.
    sim = dagster_dev.sim
    assert sim is not None
    store = EvidenceStore(dagster_dev.db_path, lock_timeout=60)
    ids = [r[0] for r in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews'")]
    truth = sim.truth("hn", since=day_start(DAYS[0]), until=day_start(UNTIL))
    assert len(ids) == len(set(ids)) == truth["count"] > 0
    assert hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest() == truth["sha256_sorted_ids"]
    loads = store.query("SELECT partition_key, status, rows_fetched FROM loads WHERE run_id IN (SELECT unnest(?)) "
                        "ORDER BY 1", [list(runs)])
    per_day = [sim.truth("hn", since=day_start(day), until=day_start(day) + timedelta(days=1))["count"]
               for day in DAYS]
    assert loads == [(key, "success", count) for key, count in zip(PARTITIONS, per_day, strict=True)]


def test_a_topic_that_is_not_a_partition_is_refused_by_the_cli(dagster_dev: DagsterDev) -> None:
    result = subprocess.run(
        [str(CLI), "backfill", "hackernews", "--topic", "no-such-topic", "--since", DAYS[0], "--until", DAYS[1],
         "--url", dagster_dev.url], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert f"topic 'no-such-topic' is not a partition of evidence_hackernews (partitions: {TOPIC}" in result.stderr


@pytest.mark.parametrize("key", [f"{TOPIC}|{DAYS[0]}", f"{DAYS[0]}|no-such-topic"])
def test_graphql_finds_no_partition_for_a_reversed_or_unknown_key(dagster_dev: DagsterDev, key: str) -> None:
    """A day x topic key is ``date|topic`` (dimension names in order); the reverse names no partition."""
    data = dagster_dev.graphql(LAUNCH, {"params": {"assetSelection": [{"path": ["evidence_hackernews"]}],
                                                   "partitionNames": [key], "fromFailure": False, "tags": []}})
    assert data["launchPartitionBackfill"] == {"__typename": "PartitionKeysNotFoundError",
                                               "message": f"Partition keys `['{key}']` could not be found."}
