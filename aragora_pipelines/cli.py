"""`aragora-pipelines`: query, search, verify and ingest evidence, and edit topics, from the command line.

Every command takes ``--db PATH`` (default ``ARAGORA_DUCKDB_PATH`` or ``data/aragora.duckdb``), or ``--store``
(a file or a DuckLake attach string; default ``ARAGORA_STORE``) with ``--data-path``, and waits while a
materialization holds a DuckDB file instead of failing (a DuckLake store never makes a reader wait).
Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import io
import json
import logging
import math
import os
import re
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aragora_pipelines.topics import (
    PARTITIONS,
    Topic,
    TopicError,
    add_topic,
    describe_materializations,
    load_topics,
    materialized_partitions,
    query_for_key,
    remove_topic,
    topics_file,
    validate_key,
)

# Heavy modules (duckdb, pyarrow, sqlglot, the connectors, Dagster) are imported inside the commands that use
# them, so `--help` and argument errors answer at once.
if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from aragora_pipelines.store import EvidenceStore, LoadResult
    from connectors.progress import ProgressEvent

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EXIT_STATUS_HELP = """exit status:
  0  success; an empty result is a success, with "no rows" on stderr
  1  the command ran and found a problem: verify found a broken provenance link,
     a source failed while fetching (the store is unchanged), the database stayed locked,
     the disk filled up while writing (the store is unchanged),
     `topics remove` found materializations (pass --force), `query` hit its --timeout or
     --memory-limit or gave way to a load waiting to write
  2  bad input: usage error, unknown source or topic, missing database file, a file that is
     not an evidence store, SQL that is not one read-only SELECT, a syntax error, an unknown
     table or column"""

FORMATS = ("table", "csv", "json", "parquet")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# `query`'s limits (README, Command line): a runaway statement ends with one line, and a load never waits long.
QUERY_TIMEOUT_ENV, QUERY_MEMORY_ENV, QUERY_YIELD_ENV = (
    "ARAGORA_QUERY_TIMEOUT", "ARAGORA_QUERY_MEMORY_LIMIT", "ARAGORA_QUERY_YIELD_SECONDS")
_MEMORY_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:B|[KMGT]i?B)", re.IGNORECASE)  # DuckDB's memory_limit units
_WATCH_INTERVAL = 0.2  # seconds between the query watchdog's looks at the clock and the writer lock


@dataclass(frozen=True)
class QueryLimits:
    """What one `query` may take: wall-clock seconds, memory, and how long a load waiting to write may wait for it."""

    timeout: float = 60.0
    memory_limit: str = "2GB"
    yield_after: float = 10.0


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


class CommandFailed(Exception):
    """The command ran and found a problem: printed as one line, exit status 1."""


def one_line(exc: BaseException) -> str:
    """An error message on one line: DuckDB's ``LINE 1: ...`` / caret pointer lines dropped."""
    lines = [line.strip() for line in ANSI.sub("", str(exc)).splitlines()]
    kept = [line for line in lines if line and not line.startswith("LINE ") and set(line) != {"^"}]
    return " ".join(kept) or type(exc).__name__


# --- read-only SQL -------------------------------------------------------------------------------
def read_only_statement(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """``sql`` when it is exactly one read-only SELECT; UsageError otherwise (writes, ATTACH, COPY, PRAGMA...).

    sqlglot classifies it first, in Python (DuckDB's parser files ``PRAGMA x`` under SELECT and binds pragmas);
    then DuckDB's own parser, on the connection that will run it, must also see exactly one SELECT.
    """
    import sqlglot
    from sqlglot import expressions as exp

    # Statement roots `query` accepts (sqlglot's view), and nodes that must not occur anywhere inside them.
    read_only_roots = (exp.Query, exp.Values, exp.Describe, exp.Summarize, exp.Show)
    write_nodes = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
                   exp.Copy, exp.Attach, exp.Detach, exp.Pragma, exp.Set, exp.Use, exp.Install, exp.Transaction,
                   exp.Commit, exp.Rollback, exp.Into)
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
    except sqlglot.errors.SqlglotError as exc:
        _check_duckdb_select(con, sql)  # DuckDB's own verdict first: its syntax error, or the statement kind
        raise UsageError(f"could not check that the statement is a plain SELECT ({one_line(exc)})") from None
    except RecursionError:  # sqlglot's parser recurses per nesting level: about 50 parentheses exhaust it
        raise UsageError("the statement nests too deeply to check that it is a plain SELECT (about 50 levels of "
                         "parentheses or subqueries); flatten it, e.g. with WITH clauses") from None
    if len(trees) != 1:
        raise UsageError(f"give exactly one SELECT statement (found {len(trees)})")
    if not isinstance(trees[0], read_only_roots):
        first_word = sqlglot.tokenize(sql, read="duckdb")[0].text.upper()
        raise UsageError(f"refused: {first_word} statement; `query` is read-only and runs one SELECT")
    nested = trees[0].find(*write_nodes)
    if nested is not None:
        raise UsageError(f"refused: the SELECT contains {nested.key.upper()}; `query` is read-only")
    _check_duckdb_select(con, sql)
    return sql


def _check_duckdb_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """UsageError unless DuckDB's parser reads ``sql`` as exactly one SELECT."""
    import duckdb

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"invalid SQL: {one_line(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "no statement"
        raise UsageError(f"refused: DuckDB reads this as {kinds}; `query` is read-only and runs one SELECT")


