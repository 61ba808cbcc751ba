"""Analyst querying: the views, the offline BM25 index, search ranking, and the README's ten example queries."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from pathlib import Path

import duckdb
import duckdb_extension_fts
import pytest

from aragora_pipelines import main as make_run
from aragora_pipelines.cli import main as cli
from aragora_pipelines.search import search_evidence
from aragora_pipelines.store import (
    FTS_SCHEMA,
    VIEWS,
    EvidenceStore,
    LoadContext,
    StoreError,
    fts_extension_path,
    load_fts,
)
from connectors.base import Evidence
from connectors.provenance import SourceType

README = Path(__file__).resolve().parents[2] / "README.md"
CTX = LoadContext(connector="LocalDocs", connector_version="1", request="search", run_id="run-1",
                  asset_key="evidence_local_docs", partition_key="topic")


def readme_queries() -> list[str]:
    """The SQL statements between the README's queries markers."""
    text = README.read_text("utf-8")
    block = text.split("<!-- queries:start -->", 1)[1].split("<!-- queries:end -->", 1)[0]
    sql = block.split("```sql", 1)[1].rsplit("```", 1)[0]
    return [q.strip() for q in re.split(r";\s*$", sql, flags=re.MULTILINE) if q.strip()]


QUERIES = readme_queries()


def doc(name: str, title: str, content: str) -> Evidence:
    return Evidence(id=f"local_docs:{name}", source_type=SourceType.DOCUMENT, source_id=name, title=title,
                    content=content, created_at="2026-01-01T00:00:00Z", confidence=0.7, freshness=0.8,
                    authority=0.6)


