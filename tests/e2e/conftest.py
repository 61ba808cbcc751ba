"""The real `dagster dev` (webserver and daemon), for end-to-end tests.

``dagster_dev``: a temporary DAGSTER_HOME copied from dagster_home/, a temporary DuckDB file and topics
file, the simulator as the HackerNews API, and a workspace loading tests/e2e/e2e_defs.py (production
definitions plus a one-minute schedule, the sensors it does not test switched off). ``fresh_dagster_dev``:
a fresh install as the README starts it (the repository's workspace.yaml and dagster.yaml, no credentials,
no network). Teardown stops the whole process group and fails if any process it started is left or the port
stays taken. Waits follow progress (runs started, finished) under a generous overall cap, not one deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Sim, free_port, start_sim, stop_sim
from tests.support.apisim import indices

OUTPUT_DIR = ROOT / "test-output" / "e2e"
VENV_BIN = Path(sys.executable).parent
LOCATION = "aragora_e2e"
FRESH_LOCATION = "aragora_pipelines"  # the location name pyproject.toml and workspace.yaml both give
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object
TOPIC = "rate-limiting"
# Below the asset's default limit (200), so a partition stores all of its day's records. The simulator creates
# record i at BASE_TS + i * STEP_S (2026-01-01 00:00 UTC on, 37 s apart) and honours the connector's time window.
SIM_RECORDS = 120
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0
# A wait fails when nothing it watches changed for its timeout, and in any case after this long.
WAIT_CAP = 900.0
CHROMIUM = Path("/usr/bin/chromium")
# The flags Chromium needs on these machines: no sandbox as root, and no background connections,
# which a closed network refuses (many at a time).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class DagsterDev:
    """A running `dagster dev`: where it listens, its files, and a GraphQL client."""

    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    db_path: Path
    log_path: Path
    sim: Sim | None
    client: httpx.Client = field(repr=False)
    location: str = LOCATION

    @property
    def url(self) -> str:
        """The webserver's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST ``query`` to the webserver's GraphQL endpoint; raise on transport or GraphQL errors."""
        response = self.client.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}})
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def log_tail(self, lines: int = 40) -> str:
        """The end of the dagster dev log, for failure messages."""
        text = self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0,
                 progress: Callable[[], Any] | None = None, cap: float = WAIT_CAP) -> Any:
        """Poll ``probe`` until it returns something truthy; fail naming ``what`` (with the log) on timeout.

        With ``progress`` (a snapshot of what is moving: runs started, finished), ``timeout`` counts from its
        last change, so a loaded machine that is slow but progressing is waited for, up to ``cap`` in all.
        """
        start = time.monotonic()
        deadline, seen = start + timeout, progress() if progress else None
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dagster dev exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     f"{self.log_tail()}")
            result = probe()
            if result:
                return result
            now = time.monotonic()
            if progress and (snapshot := progress()) != seen:
                deadline, seen = now + timeout, snapshot
            if now >= min(deadline, start + cap):
                why = f"no progress for {timeout:.0f}s" if now < start + cap else f"{cap:.0f}s in all"
                raise AssertionError(f"timed out ({why}) waiting for {what}; last progress: {seen}; log tail:\n"
                                     f"{self.log_tail()}")
            time.sleep(interval)

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the instance: id, status and tags."""
        data = self.graphql("""{ runsOrError { __typename ... on Runs { results {
            runId status tags { key value } } } } }""")
        return data["runsOrError"]["results"]

    def check_executions(self, asset: str, check: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest evaluations of one asset check: run, status, whether it passed, and its metadata."""
        data = self.graphql("""query Executions($key: AssetKeyInput!, $check: String!, $limit: Int!) {
            assetCheckExecutions(assetKey: $key, checkName: $check, limit: $limit) {
              runId status evaluation { success metadataEntries { label ... on TextMetadataEntry { text }
                ... on IntMetadataEntry { intValue } } } } }""", {"key": {"path": [asset]}, "check": check,
                                                                  "limit": limit})
        return data["assetCheckExecutions"]

    def run_progress(self) -> tuple[tuple[str, str], ...]:
        """(run id, status) of every run: changes whenever a run is queued, starts or ends."""
        return tuple(sorted((r["runId"], r["status"]) for r in self.runs()))


def sim_records_on(day: str) -> int:
    """How many of the simulator's SIM_RECORDS HackerNews items were created on ``day`` (UTC): its partition's rows."""
    start = int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())
    return len(indices(SIM_RECORDS, (start, start + 86_400)))


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of ``pid`` from /proc, or None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], int(fields[2])


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def started_processes(pgid: int, marker: str) -> list[int]:
    """Live (non-zombie) processes in group ``pgid`` or carrying ``marker`` (our DAGSTER_HOME) in their env."""
    needle = marker.encode() + b"\0"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        stat = _proc_stat(pid)
        if stat and stat[0] != "Z" and (stat[1] == pgid or _has_marker(pid, needle)):
            pids.append(pid)
    return pids


def port_is_free(port: int) -> bool:
    """Whether nothing listens on loopback ``port`` (a bind succeeds)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pgid: int, marker: str, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := started_processes(pgid, marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def stop_dagster_dev(proc: subprocess.Popen[bytes], marker: str) -> list[int]:
    """Stop dagster dev like Ctrl+C, then its whole process group; returns pids that had to be killed."""
    pgid = proc.pid  # started with start_new_session: the group id is its pid
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # dagster dev maps SIGTERM to Ctrl+C: webserver and daemon stop
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)
    # Code servers and run workers outlive dagster dev until their heartbeat times out: end them now.
    _signal_all(started_processes(pgid, marker), signal.SIGTERM)
    stubborn = _wait_gone(pgid, marker, 10)
    _signal_all(stubborn, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    _wait_gone(pgid, marker, 5)
    return stubborn


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without Aragora or Dagster settings from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARAGORA_", "DAGSTER_"))}
    return {**env, **extra}


def _location_loaded(dev: DagsterDev) -> bool:
    data = dev.graphql("""{ workspaceOrError { __typename ... on Workspace { locationEntries {
        name locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    for entry in data["workspaceOrError"].get("locationEntries", []):
        loaded = entry["locationOrLoadError"]
        if entry["name"] == dev.location and loaded:
            if loaded["__typename"] == "PythonError":
                raise AssertionError(f"code location {dev.location} failed to load: {loaded['message']}")
            return loaded["__typename"] == "RepositoryLocation"
    return False


def topic_partitions(dev: DagsterDev) -> list[str]:
    """The keys of the ``topic`` dimension of evidence_hackernews, as the webserver sees them."""
    data = dev.graphql("""{ assetNodeOrError(assetKey: {path: ["evidence_hackernews"]}) {
        ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }""")
    dims = {d["name"]: d["partitionKeys"] for d in data["assetNodeOrError"]["partitionKeysByDimension"]}
    return dims.get("topic", [])


def _webserver_answers(dev: DagsterDev) -> bool:
    try:
        return dev.client.get(f"{dev.url}/server_info").status_code == 200
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def run_dagster_dev(work: Path, command: Sequence[str], cwd: Path, location: str, env: Mapping[str, str],
                    log_name: str, sim: Sim | None = None) -> Iterator[DagsterDev]:
    """``command`` (`dagster dev -w ...` or `dg dev`, without host and port) run in ``cwd`` with a DAGSTER_HOME under
    ``work`` (a copy of dagster_home/dagster.yaml), ready once the webserver answers and ``location`` loaded;
    stopped with every process it started."""
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    (work / "tmp").mkdir()
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT_DIR / log_name
    port = free_port()
    env = {**env, "DAGSTER_HOME": str(home), "TMPDIR": str(work / "tmp"), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*command, "-h", "127.0.0.1", "-p", str(port)],
            cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # A shell that started us in the background may ignore SIGINT; dagster dev's SIGTERM handler
            # reuses the SIGINT one, so restore the default or it could not be stopped gracefully.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    dev = DagsterDev(proc=proc, port=port, home=home, db_path=work / "evidence.duckdb", log_path=log_path,
                     sim=sim, client=httpx.Client(timeout=30), location=location)
    try:
        dev.wait_for("the webserver at /server_info", lambda: _webserver_answers(dev), STARTUP_TIMEOUT, 0.5)
        dev.wait_for(f"code location {location} to load", lambda: _location_loaded(dev), STARTUP_TIMEOUT)
        yield dev
    finally:
        dev.client.close()
        killed = stop_dagster_dev(proc, str(home))
        left = started_processes(proc.pid, str(home))
        assert not left, f"processes left after stopping dagster dev: {left}"
        assert port_is_free(port), f"port {port} is still taken after stopping dagster dev"
        if killed:
            print(f"e2e teardown: had to kill {len(killed)} lingering dagster processes")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """`dagster dev` with the e2e workspace, ready: webserver answering, location loaded, topic synced."""
    work = tmp_path_factory.mktemp("dagster-e2e")
    topics = work / "topics.yaml"
    topics.write_text(f"topics:\n  {TOPIC}:\n    query: rate limiting\n    claim_id: claim_e2e\n")
    workspace = work / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.e2e.e2e_defs\n      attribute: defs\n"
        f"      working_directory: {ROOT}\n      location_name: {LOCATION}\n")
    sim = start_sim(records=SIM_RECORDS)
    env = _clean_env(
        ARAGORA_DUCKDB_PATH=str(work / "evidence.duckdb"), ARAGORA_TOPICS_FILE=str(topics),
        ARAGORA_START_DATE="2026-01-01", ARAGORA_HACKERNEWS_BASE_URL=sim.hn,
    )
    try:
        with run_dagster_dev(work, [str(VENV_BIN / "dagster"), "dev", "-w", str(workspace)], work, LOCATION, env,
                             "dagster-dev.log", sim) as dev:
            dev.wait_for(f"topics_sensor to add the {TOPIC!r} partition", lambda: TOPIC in topic_partitions(dev),
                         STARTUP_TIMEOUT)
            yield dev
    finally:
        stop_sim(sim)


# How long the fresh instance runs at most: start-up, the three minutes it is left alone, the checks and the UI.
FRESH_INSTANCE_SPAN = timedelta(minutes=10)


def wait_out_daily_schedule_ticks(span: timedelta) -> None:
    """Sleep past any daily schedule tick due within ``span``: at 03:00 the evidence schedule really launches the
    network sources, which fail on a machine without network, and that red would be true, not a fresh-install
    defect; so the fresh instance never runs across a tick."""
    from aragora_pipelines.definitions import daily_tick, defs

    now = datetime.now(UTC)
    ticks = [datetime.combine(now.date() + timedelta(days=d), daily_tick(s), UTC)
             for s in defs.schedules or [] for d in (0, 1)]  # type: ignore[arg-type]
    clash = [t for t in ticks if now - timedelta(minutes=2) <= t <= now + span]
    if clash:
        time.sleep((max(clash) + timedelta(minutes=2) - now).total_seconds())


def fresh_install_env(**extra: str) -> dict[str, str]:
    """A fresh machine's environment with the venv activated as the README says: the system's basics only, so no
    credential or setting of ours leaks in."""
    basics = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "USER", "TZ")}
    return {**basics, "PATH": f"{VENV_BIN}{os.pathsep}{basics.get('PATH', '')}", "VIRTUAL_ENV": str(VENV_BIN.parent),
            **extra}


@pytest.fixture(scope="module")
def fresh_dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """`dg dev` from the repository root as the README starts it on a fresh install: its pyproject.toml and
    dagster.yaml, the production definitions and topics, no credentials, no network (only the store goes to a
    temporary file)."""
    wait_out_daily_schedule_ticks(FRESH_INSTANCE_SPAN)
    work = tmp_path_factory.mktemp("dagster-fresh")
    env = fresh_install_env(ARAGORA_DUCKDB_PATH=str(work / "evidence.duckdb"))
    with run_dagster_dev(work, [str(VENV_BIN / "dg"), "dev"], ROOT, FRESH_LOCATION, env,
                         "dagster-dev-fresh.log") as dev:
        yield dev


@contextlib.contextmanager
def browser_page(url: str, profile: Path) -> Iterator[Any]:
    """A page in Debian's headless Chromium (fresh ``profile``) on the UI at ``url``, past the welcome dialog."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium` "
                    "(.ci/run does); Playwright cannot download its own browsers here")
    from playwright.sync_api import expect, sync_playwright  # the e2e extra: imported here, `make test` needs none

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000})
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            expect.set_options(timeout=30_000)
            # A fresh DAGSTER_HOME greets its first visitor with a newsletter dialog; skip it as a user would.
            page.goto(url)
            welcome = page.get_by_role("dialog").filter(has_text="Join the Dagster community")
            welcome.get_by_role("button", name="Skip").click()
            expect(welcome).to_be_hidden()
            yield page
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot of the window under test-output/e2e/."""
    path = OUTPUT_DIR / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def write_json(name: str, value: Any) -> Path:
    """Save ``value`` as test-output/e2e/``name``.json, for a failure's post-mortem."""
    path = OUTPUT_DIR / f"{name}.json"
    path.write_text(json.dumps(value, indent=2, default=str))
    return path
