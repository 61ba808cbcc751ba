"""End to end, the README's "Scale out" recipe on one machine: the instance on PostgreSQL (deploy/dagster.yaml),
the webserver and the daemon (deploy/bin/), two Celery workers (deploy/bin/worker, broker and result backend on
Redis), the simulator as Hacker News and the DuckLake store: its catalog in a PostgreSQL database of its own (not
the instance's), its Parquet files in a data-path directory, the same ARAGORA_STORE in every process and in the test.

A backfill of 3 days x 2 topics through GraphQL: every run succeeds, steps ran on both workers, the hackernews_api
pool (limit 1) never ran two steps at once, the store holds exactly the simulator's ids, `verify` passes. Then a
worker is killed in the middle of a second backfill: its step goes to the other worker (late acks) or its run is
retried (run_retries), and the store converges to the same exact ids.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRun, DagsterRunStatus, EventLogEntry

from aragora_pipelines.store import EvidenceStore
from tests.conftest import ROOT, Sim, free_port, start_sim, stop_sim
from tests.e2e.conftest import (
    OUTPUT_DIR,
    STARTUP_TIMEOUT,
    VENV_BIN,
    DagsterDev,
    _clean_env,
    _location_loaded,
    _webserver_answers,
    started_processes,
    stop_dagster_dev,
)
from tests.support.services import (  # noqa: F401  (fixtures)
    PgDatabase,
    RedisPrefix,
    postgres_database,
    postgres_db,
    redis_prefix,
)

pytestmark = pytest.mark.e2e

LOCATION = "aragora_scale"
ASSET = "evidence_hackernews"
POOL = "hackernews_api"
WORKERS = ("w1", "w2")
DAYS = ["2025-12-30", "2025-12-31", "2026-01-01"]
TOPICS = {"rate-limiting": "rate limiting", "backpressure": "backpressure"}
PARTITIONS = [f"{day}|{topic}" for day in DAYS for topic in TOPICS]
# The simulator's records start at 2026-01-01 00:00 UTC, 37 s apart: 150 fit in the last day and under the asset's
# 200 per partition, so each partition stores all of its window; the two days before are empty windows.
SIM_RECORDS = 150
SIM_LATENCY_MS = 2000  # each step lasts a few seconds, so a worker can be killed in the middle of one
VISIBILITY_TIMEOUT = 20  # seconds before the task of a killed worker goes to the other one (Redis broker)
BACKFILL_TIMEOUT = 180.0  # without progress (runs queued, started, ended)
CLI = VENV_BIN / "aragora-pipelines"
LAUNCH = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }"""
BACKFILL = """
query Backfill($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } } }"""


@dataclass
class Deployment:
    """The running deployment: the webserver as a DagsterDev, the daemon and workers, the instance, the store."""

    dev: DagsterDev
    sim: Sim
    daemon: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]]
    instance: DagsterInstance
    env: dict[str, str]

    def backfill(self) -> str:
        """Launch the backfill of every partition through GraphQL; its id."""
        data = self.dev.graphql(LAUNCH, {"params": {"assetSelection": [{"path": [ASSET]}],
                                                    "partitionNames": PARTITIONS, "fromFailure": False}})
        launched = data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def runs_of(self, backfill_id: str) -> list[DagsterRun]:
        """The backfill's runs and the runs retrying them."""
        runs = self.instance.get_runs()
        roots = {r.run_id for r in runs if r.tags.get("dagster/backfill") == backfill_id}
        return [r for r in runs if r.run_id in roots or r.tags.get("dagster/root_run_id") in roots]

    def converged(self, backfill_id: str) -> str | None:
        """The backfill's final status once every partition has a successful run and no run is still to end."""
        runs = self.runs_of(backfill_id)
        done = {r.tags.get("dagster/partition") for r in runs if r.status == DagsterRunStatus.SUCCESS}
        if done < set(PARTITIONS) or not all(r.is_finished for r in runs):
            return None
        status = self.dev.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]["status"]
        return status if status.startswith("COMPLETED") or status == "FAILED" else None

    def wait_for_backfill(self, backfill_id: str) -> str:
        """Wait (following progress) until the backfill converged and ended; its status."""
        def progress() -> tuple[tuple[str, str], ...]:
            return tuple(sorted((r.run_id, r.status.value) for r in self.runs_of(backfill_id)))

        return self.dev.wait_for(f"backfill {backfill_id} to converge", lambda: self.converged(backfill_id),
                                 BACKFILL_TIMEOUT, 2.0, progress)

    def steps(self, run_ids: list[str]) -> list[tuple[str, str, str, float, float]]:
        """(run, step, worker, start, end) of every step executed in ``run_ids``, from the event log. The worker writes
        each step event and the run's executor, receiving them back, writes them again: the first one counts."""
        found: dict[tuple[str, str | None], list] = {}
        for run_id in run_ids:
            worker = ""
            for entry in self.instance.all_logs(run_id):
                event = entry.dagster_event
                if event is None:
                    continue
                if worker_of(entry):
                    worker = worker_of(entry)
                elif event.event_type == DagsterEventType.STEP_START:
                    found.setdefault((run_id, event.step_key), [run_id, event.step_key, worker,
                                                                          entry.timestamp, None])
                elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    step = found[(run_id, event.step_key)]
                    step[4] = step[4] or entry.timestamp
        return [tuple(step) for step in found.values()]


