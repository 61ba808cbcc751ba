"""The one ingestion path: fetch with a connector, then load into the store in one transaction.

Assets, the CLI and the benchmarks all call these functions, so they behave identically.
Fetching happens before the store is touched: a failure while fetching leaves it unchanged.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from aragora_pipelines.store import EvidenceStore, LoadContext, LoadResult
from connectors.base import BaseConnector, Evidence
from connectors.integration import IntegrationConnector


def describe_request(name: str, query: str, limit: int | None, since: datetime | None, until: datetime | None) -> str:
    """The redacted, human-readable request recorded in provenance."""
    window = f" since={since.isoformat()} until={until.isoformat()}" if since and until else ""
    return f"{name}.search query={query!r} limit={limit}{window}"


async def fetch_evidence(connector: BaseConnector, query: str, limit: int, since: datetime | None = None,
                         until: datetime | None = None) -> list[Evidence]:
    """Search with ``connector`` (closing its client afterwards); the window only where the source has time."""
    async with connector:
        if connector.HAS_TIME_AXIS:
            return await connector.search(query, limit=limit, since=since, until=until)
        return await connector.search(query, limit=limit)


def ingest_evidence(connector: BaseConnector, store: EvidenceStore, *, query: str, limit: int,
                    since: datetime | None = None, until: datetime | None = None,
                    run_id: str = "", asset_key: str = "", partition_key: str = "",
                    claim_id: str | None = None) -> LoadResult:
    """Search one window of one source and merge the results (rows, provenance, loads row) into the store."""
    connector.require_configured()
    ctx = LoadContext(
        connector=connector.name, connector_version=connector.VERSION,
        request=describe_request(connector.name, query, limit, since, until),
        run_id=run_id, asset_key=asset_key, partition_key=partition_key, claim_id=claim_id,
    )
    # The staged file holds everything the write needs: the items are freed before DuckDB works (peak memory).
    with store.stage_evidence(asyncio.run(fetch_evidence(connector, query, limit, since, until))) as staged:
        return store.load_staged_evidence(staged, ctx)


async def fetch_objects(connector: IntegrationConnector, object_type: str, since: datetime | None,
                        until: datetime | None, limit: int | None) -> list[Any]:
    """Every object of ``object_type`` changed in the window (the connector follows pagination)."""
    async with connector:
        return [obj async for obj in connector.iter_objects(object_type, since=since, until=until, limit=limit)]


def ingest_objects(connector: IntegrationConnector, store: EvidenceStore, *, service: str, object_type: str,
                   since: datetime | None = None, until: datetime | None = None, limit: int | None = None,
                   run_id: str = "", asset_key: str = "", partition_key: str = "") -> LoadResult:
    """Read one window of one integration object type and merge it into ``<service>_<object_type>``."""
    objects = asyncio.run(fetch_objects(connector, object_type, since, until, limit))
    ctx = LoadContext(
        connector=connector.NAME, connector_version=connector.VERSION,
        request=describe_request(f"{connector.NAME}.{object_type}", "", limit, since, until),
        run_id=run_id, asset_key=asset_key, partition_key=partition_key,
    )
    return store.load_objects(f"{service}_{object_type}", objects, ctx, service=service, object_type=object_type)
