"""A fresh install, started as the README says (no credentials, no network), left running: nothing turns red.

Every sensor ticks, the freshness checks run, and no run, sensor tick or asset check fails; screenshots of the
asset graph and of a freshness check as the user first sees them go to test-output/e2e/.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assets.freshness import CHECK_NAME
from tests.e2e.conftest import FRESH_LOCATION, REPOSITORY, DagsterDev, browser_page, screenshot, write_json

pytestmark = pytest.mark.e2e

# Left running this long: every sensor ticks at least once (topics every 30 s, the catalog's automation every
# 60 s, the hourly freshness sensor at start-up) and the freshness checks' run ends.
FRESH_INSTALL_SECONDS = 180.0
STALL_TIMEOUT = 240.0
FAILED_RUN = {"FAILURE", "CANCELED", "CANCELING"}
DONE_RUN = {"SUCCESS", *FAILED_RUN}
FAILED_CHECK = {"FAILED", "EXECUTION_FAILED"}

SENSORS = """
query Sensors($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) {
    __typename
    ... on Sensors { results { name sensorState { status ticks(limit: 50) { status error { message } } } } }
  }
}"""
SCHEDULES = """
query Schedules($selector: RepositorySelector!) {
  schedulesOrError(repositorySelector: $selector) {
    __typename
    ... on Schedules { results { name scheduleState { status ticks(limit: 50) { status error { message } } } } }
  }
}"""
ASSET_CHECKS = """{ assetNodes { assetKey { path } description
  assetChecksOrError { __typename ... on AssetChecks { checks { name } } } } }"""


def _selector() -> dict[str, str]:
    return {"repositoryName": REPOSITORY, "repositoryLocationName": FRESH_LOCATION}


def sensors(dev: DagsterDev) -> list[dict[str, Any]]:
    """Every sensor of the location with its state and latest ticks."""
    data = dev.graphql(SENSORS, {"selector": _selector()})["sensorsOrError"]
    assert data["__typename"] == "Sensors", data
    return data["results"]


def asset_checks(dev: DagsterDev) -> dict[str, tuple[str | None, list[str]]]:
    """Asset name -> (its description, the names of its checks)."""
    nodes = dev.graphql(ASSET_CHECKS)["assetNodes"]
    return {n["assetKey"]["path"][-1]: (n["description"], [c["name"] for c in n["assetChecksOrError"]["checks"]])
            for n in nodes}


@pytest.fixture(scope="module")
def settled(fresh_dagster_dev: DagsterDev) -> DagsterDev:
    """The fresh install after FRESH_INSTALL_SECONDS, once every sensor has ticked and every run has ended."""
    dev, start = fresh_dagster_dev, time.monotonic()

    def progress() -> tuple[Any, ...]:
        return tuple(len(s["sensorState"]["ticks"]) for s in sensors(dev)), dev.run_progress()

    def settled_now() -> bool:
        ticked = all(s["sensorState"]["ticks"] for s in sensors(dev) if s["sensorState"]["status"] == "RUNNING")
        runs_done = all(r["status"] in DONE_RUN for r in dev.runs())
        return ticked and runs_done and time.monotonic() - start >= FRESH_INSTALL_SECONDS

    dev.wait_for(f"{FRESH_INSTALL_SECONDS:.0f}s, a tick of every sensor and the end of every run", settled_now,
                 STALL_TIMEOUT, 5.0, progress=progress)
    return dev


def test_a_fresh_install_records_no_failed_run_tick_or_check(settled: DagsterDev) -> None:
    runs = settled.runs()
    assert not [r for r in runs if r["status"] in FAILED_RUN], runs
    # The freshness sensor ticked at start-up and its run evaluated the checks: they were judged, not skipped.
    assert any(r["status"] == "SUCCESS" for r in runs), runs

    sensor_states = sensors(settled)
    assert {s["name"] for s in sensor_states} >= {"topics_sensor", "freshness_checks_sensor",
                                                   "evidence_catalog_automation"}
    for sensor in sensor_states:
        assert sensor["sensorState"]["status"] == "RUNNING", sensor["name"]
        assert not [t for t in sensor["sensorState"]["ticks"] if t["status"] == "FAILURE"], sensor
    schedules = settled.graphql(SCHEDULES, {"selector": _selector()})["schedulesOrError"]["results"]
    assert not [(s["name"], t) for s in schedules for t in s["scheduleState"]["ticks"] if t["status"] == "FAILURE"]

    executions = {(asset, check): settled.check_executions(asset, check)
                  for asset, (_, checks) in asset_checks(settled).items() for check in checks}
    write_json("fresh-install-check-executions", {f"{a}.{c}": e for (a, c), e in executions.items()})
    failed = {key: e for key, found in executions.items() for e in found
              if e["status"] in FAILED_CHECK or (e["evaluation"] and not e["evaluation"]["success"])}
    assert not failed, failed
    fresh = executions[("evidence_hackernews", CHECK_NAME)]
    assert fresh and fresh[0]["status"] == "SUCCEEDED", fresh
    metadata = {m["label"]: m.get("text") for m in fresh[0]["evaluation"]["metadataEntries"]}
    assert metadata["not_due_yet"], metadata  # topics first seen now: no day is due yet


def test_unconfigured_sources_have_no_freshness_check_and_say_what_to_set(settled: DagsterDev) -> None:
    checks = asset_checks(settled)
    description, names = checks["stripe_charges"]
    assert CHECK_NAME not in names
    assert "Freshness check off" in (description or "") and "STRIPE_API_KEY" in (description or "")
    assert CHECK_NAME in checks["evidence_hackernews"][1]


@pytest.fixture
def fresh_page(settled: DagsterDev, tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium on the fresh install's UI."""
    with browser_page(settled.url, tmp_path / "chromium-profile") as page:
        yield page


def test_the_fresh_ui_shows_a_passing_freshness_check_and_why_others_are_off(settled: DagsterDev,
                                                                          fresh_page: Any) -> None:
    from playwright.sync_api import expect

    page = fresh_page
    page.goto(f"{settled.url}/asset-groups~key:%22evidence_hackernews%22%2B")
    try:
        expect(page.locator('[data-tooltip="evidence_hackernews"]')).to_be_visible()
        expect(page.get_by_text(re.compile(r"^\d+% filled$"))).to_be_visible()  # statuses loaded
    finally:
        screenshot(page, "fresh-install-asset-graph")

    page.goto(f"{settled.url}/assets/evidence_hackernews?view=checks")
    try:
        expect(page.get_by_text(CHECK_NAME).first).to_be_visible()
        expect(page.get_by_text("Failed", exact=True)).to_have_count(0)
    finally:
        screenshot(page, "fresh-install-checks")

    # An integration without credentials: no freshness check, and its description says what to set.
    page.goto(f"{settled.url}/assets/stripe_charges")
    try:
        expect(page.get_by_text("Freshness check off").first).to_be_visible()
    finally:
        screenshot(page, "fresh-install-unconfigured")
