"""The evidence store: evidence, integration objects, provenance chain, citations, sightings, loads.

Every write goes through :class:`EvidenceStore`, one interface over two backends: a DuckDB file (the
embedded default) and DuckLake (a Postgres or SQLite catalog with Parquet files on a shared path or S3),
picked by the store setting (a path, or ``ducklake:...``). The schema is append-only and the same on both:
a load appends versions, provenance records, sightings, citations and its ``loads`` row in one transaction,
in bulk; ``evidence`` and each integration table are views of every item's current version.

A DuckDB file allows one writing process: writers queue on a file lock and hold the database only while they
write; every open retries DuckDB's own lock with backoff, so concurrent runs and readers wait instead of failing.
On DuckLake many processes write at once and readers read the last snapshot without waiting.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import random
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

import duckdb
from filelock import FileLock, Timeout

from connectors.base import Evidence
from connectors.provenance import GENESIS_HASH, utc_timestamp
from connectors.redact import contains_secret, redact, redact_mapping, redact_url
from connectors.text import strip_terminal_controls
from connectors.webhooks import DEFAULT_REPLAY_RETENTION

from .lake import LAKE_ALIAS, LAKE_PREFIX, LakeError, LakeTarget, is_conflict, redact_attach, sql_text

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA_VERSION = 4
DEFAULT_LOCK_TIMEOUT = 300.0
# The connect config of every store connection: offline, DuckDB never fetches or auto-loads an extension.
OFFLINE_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
# How often a load retries a commit DuckLake refused because another writer committed first.
CONFLICT_RETRIES = 50

# The text a chain hash covers for provenance.fetched_at: its canonical UTC form, as connectors.provenance.utc_timestamp
# writes it (2026-03-04T05:06:07.123456Z). The column is a TIMESTAMPTZ; this recomputes the hashed text in SQL.
CHAIN_TIMESTAMP_SQL = "strftime(fetched_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S.%fZ')"


def chain_record_sql(fetched_at: str = CHAIN_TIMESTAMP_SQL) -> str:
    """The canonical serialisation of a whole provenance record (hash_format 2): a JSON array of every field.

    Every field but the hash itself (and ``record_id``, derived from it) is covered, so editing a record's
    connector, claim or request breaks its chain hash; ``fetched_at`` is the SQL giving the canonical time text.
    """
    return ("CAST(to_json([item_table, item_id, CAST(seq AS VARCHAR), content_hash, previous_hash, "
            f"{fetched_at}, connector, connector_version, request, run_id, asset_key, partition_key, claim_id, "
            "load_id]) AS VARCHAR)")


# What each record's chain_hash must be. hash_format 1 marks records written before schema 4, which hashed
# content_hash|previous_hash|fetched_at only; they are kept as they were hashed, never re-signed.
CHAIN_HASH_SQL = (f"sha256(CASE WHEN hash_format = 1 THEN content_hash || '|' || previous_hash || '|' || "
                  f"{CHAIN_TIMESTAMP_SQL} ELSE {chain_record_sql()} END)")

# The columns every append-only versions table (evidence_versions, <object table>_versions) ends with.
VERSION_COLUMNS = ("seq", "first_seen", "loaded_at", "run_id", "partition_key", "load_id")
_VERSION_COLUMNS_SQL = ("content_hash VARCHAR NOT NULL, seq BIGINT NOT NULL, first_seen TIMESTAMPTZ NOT NULL, "
                        "loaded_at TIMESTAMPTZ NOT NULL, run_id VARCHAR, partition_key VARCHAR, load_id VARCHAR")
_EVIDENCE_DATA_SQL = (
    "id VARCHAR NOT NULL, source VARCHAR NOT NULL, source_id VARCHAR NOT NULL, source_type VARCHAR NOT NULL, "
    "title VARCHAR, content VARCHAR, url VARCHAR, author VARCHAR, created_at TIMESTAMPTZ, confidence DOUBLE, "
    "freshness DOUBLE, authority DOUBLE, reliability_score DOUBLE, metadata JSON")


def versions_ddl(item_table: str, data_sql: str) -> str:
    """The append-only table ``<item_table>_versions``: one row per version (data, hash, seq, when, which load)."""
    return f"CREATE TABLE {item_table}_versions ({data_sql}, {_VERSION_COLUMNS_SQL})"


def current_view_sql(item_table: str, data_columns: Sequence[str]) -> str:
    """The view ``item_table``: each item's latest version, with first and last seen (sightings included).

    What analysts query (``evidence``, ``stripe_charges``...) is this view, so loads only ever append rows.
    """
    cols = ", ".join(f"v.{c}" for c in data_columns)
    last = ("CASE WHEN s.seen_at > v.loaded_at THEN s.{0} ELSE v.{0} END AS last_{0}" if item_table == "evidence"
            else "")
    extra = ", " + ", ".join(last.format(c) for c in ("run_id", "partition_key")) if last else ""
    return f"""CREATE OR REPLACE VIEW {item_table} AS
        SELECT {cols}, v.first_seen, CASE WHEN s.seen_at > v.loaded_at THEN s.seen_at ELSE v.loaded_at END AS last_seen
               {extra}
        FROM (SELECT * FROM {item_table}_versions
              QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq DESC) = 1) v
        LEFT JOIN (SELECT item_id, max(seen_at) AS seen_at, arg_max(run_id, seen_at) AS run_id,
                          arg_max(partition_key, seen_at) AS partition_key
                   FROM sightings WHERE item_table = '{item_table}' GROUP BY item_id) s ON s.item_id = v.id"""


_PROVENANCE_DDL = """CREATE TABLE provenance (
    seq BIGINT NOT NULL, record_id VARCHAR NOT NULL, item_table VARCHAR NOT NULL, item_id VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL, previous_hash VARCHAR NOT NULL, chain_hash VARCHAR NOT NULL,
    fetched_at TIMESTAMPTZ NOT NULL, connector VARCHAR, connector_version VARCHAR, request VARCHAR, run_id VARCHAR,
    asset_key VARCHAR, partition_key VARCHAR, claim_id VARCHAR, load_id VARCHAR, hash_format SMALLINT NOT NULL)"""
_SIGHTINGS_DDL = """CREATE TABLE sightings (
    item_table VARCHAR NOT NULL, item_id VARCHAR NOT NULL, seen_at TIMESTAMPTZ NOT NULL, load_id VARCHAR,
    run_id VARCHAR, partition_key VARCHAR)"""

# A new store, on either backend (DuckLake has no primary keys or sequences: nothing here needs them). Every table
# but webhook_deliveries is only ever appended to by loads.
SCHEMA: list[str] = [
    versions_ddl("evidence", _EVIDENCE_DATA_SQL),
    _PROVENANCE_DDL,
    _SIGHTINGS_DDL,
    """CREATE TABLE claim_citations (claim_id VARCHAR NOT NULL, evidence_id VARCHAR NOT NULL, support VARCHAR,
        relevance DOUBLE, run_id VARCHAR, cited_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE loads (load_id VARCHAR NOT NULL, run_id VARCHAR, asset_key VARCHAR, partition_key VARCHAR,
        target_table VARCHAR, connector VARCHAR, rows_fetched BIGINT, rows_new BIGINT, rows_changed BIGINT,
        rows_unchanged BIGINT, status VARCHAR, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, duration_s DOUBLE,
        error VARCHAR)""",
    "CREATE TABLE object_tables (table_name VARCHAR NOT NULL, service VARCHAR, object_type VARCHAR, "
    "created_at TIMESTAMPTZ)",
    "CREATE TABLE webhook_deliveries (service VARCHAR NOT NULL, delivery_id VARCHAR NOT NULL, "
    "seen_at TIMESTAMPTZ NOT NULL)",
]

# Superseded evidence text as schema 3 kept it (by item and content hash); migration 4 folds it into the versions.
_V3_TEXTS_DDL = """CREATE TABLE IF NOT EXISTS evidence_versions (
    item_id VARCHAR NOT NULL, content_hash VARCHAR NOT NULL, title VARCHAR, content VARCHAR,
    PRIMARY KEY (item_id, content_hash))"""


def _migrate_to_append_only(con: duckdb.DuckDBPyConnection) -> None:
    """Schema 3 -> 4 (DuckDB file): every current row and kept text becomes a version, last_seen a sighting.

    Provenance keeps every record and hash (hash_format 1: they verify as they were hashed); its global seq
    becomes each item's own 1..n in the same order. Nothing is lost: the old columns map one to one.
    """
    con.execute(_V3_TEXTS_DDL)
    for name in ("evidence", "evidence_versions", "provenance"):
        con.execute(f"ALTER TABLE {name} RENAME TO {name}_v3")
    con.execute("DROP SCHEMA IF EXISTS fts_main_evidence CASCADE")  # indexed the old table; the catalog rebuilds
    for statement in (versions_ddl("evidence", _EVIDENCE_DATA_SQL), _PROVENANCE_DDL, _SIGHTINGS_DDL):
        con.execute(statement)
    con.execute("""INSERT INTO provenance
        SELECT row_number() OVER (PARTITION BY item_table, item_id ORDER BY seq), record_id, item_table, item_id,
               content_hash, previous_hash, chain_hash, fetched_at, connector, connector_version, request, run_id,
               asset_key, partition_key, claim_id, NULL, 1
        FROM provenance_v3""")
    con.execute("DROP TABLE provenance_v3")
    con.execute("DROP SEQUENCE IF EXISTS provenance_seq")
    data = ", ".join(EVIDENCE_COLUMNS)
    _migrate_current_rows(con, "evidence", [f"e.{c}" for c in EVIDENCE_COLUMNS], data,
                          "e.last_run_id", "e.last_partition_key")
    con.execute(f"""INSERT INTO evidence_versions ({data}, {", ".join(VERSION_COLUMNS)})
        SELECT t.item_id, e.source, e.source_id, e.source_type, t.title, t.content, NULL, NULL, NULL, NULL, NULL,
               NULL, NULL, NULL, t.content_hash, p.seq, e.first_seen, p.fetched_at, p.run_id, p.partition_key, NULL
        FROM evidence_versions_v3 t JOIN evidence_v3 e ON e.id = t.item_id
        JOIN (SELECT item_id, content_hash, min(seq) AS seq, arg_min(fetched_at, seq) AS fetched_at,
                     arg_min(run_id, seq) AS run_id, arg_min(partition_key, seq) AS partition_key
              FROM provenance WHERE item_table = 'evidence' GROUP BY item_id, content_hash) p
          ON p.item_id = t.item_id AND p.content_hash = t.content_hash
        WHERE p.seq < (SELECT max(seq) FROM evidence_versions c WHERE c.id = t.item_id)""")
    con.execute("DROP TABLE evidence_versions_v3")
    con.execute("DROP TABLE evidence_v3")
    con.execute(current_view_sql("evidence", EVIDENCE_COLUMNS))
    for (table,) in con.execute("SELECT table_name FROM object_tables").fetchall():
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? AND table_catalog = "
            "current_database() ORDER BY ordinal_position", [table]).fetchall()]
        data_columns = [c for c in columns if c not in ("first_seen", "last_seen")]
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_v3")
        con.execute(f"CREATE TABLE {table}_versions AS SELECT {', '.join(data_columns)}, "
                    "CAST(NULL AS BIGINT) AS seq, first_seen, last_seen AS loaded_at, CAST(NULL AS VARCHAR) AS run_id, "
                    f"CAST(NULL AS VARCHAR) AS partition_key, CAST(NULL AS VARCHAR) AS load_id FROM {table}_v3 LIMIT 0")
        _migrate_current_rows(con, table, [f"e.{c}" for c in data_columns], ", ".join(data_columns), "NULL", "NULL")
        con.execute(f"DROP TABLE {table}_v3")
        con.execute(current_view_sql(table, [c for c in data_columns if c != "content_hash"] + ["content_hash"]))


def _migrate_current_rows(con: duckdb.DuckDBPyConnection, table: str, select: list[str], data: str,
                          last_run: str, last_partition: str) -> None:
    """Copy ``<table>_v3``'s rows as the latest version of each item, and a later last_seen as a sighting."""
    latest = f"""(SELECT item_id, max(seq) AS seq, arg_max(fetched_at, seq) AS fetched_at,
                         arg_max(run_id, seq) AS run_id, arg_max(partition_key, seq) AS partition_key
                  FROM provenance WHERE item_table = '{table}' GROUP BY item_id) p"""
    con.execute(f"""INSERT INTO {table}_versions ({data}, {", ".join(VERSION_COLUMNS)})
        SELECT {", ".join(select)}, coalesce(p.seq, 1), e.first_seen, coalesce(p.fetched_at, e.first_seen),
               p.run_id, p.partition_key, NULL
        FROM {table}_v3 e LEFT JOIN {latest} ON p.item_id = e.id""")
    con.execute(f"""INSERT INTO sightings
        SELECT '{table}', e.id, e.last_seen, NULL, {last_run}, {last_partition}
        FROM {table}_v3 e LEFT JOIN {latest} ON p.item_id = e.id
        WHERE e.last_seen > coalesce(p.fetched_at, e.first_seen)""")


# Upgrades of existing DuckDB files, by the version they reach (a new store is created at SCHEMA_VERSION).
_MIGRATIONS: dict[int, list[str | Callable[[duckdb.DuckDBPyConnection], None]]] = {
    # provenance.fetched_at becomes a timestamp like every other time column; only text whose canonical form is
    # itself converts (the chain hashed that text), anything else stops the migration. Citations were all written
    # as 'supports' without any judgement: their support becomes NULL, i.e. not assessed.
    2: [
        f"""SELECT CASE WHEN count(*) > 0 THEN error('provenance seq ' || min(seq) || ' has a fetched_at that is not a '
              || 'canonical UTC timestamp, so its chain hash cannot be kept; restore the file from a backup')
              END
           FROM provenance
           WHERE {CHAIN_TIMESTAMP_SQL.replace("fetched_at", "TRY_CAST(fetched_at AS TIMESTAMPTZ)")}
                 IS DISTINCT FROM fetched_at""",
        "ALTER TABLE provenance ALTER COLUMN fetched_at SET DATA TYPE TIMESTAMPTZ "
        "USING CAST(fetched_at AS TIMESTAMPTZ)",
        "ALTER TABLE claim_citations ALTER COLUMN support DROP NOT NULL",
        "UPDATE claim_citations SET support = NULL WHERE support = 'supports'",
    ],
    # The webhook replay check's record (DuckDBSeenDeliveries): each accepted delivery id, pruned after retention.
    3: [
        """CREATE TABLE IF NOT EXISTS webhook_deliveries (
            service VARCHAR NOT NULL,
            delivery_id VARCHAR NOT NULL,
            seen_at TIMESTAMPTZ NOT NULL,
            PRIMARY KEY (service, delivery_id)
        )""",
    ],
    # Append-only: versions, sightings, per-item provenance seq, the chain over the whole record.
    4: [_migrate_to_append_only],
}

# Views an analyst starts from; recreated by the evidence_catalog asset after loads.
VIEWS: dict[str, str] = {
    "evidence_current": """
        SELECT id, source, source_type, title, url, author, created_at, reliability_score, confidence,
               freshness, authority, first_seen, last_seen, content, metadata
        FROM evidence""",
    "source_summary": """
        SELECT e.source, count(*) AS rows, max(e.created_at) AS newest_item, max(e.last_seen) AS last_seen,
               round(avg(e.reliability_score), 3) AS avg_reliability,
               (SELECT max(l.finished_at) FROM loads l WHERE l.asset_key = 'evidence_' || e.source) AS last_load
        FROM evidence e GROUP BY e.source""",
    # One row per (claim, item): two loads citing the same item at once may both have appended it.
    "evidence_by_claim": """
        SELECT c.claim_id, c.support, c.relevance, e.id AS evidence_id, e.source, e.title, e.url,
               e.reliability_score, c.cited_at
        FROM (SELECT * FROM claim_citations
              QUALIFY row_number() OVER (PARTITION BY claim_id, evidence_id ORDER BY cited_at) = 1) c
        JOIN evidence e ON e.id = c.evidence_id""",
    "provenance_history": """
        SELECT item_table, item_id, seq, fetched_at, content_hash, previous_hash, chain_hash, connector,
               connector_version, request, run_id, asset_key, partition_key, claim_id, load_id
        FROM provenance""",
}

# Full-text index (BM25 via fts_main_evidence_search.match_bm25): DuckDB's fts indexes a table, not a view, and not
# a DuckLake table, so the catalog step copies the current evidence into ``evidence_search`` (in the store file, or
# in a local DuckDB file beside a lake) and indexes that.
SEARCH_TABLE = "evidence_search"
SEARCH_COLUMNS = "id, source, title, url, reliability_score, content"
FTS_SCHEMA = f"fts_main_{SEARCH_TABLE}"
FTS_INDEX = (f"PRAGMA create_fts_index('{SEARCH_TABLE}', 'id', 'title', 'content', "
             "stemmer = 'porter', stopwords = 'english', overwrite = 1)")


def fts_extension_path() -> Path:
    """The fts extension shipped in the pinned ``duckdb-extension-fts`` wheel for the running DuckDB."""
    try:
        import duckdb_extension_fts
    except ImportError:
        raise StoreError("full-text search needs the duckdb-extension-fts package matching DuckDB "
                         f"{duckdb.__version__}: pip install -c constraints.txt duckdb-extension-fts") from None
    path = Path(duckdb_extension_fts.__file__).parent / "extensions" / f"v{duckdb.__version__}" / "fts.duckdb_extension"
    if not path.is_file():
        raise StoreError(
            f"no fts extension for DuckDB {duckdb.__version__} in {path.parent.parent}; install the matching "
            f"wheel (pip install -c constraints.txt 'duckdb-extension-fts=={duckdb.__version__}')"
        )
    return path


def load_fts(con: duckdb.DuckDBPyConnection) -> None:
    """Load DuckDB's fts extension from the local wheel file; network auto-install is switched off first."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("LOAD '" + str(fts_extension_path()).replace("'", "''") + "'")


EVIDENCE_COLUMNS = (
    "id", "source", "source_id", "source_type", "title", "content", "url", "author", "created_at",
    "confidence", "freshness", "authority", "reliability_score", "metadata", "content_hash",
)
_SCORE_COLUMNS = frozenset({"confidence", "freshness", "authority", "reliability_score"})
# Column types of staged evidence rows for DuckDB's JSON reader (created_at and metadata are cast when merged).
_STAGED_TYPES = "{" + ", ".join(
    f"'{name}': '{'DOUBLE' if name in _SCORE_COLUMNS else 'VARCHAR'}'" for name in EVIDENCE_COLUMNS) + "}"
_JSON_READER_MIN_OBJECT = 16 * 1024 * 1024  # DuckDB's default maximum_object_size
STAGING_DIR = ".aragora-staging"  # beside the database: rows of loads in progress


class StoreError(RuntimeError):
    """A store problem with a message saying what to do."""


class StoreLockTimeout(StoreError):
    """The database stayed locked by another process for longer than the timeout."""


class StoreDiskFull(StoreError):
    """The file system filled up during a write; the write was rolled back (the message says what is unchanged)."""


def _disk_full_error(path: str | Path, unchanged: str = "the store is unchanged") -> StoreDiskFull:
    """The one-line error for a write to ``path`` that ran out of space, saying what the rollback kept unchanged."""
    return StoreDiskFull(f"disk full while writing {path}; {unchanged}")


def _is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system running out of space, as an OSError or as DuckDB's report of one."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc).lower()
    return isinstance(exc, duckdb.Error) and ("no space left on device" in text or "disk quota exceeded" in text)


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction; a COMMIT that failed has already ended it, and its error is the one to show."""
    with suppress(duckdb.Error):
        con.execute("ROLLBACK")


@dataclass(frozen=True)
class LoadContext:
    """Where a load comes from: Dagster run, asset and partition, the connector and the redacted request."""

    connector: str
    connector_version: str = ""
    request: str = ""
    run_id: str = ""
    asset_key: str = ""
    partition_key: str = ""
    claim_id: str | None = None


@dataclass
class LoadResult:
    """What one load did."""

    table: str
    rows_fetched: int = 0
    rows_new: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    rows_outside_window: int = 0  # returned by the source although outside --since/--until: dropped, not stored
    items_skipped: int = 0  # items the source could not read (a damaged file): skipped with a warning, not stored
    provenance_records: int = 0
    duration_s: float = 0.0
    load_id: str = ""
    ids: list[str] = field(default_factory=list, repr=False)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text and ("conflicting" in text or "could not set" in text or "resource temporarily" in text)


def open_duckdb(path: str | Path, *, read_only: bool = False, timeout: float = DEFAULT_LOCK_TIMEOUT,
                settings: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying DuckDB's cross-process lock with jittered backoff until ``timeout``.

    Extensions are never installed or loaded automatically, set in the connect config so that not even opening
    the file fetches one (a SQLite file would); ``settings`` adds DuckDB settings to that config.
    """
    path = str(path)
    if read_only and not os.path.exists(path):
        raise StoreError(f"no evidence database at {path}; run `make run` or a materialization first, "
                         "or point ARAGORA_DUCKDB_PATH / --db at an existing file")
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(path, read_only=read_only, config={**OFFLINE_CONFIG, **(settings or {})})
            con.execute("SET TimeZone = 'UTC'")
            return con
        except duckdb.IOException as exc:
            if _is_disk_full(exc):
                raise _disk_full_error(path) from None
            if "extension" in str(exc).lower():
                raise StoreError(f"{path} is not a DuckDB database (reading it would need a DuckDB extension, and "
                                 "none is installed or loaded automatically); point --db or ARAGORA_DUCKDB_PATH at "
                                 "the evidence database") from None
            if not _is_lock_error(exc):
                raise StoreError(f"cannot open the evidence database {path}: {exc}") from None
            if time.monotonic() >= deadline:
                raise StoreLockTimeout(
                    f"{path} stayed locked by another process for {timeout:.0f}s; a long load may be running "
                    "(see the loads table) — retry later or raise the timeout"
                ) from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)


def _sql_type(annotation: Any) -> str:
    text = str(annotation)
    for needle, sql in (("datetime", "TIMESTAMPTZ"), ("Decimal", "DECIMAL(38, 9)"), ("bool", "BOOLEAN"),
                        ("int", "BIGINT"), ("float", "DOUBLE"), ("date", "DATE"), ("str", "VARCHAR")):
        if needle in text and "dict" not in text and "list" not in text:
            return sql
    return "JSON"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def to_json(value: Any) -> str:
    """Stable JSON (sorted keys) for metadata and raw objects."""
    return json.dumps(value, sort_keys=True, default=_json_default, ensure_ascii=False)


def _arrow_scalar(value: Any, sql: str) -> Any:
    if value is None:
        return None
    if sql == "JSON":
        return to_json(value)
    if sql == "TIMESTAMPTZ" and isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if sql == "DECIMAL(38, 9)":
        return str(value)
    if sql == "VARCHAR" and not isinstance(value, str):
        return str(value)
    return value


def _sql_literal(value: Any) -> str:
    """``value`` as a DuckDB SQL literal (strings quoted with ``'`` doubled, which is all DuckDB escapes).

    A NUL or a lone surrogate (undecodable command-line bytes) cannot travel in SQL text: they become U+FFFD.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise StoreError(f"cannot store the number {value!r}")
        return repr(value)
    if isinstance(value, datetime):
        return _sql_literal(value.isoformat()) + "::TIMESTAMPTZ"
    text = str(value).encode("utf-8", "replace").decode().replace("\x00", "\ufffd")
    return "'" + text.replace("'", "''") + "'"


def _bind(sql: str, params: Sequence[Any]) -> str:
    """``sql`` with each ``?`` replaced by its parameter as a literal.

    The load path binds this way because DuckDB's Python parameter binding imports pandas,
    pyarrow and numpy on first use, about 85 MB of a load's peak memory. Only for statements
    whose text has no other ``?`` (checked).
    """
    parts = sql.split("?")
    if len(parts) != len(params) + 1:
        raise StoreError(f"internal: {len(parts) - 1} placeholders for {len(params)} parameters")
    return "".join(part + _sql_literal(param) for part, param in zip(parts, params, strict=False)) + parts[-1]


def _encodable(ev: Evidence) -> Evidence:
    """``ev`` with lone surrogates (a JSON ``\\ud800`` escape) replaced, so it can be hashed and stored as UTF-8."""
    def fix(value: Any) -> Any:
        return value.encode("utf-8", "replace").decode() if isinstance(value, str) else value
    return dataclasses.replace(ev, **{name: fix(getattr(ev, name)) for name in
                                      ("id", "source_id", "title", "content", "url", "author", "created_at")})


def _evidence_row(ev: Evidence) -> dict[str, Any]:
    """One evidence row: the URL redacted and terminal controls stripped from the text before it is hashed and
    stored (every source's title, author and content pass here), metadata redacted before storing."""
    clean = {name: strip_terminal_controls(value) for name in ("title", "author", "content")
             if isinstance(value := getattr(ev, name), str)}
    clean["url"] = redact_url(ev.url) if ev.url else ev.url
    if any(value != getattr(ev, name) for name, value in clean.items()):
        ev = dataclasses.replace(ev, **clean)
    try:
        content_hash = ev.content_hash
    except UnicodeEncodeError:
        ev = _encodable(ev)
        content_hash = ev.content_hash
    return {
        "id": ev.id, "source": ev.id.split(":", 1)[0], "source_id": ev.source_id, "source_type": str(ev.source_type),
        "title": ev.title, "content": ev.content, "url": ev.url, "author": ev.author, "created_at": ev.created_at,
        "confidence": float(ev.confidence), "freshness": float(ev.freshness), "authority": float(ev.authority),
        "reliability_score": float(ev.reliability_score), "metadata": to_json(redact_mapping(ev.metadata)),
        "content_hash": content_hash,
    }


@dataclass(frozen=True)
class StagedRows:
    """A load's rows in a temporary newline-delimited JSON file; ``with`` removes the file afterwards."""

    path: Path
    rows: int
    longest_line: int

    def relation(self) -> str:
        """The SQL table expression that reads the file with DuckDB's own JSON reader."""
        path = str(self.path).replace("'", "''")
        return (f"read_json('{path}', format = 'newline_delimited', columns = {_STAGED_TYPES}, "
                f"maximum_object_size = {max(_JSON_READER_MIN_OBJECT, self.longest_line + 1)})")

    def __enter__(self) -> StagedRows:
        return self

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _sweep_staging(folder: Path) -> None:
    """Remove staged files left by processes of this host that are gone (a killed load's leftovers)."""
    prefix = f"evidence-{socket.gethostname()}-"
    for stale in folder.iterdir():
        pid = stale.name[len(prefix):].split("-", 1)[0] if stale.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            stale.unlink(missing_ok=True)


class EvidenceStore:
    """The evidence store, on a DuckDB file or on DuckLake: schema, append-only loads with provenance, verification.

    ``path`` is a DuckDB file, or DuckLake's attach string (``ducklake:postgres:dbname=... host=...`` or
    ``ducklake:sqlite:PATH``) with ``data_path`` where its Parquet files go. ``snapshot`` / ``as_of`` open a lake
    as it was at that snapshot id or time (read-only).
    """

    def __init__(self, path: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, *,
                 data_path: str | Path | None = None, snapshot: int | None = None, as_of: str | None = None) -> None:
        spec = str(path)
        self.lock_timeout = lock_timeout
        self.snapshot, self.as_of = snapshot, as_of
        if spec.startswith(LAKE_PREFIX):
            try:
                self.lake: LakeTarget | None = LakeTarget.parse(spec, data_path)
            except LakeError as exc:
                raise StoreError(str(exc)) from None
            self._path: Path | None = None  # the search index file, found on first use (see path)
            self.location = self.lake.display()
        else:
            if snapshot is not None or as_of is not None:
                raise StoreError("--as-of and --snapshot need a DuckLake store (ARAGORA_STORE=ducklake:...); a DuckDB "
                                 "file keeps no past snapshots")
            self.lake = None
            self._path = Path(path)
            self.location = str(self._path)

    @property
    def path(self) -> Path:
        """The DuckDB file; for a lake, the local search index file beside its data (staging files go there too).

        A lake opened without a data path uses the one its catalog recorded, when that is a local directory.
        """
        if self._path is None:
            assert self.lake is not None
            lake = self.lake
            if not lake.data_path:
                con = self._open_lake(read_only=True)
                try:
                    recorded = con.execute(f"SELECT value FROM {LAKE_ALIAS}.options() WHERE option_name = "
                                           "'data_path'").fetchone()
                finally:
                    con.close()
                lake = LakeTarget(lake.attach, recorded[0] if recorded else None)
            self._path = lake.local_dir() / "aragora-search.duckdb"
        return self._path

    @cached_property
    def _writer_lock(self) -> FileLock:
        """The file lock of the store's single writer (a lake's: of its local search index)."""
        return FileLock(str(self.path) + ".lock")

    @property
    def backend(self) -> str:
        """``duckdb`` (a file) or ``ducklake``."""
        return "ducklake" if self.lake else "duckdb"

    def exists(self) -> bool:
        """Whether the store has been created (for a lake: whether its catalog can be attached with the schema)."""
        if self.lake is None:
            return self.path.exists()
        try:
            con = self._open_lake(read_only=True)
        except StoreError:  # a catalog not yet initialised cannot be attached read-only
            return False
        try:
            return self._has_table(con, "provenance")
        finally:
            con.close()

    # --- connections --------------------------------------------------------------------
    def _open_lake(self, *, read_only: bool, settings: Mapping[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with the lake attached as the default catalog (extensions from the pinned wheels)."""
        assert self.lake is not None
        try:
            con = duckdb.connect(":memory:", config={**OFFLINE_CONFIG, **(settings or {})})
            con.execute("SET TimeZone = 'UTC'")
            for extension in self.lake.extensions():
                con.execute("LOAD " + sql_text(str(extension)))
            if self.lake.uses_s3:
                con.execute(self.lake.s3_secret_sql())
        except LakeError as exc:
            raise StoreError(str(exc)) from None
        try:
            con.execute(self.lake.attach_sql(read_only=read_only, snapshot=self.snapshot, as_of=self.as_of,
                                             create=not read_only))
        except duckdb.Error as exc:
            con.close()
            raise StoreError(f"cannot open the DuckLake store {self.location}: "
                             f"{redact_attach(str(exc).splitlines()[0])}") from None
        con.execute(f"USE {LAKE_ALIAS}")
        return con

    @contextmanager
    def reader(self, settings: Mapping[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection; on DuckLake it reads the last committed snapshot and never waits for a writer.

        A DuckDB file waits while a writer holds it. A file of an older schema is migrated first (by a writer).
        """
        if self.lake is not None:
            con = self._open_lake(read_only=True, settings=settings)
        else:
            con = open_duckdb(self.path, read_only=True, timeout=self.lock_timeout, settings=settings)
            if 0 < self._schema_version(con) < SCHEMA_VERSION:
                con.close()
                self.initialize()
                con = open_duckdb(self.path, read_only=True, timeout=self.lock_timeout, settings=settings)
        try:
            self._check_version(con, writable=False)
            yield con
        finally:
            con.close()

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection with the schema current: the file's single writer, or one of a lake's many."""
        if self.lake is not None:
            con = self._open_lake(read_only=False)
            try:
                self._check_version(con, writable=True)
                yield con
            finally:
                con.close()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer_lock.acquire(timeout=self.lock_timeout)
        except Timeout:
            raise StoreLockTimeout(
                f"another process has been writing to {self.path} for over {self.lock_timeout:.0f}s"
            ) from None
        try:
            con = open_duckdb(self.path, read_only=False, timeout=self.lock_timeout)
            try:
                self._check_version(con, writable=True)
                yield con
            finally:
                con.close()
        finally:
            self._writer_lock.release()

    @contextmanager
    def _commit_lock(self) -> Iterator[None]:
        """The lake's commit lock (see :meth:`_merge`); a file's writer already holds the whole file."""
        if self.lake is None:
            yield
            return
        try:
            with self.lake.commit_lock(self.lock_timeout):
                yield
        except LakeError as exc:
            raise StoreLockTimeout(str(exc)) from None

    def writer_waiting(self) -> bool:
        """True while another process holds the writer lock, i.e. a load is writing or waiting to open the file.

        A reader holding the database that sees it knows a load waits for it: a long query gives way (``query``).
        A lake's readers never hold up its writers: always False there.
        """
        if self.lake is not None:
            return False
        probe = FileLock(self._writer_lock.lock_file)
        if not os.path.exists(probe.lock_file):
            return False
        try:
            probe.acquire(blocking=False)
        except Timeout:
            return True
        except OSError:  # a lock file this process may not open (another account's): it cannot tell
            return False
        probe.release()
        return False

    def initialize(self) -> None:
        """Create or migrate the schema."""
        with self.writer():
            pass

    def _schema_version(self, con: duckdb.DuckDBPyConnection) -> int:
        if not self._has_table(con, "schema_version"):
            return 0
        return con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0

    def _check_version(self, con: duckdb.DuckDBPyConnection, *, writable: bool) -> None:
        current = self._schema_version(con)
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.location} has schema version {current}, newer than this aragora-pipelines understands "
                f"({SCHEMA_VERSION}); upgrade aragora-pipelines or use another database file"
            )
        if current == SCHEMA_VERSION or not writable:
            return
        with self._commit_lock():
            for attempt in range(CONFLICT_RETRIES):
                try:
                    self._migrate(con)
                    return
                except duckdb.Error as exc:
                    if not (self.lake and is_conflict(exc)) or attempt == CONFLICT_RETRIES - 1:
                        raise
                    time.sleep(0.05 * (1 + random.random()))

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        """Bring the schema to SCHEMA_VERSION in one transaction: create it, or upgrade an older file."""
        con.execute("BEGIN TRANSACTION")
        try:
            current = self._schema_version(con)  # again, inside the transaction: another writer may have done it
            if current == SCHEMA_VERSION:
                con.execute("COMMIT")
                return
            con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            if current == 0:
                for statement in SCHEMA:
                    con.execute(statement)
                con.execute(current_view_sql("evidence", EVIDENCE_COLUMNS))
                versions = [SCHEMA_VERSION]
            else:
                versions = list(range(current + 1, SCHEMA_VERSION + 1))
                for version in versions:
                    for step in _MIGRATIONS[version]:
                        con.execute(step) if isinstance(step, str) else step(con)
            for version in versions:
                con.execute(_bind("INSERT INTO schema_version VALUES (?, now())", [version]))
            con.execute("COMMIT")
        except duckdb.Error as exc:
            _rollback(con)
            if _is_disk_full(exc):
                raise _disk_full_error(self.location) from None
            if self.lake and is_conflict(exc):
                raise
            raise StoreError(f"cannot migrate {self.location} to schema version {SCHEMA_VERSION}, the store is "
                             f"unchanged: {str(exc).splitlines()[0]}") from None
        except Exception:
            _rollback(con)
            raise

    # --- loads ----------------------------------------------------------------------------
    def load_evidence(self, items: Iterable[Evidence], ctx: LoadContext) -> LoadResult:
        """Append ``items`` to the store: new and changed items get a version and a provenance record."""
        with self.stage_evidence(items) as staged:
            return self.load_staged_evidence(staged, ctx)

    def stage_evidence(self, items: Iterable[Evidence]) -> StagedRows:
        """Write one row per id (the last occurrence wins), redacted and hashed, to a staging file.

        DuckDB's native reader loads the file in bulk, so no Python object crosses into DuckDB: the
        Arrow bridge imports pyarrow, pandas and pyarrow.dataset, about 100 MB of a load's peak memory
        (benchmarks/ingest_vs_dlt.py). The items can be freed as soon as this returns. Staging files
        live in ``.aragora-staging`` beside the database, named by host and process, so the next load
        removes those a killed process left behind.
        """
        folder = self.path.parent / STAGING_DIR
        folder.mkdir(parents=True, exist_ok=True)
        _sweep_staging(folder)
        unique = {e.id: e for e in items}
        fd, name = tempfile.mkstemp(prefix=f"evidence-{socket.gethostname()}-{os.getpid()}-", suffix=".ndjson",
                                    dir=folder)
        longest = 0
        try:
            with open(fd, "w", encoding="utf-8", errors="replace", newline="\n") as out:
                for ev in unique.values():
                    line = json.dumps(_evidence_row(ev), ensure_ascii=False)
                    longest = max(longest, len(line))
                    out.write(line + "\n")
        except BaseException as exc:
            Path(name).unlink(missing_ok=True)
            if _is_disk_full(exc):
                raise _disk_full_error(name) from None
            raise
        return StagedRows(Path(name), len(unique), longest * 4)  # characters to a bound on UTF-8 bytes

    def load_staged_evidence(self, staged: StagedRows, ctx: LoadContext) -> LoadResult:
        """Append rows written by :meth:`stage_evidence` to ``evidence_versions``."""
        started = time.monotonic()
        now = datetime.now(UTC)
        select = ", ".join(
            "TRY_CAST(created_at AS TIMESTAMPTZ) AS created_at" if c == "created_at"
            else "CAST(metadata AS JSON) AS metadata" if c == "metadata" else c
            for c in EVIDENCE_COLUMNS
        )
        return self._merge("evidence", staged, select, ctx, now, started)

    def load_objects(self, table_name: str, objects: Sequence[Any], ctx: LoadContext,
                     service: str = "", object_type: str = "") -> LoadResult:
        """Append typed integration models (dataclasses with ``id`` and ``raw``) to ``<table_name>_versions``."""
        if not table_name.replace("_", "").isalnum():
            raise StoreError(f"invalid table name {table_name!r}: use letters, digits and underscores")
        started = time.monotonic()
        now = datetime.now(UTC)
        unique = {str(o.id): o for o in objects}
        model = type(next(iter(unique.values()))) if unique else None
        typed = self._model_columns(model) if model else {}
        cols: dict[str, list[Any]] = {"id": [], **{name: [] for name in typed}, "raw": [], "content_hash": []}
        for oid, obj in unique.items():
            cols["id"].append(oid)
            for name, sql in typed.items():
                cols[name].append(_arrow_scalar(getattr(obj, name, None), sql))
            raw = to_json(getattr(obj, "raw", None) or {})
            cols["raw"].append(raw)
            cols["content_hash"].append(_sha256(raw))
        import pyarrow as pa  # only here and in the checks: the evidence path stays free of it (memory)

        arrow = pa.table(cols) if unique else None
        select = ", ".join(
            f"CAST({c} AS {typed[c]}) AS {c}" if c in typed else ("CAST(raw AS JSON) AS raw" if c == "raw" else c)
            for c in cols
        )
        return self._merge(table_name, arrow, select, ctx, now, started,
                           prepare=lambda con: self._ensure_object_table(con, table_name, typed, service, object_type))

    @staticmethod
    def _model_columns(model: type) -> dict[str, str]:
        hints = get_type_hints(model)
        return {f.name: _sql_type(hints.get(f.name, str)) for f in dataclasses.fields(model)
                if f.name not in ("id", "raw")}

    def _ensure_object_table(self, con: duckdb.DuckDBPyConnection, name: str, typed: dict[str, str],
                             service: str, object_type: str) -> None:
        """Create ``<name>_versions`` and the view ``name``, or add a grown model's columns (retried on DuckLake)."""
        for attempt in range(CONFLICT_RETRIES):
            con.execute("BEGIN TRANSACTION")
            try:
                self._ensure_object_table_once(con, name, typed, service, object_type)
                con.execute("COMMIT")
                return
            except duckdb.Error as exc:
                _rollback(con)
                if not (self.lake and is_conflict(exc)) or attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (1 + random.random()))

    def _ensure_object_table_once(self, con: duckdb.DuckDBPyConnection, name: str, typed: dict[str, str],
                                  service: str, object_type: str) -> None:
        data = ["id", *typed, "raw", "content_hash"]
        if not self._has_table(con, f"{name}_versions"):
            typed_sql = "".join(f", {c} {t}" for c, t in typed.items())
            con.execute(versions_ddl(name, f"id VARCHAR NOT NULL{typed_sql}, raw JSON"))
            con.execute(current_view_sql(name, data))
            con.execute(_bind("INSERT INTO object_tables SELECT ?, ?, ?, now() WHERE NOT EXISTS "
                              "(SELECT 1 FROM object_tables WHERE table_name = ?)", [name, service, object_type, name]))
            return
        have = {c for c, _ in self._columns(con, f"{name}_versions")}
        missing = [(column, sql) for column, sql in typed.items() if column not in have]
        for column, sql in missing:  # the model grew a field: add the column, old versions read NULL
            con.execute(f"ALTER TABLE {name}_versions ADD COLUMN {column} {sql}")
        if missing:
            known = [c for c, _ in self._columns(con, f"{name}_versions") if c not in VERSION_COLUMNS]
            con.execute(current_view_sql(name, [c for c in known if c != "content_hash"] + ["content_hash"]))

    def _merge(self, target: str, incoming: pa.Table | StagedRows | None, select: str, ctx: LoadContext,
               now: datetime, started: float,
               prepare: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> LoadResult:
        """The one load: classify by content hash; append versions, provenance, sightings, citations, a loads row.

        Nothing is updated, so loads never conflict on rows. What concurrent loads must agree on is each item's
        next ``seq`` and ``previous_hash``: a load that adds versions commits under the store's commit lock
        (a lake's advisory lock; a file's writer lock), taken *before* its transaction begins so that it reads
        the latest snapshot. A load that adds none (only sightings) commits without it. DuckLake conflicts
        (another writer committed first, e.g. creating a table) are retried from the start.
        ``prepare`` runs first on the same connection (e.g. creating or widening the target table).
        """
        fetched_at = utc_timestamp(now)
        with self.writer() as con:
            if prepare is not None:
                prepare(con)
            # One thread: a merge of this size is no faster on more, and each extra thread adds its own buffers.
            con.execute("SET threads = 1")
            with ExitStack() as locks:
                locked = self.lake is None
                for attempt in range(CONFLICT_RETRIES):
                    result = LoadResult(table=target, load_id=uuid.uuid4().hex)
                    try:
                        if self._merge_once(con, target, incoming, select, ctx, now, fetched_at, started, result,
                                            may_add=locked):
                            return result
                        locks.enter_context(self._commit_lock())
                        locked = True
                    except duckdb.Error as exc:
                        if not (self.lake and is_conflict(exc)) or attempt == CONFLICT_RETRIES - 1:
                            raise StoreError(f"load into {target} failed: {redact(str(exc).splitlines()[0])}"
                                             ) from None
                        time.sleep(min(0.02 * 2 ** min(attempt, 5), 0.5) * (1 + random.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def _merge_once(self, con: duckdb.DuckDBPyConnection, target: str, incoming: pa.Table | StagedRows | None,
                    select: str, ctx: LoadContext, now: datetime, fetched_at: str, started: float,
                    result: LoadResult, *, may_add: bool) -> bool:
        """One attempt of :meth:`_merge` in one transaction; False (rolled back) when it would add versions unlocked."""
        con.execute("BEGIN TRANSACTION")
        try:
            staged = isinstance(incoming, StagedRows)
            rows = 0 if incoming is None else incoming.rows if staged else incoming.num_rows
            if rows:
                # A view over the staged file or the Arrow batch, not a copy: rows are read where they are.
                if staged:
                    source = incoming.relation()
                else:
                    con.register("incoming_raw", incoming)
                    source = "incoming_raw"
                con.execute(f"CREATE OR REPLACE TEMP VIEW incoming AS SELECT {select} FROM {source}")
                con.execute(_bind(
                    f"""CREATE OR REPLACE TEMP TABLE classified AS
                    SELECT i.id, i.content_hash, i.position, coalesce(p.seq, 0) + 1 AS seq,
                           coalesce(p.chain_hash, '{GENESIS_HASH}') AS previous_hash,
                           coalesce(v.first_seen, ?) AS first_seen,
                           CASE WHEN p.item_id IS NULL AND v.id IS NULL THEN 'new'
                                WHEN p.content_hash IS DISTINCT FROM i.content_hash
                                  OR v.content_hash IS DISTINCT FROM i.content_hash THEN 'changed'
                                ELSE 'unchanged' END AS kind
                    FROM (SELECT id, content_hash, row_number() OVER () AS position FROM incoming) i
                    LEFT JOIN (SELECT item_id, max(seq) AS seq, arg_max(chain_hash, seq) AS chain_hash,
                                      arg_max(content_hash, seq) AS content_hash
                               FROM provenance WHERE item_table = ? GROUP BY item_id) p ON p.item_id = i.id
                    LEFT JOIN (SELECT id, arg_max(content_hash, seq) AS content_hash,
                                      arg_max(first_seen, seq) AS first_seen
                               FROM {target}_versions GROUP BY id) v ON v.id = i.id""",
                    [now, target]))
                counts = dict(con.execute("SELECT kind, count(*) FROM classified GROUP BY kind").fetchall())
                result.rows_fetched = rows
                result.rows_new = counts.get("new", 0)
                result.rows_changed = counts.get("changed", 0)
                result.rows_unchanged = counts.get("unchanged", 0)
                if (result.rows_new or result.rows_changed) and not may_add:
                    _rollback(con)
                    return False
                if result.rows_new or result.rows_changed:
                    self._append_versions(con, target, now, ctx, result.load_id)
                    result.provenance_records = self._append_provenance(con, target, fetched_at, ctx,
                                                                        result.load_id)
                if result.rows_unchanged:
                    con.execute(_bind("""INSERT INTO sightings SELECT ?, id, ?, ?, ?, ? FROM classified
                                         WHERE kind = 'unchanged'""",
                                      [target, now, result.load_id, ctx.run_id, ctx.partition_key]))
                if ctx.claim_id and target == "evidence":
                    # support NULL: whether the item supports, contradicts or contextualizes the claim is a
                    # judgement nobody has made yet; a topic's search hit is not one.
                    con.execute(_bind(
                        """INSERT INTO claim_citations SELECT ?, c.id, NULL, 1.0, ?, ? FROM classified c
                           WHERE NOT EXISTS (SELECT 1 FROM claim_citations x
                                             WHERE x.claim_id = ? AND x.evidence_id = c.id)""",
                        [ctx.claim_id, ctx.run_id, now, ctx.claim_id],
                    ))
                # From the small classified table: another pass over incoming would re-read every row.
                result.ids = [r[0] for r in con.execute("SELECT id FROM classified ORDER BY position").fetchall()]
            result.duration_s = time.monotonic() - started
            self._log_load(con, result, ctx, "success", now, None)
            con.execute("COMMIT")
            return True
        except BaseException as exc:
            _rollback(con)
            if _is_disk_full(exc):
                raise _disk_full_error(self.location) from None
            raise

    @staticmethod
    def _append_versions(con: duckdb.DuckDBPyConnection, target: str, now: datetime, ctx: LoadContext,
                         load_id: str) -> None:
        """One version row per new or changed item, numbered like its provenance record."""
        cols = [r[0] for r in con.execute("SELECT * FROM incoming LIMIT 0").description]
        con.execute(_bind(
            f"""INSERT INTO {target}_versions ({", ".join(cols)}, {", ".join(VERSION_COLUMNS)})
                SELECT {", ".join("i." + c for c in cols)}, c.seq, c.first_seen, ?, ?, ?, ?
                FROM incoming i JOIN classified c USING (id) WHERE c.kind <> 'unchanged'""",
            [now, ctx.run_id, ctx.partition_key, load_id]))

    def _append_provenance(self, con: duckdb.DuckDBPyConnection, target: str, fetched_at: str,
                           ctx: LoadContext, load_id: str) -> int:
        """One record per new or changed row, chained to the item's latest record, computed in SQL.

        chain_hash = sha256 of :func:`chain_record_sql`, the whole record as a JSON array (:data:`CHAIN_HASH_SQL`
        recomputes it, as README query 7 and :meth:`verify` do); ``fetched_at`` is hashed in its canonical text
        (``utc_timestamp``), which :data:`CHAIN_TIMESTAMP_SQL` gives back from the stored timestamp.
        """
        return con.execute(_bind(
            f"""INSERT INTO provenance
               SELECT seq, 'prov_' || substr(chain_hash, 1, 24), item_table, item_id, content_hash, previous_hash,
                      chain_hash, CAST(fetched_text AS TIMESTAMPTZ), connector, connector_version, request, run_id,
                      asset_key, partition_key, claim_id, load_id, 2
               FROM (SELECT *, sha256({chain_record_sql("fetched_text")}) AS chain_hash
                     FROM (SELECT c.seq, CAST(? AS VARCHAR) AS item_table, c.id AS item_id, c.content_hash,
                                  c.previous_hash, CAST(? AS VARCHAR) AS fetched_text,
                                  CAST(? AS VARCHAR) AS connector, CAST(? AS VARCHAR) AS connector_version,
                                  CAST(? AS VARCHAR) AS request, CAST(? AS VARCHAR) AS run_id,
                                  CAST(? AS VARCHAR) AS asset_key, CAST(? AS VARCHAR) AS partition_key,
                                  CAST(? AS VARCHAR) AS claim_id, CAST(? AS VARCHAR) AS load_id
                           FROM classified c WHERE c.kind <> 'unchanged'))""",
            [target, fetched_at, ctx.connector, ctx.connector_version, redact(ctx.request), ctx.run_id,
             ctx.asset_key, ctx.partition_key, ctx.claim_id, load_id],
        )).fetchone()[0]

    def _log_load(self, con: duckdb.DuckDBPyConnection, result: LoadResult, ctx: LoadContext, status: str,
                  started_at: datetime, error: str | None) -> None:
        con.execute(_bind(
            "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)",
            [result.load_id, ctx.run_id, ctx.asset_key, ctx.partition_key, result.table, ctx.connector,
             result.rows_fetched, result.rows_new, result.rows_changed, result.rows_unchanged, status,
             started_at, result.duration_s, redact(error) if error else None],
        ))

    # --- verification -----------------------------------------------------------------------
    def verify(self, *, partition_key: str | None = None, asset_key: str | None = None) -> list[str]:
        """Recompute the provenance chains (and evidence content hashes); returns problems, first first.

        Each item's records must be numbered 1..n, each link to the one before, and each hash its whole record.
        """
        where, params = [], []
        if partition_key is not None:
            where.append("item_id IN (SELECT item_id FROM provenance WHERE partition_key = ?)")
            params.append(partition_key)
        if asset_key is not None:
            where.append("item_id IN (SELECT item_id FROM provenance WHERE asset_key = ?)")
            params.append(asset_key)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        with self.reader() as con:
            self.require_store(con)
            problems = [
                f"provenance seq {seq} ({item_table} {item_id}): {reason}"
                for seq, item_table, item_id, reason in con.execute(
                    f"""WITH chain AS (
                          SELECT *, lag(chain_hash) OVER item AS prev, row_number() OVER item AS position,
                                 count(*) OVER (PARTITION BY item_table, item_id, seq) AS copies
                          FROM provenance {clause}
                          WINDOW item AS (PARTITION BY item_table, item_id ORDER BY seq, chain_hash))
                        SELECT seq, item_table, item_id,
                          CASE WHEN copies > 1 THEN 'two records share this seq (duplicate)'
                               WHEN previous_hash <> coalesce(prev, '{GENESIS_HASH}')
                                 THEN 'does not link to the record before it (removed or reordered record)'
                               WHEN seq <> position THEN 'seq is not the next number (a record is missing)'
                               ELSE 'chain hash does not match its fields (record changed)' END
                        FROM chain
                        WHERE copies > 1 OR seq <> position OR previous_hash <> coalesce(prev, '{GENESIS_HASH}')
                           OR chain_hash <> {CHAIN_HASH_SQL}
                        ORDER BY item_table, item_id, seq""",
                    params,
                ).fetchall()
            ]
            problems += self._verify_current_rows(con, clause, params)
        return problems

    def _verify_current_rows(self, con: duckdb.DuckDBPyConnection, clause: str, params: list[Any]) -> list[str]:
        problems: list[str] = []
        tables = ["evidence"] + [r[0] for r in con.execute("SELECT table_name FROM object_tables").fetchall()]
        for table in tables:
            latest = con.execute(
                f"""SELECT t.id, t.content_hash, p.content_hash AS chained
                    FROM {table} t LEFT JOIN (
                      SELECT item_id, arg_max(content_hash, seq) AS content_hash FROM provenance {clause}
                      {"AND" if clause else "WHERE"} item_table = ? GROUP BY item_id) p ON p.item_id = t.id
                    {"WHERE t.id IN (SELECT item_id FROM provenance " + clause + ")" if clause else ""}""",
                [*params, table, *params],
            ).fetchall()
            for item_id, stored_hash, chained in latest:
                if chained is None:
                    problems.append(f"{table} {item_id}: no provenance record (deleted)")
                elif stored_hash != chained:
                    problems.append(f"{table} {item_id}: content hash differs from its latest provenance record")
            if table == "evidence":
                problems += self._verify_evidence_content(con, clause, params)
            else:
                bad = con.execute(
                    f"SELECT id FROM {table} WHERE content_hash <> sha256(CAST(raw AS VARCHAR)) ORDER BY id"
                ).fetchall()
                problems += [f"{table} {r[0]}: raw object changed after it was stored" for r in bad]
        return problems

    def _verify_evidence_content(self, con: duckdb.DuckDBPyConnection, clause: str, params: list[Any]) -> list[str]:
        filt = f"WHERE id IN (SELECT item_id FROM provenance {clause})" if clause else ""
        rows = con.execute(
            f"""SELECT id, source_type, source_id, content, title, strftime(created_at AT TIME ZONE 'UTC',
                       '%Y-%m-%dT%H:%M:%SZ'), author, url, content_hash FROM evidence {filt}""",
            params,
        ).fetchall()
        problems = []
        for eid, stype, sid, content, title, created, author, url, stored in rows:
            ev = Evidence(id=eid, source_type=stype, source_id=sid, content=content or "", title=title or "",
                          created_at=created, author=author, url=url)
            if ev.content_hash != stored:
                problems.append(f"evidence {eid}: content changed after it was stored (hash mismatch)")
        return problems

    @staticmethod
    def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        """Whether the store (the connection's default catalog) has a table or view ``name``."""
        return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                                "AND table_catalog = current_database()", [name]).fetchone()[0])

    @staticmethod
    def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
        """(name, type) of each column of the store's ``table``, in order."""
        return [(r[0], r[1]) for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
            "AND table_catalog = current_database() ORDER BY ordinal_position", [table]).fetchall()]

    def require_store(self, con: duckdb.DuckDBPyConnection) -> None:
        """StoreError unless ``con`` is on an aragora evidence store, so another DuckDB file never reads as empty."""
        if not self._has_table(con, "provenance"):
            raise StoreError(f"{self.location} is not an aragora evidence store (no provenance table); point --db or "
                             "ARAGORA_DUCKDB_PATH at the evidence database (default data/aragora.duckdb)")

    # --- data checks --------------------------------------------------------------------------
    def duplicate_ids(self, table: str) -> int:
        """How many rows of ``table`` share an id with another row."""
        with self.reader() as con:
            return con.execute(f"SELECT count(*) - count(DISTINCT id) FROM {table}").fetchone()[0]

    def scores_out_of_range(self, source: str) -> int:
        """Evidence rows of ``source`` with a score outside [0, 1]."""
        with self.reader() as con:
            return con.execute(
                """SELECT count(*) FROM evidence WHERE source = ? AND NOT (
                     confidence BETWEEN 0 AND 1 AND freshness BETWEEN 0 AND 1 AND authority BETWEEN 0 AND 1
                     AND reliability_score BETWEEN 0 AND 1)""",
                [source],
            ).fetchone()[0]

    def secret_findings(self, table: str, ids: Sequence[str]) -> list[str]:
        """Rows among ``ids`` whose stored URL, metadata or raw object holds a secret-looking value."""
        if not ids:
            return []
        import pyarrow as pa

        columns = "url, CAST(metadata AS VARCHAR)" if table == "evidence" else "CAST(raw AS VARCHAR), NULL"
        with self.reader() as con:
            con.register("ids", pa.table({"id": list(ids)}))
            rows = con.execute(f"SELECT id, {columns} FROM {table} JOIN ids USING (id)").fetchall()
        return [f"{table} {rid}: secret-looking value stored" for rid, a, b in rows
                if contains_secret(a or "") or contains_secret(b or "")]

    def preview(self, table: str, ids: Sequence[str], rows: int = 5) -> str:
        """A short Markdown table of the first rows of a load (for Dagster metadata)."""
        if not ids:
            return "_no rows_"
        cols = "id, title, reliability_score, url" if table == "evidence" else "id, first_seen"
        import pyarrow as pa

        with self.reader() as con:
            con.register("ids", pa.table({"id": list(ids)[: rows]}))
            result = con.execute(f"SELECT {cols} FROM {table} JOIN ids USING (id) ORDER BY id")
            names = [d[0] for d in result.description]
            data = result.fetchall()
        def cell(value: Any) -> str:
            text = f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "")
            return text.replace("|", "\\|").replace("\n", " ")[:80]
        lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in data]
        return "\n".join(lines)

    # --- views --------------------------------------------------------------------------------
    def refresh_views(self) -> list[str]:
        """(Re)create the analyst views and rebuild the full-text index over evidence; returns the view names."""
        with self.writer() as con:
            for attempt in range(CONFLICT_RETRIES):
                con.execute("BEGIN TRANSACTION")  # all or nothing: a failed rebuild keeps the previous views
                try:
                    for name, body in VIEWS.items():
                        con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
                    if self.lake is None:
                        self._build_search_index(con, "evidence")
                    con.execute("COMMIT")
                    break
                except BaseException as exc:
                    _rollback(con)
                    if _is_disk_full(exc):
                        raise _disk_full_error(self.location, "the views and the search index are unchanged (rows "
                                                              "already loaded are kept)") from None
                    if not (self.lake and isinstance(exc, duckdb.Error) and is_conflict(exc)) \
                            or attempt == CONFLICT_RETRIES - 1:
                        raise
                    time.sleep(0.05 * (1 + random.random()))
        if self.lake is not None:
            self._refresh_lake_search_index()
        return list(VIEWS)

    @staticmethod
    def _build_search_index(con: duckdb.DuckDBPyConnection, evidence: str) -> None:
        """Copy the current evidence from ``evidence`` into ``evidence_search`` and index it (BM25)."""
        load_fts(con)
        con.execute(f"CREATE OR REPLACE TABLE {SEARCH_TABLE} AS SELECT {SEARCH_COLUMNS} FROM {evidence}")
        con.execute(FTS_INDEX)

    def _refresh_lake_search_index(self) -> None:
        """The lake's search index: a local DuckDB file (``path``) with the lake's current evidence, indexed."""
        assert self.lake is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._writer_lock.acquire(timeout=self.lock_timeout):
            con = open_duckdb(self.path, timeout=self.lock_timeout)
            try:
                for extension in self.lake.extensions():
                    con.execute("LOAD " + sql_text(str(extension)))
                if self.lake.uses_s3:
                    con.execute(self.lake.s3_secret_sql())
                con.execute(self.lake.attach_sql(read_only=True))
                con.execute("BEGIN TRANSACTION")
                try:
                    self._build_search_index(con, f"{LAKE_ALIAS}.evidence")
                    con.execute("COMMIT")
                except BaseException:
                    _rollback(con)
                    raise
            except LakeError as exc:
                raise StoreError(str(exc)) from None
            finally:
                con.close()

    @contextmanager
    def search_reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection holding ``evidence_search`` and its BM25 index (the store, or a lake's local file)."""
        if self.lake is None:
            with self.reader() as con:
                self.require_store(con)
                yield con
            return
        if not self.path.exists():
            raise StoreError(f"{self.location} has no full-text index on this machine yet ({self.path}); "
                             "materialize evidence_catalog or run `aragora-pipelines ingest`, which build it")
        con = open_duckdb(self.path, read_only=True, timeout=self.lock_timeout)
        try:
            yield con
        finally:
            con.close()

    # --- reading ------------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query on a read-only connection and return all rows."""
        with self.reader() as con:
            return con.execute(sql, list(params or [])).fetchall()

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, type) of each column of ``table`` (empty when it does not exist yet)."""
        if not self.exists():
            return []
        with self.reader() as con:
            return self._columns(con, table)

    def counts(self) -> dict[str, int]:
        """Row counts of the core tables (0 for a table not yet created)."""
        if not self.exists():
            return {"evidence": 0, "provenance": 0, "loads": 0, "claim_citations": 0}
        with self.reader() as con:
            return {t: (con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] if self._has_table(con, t) else 0)
                    for t in ("evidence", "provenance", "loads", "claim_citations")}

    def rows_held(self, table: str, source: str | None = None) -> int:
        """Rows ``table`` holds now (only ``source``'s rows when given): an asset's size, not one load's."""
        with self.reader() as con:
            if not self._has_table(con, table):
                return 0
            where, params = ("WHERE source = ?", [source]) if source else ("", [])
            return con.execute(f"SELECT count(*) FROM {table} {where}", params).fetchone()[0]

    # --- copying and maintenance ---------------------------------------------------------------
    def copy_into(self, target: EvidenceStore) -> dict[str, int]:
        """Copy this DuckDB-file store, every version and provenance record, into the empty DuckLake ``target``.

        One transaction on the target: it holds all of the copy or none of it. Returns rows copied per table.
        """
        if self.lake is not None or target.lake is None:
            raise StoreError("migrate copies a DuckDB file store into a DuckLake store: give the file with --db and "
                             "the lake with --to ducklake:...")
        if not self.path.exists():
            raise StoreError(f"no evidence database at {self.path}; nothing to migrate")
        self.initialize()  # the file at the current schema first, so both sides have the same tables
        with self.reader() as con:
            objects = [r[0] for r in con.execute("SELECT table_name FROM object_tables").fetchall()]
        tables = ["evidence_versions", "provenance", "sightings", "claim_citations", "loads", "object_tables",
                  "webhook_deliveries", *(f"{name}_versions" for name in objects)]
        copied: dict[str, int] = {}
        with target.writer() as con:
            if con.execute("SELECT count(*) FROM provenance").fetchone()[0]:
                raise StoreError(f"{target.location} already holds provenance records; migrate into an empty store")
            con.execute(f"ATTACH {sql_text(str(self.path))} AS source_file (READ_ONLY)")
            con.execute("BEGIN TRANSACTION")
            try:
                for name in objects:
                    con.execute(f"CREATE TABLE {name}_versions AS SELECT * FROM source_file.{name}_versions LIMIT 0")
                    data = [c for c, _ in self._columns(con, f"{name}_versions") if c not in VERSION_COLUMNS]
                    con.execute(current_view_sql(name, data))
                for table in tables:
                    copied[table] = con.execute(
                        f"INSERT INTO {table} BY NAME SELECT * FROM source_file.{table}").fetchone()[0]
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
        target.refresh_views()
        return copied

    def maintain(self, retention_days: float = 7.0) -> dict[str, Any]:
        """Housekeeping, reported as numbers: a DuckDB file is checkpointed; a lake has its inlined rows flushed and
        small files merged, snapshots older than ``retention_days`` expired, and their files and orphans removed.
        """
        if not retention_days >= 0:
            raise StoreError(f"snapshot retention must be 0 days or more, got {retention_days!r}")
        if self.lake is None:
            with self.writer() as con:
                con.execute("CHECKPOINT")
            return {"backend": "duckdb", "checkpoint": True, "file_bytes": self.path.stat().st_size}
        older = f"older_than => now() - INTERVAL '{float(retention_days) * 86400:.0f} seconds'"
        report: dict[str, Any] = {"backend": "ducklake", "retention_days": retention_days}
        with self.writer() as con:
            for key, call in (("inlined_flushed", f"ducklake_flush_inlined_data('{LAKE_ALIAS}')"),
                              ("files_merged", f"ducklake_merge_adjacent_files('{LAKE_ALIAS}')"),
                              ("snapshots_expired", f"ducklake_expire_snapshots('{LAKE_ALIAS}', {older})"),
                              ("old_files_deleted", f"ducklake_cleanup_old_files('{LAKE_ALIAS}', cleanup_all => true)"),
                              ("orphans_deleted", f"ducklake_delete_orphaned_files('{LAKE_ALIAS}', {older})")):
                for attempt in range(CONFLICT_RETRIES):
                    try:
                        report[key] = len(con.execute(f"CALL {call}").fetchall())
                        break
                    except duckdb.Error as exc:
                        if not is_conflict(exc) or attempt == CONFLICT_RETRIES - 1:
                            raise StoreError(f"{key.replace('_', ' ')} failed on {self.location}: "
                                             f"{str(exc).splitlines()[0]}") from None
                        time.sleep(0.05 * (1 + random.random()))
            report["snapshots"] = con.execute(f"SELECT count(*) FROM {LAKE_ALIAS}.snapshots()").fetchone()[0]
        return report


class DuckDBSeenDeliveries:
    """The webhook replay check's record in the store (``webhook_deliveries``): it survives restarts and is shared.

    Implements :class:`connectors.webhooks.SeenDeliveries`. Ids older than ``retention`` seconds are pruned on
    every call, so the table holds about one retention window of deliveries.
    """

    def __init__(self, store: EvidenceStore, retention: float = DEFAULT_REPLAY_RETENTION) -> None:
        if not retention > 0:
            raise StoreError(f"webhook replay retention must be more than 0 seconds, got {retention!r}")
        self.store = store
        self.retention = float(retention)

    def remember(self, service: str, delivery_id: str, now: float) -> bool:
        """Record ``delivery_id`` at ``now`` (epoch seconds); False when it was seen within the retention."""
        seen_at = datetime.fromtimestamp(now, UTC)
        with self.store.writer() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(_bind("DELETE FROM webhook_deliveries WHERE seen_at <= ?",
                                  [datetime.fromtimestamp(now - self.retention, UTC)]))
                inserted = con.execute(_bind(
                    """INSERT INTO webhook_deliveries SELECT ?, ?, ? WHERE NOT EXISTS
                       (SELECT 1 FROM webhook_deliveries WHERE service = ? AND delivery_id = ?)""",
                    [service, delivery_id, seen_at, service, delivery_id])).fetchone()[0]
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con)
                if _is_disk_full(exc):
                    raise _disk_full_error(self.store.location) from None
                raise
        return inserted == 1

    def forget(self, service: str, delivery_id: str) -> None:
        """Drop ``delivery_id`` so a retry of it is accepted."""
        with self.store.writer() as con:
            con.execute(_bind("DELETE FROM webhook_deliveries WHERE service = ? AND delivery_id = ?",
                              [service, delivery_id]))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