def run_query(store: EvidenceStore, sql: str, limits: QueryLimits | None = None) -> pa.Table:
    """Run one checked SELECT on a read-only connection with file access off, settings locked, within ``limits``.

    File access is off for every path: DuckDB keeps the store's own files readable with external access off
    (``read_blob`` on them would show overwritten text), so the local file system is disabled once the file is
    open. Nothing can spill to disk then: the memory limit bounds the query, which never writes temporary files.
    A DuckLake store reads its Parquet files as the query runs: only its data path stays readable.
    """
    import duckdb

    from aragora_pipelines.store import load_fts

    limits = limits or QueryLimits()
    with store.reader({"memory_limit": limits.memory_limit, "temp_directory": ""}) as con:
        load_fts(con)  # so fts_main_evidence_search.match_bm25 works; from the local wheel, never the network
        if store.lake is None:
            con.execute("SET enable_external_access = false")
            con.execute("SET disabled_filesystems = 'LocalFileSystem'")
        else:  # a lake's rows are in Parquet files under its data path: that directory alone stays readable
            data_path = con.execute("SELECT value FROM aragora.options() WHERE option_name = 'data_path'").fetchone()
            con.execute("SET allowed_directories = ?", [[data_path[0]] if data_path else []])
            con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        store.require_store(con)
        statement = read_only_statement(con, sql)
        with _Watchdog(con, store, limits) as watchdog:
            try:
                result = con.execute(statement)
                json_columns = [i for i, column in enumerate(result.description) if column[1] == "JSON"]
                return _with_json_type(result.to_arrow_table(), json_columns)
            except duckdb.InterruptException:
                raise CommandFailed(watchdog.reason or "the query was interrupted") from None
            except duckdb.OutOfMemoryException:
                raise CommandFailed(f"the query needs more memory than its limit of {limits.memory_limit} "
                                    f"(--memory-limit, {QUERY_MEMORY_ENV}); narrow it or raise the limit") from None
            except duckdb.PermissionException as exc:
                if "file system" not in str(exc).lower():
                    raise UsageError(one_line(exc)) from None
                raise UsageError("refused: file system operations are disabled in `query`, for every path, the "
                                 "store's own files included") from None
            except duckdb.Error as exc:
                raise UsageError(one_line(exc)) from None


class _Watchdog:
    """Interrupts a running query at its timeout, or once a load has waited ``yield_after`` seconds to write.

    DuckDB has no statement timeout; ``interrupt()`` from this thread stops the statement. A load cannot open the
    store while a query reads it, so the query gives way long before the load's lock timeout (300 s) runs out.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, store: EvidenceStore, limits: QueryLimits) -> None:
        self.reason = ""
        self._con, self._store, self._limits = con, store, limits
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="query-watchdog", daemon=True)

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        started, load_waiting_since = time.monotonic(), None
        while not self._done.wait(_WATCH_INTERVAL):
            now = time.monotonic()
            if now - started >= self._limits.timeout:
                self.reason = (f"the query was stopped after {self._limits.timeout:g}s (--timeout, "
                               f"{QUERY_TIMEOUT_ENV}); narrow it or raise the limit")
            elif self._store.writer_waiting():
                load_waiting_since = now if load_waiting_since is None else load_waiting_since
                if now - load_waiting_since >= self._limits.yield_after:
                    self.reason = (f"the query gave way after {now - started:.0f}s to a load waiting to write to "
                                   f"{self._store.path} (a load cannot start while a query reads the store); run it "
                                   "again when the load has finished")
            else:
                load_waiting_since = None
            if self.reason:
                self._con.interrupt()
                return


def _with_json_type(table: pa.Table, indexes: Sequence[int]) -> pa.Table:
    """``table`` with its JSON columns (DuckDB hands them over as text) typed ``arrow.json``.

    So ``--format json`` nests them as objects and a parquet file keeps them as JSON.
    """
    import pyarrow as pa

    for i in indexes:
        column = table.column(i)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            json_type = pa.json_(column.type)
            chunks = [pa.ExtensionArray.from_storage(json_type, chunk) for chunk in column.chunks]
            table = table.set_column(i, table.schema.field(i).with_type(json_type),
                                     pa.chunked_array(chunks, type=json_type))
    return table


def _plain(value: Any) -> Any:
    """A value as text-friendly JSON: ISO datetimes, exact decimals as strings, bytes as hex."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, float):
        text = format(value, ".6g")
    elif isinstance(value, dict | list):
        text = json.dumps(value, default=_plain, ensure_ascii=False)
    elif isinstance(value, str | int | bool):
        text = str(value)
    else:
        text = _plain(value)
    from connectors.text import escape_controls

    text = escape_controls(" ".join(text.split()))
    return text if width <= 0 or len(text) <= width else text[: width - 1] + "…"


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows as tuples (column-wise, so duplicate column names survive)."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def render_table(table: pa.Table, width: int = 60) -> str:
    """An aligned text table (cells cut at ``width`` characters; 0 keeps them whole)."""
    import pyarrow as pa

    names = [_cell(name, 0) for name in table.column_names]
    rows = [[_cell(value, width) for value in row] for row in _rows(table)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(names), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]) + "\n"


