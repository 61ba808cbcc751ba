"""`aragora-pipelines backfill`: argument checks, partition names, and the GraphQL it exchanges with the webserver.

The webserver is mocked at the HTTP boundary (pytest-httpx) with the answers Dagster 1.13 gives; the same command
runs against the real `dagster dev` in tests/e2e/test_cli_backfill.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from aragora_pipelines import backfill
from aragora_pipelines.backfill import plan_backfill
from aragora_pipelines.cli import UsageError
from tests.conftest import free_port
from tests.pipelines.conftest import run_cli as run

URL = "http://dagster.test:3000"
DAYS = [f"2026-01-{d:02d}" for d in range(1, 29)]
TOPICS = ["rate-limiting", "vector-databases"]


# --- partition names ----------------------------------------------------------------------------
def test_day_x_topic_partitions_are_named_date_then_topic() -> None:
    plan = plan_backfill("hackernews", TOPICS, date(2026, 3, 4), date(2026, 3, 6))
    assert plan.asset == "evidence_hackernews"
    assert plan.partitions == ["2026-03-04|rate-limiting", "2026-03-04|vector-databases",
                               "2026-03-05|rate-limiting", "2026-03-05|vector-databases"]
    assert plan.describe() == "evidence_hackernews, 4 partitions (2 days x 2 topics)"


def test_the_range_excludes_until_and_crosses_month_ends() -> None:
    plan = plan_backfill("evidence_arxiv", ["rate-limiting", "rate-limiting"], date(2026, 2, 27), date(2026, 3, 2))
    assert plan.partitions == ["2026-02-27|rate-limiting", "2026-02-28|rate-limiting", "2026-03-01|rate-limiting"]


def test_topic_only_sources_take_the_topic_and_ignore_dates() -> None:
    err = io.StringIO()
    plan = plan_backfill("sql", ["rate-limiting"], date(2026, 3, 4), date(2026, 3, 6), err=err)
    assert (plan.asset, plan.partitions) == ("evidence_sql", ["rate-limiting"])
    assert "evidence_sql has no time axis; --since/--until are ignored" in err.getvalue()
    assert plan.describe() == "evidence_sql, 1 partition (1 topic)"


def test_integration_assets_take_days() -> None:
    plan = plan_backfill("stripe_charges", [], date(2026, 3, 4), date(2026, 3, 6))
    assert (plan.asset, plan.partitions) == ("stripe_charges", ["2026-03-04", "2026-03-05"])


@pytest.mark.parametrize(("argv", "needle"), [
    (["hackernwes", "--topic", "t", "--since", "2026-01-01", "--until", "2026-01-02"],
     "unknown source 'hackernwes' (did you mean 'hackernews'?)"),
    (["stripe_charge", "--since", "2026-01-01", "--until", "2026-01-02"], "(did you mean 'stripe_charges'?)"),
    (["hackernews", "--topic", "t", "--since", "2026-01-02", "--until", "2026-01-02"],
     "--until 2026-01-02 must be after --since 2026-01-02"),
    (["hackernews", "--topic", "t", "--since", "2026-01-01"], "give --since D and --until D"),
    (["hackernews", "--since", "2026-01-01", "--until", "2026-01-02"], "partitioned by topic: give --topic T"),
    (["stripe_charges", "--topic", "t", "--since", "2026-01-01", "--until", "2026-01-02"], "drop --topic"),
    (["sql", "--topic", "t", "--url", "localhost:3000"], "--url 'localhost:3000' is not an http(s) URL"),
])
def test_bad_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                            needle: str) -> None:
    status, out, err = run(capsys, "backfill", *argv)
    assert status == 2
    assert out == ""
    assert err.startswith("aragora-pipelines: error: ") and err.count("\n") == 1, err
    assert needle in err


@pytest.mark.parametrize("value", ["2026-13-01", "2026-03-04T10:00", "yesterday"])
def test_a_date_that_is_not_yyyy_mm_dd_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    status, _, err = run(capsys, "backfill", "hackernews", "--topic", "t", "--since", value, "--until", "2026-12-01")
    assert status == 2
    assert f"argument --since: expected a date YYYY-MM-DD, got {value!r}" in err


def test_no_webserver_says_to_start_dg_dev(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    status, out, err = run(capsys, "backfill", "sql", "--topic", "rate-limiting", "--url", url)
    assert status == 2
    assert out == ""
    assert err == (f"aragora-pipelines: error: no Dagster webserver answers at {url}: start it with `dg dev` "
                   "(or `make dev`) in the project root, or pass --url (default: $DAGSTER_WEBSERVER_URL)\n")


# --- against a webserver mocked at the HTTP boundary ---------------------------------------------
class FakeWebserver:
    """Answers the command's GraphQL operations as Dagster 1.13's webserver does, and records the launch."""

    def __init__(self, states: list[dict[str, Any]], dims: list[dict[str, Any]] | None = None) -> None:
        self.states = states
        self.dims = dims if dims is not None else [{"name": "date", "partitionKeys": DAYS},
                                                   {"name": "topic", "partitionKeys": TOPICS}]
        self.launched: list[dict[str, Any]] = []
        self.polls = 0
        self.daemon_healthy = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        query, variables = body["query"], body["variables"]
        if "mutation LaunchBackfill" in query:
            self.launched.append(variables["params"])
            return self._data({"launchPartitionBackfill": {"__typename": "LaunchBackfillSuccess",
                                                           "backfillId": "abcdefgh"}})
        if "query AssetPartitions" in query:
            node = {"__typename": "AssetNode", "partitionKeysByDimension": self.dims}
            return self._data({"assetNodeOrError": node,
                               "instance": {"daemonHealth": {"daemonStatus": {"healthy": self.daemon_healthy}}}})
        if "query Backfill" in query:
            state = self.states[min(self.polls, len(self.states) - 1)]
            self.polls += 1
            return self._data({"partitionBackfillOrError": {"__typename": "PartitionBackfill", "error": None,
                                                            **state}})
        if "query FailedRuns" in query:
            runs = [{"runId": "run-1", "status": "SUCCESS", "tags": [{"key": "dagster/partition",
                                                                      "value": "2026-01-01|rate-limiting"}]},
                    {"runId": "run-2", "status": "FAILURE", "tags": [{"key": "dagster/partition",
                                                                      "value": "2026-01-02|rate-limiting"}]}]
            return self._data({"partitionBackfillOrError": {"runs": runs}})
        raise AssertionError(f"unexpected GraphQL operation: {query[:60]}")

    @staticmethod
    def _data(data: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"data": data})


def state(status: str, done: int, failed: int = 0, in_progress: int = 0, unfinished: int = 0) -> dict[str, Any]:
    """One poll's answer for a 2-partition backfill."""
    counts = {"numPartitionsTargeted": 2, "numPartitionsMaterialized": done, "numPartitionsFailed": failed,
              "numPartitionsInProgress": in_progress}
    return {"status": status, "unfinishedRuns": [{"runId": f"r{i}"} for i in range(unfinished)],
            "assetBackfillData": {"assetBackfillStatuses": [counts]}}


