"""End to end, as a user runs the project: `dagster dev`, a backfill launched like the UI's dialog, the
daemon's schedule, and the UI in headless Chromium. Needs `make e2e` (Playwright) and Debian's chromium."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aragora_pipelines.backfill import LAUNCH as LAUNCH_BACKFILL  # the mutation the UI's dialog sends
from aragora_pipelines.store import EvidenceStore
from assets.freshness import CHECK_NAME
from tests.e2e.conftest import (
    LOCATION,
    REPOSITORY,
    SIM_RECORDS,
    TOPIC,
    DagsterDev,
    browser_page,
    screenshot,
    sim_records_on,
)
from tests.e2e.e2e_defs import SCHEDULE_DAY, e2e_every_minute_schedule

pytestmark = pytest.mark.e2e

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
BACKFILL_PARTITIONS = [f"{day}|{TOPIC}" for day in DAYS]  # multi-partition keys: dimensions by name, date|topic
# How long a wait may see no progress (no run queued, started or ended; no schedule tick) before it fails.
STALL_TIMEOUT = 240.0
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status partitionNames error { message }
      runs { runId status tags { key value } }
    }
    ... on Error { message }
  }
}"""
RUNS = """
query Runs($filter: RunsFilter) {
  runsOrError(filter: $filter) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on Error { message }
  }
}"""
SCHEDULE_TICKS = """
query Ticks($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { status ticks(limit: 20) { status runIds skipReason error { message } } } }
    ... on Error { message }
  }
}"""


@dataclass
class Backfill:
    """A finished backfill as the webserver reports it."""

    id: str
    status: str
    partitions: list[str]
    runs: list[dict[str, Any]]


def tag(run: dict[str, Any], key: str) -> str | None:
    """The value of one tag of a GraphQL run."""
    return next((t["value"] for t in run["tags"] if t["key"] == key), None)


def hackernews_ids(store: EvidenceStore) -> list[str]:
    """Source ids of every stored HackerNews evidence row."""
    return [r[0] for r in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews'")]


@pytest.fixture(scope="module")
def backfill(dagster_dev: DagsterDev) -> Backfill:
    """A backfill of evidence_hackernews over 3 days x 1 topic, launched the way the UI's dialog does, finished."""
    data = dagster_dev.graphql(LAUNCH_BACKFILL, {"params": {
        "assetSelection": [{"path": ["evidence_hackernews"]}], "partitionNames": BACKFILL_PARTITIONS,
        "fromFailure": False, "tags": [], "title": "e2e backfill"}})
    launched = data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished() -> dict[str, Any] | None:
        state = dagster_dev.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        assert state["__typename"] == "PartitionBackfill", state
        # The backfill completes once its partitions are materialized; wait for its runs to end too.
        done = state["status"] in TERMINAL_BACKFILL and all(r["status"] in TERMINAL_RUN for r in state["runs"])
        return state if done else None

    state = dagster_dev.wait_for(f"backfill {backfill_id} to finish", finished, STALL_TIMEOUT, 2.0,
                                 progress=dagster_dev.run_progress)
    return Backfill(backfill_id, state["status"], state["partitionNames"], state["runs"])


def test_backfill_completes_with_one_successful_run_per_partition(backfill: Backfill) -> None:
    assert backfill.status == "COMPLETED_SUCCESS"
    assert sorted(backfill.partitions) == BACKFILL_PARTITIONS
    assert sorted(tag(r, "dagster/partition") for r in backfill.runs) == BACKFILL_PARTITIONS
    assert {r["runId"]: r["status"] for r in backfill.runs} == {r["runId"]: "SUCCESS" for r in backfill.runs}
    assert {tag(r, "dagster/code_location") for r in backfill.runs} == {LOCATION}


def test_each_backfill_run_judges_its_own_partition_fresh(dagster_dev: DagsterDev, backfill: Backfill) -> None:
    """The freshness check runs with the asset in every backfill run and looks at that run's day, not yesterday."""
    executions = {e["runId"]: e for e in dagster_dev.check_executions("evidence_hackernews", CHECK_NAME)}
    for run in backfill.runs:
        execution = executions[run["runId"]]
        assert (execution["status"], execution["evaluation"]["success"]) == ("SUCCEEDED", True), execution
        metadata = {m["label"]: m.get("text") for m in execution["evaluation"]["metadataEntries"]}
        assert metadata["partitions"] == tag(run, "dagster/partition")


def test_backfill_stores_exactly_the_simulators_records(dagster_dev: DagsterDev, backfill: Backfill) -> None:
    store = EvidenceStore(dagster_dev.db_path, lock_timeout=60)  # read-only connections, after the runs ended
    ids = hackernews_ids(store)
    truth = dagster_dev.sim.truth("hn")
    assert len(ids) == len(set(ids)) == truth["count"] == SIM_RECORDS
    assert hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest() == truth["sha256_sorted_ids"]
    run_ids = [r["runId"] for r in backfill.runs]
    loads = store.query(
        "SELECT partition_key, status, rows_fetched FROM loads WHERE run_id IN (SELECT unnest(?)) ORDER BY 1",
        [run_ids])
    # Each partition stores its day's records only (all of them fall on these days).
    assert loads == [(key, "success", sim_records_on(day)) for day, key in zip(DAYS, BACKFILL_PARTITIONS, strict=True)]
    assert sum(sim_records_on(day) for day in DAYS) == SIM_RECORDS
    # Each id arrived new exactly once over all loads (the schedule's too, if it ran), however they interleaved.
    assert store.query("SELECT sum(rows_new) FROM loads WHERE asset_key = 'evidence_hackernews'") == [(SIM_RECORDS,)]
    assert store.query("SELECT count(DISTINCT item_id) FROM provenance WHERE item_table = 'evidence'") == [
        (SIM_RECORDS,)]


def test_the_daemon_runs_the_one_minute_schedule(dagster_dev: DagsterDev) -> None:
    schedule_filter = {"tags": [{"key": "dagster/schedule_name", "value": e2e_every_minute_schedule.name}]}

    def finished_run() -> dict[str, Any] | None:
        runs = dagster_dev.graphql(RUNS, {"filter": schedule_filter})["runsOrError"]["results"]
        return next((r for r in runs if r["status"] in TERMINAL_RUN), None)

    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION,
                "scheduleName": e2e_every_minute_schedule.name}

    def ticks() -> list[dict[str, Any]]:
        return dagster_dev.graphql(SCHEDULE_TICKS, {"selector": selector})["scheduleOrError"]["scheduleState"]["ticks"]

    # Progress: the daemon ticks the schedule every minute, and its run moves from queued to done.
    run = dagster_dev.wait_for("a run launched by the e2e schedule to finish", finished_run, STALL_TIMEOUT, 2.0,
                               progress=lambda: (len(ticks()), dagster_dev.run_progress()))
    assert run["status"] == "SUCCESS", run
    assert tag(run, "dagster/partition") == f"{SCHEDULE_DAY}|{TOPIC}"
    state = dagster_dev.graphql(SCHEDULE_TICKS, {"selector": selector})["scheduleOrError"]["scheduleState"]
    assert state["status"] == "RUNNING"
    assert any(t["status"] == "SUCCESS" and run["runId"] in t["runIds"] for t in state["ticks"]), state["ticks"]
    store = EvidenceStore(dagster_dev.db_path, lock_timeout=60)
    assert store.query("SELECT partition_key, status, rows_fetched FROM loads WHERE run_id = ?", [run["runId"]]) == [
        (f"{SCHEDULE_DAY}|{TOPIC}", "success", sim_records_on(SCHEDULE_DAY))]


