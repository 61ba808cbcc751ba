"""The project as Dagster's own command lines see it from the root: `dg check defs`, `dg list defs`, `dg dev`,
`dagster asset list`, with the virtual environment activated as the README says (slow: each loads the location)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.e2e.conftest import port_is_free, started_processes, stop_dagster_dev

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
LOCATION = "aragora_pipelines"  # pyproject.toml's code_location_name, as workspace.yaml names it
STARTUP_TIMEOUT = 120.0


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An activated venv (VIRTUAL_ENV, PATH) with a temporary DAGSTER_HOME and store; no settings of ours."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ARAGORA_", "DAGSTER_", "VIRTUAL_ENV"))}
    return {**base, "PATH": f"{VENV_BIN}{os.pathsep}{base.get('PATH', '')}", "VIRTUAL_ENV": str(VENV_BIN.parent),
            "DAGSTER_HOME": str(home), "ARAGORA_DUCKDB_PATH": str(tmp_path / "evidence.duckdb"), "NO_COLOR": "1"}


def dg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command from the project root; fail with its output unless it exits 0."""
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def test_dg_check_defs_loads_the_definitions_without_warnings(env: dict[str, str]) -> None:
    result = dg(env, "dg", "check", "defs")
    assert "All definitions loaded successfully." in result.stdout + result.stderr
    assert "To suppress this warning" not in result.stdout + result.stderr  # any dg warning, e.g. a venv mismatch


def test_dg_list_defs_json_lists_the_assets_schedules_and_sensors(env: dict[str, str]) -> None:
    listed = json.loads(dg(env, "dg", "list", "defs", "--json").stdout)
    assets = {a["asset_key"]: a for a in listed["assets"]}
    assert {"evidence_hackernews", "evidence_sql", "evidence_catalog", "stripe_charges"} <= set(assets)
    assert assets["evidence_hackernews"]["group_name"] == "evidence"
    assert {s["name"] for s in listed["schedules"]} >= {"daily_evidence_schedule", "daily_integrations_schedule"}
    assert "topics_sensor" in {s["name"] for s in listed["sensors"]}


def test_dagster_asset_list_with_the_module(env: dict[str, str]) -> None:
    result = dg(env, "dagster", "asset", "list", "-m", "aragora_pipelines.definitions")
    assert "evidence_hackernews" in result.stdout.splitlines()


def test_dg_dev_serves_the_project_from_the_root(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "dg-dev.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(["dg", "dev", "-h", "127.0.0.1", "-p", str(port)], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    marker = env["DAGSTER_HOME"]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            locations = _wait_for_locations(client, proc, log_path)
        assert locations == {LOCATION: "RepositoryLocation"}
        log = log_path.read_text("utf-8", errors="replace")
        assert "SupersessionWarning" not in log and "To suppress this warning" not in log, log[-3000:]
    finally:
        stop_dagster_dev(proc, marker)
        assert not started_processes(proc.pid, marker)
        assert port_is_free(port)


def _wait_for_locations(client: httpx.Client, proc: subprocess.Popen[bytes], log_path: Path) -> dict[str, str]:
    """The webserver's code locations once /server_info answers and none is still loading."""
    query = """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
        locationOrLoadError { __typename } } } } }"""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"dg dev exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"
        try:
            if client.get("/server_info").status_code == 200:
                entries = client.post("/graphql", json={"query": query}).json()["data"]["workspaceOrError"][
                    "locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    return {e["name"]: e["locationOrLoadError"]["__typename"] for e in entries}
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise AssertionError(f"dg dev did not serve a loaded location in {STARTUP_TIMEOUT:.0f}s:\n"
                         f"{log_path.read_text()[-3000:]}")