def render_csv(table: pa.Table) -> str:
    """CSV with a header row; NULL is an empty field; control characters but newline and tab shown as ``\\xNN``."""
    from connectors.text import escape_controls

    def field(value: Any) -> Any:
        if value is None or isinstance(value, int | float):
            return "" if value is None else value
        text = value if isinstance(value, str) else \
            json.dumps(value, default=_plain) if isinstance(value, dict | list) else _plain(value)
        return escape_controls(text)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([field(name) for name in table.column_names])
    for row in _rows(table):
        writer.writerow([field(v) for v in row])
    return out.getvalue()


def render_json(table: pa.Table) -> str:
    """A JSON array of row objects in column order (a repeated column name gets a ``_2``, ``_3`` suffix).

    Strict JSON: JSON columns are nested as values, not escaped strings; NaN and infinities become null.
    """
    import pyarrow as pa

    names: list[str] = []
    for name in table.column_names:
        names.append(name if name not in names else f"{name}_{table.column_names[:len(names)].count(name) + 1}")
    nested = [isinstance(t, pa.JsonType) for t in table.schema.types]
    try:
        rows = [{name: _finite(json.loads(value) if parse and value is not None else value)
                 for name, value, parse in zip(names, row, nested, strict=True)} for row in _rows(table)]
        text = json.dumps(rows, default=_plain, ensure_ascii=False, indent=2, allow_nan=False)
    except RecursionError:
        raise UsageError("a value is nested too deeply to print as JSON; use --format table or csv, or select "
                         "it as text (CAST(... AS VARCHAR))") from None
    # JSON escapes C0 control characters itself; DEL and C1 (0x9b is a CSI) only occur inside strings: \u-escape them
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float, which JSON cannot hold, replaced by None (nested ones too)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _check_output(output: Path, db: Path) -> None:
    target = output.resolve()
    store_files = {db.resolve(), *(Path(str(db.resolve()) + s) for s in (".wal", ".lock", ".tmp"))}  # or a lake's index
    if target in store_files:
        raise UsageError(f"--output {output} is the evidence database; choose another file")
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: directory {target.parent} does not exist")