def store_of(env: dict[str, str]) -> EvidenceStore:
    """The evidence store the deployment's processes write to, from the same settings."""
    return EvidenceStore(env["ARAGORA_STORE"], lock_timeout=60, data_path=env["ARAGORA_STORE_DATA_PATH"])


def worker_of(entry: EventLogEntry) -> str:
    """The Celery worker (``name@host``) an engine event says a step was sent to, else ""."""
    event = entry.dagster_event
    if event is None or event.event_type != DagsterEventType.ENGINE_EVENT:
        return ""
    value = (event.engine_event_data.metadata or {}).get("Celery worker")
    return str(value.value) if value is not None else ""


def start(args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    """Start a deploy/bin command in its own process group, its output in test-output/e2e/``log_name``."""
    with (OUTPUT_DIR / log_name).open("wb") as log:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def day_start(day: str) -> datetime:
    """Midnight UTC of a YYYY-MM-DD day."""
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def stored_ids_match_the_simulator(deployment: Deployment) -> None:
    """The store holds exactly the simulator's Hacker News ids of the backfilled days, and `verify` passes."""
    store = store_of(deployment.env)
    assert store.backend == "ducklake"
    ids = [r[0] for r in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews'")]
    truth = deployment.sim.truth("hn", since=day_start(DAYS[0]), until=day_start(DAYS[-1]) + timedelta(days=1))
    assert len(ids) == len(set(ids)) == truth["count"] == SIM_RECORDS
    assert hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest() == truth["sha256_sorted_ids"]
    verify = subprocess.run([str(CLI), "verify"], env=deployment.env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert verify.returncode == 0 and "provenance chain intact" in verify.stdout, verify.stdout + verify.stderr


@pytest.fixture
def lake_catalog() -> Iterator[str]:
    """The libpq DSN of the DuckLake catalog's database, separate from the instance's."""
    with postgres_database() as dsn:
        yield dsn


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_db: PgDatabase,  # noqa: F811
               redis_prefix: RedisPrefix, lake_catalog: str) -> Iterator[Deployment]:  # noqa: F811
    """The deployment of deploy/ on this machine, ready: location loaded, topics added, the pool's limit 1, the
    lake's schema created."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    (tmp_path / "tmp").mkdir()
    lake_data = tmp_path / "lake"
    lake_data.mkdir()
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n" + "".join(f"  {k}:\n    query: {q}\n" for k, q in TOPICS.items()))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.support.scale_defs\n      attribute: defs\n"
        f"      working_directory: {ROOT}\n      location_name: {LOCATION}\n")
    sim = start_sim(records=SIM_RECORDS, latency_ms=SIM_LATENCY_MS)
    env = _clean_env(
        **postgres_db.env(), DAGSTER_HOME=str(home), TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        ARAGORA_EXECUTOR="celery", ARAGORA_CELERY_BROKER=redis_prefix.url, ARAGORA_CELERY_PREFIX=redis_prefix.prefix,
        ARAGORA_CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT), ARAGORA_RATE_LIMIT_REDIS_URL=redis_prefix.url,
        ARAGORA_STORE=f"ducklake:postgres:{lake_catalog}", ARAGORA_STORE_DATA_PATH=str(lake_data),
        ARAGORA_TOPICS_FILE=str(topics),
        ARAGORA_START_DATE=DAYS[0], ARAGORA_HACKERNEWS_BASE_URL=sim.hn)
    for name, value in postgres_db.env().items():
        monkeypatch.setenv(name, value)
    procs: list[subprocess.Popen[bytes]] = []
    instance = DagsterInstance.from_config(str(home))  # creates the schema before any process races to
    client = httpx.Client(timeout=30)
    try:
        instance.add_dynamic_partitions("topics", list(TOPICS))
        instance.event_log_storage.set_concurrency_slots(POOL, 1)
        store = store_of(env)
        store.initialize()  # creates the lake's schema before the workers race to
        port = free_port()
        bin_ = ROOT / "deploy" / "bin"
        webserver = start([str(bin_ / "webserver"), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)], env,
                          "scale-webserver.log")
        procs.append(webserver)
        daemon = start([str(bin_ / "daemon"), "-w", str(workspace)], env, "scale-daemon.log")
        procs.append(daemon)
        workers = {name: start([str(bin_ / "worker"), name, "--concurrency", "1"], env, f"scale-{name}.log")
                   for name in WORKERS}
        procs.extend(workers.values())
        dev = DagsterDev(proc=webserver, port=port, home=home, db_path=store.path,
                         log_path=OUTPUT_DIR / "scale-webserver.log", sim=sim, client=client, location=LOCATION)
        dev.wait_for("the webserver at /server_info", lambda: _webserver_answers(dev), STARTUP_TIMEOUT, 0.5)
        dev.wait_for(f"code location {LOCATION} to load", lambda: _location_loaded(dev), STARTUP_TIMEOUT)
        yield Deployment(dev, sim, daemon, workers, instance, env)
    finally:
        client.close()
        for proc in procs:
            stop_dagster_dev(proc, str(home))
        left = [pid for proc in procs for pid in started_processes(proc.pid, str(home))]
        instance.dispose()
        stop_sim(sim)
        assert not left, f"processes left after stopping the deployment: {left}"


def test_a_backfill_runs_on_two_celery_workers_and_survives_losing_one(deployment: Deployment) -> None:
    first = deployment.backfill()
    assert deployment.wait_for_backfill(first) == "COMPLETED_SUCCESS"
    runs = deployment.runs_of(first)
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(PARTITIONS)
    assert {r.status for r in runs} == {DagsterRunStatus.SUCCESS}
    steps = deployment.steps([r.run_id for r in runs])
    # Each run has the asset's step (in the pool) and its checks' step; steps go to any worker: both took some.
    assert sorted(run for run, step, *_ in steps if step == ASSET) == sorted(r.run_id for r in runs)
    assert {worker.split("@")[0] for _, _, worker, _, _ in steps} == set(WORKERS), steps
    # The pool's slots live in Postgres: with a limit of 1, no two steps of the pool overlapped, across workers.
    spans = sorted((s, e) for _, step, _, s, e in steps if step == ASSET)
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans)), spans
    stored_ids_match_the_simulator(deployment)

    # A second backfill of the same partitions; one worker dies (SIGKILL, its whole group) in the middle of a step.
    second = deployment.backfill()
    victim, survivor = WORKERS[1], WORKERS[0]

    def step_on_victim() -> str | None:
        runs = [r.run_id for r in deployment.runs_of(second)]
        return next((run for run in runs for entry in deployment.instance.all_logs(run)
                     if worker_of(entry).startswith(f"{victim}@")), None)

    killed_run = deployment.dev.wait_for(f"a step of backfill {second} on {victim}", step_on_victim,
                                         BACKFILL_TIMEOUT, 0.5)
    os.killpg(deployment.workers[victim].pid, signal.SIGKILL)
    deployment.workers[victim].wait(timeout=30)
    status = deployment.wait_for_backfill(second)
    runs = deployment.runs_of(second)
    print(f"second backfill {status}: " + ", ".join(f"{r.tags['dagster/partition']} {r.status.value}" for r in runs))
    partition = next(r.tags["dagster/partition"] for r in runs if r.run_id == killed_run)
    rerun = [(run, worker) for run, _, worker, _, _ in deployment.steps([r.run_id for r in runs])
             if worker.startswith(f"{survivor}@") and deployment.instance.get_run_by_id(run).tags.get(
                 "dagster/partition") == partition]
    assert rerun, f"the partition {partition} of the killed worker was not executed again on {survivor}"
    stored_ids_match_the_simulator(deployment)
