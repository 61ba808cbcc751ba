"""`aragora-pipelines`: query, search, verify and ingest evidence, and edit topics, from the command line.

Every command takes ``--db PATH`` (default ``ARAGORA_DUCKDB_PATH`` or ``data/aragora.duckdb``) and waits
while a materialization holds the database instead of failing. Errors are one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import re
import sys
import textwrap
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import expressions as exp

from aragora_pipelines.store import EvidenceStore, StoreError, StoreLockTimeout, load_fts
from aragora_pipelines.topics import (
    Topic,
    TopicError,
    load_topics,
    query_for_key,
    save_topics,
    topics_file,
    validate_key,
)
from connectors.exceptions import ConnectorAuthError, ConnectorError, ConnectorValidationError
from connectors.text import parse_datetime

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

EXIT_STATUS_HELP = """exit status:
  0  success; an empty result is a success, with "no rows" on stderr
  1  the command ran and found a problem: verify found a broken provenance link,
     a source failed while fetching (the store is unchanged), the database stayed locked
  2  bad input: usage error, unknown source or topic, missing database file, SQL that is
     not one read-only SELECT, a syntax error, an unknown table or column"""

# Statement roots `query` accepts (sqlglot's view); DuckDB's own parser must also call the statement a SELECT.
READ_ONLY_ROOTS = (exp.Query, exp.Values, exp.Describe, exp.Summarize, exp.Show)
# Nodes that must not occur anywhere inside an accepted statement.
WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter, exp.Command,
               exp.Copy, exp.Attach, exp.Detach, exp.Pragma, exp.Set, exp.Use, exp.Install, exp.Transaction,
               exp.Commit, exp.Rollback, exp.Into)
FORMATS = ("table", "csv", "json", "parquet")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="duckdb") if tree is not None]
    except sqlglot.errors.SqlglotError as exc:
        _check_duckdb_select(con, sql)  # DuckDB's own verdict first: its syntax error, or the statement kind
        raise UsageError(f"could not check that the statement is a plain SELECT ({one_line(exc)})") from None
    if len(trees) != 1:
        raise UsageError(f"give exactly one SELECT statement (found {len(trees)})")
    if not isinstance(trees[0], READ_ONLY_ROOTS):
        first_word = sqlglot.tokenize(sql, read="duckdb")[0].text.upper()
        raise UsageError(f"refused: {first_word} statement; `query` is read-only and runs one SELECT")
    nested = trees[0].find(*WRITE_NODES)
    if nested is not None:
        raise UsageError(f"refused: the SELECT contains {nested.key.upper()}; `query` is read-only")
    _check_duckdb_select(con, sql)
    return sql


def _check_duckdb_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """UsageError unless DuckDB's parser reads ``sql`` as exactly one SELECT."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise UsageError(f"invalid SQL: {one_line(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "no statement"
        raise UsageError(f"refused: DuckDB reads this as {kinds}; `query` is read-only and runs one SELECT")


def run_query(store: EvidenceStore, sql: str) -> pa.Table:
    """Run one checked SELECT on a read-only connection with file access off and settings locked."""
    with store.reader() as con:
        load_fts(con)  # so fts_main_evidence.match_bm25 works; from the local wheel, never the network
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        statement = read_only_statement(con, sql)
        try:
            return con.execute(statement).to_arrow_table()
        except duckdb.Error as exc:
            raise UsageError(one_line(exc)) from None


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
    text = " ".join(text.split())
    return text if width <= 0 or len(text) <= width else text[: width - 1] + "…"


def _rows(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows as tuples (column-wise, so duplicate column names survive)."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))


def render_table(table: pa.Table, width: int = 60) -> str:
    """An aligned text table (cells cut at ``width`` characters; 0 keeps them whole)."""
    names = table.column_names
    rows = [[_cell(value, width) for value in row] for row in _rows(table)]
    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t) for t in table.schema.types]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]

    def line(cells: list[str]) -> str:
        padded = (c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True))
        return "  ".join(padded).rstrip()

    return "\n".join([line(names), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]) + "\n"


