"""`aragora-pipelines backfill`: launch a Dagster backfill on the running webserver and follow it to its end.

It sends the GraphQL ``launchPartitionBackfill`` that the UI's Materialize dialog sends (the asset and its
partition names), so the daemon runs it like any other backfill. Only HTTP here: no Dagster import.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from aragora_pipelines.cli import EXIT_OK, CommandFailed, UsageError

if TYPE_CHECKING:  # httpx is imported when the command runs, so `--help` stays fast
    import httpx

DEFAULT_URL = "http://127.0.0.1:3000"
POLL_SECONDS = 2.0
HTTP_TIMEOUT = 60.0
SUCCEEDED = {"COMPLETED", "COMPLETED_SUCCESS"}
ENDED = SUCCEEDED | {"COMPLETED_FAILED", "FAILED", "CANCELED"}
# A multi-partition key joins its dimensions' keys with "|" in the order of the dimension names, so day x
# topic is "2026-03-04|vector-databases"; Dagster finds no partition named "vector-databases|2026-03-04".
DAY, TOPIC = "date", "topic"

HELP = ("Launch a Dagster backfill of one source's asset on the running webserver (`dg dev`), the one the UI's "
        "Materialize dialog launches: every day in [--since, --until) x --topic; then follow it to its end.")
BACKFILL_STATUS_HELP = """exit status:
  0  the backfill materialized every partition (or, with --no-wait, it was launched)
  1  the backfill failed or was canceled, or the webserver answered with an error
  2  bad input: unknown source, bad dates, --until not after --since, a topic or day that is not a
     partition of the asset, no webserver at --url"""

LAUNCH = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""
ASSET_PARTITIONS = """
query AssetPartitions($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode { partitionKeysByDimension { name partitionKeys } }
    ... on Error { message }
  }
  instance { daemonHealth { daemonStatus(daemonType: "BACKFILL") { healthy } } }
}"""
BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      error { message }
      unfinishedRuns { runId }
      assetBackfillData { assetBackfillStatuses { ... on AssetPartitionsStatusCounts {
        numPartitionsTargeted numPartitionsInProgress numPartitionsMaterialized numPartitionsFailed } } }
    }
    ... on Error { message }
  }
}"""
FAILED_RUNS = """
query FailedRuns($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { runs { runId status tags { key value } } }
  }
}"""


@dataclass(frozen=True)
class BackfillPlan:
    """What to backfill: the asset, its partition axes, and the partition names Dagster knows them by."""

    asset: str
    axes: tuple[str, ...]
    days: tuple[str, ...]
    topics: tuple[str, ...]

    @property
    def partitions(self) -> list[str]:
        """The partition names: ``day|topic`` for day x topic assets, else the day or the topic."""
        if self.axes == (DAY, TOPIC):
            return [f"{day}|{topic}" for day in self.days for topic in self.topics]
        return list(self.days if self.axes == (DAY,) else self.topics)

    def describe(self) -> str:
        """e.g. ``evidence_hackernews, 4 partitions (2 days x 2 topics)``."""
        counts = [_plural(len(self.days), "day") if DAY in self.axes else "",
                  _plural(len(self.topics), "topic") if TOPIC in self.axes else ""]
        return f"{self.asset}, {_plural(len(self.partitions), 'partition')} ({' x '.join(c for c in counts if c)})"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def source_asset(source: str) -> tuple[str, tuple[str, ...]]:
    """The asset key and partition axes of an evidence source (``hackernews``) or integration asset."""
    from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

    assets = {f"evidence_{name}": (DAY, TOPIC) if cls.HAS_TIME_AXIS else (TOPIC,)
              for name, cls in EVIDENCE_CONNECTORS.items()}
    assets |= {f"{service}_{obj}": (DAY,) for service, (cls, _) in INTEGRATION_CONNECTORS.items()
               for obj in cls.OBJECT_TYPES}
    for key in (f"evidence_{source}", source):
        if key in assets:
            return key, assets[key]
    names = [*EVIDENCE_CONNECTORS, *(key for key in assets if not key.startswith("evidence_"))]
    close = difflib.get_close_matches(source, names, n=1, cutoff=0.6)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"unknown source {source!r}{guess}; known sources: {', '.join(names)}")


def days_between(since: date, until: date) -> tuple[str, ...]:
    """Every day in [since, until) as a daily partition key (YYYY-MM-DD)."""
    return tuple((since + timedelta(days=n)).isoformat() for n in range((until - since).days))