@pytest.fixture
def webserver(httpx_mock: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWebserver]:
    """A fake webserver at URL (no polling delay) whose backfill succeeds on the third poll."""
    monkeypatch.setattr(backfill, "POLL_SECONDS", 0)
    server = FakeWebserver([state("REQUESTED", 0, in_progress=2), state("REQUESTED", 1, in_progress=1),
                            state("COMPLETED_SUCCESS", 2, unfinished=1), state("COMPLETED_SUCCESS", 2)])
    httpx_mock.add_callback(server, url=f"{URL}/graphql", is_reusable=True)
    yield server


ARGS = ("backfill", "hackernews", "--topic", "rate-limiting", "--since", "2026-01-01", "--until", "2026-01-03",
        "--url", URL)


def test_launches_what_the_ui_dialog_sends_and_follows_it_to_the_end(
        capsys: pytest.CaptureFixture[str], webserver: FakeWebserver) -> None:
    status, out, err = run(capsys, *ARGS)
    assert status == 0, err
    assert webserver.launched == [{"assetSelection": [{"path": ["evidence_hackernews"]}],
                                   "partitionNames": ["2026-01-01|rate-limiting", "2026-01-02|rate-limiting"],
                                   "fromFailure": False, "tags": []}]
    assert out.splitlines() == [
        f"launched backfill abcdefgh: evidence_hackernews, 2 partitions (2 days x 1 topic); {URL}/runs/b/abcdefgh",
        "backfill abcdefgh COMPLETED_SUCCESS: 2/2 partitions materialized"]
    # One line per change of the counts; it waits for the last run to end after the backfill completes.
    assert err.splitlines() == ["backfill abcdefgh: 0/2 partitions done, 0 failed, 2 in progress (REQUESTED)",
                                "backfill abcdefgh: 1/2 partitions done, 0 failed, 1 in progress (REQUESTED)",
                                "backfill abcdefgh: 2/2 partitions done, 0 failed, 0 in progress (COMPLETED_SUCCESS)"]
    assert webserver.polls == 4


