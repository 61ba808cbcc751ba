"""Dagster resources: the DuckDB store, the topics file, and one resource per connector.

Connector resources are generated from the connector registry: each carries ``base_url``,
limits and its credential fields. Credentials left unset are read through the credential
providers (environment, AWS Secrets Manager) when the connector is built; set a field to
``EnvVar("NAME")`` to bind it explicitly. No secret literal lives in code or config.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar

import pydantic
from dagster import ConfigurableResource

from aragora_pipelines import ingest
from aragora_pipelines.store import DEFAULT_LOCK_TIMEOUT, EvidenceStore, LoadResult
from aragora_pipelines.topics import Topic, topic_for
from connectors.base import BaseConnector
from connectors.integration import IntegrationConnector

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def default_db_path() -> Path:
    """``ARAGORA_DUCKDB_PATH``, else ``data/aragora.duckdb`` under the project (or the working directory)."""
    if os.environ.get("ARAGORA_DUCKDB_PATH"):
        return Path(os.environ["ARAGORA_DUCKDB_PATH"])
    root = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return root / "data" / "aragora.duckdb"


def open_store(store: str | Path | None = None, data_path: str | None = None,
               lock_timeout: float = DEFAULT_LOCK_TIMEOUT, **options: Any) -> EvidenceStore:
    """The store a setting names: ``store``, else ``ARAGORA_STORE``, else the DuckDB file of :func:`default_db_path`.

    A setting is a file path or DuckLake's attach string (``ducklake:postgres:dbname=... host=...``); its Parquet
    files go to ``data_path``, else ``ARAGORA_STORE_DATA_PATH``. ``options`` go to :class:`EvidenceStore`.
    """
    setting = store or os.environ.get("ARAGORA_STORE") or default_db_path()
    return EvidenceStore(setting, lock_timeout, data_path=data_path or os.environ.get("ARAGORA_STORE_DATA_PATH"),
                         **options)


class DuckDBStoreResource(ConfigurableResource):
    """The evidence store: ``store`` (a path or ``ducklake:...``; default ``ARAGORA_STORE``), else ``path`` (a
    DuckDB file; default ``ARAGORA_DUCKDB_PATH`` or ``data/aragora.duckdb``); ``data_path`` for a lake's files."""

    path: str | None = None
    store: str | None = None
    data_path: str | None = None
    lock_timeout_seconds: float = 300.0

    def get_store(self) -> EvidenceStore:
        """The store the settings name."""
        return open_store(self.store or self.path, self.data_path, self.lock_timeout_seconds)

    def ingest_evidence(self, connector: BaseConnector, **kwargs: Any) -> LoadResult:
        """Fetch with ``connector`` and load into the store (see :func:`ingest.ingest_evidence`)."""
        return ingest.ingest_evidence(connector, self.get_store(), **kwargs)

    def ingest_objects(self, connector: IntegrationConnector, **kwargs: Any) -> LoadResult:
        """Fetch integration objects and load them (see :func:`ingest.ingest_objects`)."""
        return ingest.ingest_objects(connector, self.get_store(), **kwargs)


class TopicsResource(ConfigurableResource):
    """The topics YAML (``ARAGORA_TOPICS_FILE`` or the project's ``topics.yaml``)."""

    file: str | None = None

    def topic(self, key: str) -> Topic:
        """The topic behind a partition key."""
        return topic_for(key, Path(self.file) if self.file else None)


class ConnectorResource(ConfigurableResource):
    """Settings every connector shares: where it points and how hard it tries."""

    base_url: str | None = None
    max_retries: int = 3
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 30.0
    timeout_seconds: float = 30.0
    circuit_failure_threshold: int = 5
    circuit_cooldown_seconds: float = 60.0
    rate_limit_per_second: float | None = None
    options: dict[str, Any] = {}

    credential_fields: ClassVar[tuple[str, ...]] = ()

    def _credentials(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.credential_fields if getattr(self, name, None)}

    def _limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = {
            "max_retries": self.max_retries, "base_delay": self.base_delay_seconds,
            "max_delay": self.max_delay_seconds, "timeout": self.timeout_seconds,
            "circuit_failure_threshold": self.circuit_failure_threshold,
            "circuit_cooldown_seconds": self.circuit_cooldown_seconds,
        }
        if self.rate_limit_per_second:
            limits["rate_limit"] = (self.rate_limit_per_second, 1.0)
        return limits


class EvidenceConnectorResource(ConnectorResource):
    """An evidence connector as a resource; ``build()`` returns a fresh connector.

    ``retry_parse_errors`` defaults on here: ingestion only reads (GET), so a page that
    arrives truncated or garbled is fetched again (within ``max_retries``) instead of
    failing a whole partition. The connector library's own default stays off.
    """

    connector_class: ClassVar[type[BaseConnector]]
    retry_parse_errors: bool = True

    def build(self) -> BaseConnector:
        """A connector configured from this resource (credentials resolved now, not at import)."""
        return self.connector_class(base_url=self.base_url, retry_parse_errors=self.retry_parse_errors,
                                    **self._credentials(), **self._limits(), **self.options)


class IntegrationConnectorResource(ConnectorResource):
    """An integration connector as a resource; ``build()`` returns a connector to use with ``async with``."""

    connector_class: ClassVar[type[IntegrationConnector]]
    credentials_class: ClassVar[type]

    def build(self) -> IntegrationConnector:
        """A connector with credentials from this resource's fields, else from the credential providers."""
        given = self._credentials()
        creds = self.credentials_class.from_env() if not given else self.credentials_class(**given)
        return self.connector_class(creds, base_url=self.base_url, **self._limits(), **self.options)


def _optional_str_fields(names: list[str]) -> dict[str, Any]:
    return {name: (str | None, None) for name in names}


def evidence_resource_class(cls: type[BaseConnector]) -> type[EvidenceConnectorResource]:
    """A resource class for an evidence connector, with one optional field per credential keyword."""
    names = list(cls.CREDENTIALS)
    model = pydantic.create_model(f"{cls.__name__}Resource", __base__=EvidenceConnectorResource,
                                  **_optional_str_fields(names))
    model.connector_class = cls
    model.credential_fields = tuple(names)
    return model


def integration_resource_class(cls: type[IntegrationConnector], credentials: type) -> type[
        IntegrationConnectorResource]:
    """A resource class for an integration connector, with one optional field per credentials field."""
    names = [f.name for f in dataclasses.fields(credentials) if f.name != "base_url"]
    model = pydantic.create_model(f"{cls.__name__}Resource", __base__=IntegrationConnectorResource,
                                  **_optional_str_fields(names))
    model.connector_class = cls
    model.credentials_class = credentials
    model.credential_fields = tuple(names)
    return model