def plan_backfill(source: str, topics: list[str], since: date | None, until: date | None,
                  err: TextIO | None = None) -> BackfillPlan:
    """Check the arguments against the source's partitions (offline) and return what to backfill."""
    asset, axes = source_asset(source)
    topics = list(dict.fromkeys(topics))  # a topic given twice is one partition
    if TOPIC in axes and not topics:
        raise UsageError(f"{asset} is partitioned by topic: give --topic T (`aragora-pipelines topics list`)")
    if TOPIC not in axes and topics:
        raise UsageError(f"{asset} is partitioned by day only: drop --topic")
    if DAY not in axes:
        if since or until:
            print(f"note: {asset} has no time axis; --since/--until are ignored", file=err or sys.stderr)
        return BackfillPlan(asset, axes, (), tuple(topics))
    if since is None or until is None:
        raise UsageError(f"{asset} is partitioned by day: give --since D and --until D (dates, until exclusive)")
    if until <= since:
        raise UsageError(f"--until {until} must be after --since {since} (the range is [since, until))")
    return BackfillPlan(asset, axes, days_between(since, until), tuple(topics))


class Unreachable(CommandFailed):
    """Nothing answers HTTP at the webserver URL."""


class Webserver:
    """The Dagster webserver's GraphQL endpoint."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url.rstrip("/")
        self.client = client

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """POST one GraphQL operation; Unreachable when nothing answers, CommandFailed on an error answer."""
        import httpx

        try:
            response = self.client.post(f"{self.url}/graphql", json={"query": query, "variables": variables})
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise Unreachable(f"no Dagster webserver answers at {self.url}: start it with `dg dev` (or `make dev`) "
                              "in the project root, or pass --url (default: $DAGSTER_WEBSERVER_URL)") from None
        except httpx.TransportError as exc:
            raise CommandFailed(f"the webserver at {self.url} did not answer: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not (body.get("data") or body.get("errors")):
            raise CommandFailed(f"{self.url}/graphql answered HTTP {response.status_code} without GraphQL data; "
                                "is --url a Dagster webserver?")
        if body.get("errors"):
            raise CommandFailed(f"GraphQL error from {self.url}: {body['errors'][0].get('message', body['errors'])}")
        return body["data"]


def check_partitions(server: Webserver, plan: BackfillPlan, err: TextIO | None = None) -> None:
    """UsageError unless the webserver's asset has every planned day and topic as a partition."""
    try:
        data = server.graphql(ASSET_PARTITIONS, {"key": {"path": [plan.asset]}})
    except Unreachable as exc:
        raise UsageError(str(exc)) from None
    node = data["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        raise UsageError(f"{plan.asset} is not served at {server.url} ({node.get('message', node['__typename'])}); "
                         "is that this project's `dg dev`?")
    dims = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
    if len(plan.axes) == 1 and len(dims) == 1:
        dims = {plan.axes[0]: next(iter(dims.values()))}  # GraphQL names a single dimension "default"
    if set(dims) != set(plan.axes):
        raise CommandFailed(f"{plan.asset} at {server.url} is partitioned by {' x '.join(dims) or 'nothing'}, "
                            f"not {' x '.join(plan.axes)}: the served code location is not this checkout's")
    day_keys, topic_keys = dims.get(DAY, []), dims.get(TOPIC, [])
    for topic in plan.topics:
        if topic not in topic_keys:
            raise UsageError(f"topic {topic!r} is not a partition of {plan.asset} (partitions: "
                             f"{', '.join(topic_keys) or 'none'}); add it with `aragora-pipelines topics add "
                             f"{topic}` (the topics sensor adds its partition within 30 s)")
    missing = [day for day in plan.days if day not in set(day_keys)]
    if missing:
        span = f"days run from {day_keys[0]} to {day_keys[-1]}" if day_keys else "it has no days yet"
        raise UsageError(f"{missing[0]} is not a day partition of {plan.asset} ({span}; the newest is yesterday)")
    status = ((data.get("instance") or {}).get("daemonHealth") or {}).get("daemonStatus") or {}
    if status.get("healthy") is False:
        print("warning: the Dagster daemon is not running; the backfill waits until it does (`dg dev` runs it)",
              file=err or sys.stderr)


def launch(server: Webserver, plan: BackfillPlan) -> str:
    """Launch the backfill the UI's Materialize dialog launches; returns its id."""
    params = {"assetSelection": [{"path": [plan.asset]}], "partitionNames": plan.partitions,
              "fromFailure": False, "tags": []}
    result = server.graphql(LAUNCH, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] == "LaunchBackfillSuccess":
        return result["backfillId"]
    if result["__typename"] == "PartitionKeysNotFoundError":
        raise UsageError(result["message"])
    raise CommandFailed(f"the webserver refused the backfill ({result['__typename']}): {result.get('message', '')}")


@dataclass(frozen=True)
class Progress:
    """A backfill's state at one poll."""

    status: str
    targeted: int
    done: int
    failed: int
    in_progress: int
    unfinished_runs: int
    error: str | None

    @property
    def ended(self) -> bool:
        """The backfill is over and none of its runs is still going."""
        return self.status in ENDED and self.unfinished_runs == 0

    def line(self) -> str:
        """e.g. ``1/2 partitions done, 0 failed, 1 in progress (REQUESTED)``."""
        return (f"{self.done}/{self.targeted} partitions done, {self.failed} failed, {self.in_progress} in progress "
                f"({self.status})")