def cmd_query(args: argparse.Namespace) -> int:
    """Run one read-only SELECT and print or write the result."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    store = _store(args, snapshot=args.snapshot, as_of=args.as_of)
    output = Path(args.output) if args.output else None
    if args.format == "parquet" and output is None:
        raise UsageError("parquet is binary: give --output FILE")
    if output is not None:
        _check_output(output, store.path)
    table = run_query(store, args.sql, QueryLimits(args.timeout, args.memory_limit, _query_yield()))
    render: Callable[[pa.Table], str] = {
        "table": lambda t: render_table(t, args.max_width), "csv": render_csv, "json": render_json,
        "parquet": lambda t: "",
    }[args.format]
    if output is None:
        sys.stdout.write(render(table))
    else:
        try:
            if args.format == "parquet":
                pq.write_table(table, output)
            else:
                output.write_text(render(table), "utf-8")
        except (pa.ArrowException, OSError) as exc:
            raise UsageError(f"cannot write {args.format} to {output}: {one_line(exc)}") from None
        print(f"wrote {table.num_rows} rows to {output}", file=sys.stderr)
    if table.num_rows == 0:
        print("no rows", file=sys.stderr)
    return EXIT_OK


# --- search --------------------------------------------------------------------------------------
def cmd_search(args: argparse.Namespace) -> int:
    """BM25 full-text search with highlighted snippets."""
    from aragora_pipelines.search import search_evidence
    from connectors.text import escape_controls

    if args.source is not None:
        _evidence_class(args.source)
    tty = sys.stdout.isatty()
    mark = (lambda w: f"\033[1;33m{w}\033[0m") if tty else (lambda w: f"**{w}**")
    try:
        hits = search_evidence(_store(args), args.text, source=args.source, limit=args.limit,
                               mark=mark)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not hits:
        print(f"no rows: nothing matches {args.text!r}" + (f" in {args.source}" if args.source else ""),
              file=sys.stderr)
    for rank, hit in enumerate(hits, 1):
        score = f"bm25 {hit.score:.3f}" if hit.score is not None else "bm25 -"
        exact = "  (exact title)" if hit.exact_title else ""
        title, source, item_id, url = (escape_controls(text) for text in (hit.title, hit.source, hit.id,
                                                                            hit.url or "(no url)"))
        print(f"{rank}. {title}{exact}\n   {source} | reliability {hit.reliability:.3f} | {score} | "
              f"{item_id}\n   {url}\n   {hit.snippet}\n")  # the snippet comes escaped, then highlighted
    return EXIT_OK


# --- verify --------------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute the provenance chain and content hashes of the whole store."""

    store = _store(args)
    problems = store.verify()
    if problems:
        print(f"provenance chain BROKEN: {problems[0]}")
        for problem in problems[1:] if args.all else []:
            print(f"  also: {problem}")
        if len(problems) > 1 and not args.all:
            print(f"  ... and {len(problems) - 1} more problem(s); --all lists them")
        return EXIT_FAILED
    counts = store.counts()
    print(f"provenance chain intact: {counts['provenance']} records over {counts['evidence']} evidence rows")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy the DuckDB-file store into an empty DuckLake store, then verify the copy and compare the counts."""
    from aragora_pipelines.resources import open_store

    source = _store(args)
    target = open_store(args.to, getattr(args, "data_path", None))  # --data-path: the lake's (a file has none)
    copied = source.copy_into(target)
    print(f"copied {source.location} into {target.location}: "
          + ", ".join(f"{rows} {table}" for table, rows in copied.items()))
    problems = target.verify()
    if problems:
        print(f"provenance chain BROKEN in the copy: {problems[0]}")
        return EXIT_FAILED
    if source.counts() != target.counts():
        print(f"counts differ: {source.counts()} in the file, {target.counts()} in the copy")
        return EXIT_FAILED
    print(f"the copy verifies and its counts match: {target.counts()}")
    return EXIT_OK


# --- topics --------------------------------------------------------------------------------------
def _topics_path(args: argparse.Namespace) -> Path:
    return Path(args.file) if args.file else topics_file()


def cmd_topics_list(args: argparse.Namespace) -> int:
    """Print the topics the assets search for."""
    import pyarrow as pa

    topics = load_topics(_topics_path(args))
    if not topics:
        print(f"no rows: no topics in {_topics_path(args)}", file=sys.stderr)
        return EXIT_OK
    table = pa.table({"key": [t.key for t in topics.values()], "query": [t.query for t in topics.values()],
                      "claim_id": [t.claim_id for t in topics.values()]})
    sys.stdout.write(render_table(table, 0))
    return EXIT_OK


def cmd_topics_add(args: argparse.Namespace) -> int:
    """Add (or with --replace, change) a topic; every other line of the file stays as it was."""
    path = _topics_path(args)
    key = validate_key(args.key)
    topic = Topic(key, args.query or query_for_key(key), args.claim)
    existed = add_topic(topic, path, replace=args.replace)
    print(f"{'replaced' if existed else 'added'} topic {key!r} (query {topic.query!r}) in {path}; "
          "the topics sensor adds its partition within 30 s")
    return EXIT_OK


def cmd_topics_remove(args: argparse.Namespace) -> int:
    """Remove a topic from the file and, with DAGSTER_HOME set, its partition (refused if it has materializations,
    unless --force); stored evidence stays in the store either way."""
    path, key = _topics_path(args), args.key
    topics = load_topics(path)
    in_file = key in topics
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        if not in_file:
            raise UsageError(f"no topic {key!r} in {path}; known: {', '.join(topics) or 'none'}")
        remove_topic(key, path)
        print(f"removed topic {key!r} from {path}; DAGSTER_HOME is not set, so the topics sensor deletes its "
              "partition (keeping it, and saying so, if it has materializations)")
        return EXIT_OK
    from dagster import DagsterError, DagsterInstance

    try:
        instance = DagsterInstance.get()
    except DagsterError as exc:
        raise UsageError(f"cannot open the Dagster instance in DAGSTER_HOME={home}: {exc}") from None
    with instance:
        is_partition = instance.has_dynamic_partition(PARTITIONS, key)
        if not in_file and not is_partition:
            raise UsageError(f"no topic {key!r} in {path} nor a partition {key!r} in the Dagster instance at {home}")
        counts = materialized_partitions(instance, key) if is_partition else {}
        if counts and not args.force:
            raise CommandFailed(f"{describe_materializations(key, counts)}; pass --force to remove it "
                                "(stored evidence is kept)")
        if in_file:
            remove_topic(key, path)
        if is_partition:
            instance.delete_dynamic_partition(PARTITIONS, key)
    done = ([f"topic {key!r} from {path}"] if in_file else []) + (
        [f"partition {key!r} from the Dagster instance at {home}"] if is_partition else [])
    kept = f" ({describe_materializations(key, counts)}; stored evidence is kept)" if counts else ""
    print(f"removed {' and '.join(done)}{kept}")
    return EXIT_OK


# --- sources and ingest --------------------------------------------------------------------------
def _known_source(name: str) -> str:
    """``"evidence"`` or ``"integration"`` for a registered source; UsageError with a "did you mean" otherwise."""
    from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

    if name in EVIDENCE_CONNECTORS:
        return "evidence"
    if name in INTEGRATION_CONNECTORS:
        return "integration"
    known = sorted([*EVIDENCE_CONNECTORS, *INTEGRATION_CONNECTORS])
    close = difflib.get_close_matches(name, known, n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    raise UsageError(f"unknown source {name!r}{guess}; known sources: {', '.join(known)}")


def _evidence_class(source: str) -> type:
    """The registered evidence connector class; UsageError for an unknown name or an integration."""
    from connectors.registry import EVIDENCE_CONNECTORS

    if _known_source(source) != "evidence":
        raise UsageError(f"{source} is an integration, not an evidence source; "
                         f"evidence sources: {', '.join(sorted(EVIDENCE_CONNECTORS))}")
    return EVIDENCE_CONNECTORS[source]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def cmd_sources(args: argparse.Namespace) -> int:
    """Print every connector with whether it is available and configured, and what to set if not."""
    import pyarrow as pa

    from aragora_pipelines.sources import source_statuses

    rows = source_statuses()
    table = pa.table({
        "source": [r.source for r in rows], "kind": [r.kind for r in rows],
        "time_axis": [_yes(r.time_axis) for r in rows], "available": [_yes(r.available) for r in rows],
        "configured": [_yes(r.configured) for r in rows], "to_set": [r.to_set for r in rows],
    })
    sys.stdout.write(render_table(table, 0))
    return EXIT_OK


class Progress:
    """What an ingest is doing, on stderr: pages answered, items read, retries and rate-limit waits as they happen.

    On a terminal a live rich line (spinner, counts, elapsed time) with retries and waits printed above it;
    otherwise one plain line per page, retry and wait; ``quiet`` shows nothing. ``elapsed`` covers the whole run.
    """

    def __init__(self, label: str, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.label = self.title = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.pages = self.items = self.retries = self.waits = 0
        self._started = time.monotonic()
        self._live: Any = None
        self._task: Any = None

    @property
    def elapsed(self) -> float:
        """Seconds since the progress started."""
        return time.monotonic() - self._started

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.quiet:
            return self
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import Progress as Live
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._live = Live(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.fields[counts]}"),
                              TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._task = self._live.add_task(self.label, total=None, counts=self._counts())
            self._live.start()
        else:
            self._say(f"{self.label} ...")
        return self

    def step(self, label: str) -> None:
        """Start the next step (e.g. refreshing the index) under the same clock."""
        self.label = label
        if self._live is not None:
            self._live.update(self._task, description=label)
        elif not self.quiet:
            self._say(f"{label} ...")

    def event(self, event: ProgressEvent) -> None:
        """Count one connector event and show it (the observer given to ``connectors.progress.observe``)."""
        from connectors.redact import redact

        operation = redact(event.operation)
        line = ""
        if event.kind == "response" and event.status is not None and event.status < 400:
            self.pages += 1
            line = f"  page {self.pages}: {operation} (HTTP {event.status})" if self._live is None else ""
        elif event.kind == "retry":
            self.retries += 1
            line = (f"  retry: {operation} attempt {event.attempt} failed ({event.detail}); "
                    f"next attempt in {event.seconds:.1f}s")
        elif event.kind == "wait":
            self.waits += 1
            line = f"  waiting {event.seconds:.1f}s: {event.detail}" + (f" ({operation})" if operation else "")
        elif event.kind == "items":
            self.items += event.count
        if self.quiet:
            return
        if self._live is not None:
            if line:
                self._live.console.print(line, markup=False, highlight=False)
            self._live.update(self._task, counts=self._counts())
        elif line:
            self._say(line)

    def _counts(self) -> str:
        return f"{self.pages} pages, {self.items} items, {self.retries} retries, {self.waits} waits"

    def _say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
        if not self.quiet:
            outcome = "failed" if exc[0] else "done"
            self._say(f"{self.title} ... {outcome}: {self._counts()} ({self.elapsed:.2f}s)")


def _datetime_arg(value: str) -> datetime:
    from connectors.text import parse_datetime

    parsed = parse_datetime(value)
    if parsed is None:
        raise argparse.ArgumentTypeError(f"expected a date (YYYY-MM-DD) or an ISO datetime, got {value!r}")
    return parsed


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {value!r}")
    return number


def _timeout_arg(value: str) -> float:
    """``--timeout`` (default ``ARAGORA_QUERY_TIMEOUT``): positive seconds."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds < math.inf):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r} (--timeout or "
                                         f"{QUERY_TIMEOUT_ENV})")
    return seconds


