"""The `aragora-pipelines` command: every command on a store built here, its messages and exit statuses."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterInstance, instance_for_test, materialize

from aragora_pipelines.definitions import RESOURCES, evidence_assets
from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.resources import DuckDBStoreResource, TopicsResource
from aragora_pipelines.store import EvidenceStore
from aragora_pipelines.topics import load_topics
from connectors.registry import EVIDENCE_CONNECTORS, INTEGRATION_CONNECTORS
from tests.pipelines.conftest import run_cli as run

ERROR_PREFIX = "aragora-pipelines: error: "


def assert_one_line_error(err: str, *needles: str) -> None:
    assert err.startswith(ERROR_PREFIX) and err.count("\n") == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two offline sources, loaded for one topic through the assets' ingestion path, views and index built."""
    path = tmp_path_factory.mktemp("built") / "evidence.duckdb"
    store = EvidenceStore(path, lock_timeout=30)
    for source in ("local_docs", "sql"):
        ingest_evidence(RESOURCES[source].build(), store, query="circuit breaker", limit=20, run_id="run-1",
                        asset_key=f"evidence_{source}", partition_key="circuit-breakers", claim_id="claim_breakers")
    store.refresh_views()
    return path


@pytest.fixture
def db(built_store: Path, tmp_path: Path) -> Path:
    """A private copy of the built store (tests may tamper with it)."""
    copy = tmp_path / "evidence.duckdb"
    shutil.copyfile(built_store, copy)
    return copy


# --- help ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["query"], ["search"], ["verify"], ["sources"], ["ingest"], ["topics"],
                                     ["topics", "list"], ["topics", "add"], ["topics", "remove"]])
def test_every_command_has_help(capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    status, out, _ = run(capsys, *command, "--help")
    assert status == 0
    assert out.startswith("usage: aragora-pipelines") and "--db PATH" in out


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "query", "--help")
    assert "exit status:" in out and '"no rows"' in out and "not one read-only SELECT" in out


