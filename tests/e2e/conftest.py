"""The real `dagster dev` (webserver and daemon) against the loopback simulator, for end-to-end tests.

One module-scoped instance: a temporary DAGSTER_HOME copied from dagster_home/, a temporary DuckDB
file and topics file, the simulator as the HackerNews API, and a workspace loading
tests/e2e/e2e_defs.py (production definitions plus a one-minute schedule). Teardown stops the whole
process group and fails if any process it started is left or the port stays taken.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, Sim, free_port, start_sim, stop_sim

OUTPUT_DIR = ROOT / "test-output" / "e2e"
LOCATION = "aragora_e2e"
REPOSITORY = "__repository__"  # the repository name Dagster gives a Definitions object
TOPIC = "rate-limiting"
SIM_RECORDS = 120  # below the asset's default limit (200), so every partition stores all of them
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0


@dataclass
class DagsterDev:
    """A running `dagster dev`: where it listens, its files, and a GraphQL client."""

    proc: subprocess.Popen[bytes]
    port: int
    home: Path
    db_path: Path
    log_path: Path
    sim: Sim
    client: httpx.Client = field(repr=False)

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

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        """Poll ``probe`` until it returns something truthy; fail naming ``what`` (with the log) on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"dagster dev exited ({self.proc.returncode}) while waiting for {what}:\n"
                                     f"{self.log_tail()}")
            result = probe()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; log tail:\n{self.log_tail()}")
            time.sleep(interval)


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
        if entry["name"] == LOCATION and loaded:
            if loaded["__typename"] == "PythonError":
                raise AssertionError(f"code location {LOCATION} failed to load: {loaded['message']}")
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


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterDev]:
    """`dagster dev` with the e2e workspace, ready: webserver answering, location loaded, topic synced."""
    work = tmp_path_factory.mktemp("dagster-e2e")
    home = work / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    (work / "tmp").mkdir()
    topics = work / "topics.yaml"
    topics.write_text(f"topics:\n  {TOPIC}:\n    query: rate limiting\n    claim_id: claim_e2e\n")
    workspace = work / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: tests.e2e.e2e_defs\n      attribute: defs\n"
        f"      working_directory: {ROOT}\n      location_name: {LOCATION}\n")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUTPUT_DIR / "dagster-dev.log"
    port = free_port()
    sim = start_sim(records=SIM_RECORDS)
    env = _clean_env(
        DAGSTER_HOME=str(home), TMPDIR=str(work / "tmp"), PYTHONUNBUFFERED="1",
        ARAGORA_DUCKDB_PATH=str(work / "evidence.duckdb"), ARAGORA_TOPICS_FILE=str(topics),
        ARAGORA_START_DATE="2026-01-01", ARAGORA_HACKERNEWS_BASE_URL=sim.hn,
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("dagster")), "dev", "-w", str(workspace),
             "-h", "127.0.0.1", "-p", str(port)],
            cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            # A shell that started us in the background may ignore SIGINT; dagster dev's SIGTERM handler
            # reuses the SIGINT one, so restore the default or it could not be stopped gracefully.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    dev = DagsterDev(proc=proc, port=port, home=home, db_path=work / "evidence.duckdb", log_path=log_path,
                     sim=sim, client=httpx.Client(timeout=30))
    try:
        dev.wait_for("the webserver at /server_info", lambda: _webserver_answers(dev), STARTUP_TIMEOUT, 0.5)
        dev.wait_for(f"code location {LOCATION} to load", lambda: _location_loaded(dev), STARTUP_TIMEOUT)
        dev.wait_for(f"topics_sensor to add the {TOPIC!r} partition", lambda: TOPIC in topic_partitions(dev),
                     STARTUP_TIMEOUT)
        yield dev
    finally:
        dev.client.close()
        killed = stop_dagster_dev(proc, str(home))
        stop_sim(sim)
        left = started_processes(proc.pid, str(home))
        assert not left, f"processes left after stopping dagster dev: {left}"
        assert port_is_free(port), f"port {port} is still taken after stopping dagster dev"
        if killed:
            print(f"e2e teardown: had to kill {len(killed)} lingering dagster processes")