def test_the_url_defaults_to_dagster_webserver_url(capsys: pytest.CaptureFixture[str], webserver: FakeWebserver,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_WEBSERVER_URL", URL)
    status, _, err = run(capsys, *ARGS[:-2], "--no-wait")
    assert status == 0, err
    assert len(webserver.launched) == 1
    assert webserver.polls == 0  # --no-wait: launched, not followed


def test_a_failed_backfill_exits_1_naming_the_failed_partitions(
        capsys: pytest.CaptureFixture[str], webserver: FakeWebserver) -> None:
    webserver.states = [state("REQUESTED", 1, failed=1), state("COMPLETED_FAILED", 1, failed=1)]
    status, out, err = run(capsys, *ARGS)
    assert status == 1
    assert "COMPLETED_FAILED" not in out
    assert "  failed: 2026-01-02|rate-limiting (run run-2: FAILURE)\n" in err
    assert err.endswith(f"aragora-pipelines: error: backfill abcdefgh COMPLETED_FAILED: 1 of 2 partitions failed; "
                        f"see {URL}/runs/b/abcdefgh\n")


def test_a_canceled_backfill_exits_1(capsys: pytest.CaptureFixture[str], webserver: FakeWebserver) -> None:
    webserver.states = [state("CANCELED", 1)]
    status, _, err = run(capsys, *ARGS)
    assert status == 1
    assert "backfill abcdefgh CANCELED: 0 of 2 partitions failed" in err


@pytest.mark.parametrize(("argv", "needle"), [
    (["--topic", "ai-safety", "--since", "2026-01-01", "--until", "2026-01-02"],
     "topic 'ai-safety' is not a partition of evidence_hackernews (partitions: rate-limiting, vector-databases); "
     "add it with `aragora-pipelines topics add ai-safety`"),
    (["--topic", "rate-limiting", "--since", "2025-12-31", "--until", "2026-01-02"],
     "2025-12-31 is not a day partition of evidence_hackernews (days run from 2026-01-01 to 2026-01-28"),
    (["--topic", "rate-limiting", "--since", "2026-01-28", "--until", "2026-01-30"], "2026-01-29 is not a day"),
])
def test_partitions_the_webserver_does_not_have_are_refused_before_launching(
        capsys: pytest.CaptureFixture[str], webserver: FakeWebserver, argv: list[str], needle: str) -> None:
    status, _, err = run(capsys, "backfill", "hackernews", *argv, "--url", URL)
    assert status == 2
    assert needle in err
    assert webserver.launched == []


def test_a_topic_only_asset_is_checked_against_its_single_dimension(
        capsys: pytest.CaptureFixture[str], webserver: FakeWebserver) -> None:
    webserver.dims = [{"name": "default", "partitionKeys": TOPICS}]
    status, _, err = run(capsys, "backfill", "sql", "--topic", "vector-databases", "--url", URL, "--no-wait")
    assert status == 0, err
    assert webserver.launched[0]["partitionNames"] == ["vector-databases"]
    assert webserver.launched[0]["assetSelection"] == [{"path": ["evidence_sql"]}]


def test_a_code_location_partitioned_otherwise_is_reported(capsys: pytest.CaptureFixture[str],
                                                            webserver: FakeWebserver) -> None:
    webserver.dims = [{"name": "default", "partitionKeys": DAYS}]
    status, _, err = run(capsys, *ARGS)
    assert status == 1
    assert "evidence_hackernews at http://dagster.test:3000 is partitioned by default, not date x topic" in err
    assert webserver.launched == []


def test_a_stopped_daemon_is_a_warning(capsys: pytest.CaptureFixture[str], webserver: FakeWebserver) -> None:
    webserver.daemon_healthy = False
    status, _, err = run(capsys, *ARGS, "--no-wait")
    assert status == 0
    assert "warning: the Dagster daemon is not running" in err


def test_a_url_that_is_not_a_dagster_webserver(capsys: pytest.CaptureFixture[str], httpx_mock: Any) -> None:
    httpx_mock.add_response(url=f"{URL}/graphql", status_code=404, text="<html>not found</html>")
    status, _, err = run(capsys, *ARGS)
    assert status == 1
    assert f"{URL}/graphql answered HTTP 404 without GraphQL data; is --url a Dagster webserver?" in err


def test_an_unknown_source_needs_no_webserver() -> None:
    with pytest.raises(UsageError, match="known sources: local_docs, "):
        plan_backfill("nope", [], None, None)