def test_console_script_exits_2_with_one_line_and_no_traceback(db: Path) -> None:
    script = Path(sys.executable).with_name("aragora-pipelines")
    proc = subprocess.run([str(script), "--db", str(db), "query", "SELECT * FROM no_such_table"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "no_such_table")
    assert proc.stdout == ""


# --- query ---------------------------------------------------------------------------------------
def test_query_prints_an_aligned_table(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT source, count(*) AS n FROM evidence "
                           "GROUP BY source ORDER BY source")
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["source", "n"] and set(lines[1]) == {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == ["local_docs", "sql"]


def test_db_may_follow_the_command(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "query", "SELECT count(*) AS n FROM evidence", "--db", str(db), "--format", "csv")
    assert status == 0 and out.splitlines()[0] == "n" and int(out.splitlines()[1]) > 0


def test_default_db_comes_from_the_environment(capsys: pytest.CaptureFixture[str], db: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_DUCKDB_PATH", str(db))
    status, out, _ = run(capsys, "query", "SELECT 42 AS answer", "--format", "csv")
    assert (status, out) == (0, "answer\n42\n")


def test_query_csv_and_json_carry_the_same_rows(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    sql = "SELECT id, title, reliability_score, created_at FROM evidence_current ORDER BY id"
    _, csv_out, _ = run(capsys, "--db", str(db), "query", sql, "--format", "csv")
    _, json_out, _ = run(capsys, "--db", str(db), "query", sql, "--format", "json")
    rows = json.loads(json_out)
    assert csv_out.splitlines()[0] == "id,title,reliability_score,created_at"
    assert len(csv_out.splitlines()) == len(rows) + 1 and len(rows) > 1
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert rows[0]["created_at"].endswith("+00:00")  # ISO timestamps, UTC


def test_query_writes_parquet_to_output(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT id, reliability_score FROM evidence",
                           "--format", "parquet", "--output", str(target))
    assert status == 0 and out == "" and f"to {target}" in err
    table = pq.read_table(target)
    assert table.column_names == ["id", "reliability_score"] and table.num_rows > 1


def test_parquet_needs_an_output_file(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, _, err = run(capsys, "--db", str(db), "query", "SELECT 1", "--format", "parquet")
    assert status == 2
    assert_one_line_error(err, "--output FILE")


def test_output_cannot_overwrite_the_database(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = digest(db)
    status, _, err = run(capsys, "--db", str(db), "query", "SELECT 1", "--format", "csv", "--output", str(db))
    assert status == 2
    assert_one_line_error(err, "is the evidence database")
    assert digest(db) == before


def test_empty_result_exits_0_with_a_no_rows_note(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", "SELECT id, title FROM evidence WHERE false",
                           "--format", "csv")
    assert (status, out, err) == (0, "id,title\n", "no rows\n")


@pytest.mark.parametrize(("sql", "needle"), [
    ("INSERT INTO loads (load_id) VALUES ('x')", "refused: INSERT"),
    ("UPDATE evidence SET title = 'x'", "refused: UPDATE"),
    ("DELETE FROM provenance", "refused: DELETE"),
    ("DROP VIEW evidence_current", "refused: DROP"),
    ("CREATE TABLE t AS SELECT 1", "refused: CREATE"),
    ("ATTACH 'other.duckdb' AS other", "refused: ATTACH"),
    ("COPY evidence TO 'dump.csv'", "refused: COPY"),
    ("INSTALL fts", "refused: INSTALL"),
    ("LOAD fts", "refused: LOAD"),
    ("PRAGMA version", "refused: PRAGMA"),
    ("PRAGMA create_fts_index('evidence', 'id', 'title')", "refused: PRAGMA"),
    ("SET threads = 1", "refused: SET"),
    ("CHECKPOINT", "refused: CHECKPOINT"),
    ("CALL pragma_version()", "refused: CALL"),
    ("EXPORT DATABASE 'dump'", "refused: DuckDB reads this as EXPORT"),
    ("SELECT 1; DELETE FROM evidence", "exactly one SELECT statement (found 2)"),
    ("SELECT 1; SELECT 2", "exactly one SELECT statement (found 2)"),
])
def test_write_and_non_select_statements_are_refused_and_the_file_is_unchanged(
        capsys: pytest.CaptureFixture[str], db: Path, sql: str, needle: str) -> None:
    before = digest(db)
    status, out, err = run(capsys, "--db", str(db), "query", sql)
    assert (status, out) == (2, "")
    assert_one_line_error(err, needle)
    assert digest(db) == before
    assert not (db.parent / "dump.csv").exists() and not (db.parent / "dump").exists()


@pytest.mark.parametrize(("sql", "needle"), [
    ("SELEC * FROM evidence", 'invalid SQL: Parser Error: syntax error at or near "SELEC"'),
    ("SELECT * FROM no_such_table", "Table with name no_such_table does not exist"),
    ("SELECT no_such_column FROM evidence", 'column "no_such_column" not found'),
    ("SELECT * FROM read_csv('/etc/hostname')", "file system operations are disabled"),
])
def test_bad_sql_is_a_one_line_error_with_status_2(capsys: pytest.CaptureFixture[str], db: Path, sql: str,
                                                   needle: str) -> None:
    status, out, err = run(capsys, "--db", str(db), "query", sql)
    assert (status, out) == (2, "")
    assert_one_line_error(err, needle)


def test_missing_database_file_is_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.duckdb"
    for argv in (["query", "SELECT 1"], ["search", "anything"], ["verify"]):
        status, out, err = run(capsys, "--db", str(missing), *argv)
        assert (status, out) == (2, "")
        assert_one_line_error(err, f"no evidence database at {missing}")
    assert not missing.exists()


def test_query_waits_while_a_materialization_holds_the_database(capsys: pytest.CaptureFixture[str],
                                                                 db: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom aragora_pipelines.store import EvidenceStore\n"
         "with EvidenceStore(sys.argv[1]).writer():\n    print('locked', flush=True)\n    time.sleep(1.5)\n",
         str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        status, out, err = run(capsys, "--db", str(db), "query", "SELECT count(*) AS n FROM evidence",
                               "--format", "csv")
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=30)
    assert (status, err) == (0, "") and int(out.splitlines()[1]) > 0
    assert waited > 0.5  # it waited for the writer instead of failing on DuckDB's lock


# --- search --------------------------------------------------------------------------------------
def test_search_prints_ranked_hits_with_source_reliability_url_and_highlight(
        capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "search", "circuit breaker", "--limit", "3")
    assert status == 0
    entries = [e for e in out.split("\n\n") if e.strip()]
    assert len(entries) == 3 and entries[0].startswith("1. ")
    first = entries[0].splitlines()
    assert "reliability 0." in first[1] and "bm25 " in first[1]
    assert first[2].startswith("   https://") or first[2] == "   (no url)"
    assert "**circuit**" in first[3].lower()  # the matched words are highlighted


def test_search_source_filter(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "search", "circuit breaker", "--source", "sql")
    sources = [line.split(" | ")[0].strip() for line in out.splitlines() if " | reliability " in line]
    assert status == 0 and sources and set(sources) == {"sql"}


def test_search_with_no_match_exits_0_with_a_note(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, err = run(capsys, "--db", str(db), "search", "xylophone")
    assert (status, out) == (0, "") and err.startswith("no rows")


def test_search_unknown_source_is_status_2(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, _, err = run(capsys, "--db", str(db), "search", "breaker", "--source", "myspace")
    assert status == 2
    assert_one_line_error(err, "unknown source 'myspace'", "local_docs")


# --- verify --------------------------------------------------------------------------------------
def test_verify_reports_an_intact_chain(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    status, out, _ = run(capsys, "--db", str(db), "verify")
    assert status == 0 and out.startswith("provenance chain intact:")


def test_verify_catches_a_tampered_content_row(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        victim = con.execute("SELECT id FROM evidence ORDER BY id LIMIT 1").fetchone()[0]
        con.execute("UPDATE evidence_versions SET content = content || ' (edited)' WHERE id = ?", [victim])
    status, out, _ = run(capsys, "--db", str(db), "verify")
    assert status == 1
    assert out.splitlines()[0] == f"provenance chain BROKEN: evidence {victim}: content changed after it was " \
                                  "stored (hash mismatch)"


def test_verify_catches_a_deleted_provenance_row(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        victim = con.execute("SELECT item_id FROM provenance ORDER BY seq LIMIT 1").fetchone()[0]
        con.execute("DELETE FROM provenance WHERE item_id = ?", [victim])
    status, out, _ = run(capsys, "--db", str(db), "verify")
    assert status == 1
    assert out.startswith("provenance chain BROKEN: ") and victim in out.splitlines()[0]


def test_verify_all_lists_every_problem(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        con.execute("UPDATE evidence_versions SET title = 'x'")
        rows = con.execute("SELECT count(*) FROM evidence").fetchone()[0]
    _, short, _ = run(capsys, "--db", str(db), "verify")
    status, full, _ = run(capsys, "--db", str(db), "verify", "--all")
    assert status == 1
    assert f"and {rows - 1} more problem(s)" in short and len(full.splitlines()) == rows


# --- topics --------------------------------------------------------------------------------------
@pytest.fixture
def topics_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # `topics remove` opens that instance (`make test` sets it)
    path = tmp_path / "topics.yaml"
    path.write_text("topics:\n  rate-limiting:\n    query: rate limiting\n    claim_id: claim_rl\n")
    return path


def test_topics_list(capsys: pytest.CaptureFixture[str], topics_yaml: Path) -> None:
    status, out, _ = run(capsys, "topics", "list", "--file", str(topics_yaml))
    assert status == 0
    assert out.splitlines()[0].split() == ["key", "query", "claim_id"]
    assert out.splitlines()[2].split() == ["rate-limiting", "rate", "limiting", "claim_rl"]


def test_topics_add_and_remove_edit_the_yaml(capsys: pytest.CaptureFixture[str], topics_yaml: Path) -> None:
    assert run(capsys, "topics", "add", "vector-dbs", "--query", "vector database", "--claim", "claim_v",
               "--file", str(topics_yaml))[0] == 0
    assert run(capsys, "topics", "add", "llm_evals", "--file", str(topics_yaml))[0] == 0
    topics = yaml.safe_load(topics_yaml.read_text())["topics"]
    assert topics["vector-dbs"] == {"query": "vector database", "claim_id": "claim_v"}
    assert topics["llm_evals"] == {"query": "llm evals"}
    assert run(capsys, "topics", "remove", "rate-limiting", "--file", str(topics_yaml))[0] == 0
    assert set(yaml.safe_load(topics_yaml.read_text())["topics"]) == {"vector-dbs", "llm_evals"}


def test_topics_follow_the_environment_file(capsys: pytest.CaptureFixture[str], topics_yaml: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARAGORA_TOPICS_FILE", str(topics_yaml))
    run(capsys, "topics", "add", "from-env")
    assert "from-env" in yaml.safe_load(topics_yaml.read_text())["topics"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["add", "Bad,Key"], "topic key 'Bad,Key' is not valid"),
    (["add", "rate-limiting"], "already exists"),
    (["remove", "nope"], "no topic 'nope'"),
])
def test_topic_mistakes_are_status_2_and_leave_the_file(capsys: pytest.CaptureFixture[str], topics_yaml: Path,
                                                        argv: list[str], needle: str) -> None:
    before = topics_yaml.read_text()
    status, _, err = run(capsys, "topics", *argv, "--file", str(topics_yaml))
    assert status == 2
    assert_one_line_error(err, needle)
    assert topics_yaml.read_text() == before


def test_topics_add_replace_changes_the_query(capsys: pytest.CaptureFixture[str], topics_yaml: Path) -> None:
    run(capsys, "topics", "add", "rate-limiting", "--query", "throttling", "--replace", "--file", str(topics_yaml))
    assert yaml.safe_load(topics_yaml.read_text())["topics"]["rate-limiting"] == {"query": "throttling"}


def test_topics_remove_without_dagster_home_leaves_the_partition_to_the_sensor(
        capsys: pytest.CaptureFixture[str], topics_yaml: Path) -> None:
    status, out, _ = run(capsys, "topics", "remove", "rate-limiting", "--file", str(topics_yaml))
    assert status == 0 and "DAGSTER_HOME is not set, so the topics sensor deletes its partition" in out
    assert "rate-limiting" not in topics_yaml.read_text()


@pytest.fixture
def dagster_home(topics_yaml: Path) -> Iterator[DagsterInstance]:
    """A Dagster instance on disk with DAGSTER_HOME pointing at it, holding one file topic and one UI-added one."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("topics", ["rate-limiting", "added-in-ui"])
        yield instance


def test_topics_remove_deletes_the_entry_and_its_partition(capsys: pytest.CaptureFixture[str], topics_yaml: Path,
                                                           dagster_home: DagsterInstance) -> None:
    status, out, _ = run(capsys, "topics", "remove", "rate-limiting", "--file", str(topics_yaml))
    assert status == 0 and out.startswith(f"removed topic 'rate-limiting' from {topics_yaml} and partition "
                                          "'rate-limiting' from the Dagster instance at")
    assert load_topics(topics_yaml) == {} and dagster_home.get_dynamic_partitions("topics") == ["added-in-ui"]
    assert run(capsys, "topics", "remove", "added-in-ui", "--file", str(topics_yaml))[0] == 0  # only a partition
    assert dagster_home.get_dynamic_partitions("topics") == []
    status, _, err = run(capsys, "topics", "remove", "added-in-ui", "--file", str(topics_yaml))
    assert status == 2
    assert_one_line_error(err, "no topic 'added-in-ui' in", "nor a partition 'added-in-ui'")


def test_topics_remove_refuses_a_materialized_topic_unless_forced(
        capsys: pytest.CaptureFixture[str], topics_yaml: Path, dagster_home: DagsterInstance, tmp_path: Path) -> None:
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(tmp_path / "evidence.duckdb")),
                 "topics": TopicsResource(file=str(topics_yaml))}
    assert materialize([evidence_assets["local_docs"], evidence_assets["sql"]], partition_key="rate-limiting",
                       resources=resources, instance=dagster_home).success
    capsys.readouterr()  # the run's own log lines
    before = topics_yaml.read_text()
    status, _, err = run(capsys, "topics", "remove", "rate-limiting", "--file", str(topics_yaml))
    assert status == 1
    assert_one_line_error(err, "topic 'rate-limiting' has 2 materialized partitions across 2 assets; pass --force "
                          "to remove it (stored evidence is kept)")
    assert topics_yaml.read_text() == before and dagster_home.has_dynamic_partition("topics", "rate-limiting")
    status, out, _ = run(capsys, "topics", "remove", "rate-limiting", "--force", "--file", str(topics_yaml))
    assert status == 0 and "(topic 'rate-limiting' has 2 materialized partitions across 2 assets; stored " \
        "evidence is kept)" in out
    assert load_topics(topics_yaml) == {} and not dagster_home.has_dynamic_partition("topics", "rate-limiting")
    assert EvidenceStore(tmp_path / "evidence.duckdb").counts()["evidence"] > 0


# --- sources -------------------------------------------------------------------------------------
def test_sources_lists_every_connector_with_what_to_set(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "sources")
    assert status == 0
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert set(rows) == set(EVIDENCE_CONNECTORS) | set(INTEGRATION_CONNECTORS)
    assert rows["local_docs"].split()[1:5] == ["evidence", "no", "yes", "yes"]
    assert rows["twitter"].split()[3:5] == ["yes", "no"] and "set TWITTER_BEARER_TOKEN" in rows["twitter"]
    assert "optional: GITHUB_TOKEN" in rows["github"]
    assert rows["stripe"].split()[4] == "no" and "STRIPE_API_KEY" in rows["stripe"]


# --- ingest --------------------------------------------------------------------------------------
def test_ingest_loads_through_the_asset_path_and_refreshes_the_index(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    db = tmp_path / "fresh.duckdb"
    status, out, err = run(capsys, "--db", str(db), "ingest", "local_docs", "--query", "rate limiting",
                           "--claim", "claim_rl", "--limit", "5")
    assert status == 0
    assert "ingesting local_docs for 'rate limiting' (limit 5)" in err
    assert out.startswith("local_docs: ") and " new" in out
    store = EvidenceStore(db)
    rows = store.query("SELECT DISTINCT asset_key, connector, run_id LIKE 'cli-%', request FROM provenance")
    assert len(rows) == 1 and rows[0][:3] == ("evidence_local_docs", "LocalDocs", True)
    assert "query='rate limiting' limit=5" in rows[0][3]
    assert store.query("SELECT count(*) FROM evidence_by_claim WHERE claim_id = 'claim_rl'")[0][0] > 0
    status, out, _ = run(capsys, "--db", str(db), "search", "rate limiting")
    assert status == 0 and "local_docs:rate-limiting-basics.md" in out


def test_ingest_again_adds_nothing(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    before = EvidenceStore(db).counts()
    status, out, _ = run(capsys, "--db", str(db), "ingest", "sql", "--query", "circuit breaker")
    assert status == 0 and " 0 new, 0 changed" in out
    assert EvidenceStore(db).counts()["provenance"] == before["provenance"]


def test_ingest_unknown_source_is_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--db", str(tmp_path / "x.duckdb"), "ingest", "myspace", "--query", "q")
    assert status == 2
    assert_one_line_error(err, "unknown source 'myspace'; known sources:", "hackernews")
    assert not (tmp_path / "x.duckdb").exists()


def test_ingest_unconfigured_source_names_the_variable(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "--db", str(tmp_path / "x.duckdb"), "ingest", "twitter", "--query", "q")
    assert status == 2
    assert_one_line_error(err, "TWITTER_BEARER_TOKEN")
    assert not (tmp_path / "x.duckdb").exists()


@pytest.mark.parametrize("argv", [
    ["--since", "yesterday"],
    ["--limit", "0"],
    ["--since", "2026-02-02", "--until", "2026-02-01"],
])
def test_ingest_bad_arguments_are_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           argv: list[str]) -> None:
    status, _, err = run(capsys, "--db", str(tmp_path / "x.duckdb"), "ingest", "hackernews", "--query", "q", *argv)
    assert status == 2 and "Traceback" not in err
    assert not (tmp_path / "x.duckdb").exists()


def test_ingest_failure_while_fetching_is_status_1_and_leaves_the_store(
        capsys: pytest.CaptureFixture[str], db: Path, httpx_mock: object) -> None:
    httpx_mock.add_response(status_code=404, text="gone")  # type: ignore[attr-defined]  # 404: never retried
    before = EvidenceStore(db).counts()
    status, _, err = run(capsys, "--db", str(db), "ingest", "hackernews", "--query", "rust",
                         "--since", "2026-01-01", "--until", "2026-01-02", "--limit", "3")
    assert status == 1
    assert err.splitlines()[-1].startswith(ERROR_PREFIX + "ingest failed, store unchanged:")
    assert EvidenceStore(db).counts() == before