@pytest.fixture
def page(dagster_dev: DagsterDev, tmp_path: Path) -> Iterator[Any]:
    """A page in Debian's headless Chromium (fresh profile) on the UI, past the first visit's welcome dialog."""
    with browser_page(dagster_dev.url, tmp_path / "chromium-profile") as page:
        yield page


def test_the_ui_shows_the_asset_graph_and_the_finished_backfill(dagster_dev: DagsterDev, backfill: Backfill,
                                                                 page: Any) -> None:
    from playwright.sync_api import expect

    # The asset graph, filtered as a user types it: evidence_hackernews and what depends on it.
    page.goto(f"{dagster_dev.url}/asset-groups~key:%22evidence_hackernews%22%2B")
    try:
        for name in ("evidence_hackernews", "evidence_catalog"):
            expect(page.locator(f'[data-tooltip="{name}"]')).to_be_visible()  # the node's title
        expect(page.get_by_text(re.compile(r"^\d+% filled$"))).to_be_visible()  # statuses loaded
    finally:
        screenshot(page, "asset-graph")

    # The backfill's page: its status, its partitions and the asset's progress.
    page.goto(f"{dagster_dev.url}/runs/b/{backfill.id}")
    try:
        expect(page.get_by_text("Status", exact=True).locator("xpath=..")).to_contain_text("Succeeded")
        for key in BACKFILL_PARTITIONS:
            expect(page.get_by_text(key, exact=True)).to_be_visible()
        expect(page.get_by_role("link", name="evidence_hackernews")).to_be_visible()
        expect(page.get_by_text("100% completed")).to_be_visible()
    finally:
        screenshot(page, "backfill")

    # Its runs: one per partition, each a success.
    page.get_by_role("tab", name="Runs").click()
    try:
        expect(page.get_by_text("Success", exact=True)).to_have_count(len(BACKFILL_PARTITIONS))
    finally:
        screenshot(page, "backfill-runs")
