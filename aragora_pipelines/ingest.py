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
from connectors.progress import notify
from connectors.text import parse_datetime

# Items per evidence search when nobody says otherwise (the assets' run config and `aragora-pipelines ingest`).
DEFAULT_EVIDENCE_LIMIT = 200


def describe_request(name: str, query: str, limit: int | None, since: datetime | None, until: datetime | None) -> str:
    """The redacted, human-readable request recorded in provenance."""
    window = f" since={since.isoformat()} until={until.isoformat()}" if since and until else ""
    return f"{name}.search query={query!r} limit={limit}{window}"


async def fetch_evidence(connector: BaseConnector, query: str, limit: int, since: datetime | None = None,
                         until: datetime | None = None) -> list[Evidence]:
    """Search with ``connector`` (closing its client afterwards); the window only where the source has time."""
    async with connector:
        if connector.HAS_TIME_AXIS:
            items = await connector.search(query, limit=limit, since=since, until=until)
        else:
            items = await connector.search(query, limit=limit)
    notify("items", connector.name, count=len(items))
    return items


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
    items = asyncio.run(fetch_evidence(connector, query, limit, since, until))
    items, outside = within_window(items, since, until) if connector.HAS_TIME_AXIS else (items, 0)
    # The staged file holds everything the write needs: the items are freed before DuckDB works (peak memory).
    staged = store.stage_evidence(items)
    del items
    with staged:
        result = store.load_staged_evidence(staged, ctx)
    result.rows_outside_window = outside
    result.items_skipped = len(getattr(connector, "skipped", ()))  # LocalDocs lists the files it could not use
    return result


def within_window(items: list[Evidence], since: datetime | None, until: datetime | None
                  ) -> tuple[list[Evidence], int]:
    """The items created within [since, until) or at an unknown time, and how many were outside.

    A server that ignores the requested window returns items of other days; stored, they would land in the
    wrong partition, so they are dropped and counted instead.
    """
    since, until = parse_datetime(since), parse_datetime(until)
    if since is None and until is None:
        return items, 0
    kept = [ev for ev in items if (created := parse_datetime(ev.created_at)) is None
            or ((since is None or created >= since) and (until is None or created < until))]
    return kept, len(items) - len(kept)


async def fetch_objects(connector: IntegrationConnector, object_type: str, since: datetime | None,
                        until: datetime | None, limit: int | None) -> list[Any]:
    """Every object of ``object_type`` changed in the window (the connector follows pagination)."""
    objects: list[Any] = []
    async with connector:
        async for obj in connector.iter_objects(object_type, since=since, until=until, limit=limit):
            objects.append(obj)
            notify("items", connector.NAME, count=1)
    return objects


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