def _memory_arg(value: str) -> str:
    """``--memory-limit`` (default ``ARAGORA_QUERY_MEMORY_LIMIT``): a size such as 2GB, 512MB or 1.5GiB."""
    size = _MEMORY_SIZE.fullmatch(value.strip())
    if size is None or float(size.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 2GB, 512MB or 1.5GiB, got {value!r} "
                                         f"(--memory-limit or {QUERY_MEMORY_ENV})")
    return value.strip()


def _query_yield() -> float:
    """``ARAGORA_QUERY_YIELD_SECONDS`` (default 10): how long a load waiting to write may wait for a query.

    Below a load's lock timeout, so the load never fails because of a query.
    """
    from aragora_pipelines.store import DEFAULT_LOCK_TIMEOUT

    raw = os.environ.get(QUERY_YIELD_ENV, "").strip()
    if not raw:
        return QueryLimits.yield_after
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < DEFAULT_LOCK_TIMEOUT:
        raise UsageError(f"{QUERY_YIELD_ENV} must be seconds from 0 up to a load's lock timeout "
                         f"({DEFAULT_LOCK_TIMEOUT:.0f}), got {raw!r}")
    return seconds


def _check_ingest_args(args: argparse.Namespace, kind: str) -> None:
    """UsageError for options that do not fit the source: a query for evidence, an object type for integrations."""
    if args.since and args.until and args.since >= args.until:
        raise UsageError(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}")
    if kind == "integration":
        from connectors.registry import INTEGRATION_CONNECTORS

        object_types = INTEGRATION_CONNECTORS[args.source][0].OBJECT_TYPES
        if args.query is not None or args.claim is not None:
            raise UsageError(f"{args.source} is an integration: it takes --object TYPE, not --query/--claim")
        if args.object not in object_types:
            given = f"unknown object type {args.object!r}" if args.object else "give --object TYPE"
            raise UsageError(f"{args.source}: {given}; one of {', '.join(object_types)}")
        return
    if args.object is not None:
        raise UsageError(f"--object is for integrations; {args.source} is an evidence source (use --query)")
    if args.query is None or not args.query.strip():
        # the rule `search` applies too: an empty or blank query is refused, never taken as "everything"
        raise UsageError(f"the query is empty; give --query with the words to search {args.source} for")