def render_csv(table: pa.Table) -> str:
    """CSV with a header row; NULL is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.column_names)
    for row in _rows(table):
        writer.writerow(["" if v is None else v if isinstance(v, str | int | float) else
                         json.dumps(v, default=_plain) if isinstance(v, dict | list) else _plain(v)
                         for v in row])
    return out.getvalue()


def render_json(table: pa.Table) -> str:
    """A JSON array of row objects in column order (a repeated column name gets a ``_2``, ``_3`` suffix)."""
    names: list[str] = []
    for name in table.column_names:
        names.append(name if name not in names else f"{name}_{table.column_names[:len(names)].count(name) + 1}")
    rows = [dict(zip(names, row, strict=True)) for row in _rows(table)]
    return json.dumps(rows, default=_plain, ensure_ascii=False, indent=2) + "\n"


def _check_output(output: Path, db: Path) -> None:
    target = output.resolve()
    store_files = {db.resolve(), *(Path(str(db.resolve()) + s) for s in (".wal", ".lock", ".tmp"))}
    if target in store_files:
        raise UsageError(f"--output {output} is the evidence database; choose another file")
    if not target.parent.is_dir():
        raise UsageError(f"--output {output}: directory {target.parent} does not exist")


def cmd_query(args: argparse.Namespace) -> int:
    """Run one read-only SELECT and print or write the result."""
    db = _db_path(args)
    output = Path(args.output) if args.output else None
    if args.format == "parquet" and output is None:
        raise UsageError("parquet is binary: give --output FILE")
    if output is not None:
        _check_output(output, db)
    table = run_query(EvidenceStore(db), args.sql)
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

    if args.source is not None:
        _evidence_class(args.source)
    tty = sys.stdout.isatty()
    mark = (lambda w: f"\033[1;33m{w}\033[0m") if tty else (lambda w: f"**{w}**")
    try:
        hits = search_evidence(EvidenceStore(_db_path(args)), args.text, source=args.source, limit=args.limit,
                               mark=mark)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not hits:
        print(f"no rows: nothing matches {args.text!r}" + (f" in {args.source}" if args.source else ""),
              file=sys.stderr)
    for rank, hit in enumerate(hits, 1):
        score = f"bm25 {hit.score:.3f}" if hit.score is not None else "bm25 -"
        exact = "  (exact title)" if hit.exact_title else ""
        print(f"{rank}. {hit.title}{exact}\n   {hit.source} | reliability {hit.reliability:.3f} | {score} | "
              f"{hit.id}\n   {hit.url or '(no url)'}\n   {hit.snippet}\n")
    return EXIT_OK


# --- verify --------------------------------------------------------------------------------------
def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute the provenance chain and content hashes of the whole store."""
    store = EvidenceStore(_db_path(args))
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


# --- topics --------------------------------------------------------------------------------------
def _topics_path(args: argparse.Namespace) -> Path:
    return Path(args.file) if args.file else topics_file()


def cmd_topics_list(args: argparse.Namespace) -> int:
    """Print the topics the assets search for."""
    topics = load_topics(_topics_path(args))
    if not topics:
        print(f"no rows: no topics in {_topics_path(args)}", file=sys.stderr)
        return EXIT_OK
    table = pa.table({"key": [t.key for t in topics.values()], "query": [t.query for t in topics.values()],
                      "claim_id": [t.claim_id for t in topics.values()]})
    sys.stdout.write(render_table(table, 0))
    return EXIT_OK


def cmd_topics_add(args: argparse.Namespace) -> int:
    """Add (or with --replace, change) a topic."""
    path = _topics_path(args)
    topics = load_topics(path)
    key = validate_key(args.key)
    existed = key in topics
    if existed and not args.replace:
        raise UsageError(f"topic {key!r} already exists in {path}; use --replace to change it")
    topics[key] = Topic(key, args.query or query_for_key(key), args.claim)
    save_topics(topics, path)
    print(f"{'replaced' if existed else 'added'} topic {key!r} (query {topics[key].query!r}) in {path}; "
          "the topics sensor adds its partition within 30 s")
    return EXIT_OK


def cmd_topics_remove(args: argparse.Namespace) -> int:
    """Remove a topic from the file (its stored evidence and Dagster partition stay)."""
    path = _topics_path(args)
    topics = load_topics(path)
    if args.key not in topics:
        raise UsageError(f"no topic {args.key!r} in {path}; known: {', '.join(sorted(topics)) or 'none'}")
    del topics[args.key]
    save_topics(topics, path)
    print(f"removed topic {args.key!r} from {path}; its evidence stays in the store and its partition in Dagster")
    return EXIT_OK