def poll(server: Webserver, backfill_id: str) -> Progress:
    """The backfill's status and partition counts, as the backfill page shows them."""
    state = server.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    if state["__typename"] != "PartitionBackfill":
        raise CommandFailed(f"backfill {backfill_id}: {state.get('message', state['__typename'])}")
    counts = [s for s in (state.get("assetBackfillData") or {}).get("assetBackfillStatuses", []) if s]
    total = {k: sum(c[k] for c in counts) for k in ("numPartitionsTargeted", "numPartitionsMaterialized",
                                                     "numPartitionsFailed", "numPartitionsInProgress")}
    return Progress(state["status"], total["numPartitionsTargeted"], total["numPartitionsMaterialized"],
                    total["numPartitionsFailed"], total["numPartitionsInProgress"], len(state["unfinishedRuns"]),
                    (state.get("error") or {}).get("message"))


def failed_runs(server: Webserver, backfill_id: str) -> list[str]:
    """``partition (run id)`` of every run of the backfill that failed or was canceled."""
    state = server.graphql(FAILED_RUNS, {"id": backfill_id})["partitionBackfillOrError"]
    return [f"{next((t['value'] for t in run['tags'] if t['key'] == 'dagster/partition'), '?')} "
            f"(run {run['runId']}: {run['status']})"
            for run in state.get("runs") or [] if run["status"] in ("FAILURE", "CANCELED")]


def follow(server: Webserver, backfill_id: str, err: TextIO | None = None) -> Progress:
    """Poll the backfill until it and its runs have ended, printing each change of its counts on ``err``."""
    page = f"{server.url}/runs/b/{backfill_id}"
    last = None
    try:
        while True:
            progress = poll(server, backfill_id)
            if progress.line() != last:
                last = progress.line()
                print(f"backfill {backfill_id}: {last}", file=err or sys.stderr, flush=True)
            if progress.ended:
                return progress
            time.sleep(POLL_SECONDS)
    except Unreachable:
        raise CommandFailed(f"lost the webserver at {server.url} while following backfill {backfill_id}; "
                            f"it goes on when `dg dev` is back: {page}") from None
    except KeyboardInterrupt:
        raise CommandFailed(f"stopped following; backfill {backfill_id} goes on: {page}") from None


def _date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``backfill`` sub-command's arguments."""
    parser.epilog = BACKFILL_STATUS_HELP
    parser.add_argument("source", metavar="SOURCE", help="an evidence source (hackernews, sql, ...) or an "
                        "integration asset (stripe_charges, ...)")
    parser.add_argument("--topic", action="append", default=[], metavar="T",
                        help="a topic partition; repeat for several (evidence sources)")
    parser.add_argument("--since", type=_date_arg, metavar="D", help="first day (YYYY-MM-DD, UTC), for sources "
                        "partitioned by day")
    parser.add_argument("--until", type=_date_arg, metavar="D", help="the day after the last (exclusive)")
    parser.add_argument("--url", metavar="URL", help="the Dagster webserver (default: $DAGSTER_WEBSERVER_URL or "
                        f"{DEFAULT_URL})")
    parser.add_argument("--no-wait", action="store_true", help="print the backfill's id and page, do not follow it")


def cmd_backfill(args: argparse.Namespace) -> int:
    """Launch the backfill on the running webserver and, unless --no-wait, follow it to its end."""
    plan = plan_backfill(args.source, args.topic, args.since, args.until)
    url = args.url or os.environ.get("DAGSTER_WEBSERVER_URL") or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"--url {url!r} is not an http(s) URL; e.g. {DEFAULT_URL}")
    import httpx

    with httpx.Client(timeout=HTTP_TIMEOUT) as client:
        server = Webserver(url, client)
        check_partitions(server, plan)
        backfill_id = launch(server, plan)
        page = f"{server.url}/runs/b/{backfill_id}"
        print(f"launched backfill {backfill_id}: {plan.describe()}; {page}", flush=True)
        if args.no_wait:
            return EXIT_OK
        progress = follow(server, backfill_id)
        if progress.status in SUCCEEDED and progress.failed == 0:
            print(f"backfill {backfill_id} {progress.status}: {progress.done}/{progress.targeted} partitions "
                  "materialized")
            return EXIT_OK
        for line in failed_runs(server, backfill_id):
            print(f"  failed: {line}", file=sys.stderr)
        reason = f" ({progress.error})" if progress.error else ""
        raise CommandFailed(f"backfill {backfill_id} {progress.status}{reason}: {progress.failed} of "
                            f"{progress.targeted} partitions failed; see {page}")