def cmd_ingest(args: argparse.Namespace) -> int:
    """Search one source (or read one integration object type) and load the results through the assets' path."""
    from connectors.exceptions import ConnectorAuthError, ConnectorError, ConnectorValidationError
    from connectors.progress import observe

    kind = _known_source(args.source)
    _check_ingest_args(args, kind)
    load, store = _ingest(args, kind)  # builds the connector first: missing credentials fail before any progress
    with Progress(_ingest_label(args, kind), quiet=args.quiet) as progress, observe(progress.event):
        try:
            result = load()
        except (ConnectorAuthError, ConnectorValidationError):
            raise
        except ConnectorError as exc:
            raise CommandFailed(f"ingest failed, store unchanged: {one_line(exc)}") from None
        if kind == "evidence":
            progress.step("refreshing views and the full-text index")
            store.refresh_views()
    target = args.source if kind == "evidence" else f"{args.source}_{args.object}"
    cited = f"; {len(set(result.ids))} items cited for claim {args.claim!r}" if args.claim and result.ids else ""
    print(f"{target}: {result.rows_fetched} fetched, {result.rows_new} new, {result.rows_changed} changed, "
          f"{result.rows_unchanged} unchanged; {result.provenance_records} provenance records{cited} "
          f"({progress.elapsed:.2f}s in all, {result.duration_s:.2f}s writing) into {store.path}")
    if result.rows_outside_window:
        print(f"note: dropped {result.rows_outside_window} item(s) the source returned from outside "
              "--since/--until (not stored)", file=sys.stderr)
    if result.items_skipped:
        print(f"note: skipped {result.items_skipped} item(s) the source could not read (warnings above say which "
              "and why)", file=sys.stderr)
    if result.rows_fetched == 0:
        print("no rows: the source returned nothing for this " + ("query" if kind == "evidence" else "window"),
              file=sys.stderr)
    return EXIT_OK


def _ingest_label(args: argparse.Namespace, kind: str) -> str:
    if kind == "integration":
        window = "".join(f" {name} {value.isoformat()}" for name, value in (("since", args.since),
                                                                            ("until", args.until)) if value)
        return f"ingesting {args.source} {args.object}{window}" + (f" (limit {args.limit})" if args.limit else "")
    return f"ingesting {args.source} for {args.query!r} (limit {args.limit})"


def _ingest(args: argparse.Namespace, kind: str) -> tuple[Callable[[], LoadResult], EvidenceStore]:
    """The connector built as the Dagster resource builds it and checked, and the assets' ingestion call to run."""
    from aragora_pipelines.ingest import DEFAULT_EVIDENCE_LIMIT, ingest_evidence, ingest_objects
    from aragora_pipelines.sources import build_evidence_connector, build_integration_connector

    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    if kind == "integration":
        connector = build_integration_connector(args.source)
        store = _store(args)
        return lambda: ingest_objects(connector, store, service=args.source, object_type=args.object,
                                      since=args.since, until=args.until, limit=args.limit, run_id=run_id,
                                      asset_key=f"{args.source}_{args.object}"), store
    cls = _evidence_class(args.source)
    if (args.since or args.until) and not cls.HAS_TIME_AXIS:
        print(f"note: {args.source} has no time axis; --since/--until are ignored", file=sys.stderr)
    evidence_connector = build_evidence_connector(args.source)
    evidence_connector.require_configured()
    store = _store(args)
    args.limit = args.limit or DEFAULT_EVIDENCE_LIMIT
    return lambda: ingest_evidence(evidence_connector, store, query=args.query, limit=args.limit, since=args.since,
                                   until=args.until, run_id=run_id, asset_key=f"evidence_{args.source}",
                                   claim_id=args.claim), store


# --- inspection: loads, history, status ----------------------------------------------------------
def cmd_loads(args: argparse.Namespace) -> int:
    """The latest load of each asset and partition (or every load): counts, status, duration."""
    from aragora_pipelines.inspection import loads

    table = loads(_store(args), asset=args.asset, partition=args.partition, every=args.every,
                  limit=args.limit)
    sys.stdout.write(render_table(table, 0))
    if table.num_rows == 0:
        print("no rows: no loads" + (f" of {args.asset}" if args.asset else "")
              + (f" for partition {args.partition!r}" if args.partition is not None else ""), file=sys.stderr)
    return EXIT_OK


def cmd_history(args: argparse.Namespace) -> int:
    """Every provenance version of one item, with a unified diff of its text between versions."""
    from aragora_pipelines.inspection import item_history, similar_items
    from connectors.text import escape_controls

    store = _store(args)
    versions = item_history(store, args.item_id)
    if not versions:
        close = similar_items(store, args.item_id)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
            "; item ids look like 'local_docs:guide.md' (see `query \"SELECT id FROM evidence\"`)"
        raise UsageError(f"no provenance for item {args.item_id!r} in {store.location}{hint}")
    print(f"{args.item_id}: {len(versions)} version(s)")
    for number, version in enumerate(versions, 1):
        partition = f" [{version.partition_key}]" if version.partition_key else ""
        print(escape_controls(f"\nv{number}  {version.fetched_at}  {version.connector}  {version.asset_key}"
                              f"{partition}  run {version.run_id or '-'}  content {version.content_hash[:12]}"))
        if number == 1:
            continue
        before = versions[number - 2]
        if before.text is None or version.text is None:
            print("  (no diff: the earlier text was not kept; the store keeps the superseded title and content of "
                  "evidence items, from their first change in a store that has evidence_versions)")
        elif before.text == version.text:
            print("  (title and content unchanged: another hashed field changed, e.g. url, author or date)")
        else:
            old, new = f"{args.item_id} v{number - 1}", f"{args.item_id} v{number}"
            for line in difflib.unified_diff(before.text.splitlines(), version.text.splitlines(), old, new,
                                             lineterm=""):
                print(escape_controls(line))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    """Per source: configured, last successful load, rows, and freshness against its policy."""
    import pyarrow as pa

    from aragora_pipelines.inspection import source_health
    from aragora_pipelines.sources import skip_reason, source_statuses

    store = _store(args)
    exists = store.exists()
    if not exists:
        print(f"note: no evidence database at {store.location} yet; every source counts as never loaded",
              file=sys.stderr)
    statuses = source_statuses()
    health = source_health(store if exists else None, statuses)
    table = pa.table({
        "source": [h.source for h in health], "kind": [h.kind for h in health],
        "configured": [_yes(h.configured) for h in health],
        "last_load": pa.array([h.last_load for h in health], pa.timestamp("us", tz="UTC")),
        "loads": [h.loads for h in health], "rows": [h.rows for h in health],
        "freshness": [h.freshness for h in health],
        "note": [skip_reason(s) if not s.configured or not s.available else "" for s in statuses],
    })
    sys.stdout.write(render_table(table, 0))
    return EXIT_OK


