"""Rows of a DuckDB or SQLite database file as evidence, through read-only SELECT statements."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

try:
    import duckdb
except ImportError:  # optional: only DuckDB files need it
    duckdb = None
try:
    import sqlglot
    from sqlglot import exp
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import SqlglotError, TokenError
    from sqlglot.tokens import TokenType

    # Statement kinds that may not appear anywhere in a read-only query.
    _FORBIDDEN_NODES: tuple[type, ...] = (
        exp.DML, exp.DDL, exp.Command, exp.Pragma, exp.Copy, exp.Attach, exp.Detach, exp.Set, exp.Install,
        exp.Transaction, exp.Commit, exp.Rollback, exp.Use, exp.Describe, exp.Kill, exp.Analyze, exp.Refresh,
    )
except ImportError:  # optional: without it no statement is accepted
    sqlglot = None

from connectors.base import (
    BaseConnector,
    Evidence,
    check_count,
    check_positive,
    check_score,
    evidence_id,
    in_window,
    to_utc,
)
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorError,
    ConnectorTimeoutError,
    ConnectorValidationError,
    connector_error_handler,
)
from connectors.provenance import SourceType
from connectors.text import freshness, html_to_text, iso_utc, parse_datetime

Engine = Literal["duckdb", "sqlite"]

FIELDS = ("id", "title", "content", "created_at", "url", "author")
DEFAULT_MAX_ROWS = 1000
DEFAULT_AUTHORITY = 0.7
DEFAULT_CONFIDENCE = 0.8
FRESHNESS_HALF_LIFE_DAYS = 365.0
DEFAULT_STATEMENT_TIMEOUT = 60.0  # seconds one statement may run (execution and reading its rows)
_FETCH_CHUNK = 256
# User-defined functions (macros) of a DuckDB file named like a built-in: a macro ``instr``/``lower`` would make
# every row match the table search. Qualified with ``system.main`` so the check itself cannot be shadowed.
_DUCKDB_SHADOWING = """
    SELECT DISTINCT u.function_name FROM system.main.duckdb_functions() AS u
    WHERE NOT u.internal AND system.main.lower(u.function_name) IN (
        SELECT system.main.lower(b.function_name) FROM system.main.duckdb_functions() AS b WHERE b.internal)
    ORDER BY 1"""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NAME = re.compile(r"^[A-Za-z_]\w*$")
_EXTENSIONS: dict[str, Engine | None] = {".duckdb": "duckdb", ".sqlite": "sqlite", ".sqlite3": "sqlite", ".db": None}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SQLITE_TRANSIENT = re.compile(r"locked|busy|disk i/o|unable to open", re.IGNORECASE)
# SQLite authorizer actions a read-only SELECT needs: SELECT, READ, FUNCTION, RECURSIVE.
_SQLITE_ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)


@dataclass(frozen=True)
class Database:
    """A database file and the engine that opens it."""

    engine: Engine
    path: Path

    @property
    def stem(self) -> str:
        """The file name without extension: the database part of evidence ids."""
        return self.path.stem


def parse_dsn(dsn: str) -> Database:
    """``duckdb:///abs/x.duckdb``, ``sqlite:///abs/x.db`` or a bare path ending .duckdb/.db/.sqlite.

    A bare ``.db`` path is opened by whichever engine its header names (SQLite's magic, else DuckDB).
    """
    scheme = urlsplit(dsn).scheme.lower() if "://" in dsn else ""
    if scheme:
        if scheme not in ("duckdb", "sqlite"):
            raise ConnectorValidationError(
                f"DSN scheme {scheme!r} is not supported; use duckdb:///abs/path.duckdb, sqlite:///abs/path.db "
                "or a path ending in .duckdb, .db or .sqlite"
            )
        path = Path(dsn.split("://", 1)[1])
        if not path.is_absolute():
            raise ConnectorValidationError(f"a {scheme}:/// DSN needs an absolute path (three slashes, then /...)")
        return Database(scheme, path)  # type: ignore[arg-type]
    path = Path(dsn).expanduser()
    if path.suffix.lower() not in _EXTENSIONS:
        raise ConnectorValidationError(
            "a bare DSN must be a file path ending in .duckdb, .db, .sqlite or .sqlite3 "
            "(or use duckdb:///... / sqlite:///...)"
        )
    engine = _EXTENSIONS[path.suffix.lower()]
    if engine is None:
        try:
            with path.open("rb") as handle:
                engine = "sqlite" if handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC else "duckdb"
        except OSError:
            engine = "sqlite"  # missing: reported as such when the database is opened
    return Database(engine, path.resolve())


def quote_identifier(name: str, what: str = "identifier", qualified: bool = False) -> str:
    """A validated identifier double-quoted part by part (``schema.table`` too when ``qualified``)."""
    parts = name.split(".") if isinstance(name, str) else []
    if not 1 <= len(parts) <= (3 if qualified else 1) or not all(_IDENTIFIER.match(part) for part in parts):
        raise ConnectorValidationError(
            f"{what} {name!r} is not a plain identifier (letters, digits, '_'"
            + (", optionally schema-qualified)" if qualified else ")")
        )
    return ".".join(f'"{part}"' for part in parts)


def colon_params_to_dollar(sql: str) -> str:
    """Rewrite ``:name`` parameters as DuckDB's ``$name`` (strings, comments and ``::`` casts untouched)."""
    if sqlglot is None:
        return sql  # validate_select refuses every statement without sqlglot
    try:
        tokens = DuckDB().tokenize(sql)
    except TokenError as exc:
        raise ConnectorValidationError(f"the statement could not be tokenized: {exc}") from None
    starts: list[int] = []
    for index, token in enumerate(tokens[:-1]):
        following, previous = tokens[index + 1], tokens[index - 1] if index else None
        if (
            token.token_type == TokenType.COLON
            and following.start == token.end + 1
            and _NAME.match(following.text)
            and (previous is None or previous.end + 1 < token.start or not _NAME.match(previous.text))
        ):
            starts.append(token.start)
    for start in reversed(starts):
        sql = f"{sql[:start]}${sql[start + 1 :]}"
    return sql


def validate_select(sql: str, engine: Engine) -> None:
    """Raise ConnectorValidationError unless ``sql`` is exactly one read-only SELECT/WITH/UNION query.

    sqlglot parses the text in the engine's dialect; more than one statement (also one smuggled
    after a comment), any non-query statement (ATTACH, COPY, PRAGMA, INSTALL, LOAD, SET, INSERT,
    UPDATE, DELETE, CREATE, DROP, ...) and any such node nested in the query are refused.
    """
    if sqlglot is None:
        raise ConnectorValidationError("sqlglot is not installed, so no statement can be checked; install sqlglot")
    if not isinstance(sql, str) or not sql.strip():
        raise ConnectorValidationError("the SQL statement is empty; give one SELECT query")
    try:
        statements = [s for s in sqlglot.parse(sql, read=engine) if s is not None]
    except SqlglotError as exc:
        raise ConnectorValidationError(f"the SQL statement does not parse: {str(exc)[:200]}") from None
    if not statements:
        raise ConnectorValidationError("the SQL statement is empty; give one SELECT query")
    if len(statements) != 1:
        raise ConnectorValidationError(
            f"exactly one statement is allowed, got {len(statements)}; remove everything after the first ';'"
        )
    statement = statements[0]
    if not isinstance(statement, exp.Select | exp.SetOperation):
        raise ConnectorValidationError(
            f"only a read-only SELECT (WITH/UNION) query is allowed, got {statement.key.upper()}"
        )
    for node in statement.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise ConnectorValidationError(f"{node.key.upper()} is not allowed inside a read-only query")


def _sqlite_read_only(action: int, *_: Any) -> int:
    """SQLite authorizer: allow reading, deny every other action."""
    return sqlite3.SQLITE_OK if action in _SQLITE_ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def _interrupt(connection: Any, expired: threading.Event) -> None:
    """Timer callback: mark the statement as over its time and interrupt it (DuckDB and sqlite3 allow this
    from another thread; a connection closed meanwhile has nothing left to stop)."""
    expired.set()
    with contextlib.suppress(Exception):
        connection.interrupt()


def _json_safe(value: Any) -> Any:
    """A column value as JSON metadata (dates as ISO text, bytes as their length, others as text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return str(value)


def _row_digest(row: Mapping[str, Any]) -> str:
    """A stable stand-in id for a row whose id is NULL: a digest of its values."""
    return hashlib.sha256(repr(sorted((k, _json_safe(v)) for k, v in row.items())).encode()).hexdigest()[:16]


def _moment(value: Any) -> datetime | None:
    """A created_at column value (datetime, date, ISO text or epoch seconds) as an aware UTC datetime."""
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return parse_datetime(value)


class SQLConnector(BaseConnector):
    """Rows of a DuckDB or SQLite file, read through one validated, parameter-bound SELECT.

    The DSN (``dsn`` / ``ARAGORA_SQL_DSN``) is ``duckdb:///abs/x.duckdb``, ``sqlite:///abs/x.db`` or a
    bare path ending in .duckdb/.db/.sqlite. The database itself opens the file read-only (DuckDB
    ``read_only=True`` with external access disabled and the configuration locked; SQLite
    ``mode=ro`` with an authorizer that only allows reads), and every statement must pass
    :func:`validate_select` first; a DuckDB file that defines functions (macros) named like built-ins
    (``instr``, ``lower``, ...) is refused, and every statement, with the reading of its rows, is
    interrupted after ``statement_timeout`` seconds (default 60; :class:`ConnectorTimeoutError`).
    ``search`` runs ``sql=`` (keyword) or the configured ``sql``
    with ``$query`` (or ``:query``), ``$limit`` and ``params`` bound, never interpolated; with only
    ``table`` configured it selects the mapped columns whose title or content contains the query
    (case-insensitively; SQLite folds ASCII only), newest ``created_at`` first. ``fetch`` reads one
    row of ``table`` by the mapped id column. ``since``/``until`` keep rows whose created_at lies in
    the window (rows without one are dropped when a window is given). ``limit`` may not exceed
    ``max_rows``. Ids: ``sql:<db file stem>:<table, or 'query' for sql= results>:<row id>``; a row
    whose id is NULL gets a digest of its values. Database calls run in a worker thread.

    Scores (all in [0, 1]):
    - confidence = the ``confidence`` knob (default 0.8) and authority = the ``authority`` knob
      (default 0.7): a database the user chose to trust, vouched for as a whole;
    - freshness = 0.5 ** (days since created_at / ``half_life_days``, default 365); 0.5 when unknown.
    """

    SOURCE: ClassVar[str] = "sql"
    HAS_TIME_AXIS: ClassVar[bool] = False
    CREDENTIALS: ClassVar[dict[str, str]] = {"dsn": "ARAGORA_SQL_DSN"}
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"dsn"})
    REQUIRED_CREDENTIALS: ClassVar[tuple[str, ...]] = ("dsn",)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        dsn: str | None = None,
        table: str | None = None,
        sql: str | None = None,
        columns: Mapping[str, str] | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        authority: float = DEFAULT_AUTHORITY,
        confidence: float = DEFAULT_CONFIDENCE,
        half_life_days: float = FRESHNESS_HALF_LIFE_DAYS,
        statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._dsn = self._credential("dsn", dsn)
        unknown = set(columns or {}) - set(FIELDS)
        if unknown:
            raise ConnectorValidationError(
                f"columns has unknown keys {sorted(unknown)}; use {', '.join(FIELDS)}", connector=self.name
            )
        self.columns = {**{f: f for f in FIELDS}, **dict(columns or {})}
        for field, column in self.columns.items():
            quote_identifier(column, f"column for {field!r}")
        self.table = table
        self._table_sql = quote_identifier(table, "table", qualified=True) if table is not None else None
        self.sql = sql
        self.max_rows = check_count("max_rows", max_rows, self.name)
        self.authority = check_score("authority", authority, self.name)
        self.confidence = check_score("confidence", confidence, self.name)
        self.half_life_days = check_positive("half_life_days", half_life_days, self.name)
        self.statement_timeout = check_positive("statement_timeout", statement_timeout, self.name)

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "SQL"

    @property
    def source_type(self) -> SourceType:
        """Rows of a database."""
        return SourceType.DATABASE

    @property
    def is_available(self) -> bool:
        """Whether duckdb and sqlglot are importable (sqlite3 is in the standard library)."""
        return duckdb is not None and sqlglot is not None

    # --- database access (blocking; run in a worker thread) --------------------------------
    def _database(self) -> Database:
        self.require_configured()
        database = parse_dsn(str(self._dsn))
        if not database.path.is_file():
            raise ConnectorValidationError(
                "the database file named by dsn / ARAGORA_SQL_DSN does not exist", connector=self.name
            )
        return database

    def _db_error(self, database: Database, exc: Exception) -> ConnectorError:
        """A database exception as a connector error: bad statements are validation errors."""
        text = (str(exc).splitlines() or [type(exc).__name__])[0][:300]
        transient = (
            duckdb is not None
            and isinstance(exc, duckdb.IOException | duckdb.ConnectionException | duckdb.OutOfMemoryException)
        ) or (isinstance(exc, sqlite3.OperationalError) and bool(_SQLITE_TRANSIENT.search(text)))
        if transient:
            return ConnectorAPIError(f"{database.engine} could not read the database: {text}", connector=self.name)
        return ConnectorValidationError(f"{database.engine} refused the statement: {text}", connector=self.name)

    def _run(
        self,
        database: Database,
        sql: str,
        params: Mapping[str, Any],
        limit: int,
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Validate and run one SELECT: its column names and up to ``limit`` rows that ``accept`` keeps.

        The statement and the reading of its rows get ``statement_timeout`` seconds; then the connection is
        interrupted and the call ends with :class:`ConnectorTimeoutError`.
        """
        if database.engine == "duckdb":
            if duckdb is None:
                raise ConnectorValidationError("duckdb is not installed; install it to read DuckDB files")
            sql = colon_params_to_dollar(sql)
        validate_select(sql, database.engine)
        database_errors: tuple[type[Exception], ...] = (sqlite3.Error, *((duckdb.Error,) if duckdb else ()))
        expired = threading.Event()
        try:
            connection = self._connect(database)
            timer = threading.Timer(self.statement_timeout, _interrupt, (connection, expired))
            timer.daemon = True
            timer.start()
            try:
                cursor = self._execute(connection, database, sql, params)
                names = [d[0] for d in cursor.description or []]
                rows: list[dict[str, Any]] = []
                while len(rows) < limit and not expired.is_set():
                    chunk = cursor.fetchmany(_FETCH_CHUNK)
                    if not chunk:
                        break
                    mapped = (dict(zip(names, values, strict=False)) for values in chunk)
                    rows.extend(row for row in mapped if accept is None or accept(row))
            finally:
                timer.cancel()
                connection.close()
        except database_errors as exc:
            if not expired.is_set():
                raise self._db_error(database, exc) from None
        if expired.is_set():
            raise ConnectorTimeoutError(
                f"the statement ran over statement_timeout={self.statement_timeout:g}s and was stopped; "
                "narrow it or raise statement_timeout",
                connector=self.name,
            )
        return names, rows[:limit]

    def _connect(self, database: Database) -> Any:
        """The database file opened read-only (DuckDB with file access off, SQLite with a read-only authorizer)."""
        if database.engine == "duckdb":
            return duckdb.connect(
                str(database.path),
                read_only=True,
                # offline: opening a file DuckDB cannot read natively (e.g. SQLite) must not fetch an extension
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                        "enable_external_access": False, "lock_configuration": True},
            )
        connection = sqlite3.connect(f"{database.path.as_uri()}?mode=ro", uri=True)
        connection.set_authorizer(_sqlite_read_only)
        return connection

    def _execute(self, connection: Any, database: Database, sql: str, params: Mapping[str, Any]) -> Any:
        """Execute ``sql`` on an open connection, binding only the parameters it names; returns the cursor."""
        if database.engine == "sqlite":  # SQLite files hold no functions: nothing can shadow a built-in
            return connection.execute(sql, dict(params))
        shadowing = [row[0] for row in connection.execute(_DUCKDB_SHADOWING).fetchall()]
        if shadowing:
            raise ConnectorValidationError(
                f"the database defines function(s) named like DuckDB built-ins ({', '.join(shadowing[:10])}), which "
                "would change what every query means; it is not read. Drop or rename them in the source database",
                connector=self.name,
            )
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise ConnectorValidationError(
                "DuckDB reads this text as something other than one SELECT; it was not run",
                connector=self.name,
            )
        wanted = statements[0].named_parameters
        missing = sorted(wanted - set(params))
        if missing:
            raise ConnectorValidationError(
                f"the statement uses ${', $'.join(missing)} but params does not give them",
                connector=self.name,
            )
        return connection.execute(statements[0], {name: params[name] for name in wanted})

    # --- mapping --------------------------------------------------------------------------
    def _column(self, row: Mapping[str, Any], field: str) -> Any:
        wanted = self.columns[field].lower()
        return next((value for key, value in row.items() if key.lower() == wanted), None)

    def _to_evidence(self, database: Database, origin: str, row: Mapping[str, Any]) -> Evidence:
        raw_id = self._column(row, "id")
        row_id = str(raw_id) if raw_id is not None else _row_digest(row)
        source_id = f"{database.stem}:{origin}:{row_id}"
        created = _moment(self._column(row, "created_at"))
        title, content, url, author = (self._column(row, f) for f in ("title", "content", "url", "author"))
        mapped = {column.lower() for column in self.columns.values()}
        return Evidence(
            id=evidence_id(self.SOURCE, source_id),
            source_type=self.source_type,
            source_id=source_id,
            content=html_to_text(str(content)) if content is not None else "",
            title=(html_to_text(str(title)) if title is not None else "") or f"{origin} row {row_id}",
            created_at=iso_utc(created),
            author=str(author) if author is not None else None,
            url=str(url) if url is not None else None,
            confidence=self.confidence,
            freshness=freshness(created, self.half_life_days),
            authority=self.authority,
            metadata={
                "database": database.stem,
                "engine": database.engine,
                "table": origin,
                "row_id": row_id,
                "columns": {k: _json_safe(v) for k, v in row.items() if k.lower() not in mapped},
            },
        )

    def _table_statement(self, database: Database, where: str, tail: str) -> str:
        """SELECT of the mapped columns of ``table`` (NULL for those it lacks), with a WHERE and a tail."""
        names, _ = self._run(database, f"SELECT * FROM {self._table_sql} LIMIT 0", {}, 1)
        present = {name.lower() for name in names}
        if self.columns["id"].lower() not in present:
            raise ConnectorValidationError(
                f"table {self.table!r} has no column {self.columns['id']!r}; map it with columns={{'id': ...}}",
                connector=self.name,
            )
        select = ", ".join(
            quote_identifier(column) if column.lower() in present else f"NULL AS {quote_identifier(column)}"
            for column in dict.fromkeys(self.columns.values())
        )
        return f"SELECT {select} FROM {self._table_sql} WHERE {where} {tail}".strip()

    # --- contract -------------------------------------------------------------------------
    def _search_sync(
        self,
        query: str,
        limit: int,
        since: datetime | None,
        until: datetime | None,
        sql: str | None,
        params: Mapping[str, Any],
    ) -> list[Evidence]:
        database = self._database()
        windowed = since is not None or until is not None

        def row_in_window(row: Mapping[str, Any]) -> bool:
            return in_window(_moment(self._column(row, "created_at")), since, until)

        statement, origin = (sql if sql is not None else self.sql), "query"
        if statement is None:
            title, content, created = (quote_identifier(self.columns[f]) for f in ("title", "content", "created_at"))
            statement = self._table_statement(
                database,
                f"instr(lower(CAST({title} AS VARCHAR)), $query) > 0 "
                f"OR instr(lower(CAST({content} AS VARCHAR)), $query) > 0",
                f"ORDER BY {created} DESC{'' if windowed else ' LIMIT $limit'}",
            )
            origin, query = str(self.table), query.lower()
        bound = {**params, "query": query, "limit": limit}
        _, rows = self._run(database, statement, bound, limit, row_in_window if windowed else None)
        return [self._to_evidence(database, origin, row) for row in rows]

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        sql: str | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Rows matching ``query``: from ``sql`` (this call's or the configured one) or the table search."""
        self.require_configured()
        self._check_limit(limit)
        if limit > self.max_rows:
            raise ConnectorValidationError(
                f"limit {limit} exceeds max_rows={self.max_rows}; raise max_rows to read more rows",
                connector=self.name,
            )
        if params is not None and (
            not isinstance(params, Mapping) or not all(isinstance(k, str) and _NAME.match(k) for k in params)
        ):
            raise ConnectorValidationError("params must map parameter names to values", connector=self.name)
        if sql is None and self.sql is None and self.table is None:
            raise ConnectorValidationError("configure table= or sql= (or pass sql= to search)", connector=self.name)
        async with connector_error_handler("search", self.name):
            return await asyncio.to_thread(
                self._search_sync, query, limit, to_utc(since), to_utc(until), sql, dict(params or {})
            )

    def _fetch_sync(self, source_id: str) -> Evidence | None:
        database = self._database()
        parts = source_id.split(":", 2)
        if len(parts) != 3 or not parts[2]:
            raise ConnectorValidationError(
                f"SQL evidence ids look like sql:<db>:<table>:<row id>, got {source_id!r}", connector=self.name
            )
        stem, origin, row_id = parts
        if stem != database.stem or origin != self.table:
            raise ConnectorValidationError(
                f"id {source_id!r} is not a row of table {self.table!r} in database {database.stem!r}; "
                "fetch reads the configured table only (ids of sql= results, <db>:query:<id>, cannot be fetched)",
                connector=self.name,
            )
        cached = self._cache_get(source_id)
        if cached is not None:
            return cached
        id_column = quote_identifier(self.columns["id"])
        statement = self._table_statement(database, f"CAST({id_column} AS VARCHAR) = $row_id", "LIMIT 1")
        _, rows = self._run(database, statement, {"row_id": row_id}, 1)
        if not rows:
            return None
        evidence = self._to_evidence(database, origin, rows[0])
        self._cache_put(source_id, evidence)
        return evidence

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """One row of ``table`` by ``sql:<db>:<table>:<row id>`` (or without the prefix); None when absent."""
        self.require_configured()
        if self.table is None:
            raise ConnectorValidationError("fetch needs table= (the table rows are read from)", connector=self.name)
        async with connector_error_handler("fetch", self.name):
            return await asyncio.to_thread(self._fetch_sync, str(evidence_id).removeprefix(f"{self.SOURCE}:"))