# --- sources and ingest --------------------------------------------------------------------------
def _evidence_class(source: str) -> type:
    """The registered evidence connector class (ConnectorValidationError listing the names when unknown)."""
    from connectors.registry import get_connector_class

    return get_connector_class(source)


@dataclass(frozen=True)
class SourceStatus:
    """One row of ``sources``."""

    source: str
    kind: str
    time_axis: str
    available: str
    configured: str
    to_set: str


def _resources() -> dict[str, Any]:
    """The Dagster resources per connector, so the CLI builds connectors exactly as the assets do."""
    with warnings.catch_warnings():  # Dagster's import-time notices are not the CLI user's business
        warnings.simplefilter("ignore")
        from aragora_pipelines.definitions import RESOURCES
    return RESOURCES


def source_statuses() -> list[SourceStatus]:
    """Every connector, built the way the Dagster resources build it, with what is missing."""
    from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS

    resources = _resources()
    rows = []
    for source, cls in EVIDENCE_CONNECTORS.items():
        optional = [env for kw, env in cls.CREDENTIALS.items() if kw not in cls.REQUIRED_CREDENTIALS]
        try:
            connector = resources[source].build()
        except ConnectorError as exc:
            rows.append(SourceStatus(source, "evidence", _yes(cls.HAS_TIME_AXIS), "no", "no", one_line(exc)))
            continue
        missing = connector.missing_credentials()
        hint = (f"set {', '.join(missing)}" if missing else
                f"optional: {', '.join(optional)}" if optional else "")
        rows.append(SourceStatus(source, "evidence", _yes(cls.HAS_TIME_AXIS), _yes(connector.is_available),
                                 _yes(connector.is_configured), hint))
    for service in INTEGRATION_CONNECTORS:
        try:
            resources[service].build()
            rows.append(SourceStatus(service, "integration", "yes", "yes", "yes", ""))
        except ConnectorError as exc:
            rows.append(SourceStatus(service, "integration", "yes", "yes", "no", exc.message.split(";")[0]))
    return rows


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def cmd_sources(args: argparse.Namespace) -> int:
    """Print every connector with whether it is available and configured, and what to set if not."""
    rows = source_statuses()
    names = ["source", "kind", "time_axis", "available", "configured", "to_set"]
    table = pa.table({n: [getattr(r, n) for r in rows] for n in names})
    sys.stdout.write(render_table(table, 0))
    return EXIT_OK


class Progress:
    """Activity on stderr while a step runs: a spinner with elapsed seconds on a terminal, one line otherwise."""

    FRAMES = "|/-\\"

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = 0.0

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self.stream.isatty():
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        else:
            print(f"{self.label} ...", file=self.stream, flush=True)
        return self

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            elapsed = time.monotonic() - self._started
            self.stream.write(f"\r{self.FRAMES[frame % 4]} {self.label} ... {elapsed:.1f}s")
            self.stream.flush()
            frame += 1

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            outcome = "failed" if exc[0] else "done"
            self.stream.write(f"\r{self.label} ... {outcome} ({time.monotonic() - self._started:.1f}s)\n")
            self.stream.flush()


def _datetime_arg(value: str) -> datetime:
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


def cmd_ingest(args: argparse.Namespace) -> int:
    """Search one source and load the results through the assets' ingestion path, then refresh views and index."""
    cls = _evidence_class(args.source)
    if args.since and args.until and args.since >= args.until:
        raise UsageError(f"--since {args.since.isoformat()} is not before --until {args.until.isoformat()}")
    if (args.since or args.until) and not cls.HAS_TIME_AXIS:
        print(f"note: {args.source} has no time axis; --since/--until are ignored", file=sys.stderr)
    from aragora_pipelines.ingest import ingest_evidence
    from assets.evidence import EvidenceConfig

    connector = _resources()[args.source].build()
    connector.require_configured()
    store = EvidenceStore(_db_path(args))
    limit = args.limit or EvidenceConfig().limit
    try:
        with Progress(f"ingesting {args.source} for {args.query!r} (limit {limit})"):
            result = ingest_evidence(connector, store, query=args.query, limit=limit, since=args.since,
                                     until=args.until, run_id=f"cli-{uuid.uuid4().hex[:12]}",
                                     asset_key=f"evidence_{args.source}", claim_id=args.claim)
    except (ConnectorAuthError, ConnectorValidationError):
        raise
    except ConnectorError as exc:
        raise CommandFailed(f"ingest failed, store unchanged: {one_line(exc)}") from None
    with Progress("refreshing views and the full-text index"):
        store.refresh_views()
    print(f"{args.source}: {result.rows_fetched} fetched, {result.rows_new} new, {result.rows_changed} changed, "
          f"{result.rows_unchanged} unchanged; {result.provenance_records} provenance records "
          f"({result.duration_s:.2f}s) into {store.path}")
    if result.rows_fetched == 0:
        print("no rows: the source returned nothing for this query", file=sys.stderr)
    return EXIT_OK


