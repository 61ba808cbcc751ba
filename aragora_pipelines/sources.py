"""Every source's settings, status and freshness windows, without Dagster.

The Dagster resources (``definitions.py``), ``make run`` and the command line all take the offline defaults,
the configured/available verdict and the wording of why a source is skipped from here, so they agree, and
``aragora-pipelines sources``/``status`` start fast (no code location is built).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from connectors.base import BaseConnector
from connectors.credentials import get_credential_provider
from connectors.exceptions import ConnectorError
from connectors.integration import IntegrationConnector
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

SAMPLE_DIR = Path(__file__).with_name("sample")
EMBEDDED_SOURCES = ("local_docs", "sql")


@dataclass(frozen=True)
class FreshnessWindow:
    """How old a source's last load may be: ``warn`` after this long, ``fail`` (stale) after that."""

    warn: timedelta
    fail: timedelta


# The assets' FreshnessPolicy windows (assets/policies.py builds its policies from these).
DAILY_WINDOW = FreshnessWindow(warn=timedelta(hours=26), fail=timedelta(hours=48))
WEEKLY_WINDOW = FreshnessWindow(warn=timedelta(days=7), fail=timedelta(days=8))


def resource_defaults(source: str) -> dict[str, Any]:
    """The resource fields a source gets by default: the sample documents and database for the offline run."""
    if source == "local_docs":
        return {"root": os.environ.get("ARAGORA_LOCAL_DOCS_ROOT") or str(SAMPLE_DIR / "docs")}
    if source == "sql":
        return {"dsn": os.environ.get("ARAGORA_SQL_DSN") or f"sqlite:///{SAMPLE_DIR / 'articles.sqlite'}",
                "options": {"table": os.environ.get("ARAGORA_SQL_TABLE", "articles")}}
    return {}


def build_evidence_connector(source: str) -> BaseConnector:
    """The evidence connector ``source`` with the defaults its Dagster resource uses (parse errors retried)."""
    fields = resource_defaults(source)
    options = fields.pop("options", {})
    return EVIDENCE_CONNECTORS[source](retry_parse_errors=True, **fields, **options)


def build_integration_connector(service: str) -> IntegrationConnector:
    """The integration connector ``service`` with credentials from the credential providers."""
    cls, _ = INTEGRATION_CONNECTORS[service]
    return cls()


def freshness_window(source: str) -> FreshnessWindow:
    """The window a source's assets are held to: daily for time-aware sources and integrations, else weekly."""
    cls = EVIDENCE_CONNECTORS.get(source)
    return DAILY_WINDOW if cls is None or cls.HAS_TIME_AXIS else WEEKLY_WINDOW


@dataclass(frozen=True)
class SourceStatus:
    """One source: its kind, whether it has a time axis, is available and configured, and what is missing."""

    source: str
    kind: str
    time_axis: bool
    available: bool
    configured: bool
    to_set: str  # "set X, Y" when unconfigured, "optional: X" for optional credentials, else a problem or ""

    @property
    def asset_prefix(self) -> str:
        """An evidence source's asset key (``evidence_hackernews``); the prefix of an integration's (``stripe_``)."""
        return f"evidence_{self.source}" if self.kind == "evidence" else f"{self.source}_"


def skip_reason(status: SourceStatus) -> str:
    """Why a run leaves this source out, worded one way for ``make run``, ``sources`` and ``status``."""
    if not status.available:
        return f"not available: {status.to_set}"
    if not status.configured:
        return f"not configured: {status.to_set}"
    return "needs network access" if status.source not in EMBEDDED_SOURCES else ""


def source_statuses() -> list[SourceStatus]:
    """Every registered source, built the way its Dagster resource builds it (no request is sent)."""
    rows = []
    for source, cls in EVIDENCE_CONNECTORS.items():
        optional = [env for kw, env in cls.CREDENTIALS.items() if kw not in cls.REQUIRED_CREDENTIALS]
        try:
            connector = build_evidence_connector(source)
        except ConnectorError as exc:
            rows.append(SourceStatus(source, "evidence", cls.HAS_TIME_AXIS, False, False, exc.message))
            continue
        missing = connector.missing_credentials()
        hint = f"set {', '.join(missing)}" if missing else f"optional: {', '.join(optional)}" if optional else ""
        rows.append(SourceStatus(source, "evidence", cls.HAS_TIME_AXIS, connector.is_available,
                                 connector.is_configured, hint))
    provider = get_credential_provider()
    for service, (_, credentials) in INTEGRATION_CONNECTORS.items():
        missing = [f.metadata["env"] for f in credentials._env_fields()
                   if f.metadata["required"] and not provider.get(f.metadata["env"])]
        rows.append(SourceStatus(service, "integration", True, True, not missing,
                                 f"set {', '.join(missing)}" if missing else ""))
    return rows
