"""`aragora-pipelines query` cannot hurt anything (issue 12): time, memory, file access, extensions, nesting,
terminal control sequences, and a load waiting behind a long query."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.exceptions import ConnectorError
from connectors.provenance import SourceType
from connectors.sql import SQLConnector
from tests.pipelines.conftest import run_cli as run

ERROR_PREFIX = "aragora-pipelines: error: "
RUNAWAY_CTE = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
CROSS_JOIN = "SELECT count(*) FROM range(1000000) a, range(1000000) b, range(1000000) c"
# What a terminal acts on: C0 (but tab and newline), DEL, C1.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Stored text that would write the clipboard (OSC 52), retitle the window (OSC 0), hide text (ESC[8m),
# start a CSI the 8-bit way (0x9b) and overwrite the line (CR).
HOSTILE = "Rate \x1b]52;c;cHduZWQ=\x07limiting \x1b]0;owned\x1b\\ \x1b[8mhidden\x1b[0m \x9b31m red\rspoof"


def assert_one_line_error(err: str, *needles: str) -> None:
    assert err.startswith(ERROR_PREFIX) and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A small evidence store with its views and search index; one item's title and content hold HOSTILE text.

    The hostile text is written straight into the table, as an older store or another writer could hold it.
    """
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)
    store.load_evidence([
        Evidence(id="hackernews:1", source_type=SourceType.FORUM, source_id="1", title="Rate limiting",
                 content="token buckets and rate limiting", created_at="2026-01-01T00:00:00Z"),
        Evidence(id="hackernews:2", source_type=SourceType.FORUM, source_id="2", title="Gardening",
                 content="tomatoes", created_at="2026-01-01T00:00:00Z"),
    ], LoadContext(connector="HN"))
    with duckdb.connect(str(store.path)) as con:
        con.execute("UPDATE evidence_versions SET title = ?, content = ?, url = ? WHERE id = 'hackernews:1'",
                    [HOSTILE, HOSTILE + " token buckets", "https://x.example/\x1b[2J"])
    store.refresh_views()
    return store.path


# --- time and memory ------------------------------------------------------------------------------
@pytest.mark.parametrize("sql", [RUNAWAY_CTE, CROSS_JOIN], ids=["recursive-cte", "cross-join"])
def test_a_runaway_query_ends_at_its_timeout_with_one_line(capsys: pytest.CaptureFixture[str], db: Path,
                                                           sql: str) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", sql, "--timeout", "1")
    assert (status, out) == (1, "")
    assert_one_line_error(err, "stopped after 1s", "--timeout")


