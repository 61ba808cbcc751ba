"""Fixtures for materializing assets with an ephemeral Dagster instance against a temporary store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize

from aragora_pipelines.definitions import RESOURCES
from aragora_pipelines.resources import DuckDBStoreResource, TopicsResource, evidence_resource_class
from aragora_pipelines.store import EvidenceStore
from connectors.registry import EVIDENCE_CONNECTORS


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in-process: (exit status, stdout, stderr); argparse's exits become statuses."""
    from aragora_pipelines.cli import main

    try:
        status = main(list(argv))
    except SystemExit as exc:
        status = int(exc.code or 0)
    out = capsys.readouterr()
    return status, out.out, out.err


TOPICS_YAML = """topics:
  ai-safety:
    query: ai safety
    claim_id: claim_ai
  rate-limiting:
    query: rate limiting
"""


@pytest.fixture
def topics_file(tmp_path: Path) -> Path:
    path = tmp_path / "topics.yaml"
    path.write_text(TOPICS_YAML)
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "evidence.duckdb"


@pytest.fixture
def store(store_path: Path) -> EvidenceStore:
    return EvidenceStore(store_path, lock_timeout=60)


@pytest.fixture
def instance(topics_file: Path, monkeypatch: pytest.MonkeyPatch) -> DagsterInstance:
    """An ephemeral instance whose ``topics`` partitions match the topics file the code location reads."""
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics_file))
    inst = DagsterInstance.ephemeral()
    inst.add_dynamic_partitions("topics", ["ai-safety", "rate-limiting"])
    return inst


@pytest.fixture
def run_assets(instance: DagsterInstance, store_path: Path, topics_file: Path
               ) -> Callable[..., ExecuteInProcessResult]:
    """Materialize ``assets`` for one partition with the project's resources, overridden per test."""

    def run(assets: list[AssetsDefinition], partition_key: Any, limit: int = 1000,
            **overrides: Any) -> ExecuteInProcessResult:
        resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(store_path)),
                     "topics": TopicsResource(file=str(topics_file))}
        for source, config in overrides.items():
            resources[source] = evidence_resource_class(EVIDENCE_CONNECTORS[source])(**config)
        config = {"ops": {a.op.name: {"config": {"limit": limit}} for a in assets
                          if a.op.name.startswith("evidence_")}}
        return materialize(assets, partition_key=partition_key, resources=resources, instance=instance,
                           raise_on_error=False, run_config=config)

    return run