@pytest.fixture(scope="module")
def make_run_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store built exactly as `make run` builds it: the embedded_default job per topic, then the catalog job."""
    path = tmp_path_factory.mktemp("make_run") / "aragora.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ARAGORA_DUCKDB_PATH", str(path))
        for name in ("DAGSTER_HOME", "ARAGORA_TOPICS_FILE", "ARAGORA_LOCAL_DOCS_ROOT", "ARAGORA_SQL_DSN"):
            env.delenv(name, raising=False)
        assert make_run.main() == 0
    return path


@pytest.fixture
def db(make_run_db: Path, tmp_path: Path) -> Path:
    """A private copy of the make-run store."""
    copy = tmp_path / "aragora.duckdb"
    shutil.copyfile(make_run_db, copy)
    return copy


# --- README ----------------------------------------------------------------------------------------
def test_readme_documents_ten_example_queries() -> None:
    assert len(QUERIES) == 10
    assert all(q.startswith(f"-- {i}. ") for i, q in enumerate(QUERIES, 1))


@pytest.mark.parametrize("sql", QUERIES, ids=[f"q{i}" for i in range(1, len(QUERIES) + 1)])
def test_readme_query_runs_as_shown_and_returns_rows(capsys: pytest.CaptureFixture[str], make_run_db: Path,
                                                     sql: str) -> None:
    status = cli(["--db", str(make_run_db), "query", sql, "--format", "json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    rows = json.loads(out.out)
    assert rows, f"no rows from:\n{sql}"
    if "AS broken" in sql:
        assert rows == [{"broken": 0}]


# --- views and index -------------------------------------------------------------------------------
def test_catalog_creates_the_views_and_the_fts_index(make_run_db: Path) -> None:
    store = EvidenceStore(make_run_db)
    views = {r[0] for r in store.query("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    assert set(VIEWS) <= views
    fts_tables = {r[0] for r in store.query("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?",
                                            [FTS_SCHEMA])}
    assert {"docs", "terms", "dict", "stats"} <= fts_tables
    indexed = store.query(f"SELECT count(*) FROM {FTS_SCHEMA}.docs")[0][0]
    assert indexed == store.counts()["evidence"] > 0


def test_source_summary_has_rows_newest_item_and_last_load(make_run_db: Path) -> None:
    rows = EvidenceStore(make_run_db).query(
        "SELECT source, rows, newest_item IS NOT NULL, last_load IS NOT NULL FROM source_summary ORDER BY source")
    assert [(r[0], r[2], r[3]) for r in rows] == [("local_docs", True, True), ("sql", True, True)]
    assert all(r[1] > 0 for r in rows)


def test_refresh_views_rebuilds_the_index_for_new_evidence(db: Path) -> None:
    store = EvidenceStore(db)
    store.load_evidence([doc("zeppelins.md", "Airships", "A zeppelin is a rigid airship.")], CTX)
    assert search_evidence(store, "zeppelin") == []  # the index is a snapshot until the catalog refreshes it
    store.refresh_views()
    assert [h.id for h in search_evidence(store, "zeppelin")] == ["local_docs:zeppelins.md"]


def test_refresh_views_on_an_empty_store_builds_an_empty_index(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "empty.duckdb")
    store.initialize()
    assert store.refresh_views() == list(VIEWS)
    assert search_evidence(store, "anything") == []


def test_search_before_any_index_says_what_to_run(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "no_index.duckdb")
    store.load_evidence([doc("a.md", "A", "alpha")], CTX)
    with pytest.raises(StoreError, match="no full-text index yet; materialize evidence_catalog"):
        search_evidence(store, "alpha")


# --- offline fts -----------------------------------------------------------------------------------
def test_fts_comes_from_the_pinned_wheel_matching_duckdb() -> None:
    assert importlib.metadata.version("duckdb-extension-fts") == duckdb.__version__
    path = fts_extension_path()
    assert path.is_relative_to(Path(duckdb_extension_fts.__file__).parent)
    assert path.parent.name == f"v{duckdb.__version__}" and path.name == "fts.duckdb_extension"


def test_load_fts_loads_the_file_without_installing_or_downloading(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute(f"SET extension_directory = '{tmp_path / 'extensions'}'")
    load_fts(con)
    loaded, installed = con.execute(
        "SELECT loaded, installed FROM duckdb_extensions() WHERE extension_name = 'fts'").fetchone()
    settings = con.execute("SELECT current_setting('autoinstall_known_extensions'), "
                           "current_setting('autoload_known_extensions')").fetchone()
    assert (loaded, installed, settings) == (True, False, (False, False))
    assert con.execute("SELECT stem('limiting', 'porter')").fetchone() == ("limit",)
    assert not (tmp_path / "extensions").exists()  # nothing installed anywhere


def test_store_connections_never_auto_install_extensions(db: Path) -> None:
    store = EvidenceStore(db)
    with store.reader() as con:
        assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    with store.writer() as con:
        assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)


# --- search ranking --------------------------------------------------------------------------------
@pytest.fixture
def ranking_store(tmp_path: Path) -> EvidenceStore:
    store = EvidenceStore(tmp_path / "ranking.duckdb")
    store.load_evidence([
        doc("deep-dive.md", "Rate limiting deep dive: rate limiting at scale",
            "Rate limiting, rate limiting and more rate limiting. " * 5),
        doc("rate-limiting.md", "Rate limiting", "A short note on limits."),
        doc("retries.md", "Retries", "Retry with backoff when the rate limit is hit."),
        doc("gardening.md", "Gardening", "Tomatoes need sun."),
    ], CTX)
    store.refresh_views()
    return store


def test_search_ranks_an_exact_title_match_first(ranking_store: EvidenceStore) -> None:
    with ranking_store.reader() as con:  # plain BM25 would put the long deep dive first
        load_fts(con)
        scores = dict(con.execute(f"SELECT id, {FTS_SCHEMA}.match_bm25(id, 'rate limiting') FROM evidence")
                      .fetchall())
    assert scores["local_docs:deep-dive.md"] > scores["local_docs:rate-limiting.md"]
    hits = search_evidence(ranking_store, "Rate Limiting")
    assert [h.id for h in hits] == ["local_docs:rate-limiting.md", "local_docs:deep-dive.md",
                                    "local_docs:retries.md"]
    assert [h.exact_title for h in hits] == [True, False, False]
    assert hits[1].score > hits[2].score


def test_search_highlights_every_form_of_the_query_words(ranking_store: EvidenceStore) -> None:
    hit = next(h for h in search_evidence(ranking_store, "the limiting") if h.id == "local_docs:rate-limiting.md")
    assert hit.snippet == "A short note on **limits**."  # 'limiting' and 'limits' share the stem; 'the' is a stop word


def test_search_filters_by_source_and_limits(ranking_store: EvidenceStore) -> None:
    assert len(search_evidence(ranking_store, "rate limiting", limit=2)) == 2
    assert search_evidence(ranking_store, "rate limiting", source="sql") == []
    hit = search_evidence(ranking_store, "tomatoes", source="local_docs")[0]
    expected = doc("gardening.md", "Gardening", "Tomatoes need sun.").reliability_score
    assert (hit.id, hit.source, hit.url, hit.reliability) == ("local_docs:gardening.md", "local_docs", None,
                                                              pytest.approx(expected))


def test_search_rejects_empty_text(ranking_store: EvidenceStore) -> None:
    with pytest.raises(ValueError, match="search text is empty"):
        search_evidence(ranking_store, "   ")