def test_the_timeout_defaults_from_the_environment(db: Path) -> None:
    # The console script in its own process, so a query that never stops fails the test instead of hanging it.
    env = {**os.environ, "ARAGORA_QUERY_TIMEOUT": "0.5"}
    proc = subprocess.run([sys.executable, "-m", "aragora_pipelines.cli", "--db", str(db), "query", RUNAWAY_CTE],
                          env=env, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 1
    assert_one_line_error(proc.stderr, "stopped after 0.5s", "ARAGORA_QUERY_TIMEOUT")


def test_a_query_over_its_memory_limit_ends_with_one_line(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT list(range) FROM range(1000000000)",
                           "--memory-limit", "100MB", "--timeout", "300")
    assert (status, out) == (1, "")
    assert_one_line_error(err, "more memory than its limit of 100MB", "--memory-limit")


def test_a_query_runs_under_a_memory_limit_and_writes_no_temporary_files(capsys: pytest.CaptureFixture[str],
                                                                          db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "query", "SELECT current_setting('memory_limit') AS m, "
                         "current_setting('temp_directory') AS t", "--format", "json")
    assert status == 0
    assert json.loads(out) == [{"m": "1.8 GiB", "t": ""}]  # the 2GB default; DuckDB's own is 80% of the RAM


@pytest.mark.parametrize(("argv", "needle"), [
    (["--timeout", "0"], "--timeout: expected a positive number of seconds"),
    (["--timeout", "soon"], "--timeout: expected a positive number of seconds"),
    (["--memory-limit", "lots"], "--memory-limit: expected a size such as 2GB"),
])
def test_bad_limits_are_usage_errors(capsys: pytest.CaptureFixture[str], db: Path, argv: list[str],
                                     needle: str) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT 1", *argv)
    assert (status, out) == (2, "") and needle in err and "Traceback" not in err


def test_a_bad_yield_setting_is_one_line(capsys: pytest.CaptureFixture[str], db: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_QUERY_YIELD_SECONDS", "900")
    status, _, err = run(capsys, "--db", str(db), "query", "SELECT 1")
    assert status == 2
    assert_one_line_error(err, "ARAGORA_QUERY_YIELD_SECONDS must be seconds from 0 up to")


# --- a load waiting behind a long query ----------------------------------------------------------------
def _wait_until_read_locked(db: Path, query: subprocess.Popen[str]) -> None:
    """Return once the query process holds ``db`` (a writing open is refused); fail if it exits first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and query.poll() is None:
        try:
            duckdb.connect(str(db)).close()
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                return
            raise
        time.sleep(0.1)
    pytest.fail(f"the query never held the database (exit {query.poll()}): {query.communicate()[1]}")


def test_an_ingest_waiting_behind_a_long_query_succeeds_and_the_query_gives_way(db: Path) -> None:
    env = {**os.environ, "ARAGORA_QUERY_YIELD_SECONDS": "1", "ARAGORA_DUCKDB_PATH": str(db)}
    env.pop("ARAGORA_LOCAL_DOCS_ROOT", None)
    cli = [sys.executable, "-m", "aragora_pipelines.cli"]
    query = subprocess.Popen([*cli, "query", RUNAWAY_CTE, "--timeout", "600"], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_until_read_locked(db, query)
        # A real load with the CLI's own patience (300 s): it waits for the query, which must give way.
        ingest = subprocess.run([*cli, "ingest", "local_docs", "--query", "rate limiting", "--quiet"], env=env,
                                text=True, capture_output=True, timeout=240)
        _, query_err = query.communicate(timeout=60)
    finally:
        if query.poll() is None:
            query.kill()
            query.wait()
    assert ingest.returncode == 0, ingest.stderr
    assert "local_docs:" in ingest.stdout and "new" in ingest.stdout
    assert query.returncode == 1
    assert_one_line_error(query_err, "gave way", "to a load waiting to write", "run it again")
    assert EvidenceStore(db).rows_held("evidence", "local_docs") > 0


# --- file access and extensions ---------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["db", "wal", "other"])
def test_no_file_is_readable_not_even_the_store_s_own(capsys: pytest.CaptureFixture[str], db: Path,
                                                      target: str) -> None:
    other = db.parent / "notes.txt"
    other.write_text("private")
    path = {"db": db, "wal": Path(f"{db}.wal"), "other": other}[target]
    for function in ("read_blob", "read_text"):
        status, out, err = run(capsys, "--db", str(db), "query", f"SELECT content FROM {function}('{path}')")
        assert (status, out) == (2, "")
        assert_one_line_error(err, "refused: file system operations are disabled in `query`")


@pytest.mark.parametrize("command", [["query", "SELECT 1"], ["search", "anything"], ["verify"]])
def test_a_sqlite_file_as_db_fails_with_one_line_and_fetches_no_extension(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # where DuckDB would install a downloaded extension
    lite = tmp_path / "other.sqlite"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE t (x)")
    con.close()
    status, out, err = run(capsys, "--db", str(lite), *command)
    assert (status, out) == (2, "")
    assert_one_line_error(err, f"{lite} is not a DuckDB database", "--db")
    assert "download" not in err.lower()
    assert list(home.iterdir()) == []


async def test_the_sql_connector_opens_duckdb_without_fetching_an_extension(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    lite = tmp_path / "docs.sqlite"
    with sqlite3.connect(lite) as con:
        con.execute("CREATE TABLE docs (id, title, content)")
    con.close()
    connector = SQLConnector(dsn=f"duckdb://{lite}", table="docs", max_retries=0)
    with pytest.raises(ConnectorError) as caught:
        await connector.search("anything")
    assert "download" not in str(caught.value).lower()
    assert list(home.iterdir()) == []


# --- input errors -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [60, 5000])
def test_deeply_nested_parentheses_are_one_line(capsys: pytest.CaptureFixture[str], db: Path, depth: int) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT " + "(" * depth + "1" + ")" * depth)
    assert (status, out) == (2, "")
    assert_one_line_error(err, "nests too deeply")


def test_a_json_value_nested_too_deeply_for_json_output_is_one_line(capsys: pytest.CaptureFixture[str],
                                                                    db: Path) -> None:
    status, out, err = run(capsys, "--db", str(db), "query",
                           "SELECT (repeat('[', 100000) || repeat(']', 100000))::JSON AS j", "--format", "json")
    assert (status, out) == (2, "")
    assert_one_line_error(err, "nested too deeply to print as JSON")


# --- terminal control sequences ------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_table_and_csv_show_control_characters_escaped(capsys: pytest.CaptureFixture[str], db: Path,
                                                       fmt: str) -> None:
    status, out, _ = run(capsys, "--db", str(db), "query", "SELECT id, title, url, chr(7) AS \"bell\x1b[8m\" "
                         "FROM evidence WHERE id = 'hackernews:1'", "--format", fmt, "--max-width", "0")
    assert status == 0
    assert not CONTROL.search(out.replace("\n", "")), repr(out)
    assert r"\x1b]52;c;cHduZWQ=\x07" in out and r"\x9b31m" in out and r"\x1b[2J" in out and r"bell\x1b[8m" in out


def test_csv_keeps_newlines_and_tabs_inside_values(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "query", "SELECT 'a' || chr(10) || 'b' || chr(9) || 'c' || "
                         "chr(27) AS v", "--format", "csv")
    assert (status, out) == (0, 'v\n"a\nb\tc\\x1b"\n')


def test_json_escapes_every_control_character_and_keeps_the_value(capsys: pytest.CaptureFixture[str],
                                                                 db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "query", "SELECT title FROM evidence WHERE id = 'hackernews:1'",
                         "--format", "json")
    assert status == 0
    assert not CONTROL.search(out.replace("\n", ""))
    assert json.loads(out) == [{"title": HOSTILE}]


def test_search_shows_control_characters_escaped(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "search", "token buckets")
    assert status == 0 and "hackernews:1" in out
    assert not CONTROL.search(out.replace("\n", "")), repr(out)
    assert r"\x1b]0;owned\x1b\ " in out and r"\x1b[2J" in out and "**token**" in out


def test_an_error_quoting_stored_text_shows_it_escaped(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, _, err = run(capsys, "--db", str(db), "query",
                         "SELECT CAST(title AS INTEGER) FROM evidence WHERE id = 'hackernews:1'")
    assert status == 2
    assert_one_line_error(err, r"\x1b]52;c;")
    assert not CONTROL.search(err.rstrip("\n"))