# --- wiring --------------------------------------------------------------------------------------
def _db_path(args: argparse.Namespace) -> Path:
    if getattr(args, "db", None):
        return Path(args.db)
    from aragora_pipelines.resources import default_db_path

    return default_db_path()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per task, ``--db`` accepted before or after the command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS,
                        help="the evidence database (default: $ARAGORA_DUCKDB_PATH or data/aragora.duckdb)")
    parser = argparse.ArgumentParser(
        prog="aragora-pipelines", parents=[common], epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Query, search, verify and ingest Aragora evidence stored in DuckDB; edit the topics.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_text: str,
            parents: Sequence[argparse.ArgumentParser] = (common,)) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=list(parents), help=help_text, description=textwrap.fill(help_text),
                                  epilog=EXIT_STATUS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.set_defaults(handler=handler)
        return sub

    query = add("query", cmd_query, "Run one read-only SELECT (views, tables, fts_main_evidence.match_bm25). "
                "Writes, ATTACH, COPY, INSTALL/LOAD, PRAGMA, SET and several statements are refused; file "
                "access functions are disabled.")
    query.add_argument("sql", metavar="SQL", help="one SELECT statement")
    query.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    query.add_argument("--output", metavar="FILE", help="write the result to FILE (required for parquet)")
    query.add_argument("--max-width", type=int, default=60, metavar="N",
                       help="cut table cells at N characters; 0 keeps them whole (default: 60)")

    search = add("search", cmd_search, "Full-text search over evidence title and content, BM25-ranked, an "
                 "exact title match first, with a highlighted snippet, source, reliability and URL.")
    search.add_argument("text", metavar="TEXT", help="the words to look for")
    search.add_argument("--source", metavar="S", help="only evidence from this source (e.g. local_docs)")
    search.add_argument("--limit", type=_positive_int, default=10, metavar="N", help="at most N results (10)")

    verify = add("verify", cmd_verify, "Recompute the provenance hash chain and content hashes of the whole "
                 "store; print the first broken link and exit 1 if any.")
    verify.add_argument("--all", action="store_true", help="list every problem, not only the first")

    add("sources", cmd_sources, "List every connector: available, configured, and what to set if not.")

    ingest = add("ingest", cmd_ingest, "Search one evidence source and load the results with provenance "
                 "(the assets' code path, without a Dagster run), then refresh the views and search index.")
    ingest.add_argument("source", metavar="SOURCE", help="an evidence source, e.g. local_docs, sql, hackernews "
                        "(see `sources`)")
    ingest.add_argument("--query", required=True, metavar="Q", help="what to search the source for")
    ingest.add_argument("--since", type=_datetime_arg, metavar="D", help="start of the window (date or ISO "
                        "datetime, UTC), for sources with a time axis")
    ingest.add_argument("--until", type=_datetime_arg, metavar="D", help="end of the window (exclusive)")
    ingest.add_argument("--limit", type=_positive_int, metavar="N", help="at most N items (default: the evidence "
                        "assets' run-config limit)")
    ingest.add_argument("--claim", metavar="ID", help="cite every result for this claim id")

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
        ("remove", cmd_topics_remove, "Remove a topic from the file; its stored evidence stays."),
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``aragora-pipelines`` console script; returns the exit status."""
    logging.getLogger("sqlglot").setLevel(logging.CRITICAL)  # its parse warnings are not ours to show
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (StoreLockTimeout, CommandFailed) as exc:
        return _fail(exc, EXIT_FAILED)
    except (UsageError, StoreError, TopicError, ConnectorAuthError, ConnectorValidationError) as exc:
        return _fail(exc, EXIT_USAGE)
    except ConnectorError as exc:
        return _fail(exc, EXIT_FAILED)
    except BrokenPipeError:  # e.g. `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _fail(exc: BaseException, status: int) -> int:
    print(f"aragora-pipelines: error: {one_line(exc)}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
