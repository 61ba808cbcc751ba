"""What the store says about its loads, an item's versions and each source's health (the CLI renders it).

``loads`` lists recent loads per asset and partition, ``item_history`` every provenance version of one item
with its text where the store kept it, and ``source_health`` each source's last load, rows and freshness.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aragora_pipelines.sources import SourceStatus, freshness_window
from aragora_pipelines.store import EvidenceStore

if TYPE_CHECKING:
    import pyarrow as pa

_LOAD_COLUMNS = """asset_key, partition_key, status, rows_fetched AS fetched, rows_new AS new,
    rows_changed AS changed, rows_unchanged AS unchanged, round(duration_s, 2) AS seconds,
    date_trunc('second', finished_at) AS finished_at"""


def loads(store: EvidenceStore, *, asset: str | None = None, partition: str | None = None, every: bool = False,
          limit: int = 20) -> pa.Table:
    """The latest load of each asset and partition (with how many loads it had), newest first; ``every``: each load.

    ``asset`` is an asset key or a source name (``hackernews`` means ``evidence_hackernews``, ``stripe`` every
    ``stripe_*`` asset); ``partition`` an exact partition key.
    """
    where, params = ["TRUE"], []
    if asset:
        where.append("(asset_key = ? OR asset_key = 'evidence_' || ? OR starts_with(asset_key, ? || '_'))")
        params += [asset, asset, asset]
    if partition is not None:
        where.append("partition_key = ?")
        params.append(partition)
    clause = " AND ".join(where)
    if every:
        sql = f"SELECT {_LOAD_COLUMNS} FROM loads WHERE {clause} ORDER BY finished_at DESC, load_id LIMIT ?"
    else:
        sql = f"""SELECT {_LOAD_COLUMNS}, loads FROM (
                    SELECT *, count(*) OVER w AS loads, row_number() OVER (w ORDER BY finished_at DESC) AS latest
                    FROM loads WHERE {clause}
                    WINDOW w AS (PARTITION BY asset_key, partition_key))
                  WHERE latest = 1 ORDER BY finished_at DESC, asset_key, partition_key LIMIT ?"""
    with store.reader() as con:
        return con.execute(sql, [*params, limit]).to_arrow_table()


@dataclass(frozen=True)
class Version:
    """One provenance record of an item, with the item's text at that version when the store has it."""

    seq: int
    fetched_at: str
    content_hash: str
    connector: str
    run_id: str
    asset_key: str
    partition_key: str
    text: str | None  # title and content; None when the version was superseded before versions were kept


def _text(title: Any, content: Any) -> str:
    return f"{title or ''}\n\n{content or ''}"


def item_history(store: EvidenceStore, item_id: str) -> list[Version]:
    """Every provenance version of ``item_id``, oldest first (empty when the store has none)."""
    with store.reader() as con:
        records = con.execute(
            """SELECT seq, fetched_at, content_hash, connector, run_id, asset_key, partition_key, item_table
               FROM provenance WHERE item_id = ? ORDER BY seq""", [item_id]).fetchall()
        texts: dict[str, str] = {}
        if records and any(r[7] == "evidence" for r in records):
            kept = con.execute("SELECT content_hash, title, content FROM evidence_versions WHERE id = ? ORDER BY seq",
                               [item_id]).fetchall()
            texts = {digest: _text(title, content) for digest, title, content in kept}
    return [Version(seq, str(fetched_at), digest, connector or "", run_id or "", asset_key or "", partition or "",
                    texts.get(digest))
            for seq, fetched_at, digest, connector, run_id, asset_key, partition, _ in records]


def similar_items(store: EvidenceStore, item_id: str, limit: int = 3) -> list[str]:
    """Item ids with provenance that contain ``item_id``'s text (for a "did you mean")."""
    with store.reader() as con:
        return [r[0] for r in con.execute(
            "SELECT DISTINCT item_id FROM provenance WHERE contains(lower(item_id), lower(?)) ORDER BY item_id "
            "LIMIT ?", [item_id, limit]).fetchall()]


@dataclass(frozen=True)
class SourceHealth:
    """One source in ``status``: configured, last successful load, rows and freshness against its policy."""

    source: str
    kind: str
    configured: bool
    last_load: datetime | None
    loads: int
    rows: int
    freshness: str


def _freshness(source: str, last_load: datetime | None, now: datetime) -> str:
    if last_load is None:
        return "never loaded"
    window = freshness_window(source)
    age = now - last_load
    if age < window.warn:
        return "fresh"
    verdict = "late" if age < window.fail else "stale"
    return f"{verdict}: {_hours(age)} old (warn after {_hours(window.warn)}, fail after {_hours(window.fail)})"


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.0f}h" if hours < 72 else f"{hours / 24:.0f}d"


def source_health(store: EvidenceStore | None, statuses: list[SourceStatus], now: datetime | None = None
                  ) -> list[SourceHealth]:
    """Each source's health; without a store (``None``) every source counts as never loaded."""
    now = now or datetime.now(UTC)
    facts: dict[str, tuple[datetime | None, int, int]] = {}
    if store is not None:
        with store.reader() as con:
            evidence_rows = dict(con.execute("SELECT source, count(*) FROM evidence GROUP BY source").fetchall())
            service_tables = con.execute("SELECT service, table_name FROM object_tables").fetchall()
            for status in statuses:
                # evidence_<source> is one asset; an integration has one asset per object type, <service>_<type>
                match = "asset_key = ?" if status.kind == "evidence" else "starts_with(asset_key, ?)"
                last, count = con.execute(
                    "SELECT date_trunc('second', max(finished_at)), count(*) FROM loads "
                    f"WHERE status = 'success' AND {match}", [status.asset_prefix]).fetchone()
                if status.kind == "evidence":
                    rows = evidence_rows.get(status.source, 0)
                else:
                    rows = sum(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                               for service, table in service_tables if service == status.source)
                facts[status.source] = (last, count, rows)
    health = []
    for status in statuses:
        last, count, rows = facts.get(status.source, (None, 0, 0))
        health.append(SourceHealth(status.source, status.kind, status.configured, last, count, rows,
                                   _freshness(status.source, last, now)))
    return health