# --- wiring --------------------------------------------------------------------------------------
def _store(args: argparse.Namespace, **options: Any) -> EvidenceStore:
    """The store ``--store`` or ``--db`` names (else ``ARAGORA_STORE``, ``ARAGORA_DUCKDB_PATH``, the default file)."""
    from aragora_pipelines.resources import open_store

    return open_store(getattr(args, "store", None) or getattr(args, "db", None), getattr(args, "data_path", None),
                      **options)


class _VersionAction(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked (the lookup costs ~80 ms)."""

    def __init__(self, option_strings: Sequence[str], dest: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the installed version and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from importlib.metadata import version

        print(f"aragora-pipelines {version('aragora-pipelines')}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per task, ``--db`` accepted before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                        help="the evidence database (default: $ARAGORA_DUCKDB_PATH or data/aragora.duckdb)")
    common.add_argument("--store", metavar="STORE", default=argparse.SUPPRESS,
                        help="the store: a DuckDB file, or DuckLake's attach string (ducklake:postgres:dbname=... "
                        "host=... user=..., ducklake:sqlite:PATH); default $ARAGORA_STORE, else --db")
    common.add_argument("--data-path", metavar="PATH", default=argparse.SUPPRESS,
                        help="where a DuckLake store keeps its Parquet files: a directory or s3://... "
                        "(default: $ARAGORA_STORE_DATA_PATH)")
    parser = argparse.ArgumentParser(
        prog="aragora-pipelines", parents=[common], epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Query, search, verify and ingest Aragora evidence stored in DuckDB; edit the topics.")
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
            parents: Sequence[argparse.ArgumentParser] = (common,)) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=list(parents), help=help_text, description=textwrap.fill(help_text),
                                  epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(handler=handler)
        return sub

    query = add("query", cmd_query, "Run one read-only SELECT (views, tables, fts_main_evidence_search.match_bm25). "
                "Writes, ATTACH, COPY, INSTALL/LOAD, PRAGMA, SET and several statements are refused; file "
                "access functions are disabled.")
    query.add_argument("sql", metavar="SQL", help="one SELECT statement")
    query.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    query.add_argument("--output", metavar="FILE", help="write the result to FILE (required for parquet)")
    query.add_argument("--max-width", type=int, default=60, metavar="N",
                       help="cut table cells at N characters; 0 keeps them whole (default: 60)")
    query.add_argument("--timeout", type=_timeout_arg, metavar="SECONDS",
                       default=os.environ.get(QUERY_TIMEOUT_ENV) or str(QueryLimits.timeout),
                       help=f"stop the query after SECONDS (default: ${QUERY_TIMEOUT_ENV} or {QueryLimits.timeout:g})")
    when = query.add_mutually_exclusive_group()
    when.add_argument("--as-of", metavar="TIMESTAMP", help="read a DuckLake store as it was at TIMESTAMP "
                      "(e.g. 2026-11-29T01:00:00Z): what the evidence said when a claim was judged")
    when.add_argument("--snapshot", type=int, metavar="N", help="read a DuckLake store at snapshot N")
    query.add_argument("--memory-limit", type=_memory_arg, metavar="SIZE",
                       default=os.environ.get(QUERY_MEMORY_ENV) or QueryLimits.memory_limit,
                       help=f"the most memory the query may use; it writes no temporary files (default: "
                       f"${QUERY_MEMORY_ENV} or {QueryLimits.memory_limit})")

    search = add("search", cmd_search, "Full-text search over evidence title and content, BM25-ranked, an "
                 "exact title match first, with a highlighted snippet, source, reliability and URL.")
    search.add_argument("text", metavar="TEXT", help="the words to look for")
    search.add_argument("--source", metavar="S", help="only evidence from this source (e.g. local_docs)")
    search.add_argument("--limit", type=_positive_int, default=10, metavar="N", help="at most N results (10)")

    verify = add("verify", cmd_verify, "Recompute the provenance hash chain and content hashes of the whole "
                 "store; print the first broken link and exit 1 if any.")
    verify.add_argument("--all", action="store_true", help="list every problem, not only the first")

    migrate = add("migrate", cmd_migrate, "Copy the DuckDB-file store (--db) into an empty DuckLake store (--to, "
                  "its Parquet files under --data-path) with every version and provenance record, then verify the "
                  "copy and compare the counts.")
    migrate.add_argument("--to", required=True, metavar="STORE",
                         help="the DuckLake store: ducklake:postgres:dbname=... host=... or ducklake:sqlite:PATH")

    add("sources", cmd_sources, "List every connector: available, configured, and what to set if not.")

    ingest = add("ingest", cmd_ingest, "Search one evidence source (--query) or read one integration object type "
                 "(--object) and load the results with provenance (the assets' code path, without a Dagster run); "
                 "evidence loads then refresh the views and search index. Progress goes to stderr.")
    ingest.add_argument("source", metavar="SOURCE", help="an evidence source (local_docs, sql, hackernews, ...) or "
                        "an integration (stripe, hubspot, ...); see `sources`")
    ingest.add_argument("--query", metavar="Q", help="evidence: what to search the source for (not empty)")
    ingest.add_argument("--object", metavar="TYPE", help="integrations: the object type, e.g. charges, customers")
    ingest.add_argument("--since", type=_datetime_arg, metavar="D", help="start of the window (date or ISO "
                        "datetime, UTC), for sources with a time axis")
    ingest.add_argument("--until", type=_datetime_arg, metavar="D", help="end of the window (exclusive)")
    ingest.add_argument("--limit", type=_positive_int, metavar="N", help="at most N items (default for evidence: "
                        "the assets' run-config limit; integrations: every object in the window)")
    ingest.add_argument("--claim", metavar="ID", help="evidence: cite every result for this claim id")
    ingest.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr; print only the summary")

    loads = add("loads", cmd_loads, "Recent loads: the latest of each asset and partition with how many loads it "
                "had, its row counts, status and duration, newest first.")
    loads.add_argument("--asset", metavar="A", help="an asset key or a source (hackernews, stripe)")
    loads.add_argument("--partition", metavar="P", help="one partition key, e.g. '2026-03-01|ai-safety'")
    loads.add_argument("--every", action="store_true", help="every load, not only the latest per asset and partition")
    loads.add_argument("--limit", type=_positive_int, default=20, metavar="N", help="at most N rows (20)")

    history = add("history", cmd_history, "Every provenance version of one item (when, by which connector, run "
                  "and partition) with a unified diff of its title and content between versions.")
    history.add_argument("item_id", metavar="ITEM_ID", help="an item id, e.g. local_docs:rate-limiting-basics.md")

    add("status", cmd_status, "Per source: configured, last successful load, rows, and freshness against its "
        "freshness policy (daily sources: late after 26 h, stale after 48 h; weekly: 7 and 8 days).")

    from aragora_pipelines import backfill  # talks to the running webserver over HTTP; imports no Dagster

    backfill.add_arguments(add("backfill", backfill.cmd_backfill, backfill.HELP, parents=()))

    topics_common = argparse.ArgumentParser(add_help=False, parents=[common])
    topics_common.add_argument("--file", metavar="PATH", help="the topics YAML (default: $ARAGORA_TOPICS_FILE or "
                               "aragora_pipelines/topics.yaml)")
    topics = commands.add_parser("topics", parents=[topics_common], help="List, add or remove the topics the "
                                 "evidence assets search for.", description="Edit the topics YAML the evidence "
                                 "assets and the topics sensor use.")
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, handler, text in (
        ("list", cmd_topics_list, "Print every topic: key, query, claim."),
        ("add", cmd_topics_add, "Add a topic (its key becomes a Dagster partition)."),
        ("remove", cmd_topics_remove, "Remove a topic from the file and, with DAGSTER_HOME set, its Dagster "
         "partition (refused when it has materializations, unless --force); its stored evidence stays."),
    ):
        action = actions.add_parser(name, parents=[topics_common], help=text, description=textwrap.fill(text),
                                    epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        action.set_defaults(handler=handler)
        if name != "list":
            action.add_argument("key", metavar="KEY", help="lower-case letters, digits, '-' or '_'")
        if name == "add":
            action.add_argument("--query", metavar="Q", help="what to search for (default: the key's words)")
            action.add_argument("--claim", metavar="ID", help="cite every result for this claim id")
            action.add_argument("--replace", action="store_true", help="change an existing topic")
        if name == "remove":
            action.add_argument("--force", action="store_true", help="remove it even if its partition has "
                                "materializations (the stored evidence is kept)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aragora-pipelines`` console script; returns the exit status."""
    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)  # its parse warnings are not ours to show
    args = build_parser().parse_args(argv)
    # Imported once the arguments are good: `--help` and usage errors never load DuckDB or the connectors.
    from aragora_pipelines.store import StoreDiskFull, StoreError, StoreLockTimeout
    from connectors.exceptions import ConnectorAuthError, ConnectorError, ConnectorValidationError

    try:
        return args.handler(args)
    except (StoreLockTimeout, StoreDiskFull, CommandFailed) as exc:
        return _fail(exc, EXIT_FAILED)
    except (UsageError, StoreError, TopicError, ConnectorAuthError, ConnectorValidationError) as exc:
        return _fail(exc, EXIT_USAGE)
    except ConnectorError as exc:
        return _fail(exc, EXIT_FAILED)
    except BrokenPipeError:  # e.g. `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _fail(exc: BaseException, status: int) -> int:
    from connectors.text import escape_controls  # a DuckDB error may quote stored text

    print(f"aragora-pipelines: error: {escape_controls(one_line(exc))}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
