"""SQLConnector on real DuckDB and SQLite files: read-only statements, bound parameters, mapping, scores."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from connectors.exceptions import ConnectorAuthError, ConnectorTimeoutError, ConnectorValidationError
from connectors.provenance import SourceType
from connectors.sql import SQLConnector, colon_params_to_dollar, parse_dsn

NOW = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
INJECTION = "O'Reilly'; DROP TABLE docs; --"

ROWS = [
    (1, "Token bucket", "Refills at a steady <b>rate</b>.", NOW - timedelta(days=1), "https://a.example/1", "ada", 7),
    (2, "Leaky bucket", "Drains at a constant rate.", NOW - timedelta(days=30), None, None, None),
    (3, None, "An untitled note about TOKENS.", NOW - timedelta(days=3), None, "bob", 1),
    (4, "Unrelated", "Nothing to see.", NOW - timedelta(days=2), None, None, None),
    (5, INJECTION, "A title full of SQL.", NOW - timedelta(days=400), None, None, None),
    (6, "Undated token", "No timestamp.", None, None, None, None),
]
SCHEMA = "id INTEGER, title VARCHAR, content VARCHAR, created_at TIMESTAMP, url VARCHAR, author VARCHAR, extra INTEGER"


def make_duckdb(path: Path) -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE TABLE docs ({SCHEMA})")
        con.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?)", ROWS)
        con.execute("CREATE TABLE x (v INTEGER)")
    return path


def make_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute(f"CREATE TABLE docs ({SCHEMA.replace('TIMESTAMP', 'TEXT')})")
        con.executemany(
            "INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*row[:3], row[3].isoformat() + "Z" if row[3] else None, *row[4:]) for row in ROWS],
        )
        con.execute("CREATE TABLE x (v INTEGER)")
    con.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One DuckDB and one SQLite file holding ROWS, built once and copied per test."""
    folder = tmp_path_factory.mktemp("templates")
    return {"duckdb": make_duckdb(folder / "evidence.duckdb"), "sqlite": make_sqlite(folder / "evidence.db")}


@pytest.fixture(params=["duckdb", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path, templates: dict[str, Path]) -> tuple[str, Path]:
    """(dsn, path) of a fresh copy of the database holding ROWS in table docs, for each engine."""
    template = templates[request.param]
    path = Path(shutil.copyfile(template, tmp_path / template.name))
    return f"{request.param}://{path}", path


@pytest.fixture
def make(database: tuple[str, Path]) -> Callable[..., SQLConnector]:
    def factory(**kwargs: object) -> SQLConnector:
        kwargs.setdefault("table", "docs")
        return SQLConnector(dsn=database[0], **kwargs)

    return factory


async def test_table_search_matches_title_or_content_case_insensitively_newest_first(
    make: Callable[..., SQLConnector],
) -> None:
    results = await make().search("TOKEN")
    assert [e.id for e in results] == ["sql:evidence:docs:1", "sql:evidence:docs:3", "sql:evidence:docs:6"]
    first = results[0]
    assert first.source_type is SourceType.DATABASE
    assert first.source_id == "evidence:docs:1"
    assert first.title == "Token bucket"
    assert first.content == "Refills at a steady rate."  # HTML turned into text
    assert first.url == "https://a.example/1" and first.author == "ada"
    assert first.created_at == (NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first.metadata["database"] == "evidence" and first.metadata["table"] == "docs"
    assert first.metadata["row_id"] == "1"
    assert results[1].title == "docs row 3"  # NULL title
    assert results[2].created_at is None and results[2].freshness == 0.5
    json.dumps([e.to_dict() for e in results])


async def test_limit_is_honoured_exactly_and_capped_by_max_rows(make: Callable[..., SQLConnector]) -> None:
    assert len(await make().search("", limit=4)) == 4
    assert len(await make().search("", limit=100)) == 6
    with pytest.raises(ConnectorValidationError, match="max_rows=3"):
        await make(max_rows=3).search("", limit=4)


async def test_a_query_with_quotes_and_sql_is_just_a_search_string(
    make: Callable[..., SQLConnector], database: tuple[str, Path]
) -> None:
    before = digest(database[1])
    results = await make().search(INJECTION)
    assert [e.metadata["row_id"] for e in results] == ["5"]
    assert results[0].title == INJECTION
    custom = await make().search(INJECTION, sql="SELECT * FROM docs WHERE title = :query")
    assert [e.metadata["row_id"] for e in custom] == ["5"]
    assert len(await make().search("")) == 6  # the table is still there
    assert digest(database[1]) == before


@pytest.mark.parametrize("placeholder", [":query", "$query"])
async def test_configured_sql_binds_the_query_in_both_spellings(
    make: Callable[..., SQLConnector], placeholder: str
) -> None:
    sql = f"SELECT id, title, content FROM docs WHERE content LIKE '%' || {placeholder} || '%' ORDER BY id"
    results = await make(sql=sql).search("rate")
    assert [e.id for e in results] == ["sql:evidence:query:1", "sql:evidence:query:2"]
    assert results[0].metadata["table"] == "query"


async def test_search_sql_and_params_override_the_configuration(make: Callable[..., SQLConnector]) -> None:
    connector = make(sql="SELECT * FROM docs WHERE id = 4")
    results = await connector.search(
        "ignored",
        sql="SELECT * FROM docs WHERE author = :who OR extra >= :least ORDER BY id LIMIT :limit",
        params={"who": "bob", "least": 7},
        limit=5,
    )
    assert [e.metadata["row_id"] for e in results] == ["1", "3"]
    assert results[0].metadata["columns"] == {"extra": 7}
    with pytest.raises(ConnectorValidationError, match="params"):
        await connector.search("x", params={"bad name": 1})


async def test_a_missing_parameter_is_a_validation_error(make: Callable[..., SQLConnector]) -> None:
    with pytest.raises(ConnectorValidationError):
        await make().search("x", sql="SELECT * FROM docs WHERE author = :nobody")


REFUSED = [
    "ATTACH 'other.db' AS other",
    "COPY docs TO 'out.csv'",
    "PRAGMA table_info(docs)",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET threads = 1",
    "INSERT INTO x VALUES (1)",
    "UPDATE x SET v = 2",
    "DELETE FROM x",
    "CREATE TABLE y (v INTEGER)",
    "CREATE TABLE y AS SELECT 1",
    "DROP TABLE x",
    "ALTER TABLE x ADD COLUMN w INTEGER",
    "VACUUM",
    "CHECKPOINT",
    "DETACH other",
    "SELECT 1; DROP TABLE x",
    "SELECT 1 /* harmless */; DROP TABLE x",
    "SELECT 1 -- comment\n; DROP TABLE x",
    "WITH t AS (INSERT INTO x VALUES (1) RETURNING *) SELECT * FROM t",
    "",
    "   ;  ",
]


async def test_every_non_select_statement_is_refused_and_the_file_is_unchanged(
    make: Callable[..., SQLConnector], database: tuple[str, Path]
) -> None:
    before = digest(database[1])
    connector = make()
    for statement in REFUSED:
        with pytest.raises(ConnectorValidationError) as info:
            await connector.search("x", sql=statement)
        assert info.value.connector == "SQL", statement
    assert digest(database[1]) == before
    assert len(await connector.search("")) == 6


async def test_statements_are_refused_in_the_constructor_configuration_too(make: Callable[..., SQLConnector]) -> None:
    with pytest.raises(ConnectorValidationError, match="exactly one statement"):
        await make(sql="SELECT 1; DROP TABLE x").search("x")


async def test_duckdb_refuses_file_access_even_inside_a_select(tmp_path: Path) -> None:
    path = make_duckdb(tmp_path / "evidence.duckdb")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    connector = SQLConnector(dsn=str(path), table="docs")
    with pytest.raises(ConnectorValidationError, match="refused the statement"):
        await connector.search("x", sql=f"SELECT content AS id FROM read_text('{secret}')")


async def test_sqlite_refuses_extension_loading_inside_a_select(tmp_path: Path) -> None:
    path = make_sqlite(tmp_path / "evidence.sqlite")
    connector = SQLConnector(dsn=str(path), table="docs")
    with pytest.raises(ConnectorValidationError, match="refused the statement"):
        await connector.search("x", sql="SELECT load_extension('/tmp/evil') AS id")


async def test_fetch_reads_one_row_by_id(make: Callable[..., SQLConnector]) -> None:
    connector = make()
    row = await connector.fetch("sql:evidence:docs:2")
    assert row is not None and row.title == "Leaky bucket" and row.url is None and row.author is None
    assert (await connector.fetch("evidence:docs:2")) is row  # cached, bare id accepted
    assert await connector.fetch("sql:evidence:docs:999") is None
    found = await connector.search("leaky")
    assert found[0].id == row.id and found[0].content_hash == row.content_hash


async def test_fetch_refuses_ids_of_another_table_or_database(make: Callable[..., SQLConnector]) -> None:
    connector = make()
    for wrong in ("sql:other:docs:1", "sql:evidence:query:1", "sql:evidence:x:1", "sql:1", "sql:evidence:docs:"):
        with pytest.raises(ConnectorValidationError):
            await connector.fetch(wrong)
    with pytest.raises(ConnectorValidationError, match="table="):
        await make(table=None, sql="SELECT * FROM docs").fetch("sql:evidence:docs:1")


async def test_column_mapping_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "mapped.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE articles (doc_id VARCHAR, headline VARCHAR, body VARCHAR, published DATE)")
        con.execute("INSERT INTO articles VALUES ('a-1', 'Bucket news', NULL, DATE '2024-05-01')")
        con.execute("INSERT INTO articles VALUES (NULL, 'Bucket orphan', 'no id', NULL)")
    connector = SQLConnector(
        dsn=f"duckdb://{path}",
        table="articles",
        columns={"id": "doc_id", "title": "headline", "content": "body", "created_at": "published"},
    )
    results = await connector.search("bucket")
    assert [e.title for e in results] == ["Bucket news", "Bucket orphan"]
    news, orphan = results
    assert news.id == "sql:mapped:articles:a-1"
    assert news.content == "" and news.url is None and news.author is None
    assert news.created_at == "2024-05-01T00:00:00Z"
    assert len(orphan.metadata["row_id"]) == 16  # a digest of the row stands in for a NULL id
    assert (await connector.search("bucket"))[1].id == orphan.id
    fetched = await connector.fetch("sql:mapped:articles:a-1")
    assert fetched is not None and fetched.title == "Bucket news"


async def test_a_table_without_the_id_column_is_explained(make: Callable[..., SQLConnector]) -> None:
    with pytest.raises(ConnectorValidationError, match="no column 'ident'"):
        await make(columns={"id": "ident"}).search("x")


async def test_since_and_until_keep_rows_created_in_the_window(make: Callable[..., SQLConnector]) -> None:
    now = datetime.now(UTC)
    connector = make()
    recent = await connector.search("", since=now - timedelta(days=5))
    assert [e.metadata["row_id"] for e in recent] == ["1", "4", "3"]
    window = await connector.search("", since=now - timedelta(days=60), until=now - timedelta(days=2, hours=12))
    assert [e.metadata["row_id"] for e in window] == ["3", "2"]
    assert len(await connector.search("", since=now - timedelta(days=5), limit=2)) == 2
    custom = await connector.search("", sql="SELECT * FROM docs ORDER BY id", until=now - timedelta(days=100))
    assert [e.metadata["row_id"] for e in custom] == ["5"]


async def test_scores_come_from_knobs_and_created_at(make: Callable[..., SQLConnector]) -> None:
    results = {e.metadata["row_id"]: e for e in await make().search("")}
    assert results["1"].authority == 0.7 and results["1"].confidence == 0.8
    assert results["1"].freshness > results["4"].freshness > results["2"].freshness > results["5"].freshness
    assert results["5"].freshness == pytest.approx(0.5 ** (400 / 365), rel=0.01)
    tuned = (await make(authority=0.2, confidence=0.3, half_life_days=30).search("leaky"))[0]
    assert (tuned.authority, tuned.confidence) == (0.2, 0.3)
    assert tuned.freshness == pytest.approx(0.5, rel=0.01)


async def test_not_configured_raises_auth_error_naming_the_env_var() -> None:
    connector = SQLConnector(table="docs")
    assert not connector.is_configured
    with pytest.raises(ConnectorAuthError, match="ARAGORA_SQL_DSN"):
        await connector.search("x")
    with pytest.raises(ConnectorAuthError, match="ARAGORA_SQL_DSN"):
        await connector.fetch("sql:evidence:docs:1")


async def test_the_dsn_is_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_sqlite(tmp_path / "evidence.sqlite")
    monkeypatch.setenv("ARAGORA_SQL_DSN", str(path))
    connector = SQLConnector(table="docs")
    assert connector.is_configured and connector.is_available
    assert [e.metadata["row_id"] for e in await connector.search("leaky")] == ["2"]


async def test_a_bare_db_path_is_opened_by_the_engine_its_header_names(tmp_path: Path) -> None:
    duck = make_duckdb(tmp_path / "duck.db")
    lite = make_sqlite(tmp_path / "lite.db")
    assert parse_dsn(str(duck)).engine == "duckdb"
    assert parse_dsn(str(lite)).engine == "sqlite"
    for path in (duck, lite):
        results = await SQLConnector(dsn=str(path), table="docs").search("leaky")
        assert results[0].id == f"sql:{path.stem}:docs:2"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://user@host/db", "not supported"),
        ("sqlite://relative.db", "absolute path"),
        ("/tmp/data.csv", "bare DSN"),
        ("/nonexistent/evidence.duckdb", "does not exist"),
    ],
)
async def test_bad_dsns_are_explained(dsn: str, message: str) -> None:
    with pytest.raises(ConnectorValidationError, match=message):
        await SQLConnector(dsn=dsn, table="docs").search("x")


def test_identifiers_and_knobs_are_validated(tmp_path: Path) -> None:
    dsn = str(tmp_path / "a.duckdb")
    with pytest.raises(ConnectorValidationError, match="table"):
        SQLConnector(dsn=dsn, table="docs; DROP TABLE x")
    with pytest.raises(ConnectorValidationError, match="column for 'title'"):
        SQLConnector(dsn=dsn, table="docs", columns={"title": 'a" OR 1=1 --'})
    with pytest.raises(ConnectorValidationError, match="column for 'url'"):
        SQLConnector(dsn=dsn, table="docs", columns={"url": "other.url"})
    with pytest.raises(ConnectorValidationError, match="unknown keys"):
        SQLConnector(dsn=dsn, table="docs", columns={"body": "content"})
    with pytest.raises(ConnectorValidationError, match="authority"):
        SQLConnector(dsn=dsn, table="docs", authority=2)
    with pytest.raises(ConnectorValidationError, match="max_rows"):
        SQLConnector(dsn=dsn, table="docs", max_rows=0)
    assert SQLConnector(dsn=dsn, table="main.docs").table == "main.docs"


async def test_neither_table_nor_sql_is_explained(database: tuple[str, Path]) -> None:
    with pytest.raises(ConnectorValidationError, match="table= or sql="):
        await SQLConnector(dsn=database[0]).search("x")


def test_colon_parameters_become_dollar_parameters_outside_strings_and_casts() -> None:
    sql = "SELECT ':keep' AS s, 1::INT AS n FROM t WHERE a = :query AND b=:limit -- :note\n"
    assert colon_params_to_dollar(sql) == (
        "SELECT ':keep' AS s, 1::INT AS n FROM t WHERE a = $query AND b=$limit -- :note\n"
    )


# --- hardening (issue 12): a runaway statement, a database that redefines built-ins --------------------
RUNAWAY = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 100000000000) "
           "SELECT max(n) AS id FROM r")


async def test_a_runaway_statement_is_stopped_after_statement_timeout(make: Callable[..., SQLConnector]) -> None:
    # Before: nothing bounded a statement; this CTE would count to 10^11 and hold the ingest for hours.
    with pytest.raises(ConnectorTimeoutError, match=r"statement_timeout=1s"):
        await make(statement_timeout=1).search("x", limit=5, sql=RUNAWAY)


def test_statement_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConnectorValidationError, match="statement_timeout"):
        SQLConnector(dsn=str(make_duckdb(tmp_path / "t.duckdb")), table="docs", statement_timeout=0)


@pytest.mark.parametrize("macro", ["instr(a, b) AS 1", "lower(a) AS 'token'", "INSTR(haystack, needle) AS 1"])
async def test_a_duckdb_file_whose_macros_shadow_built_ins_is_refused(tmp_path: Path, macro: str) -> None:
    # Before: `instr` returning 1 made every row match every table search ("Nothing to see." for "zebra").
    path = make_duckdb(tmp_path / "shadow.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute(f"CREATE MACRO {macro}")
    before = digest(path)
    connector = SQLConnector(dsn=f"duckdb://{path}", table="docs")
    with pytest.raises(ConnectorValidationError, match=r"named like DuckDB built-ins \((instr|lower|INSTR)\)"):
        await connector.search("zebra", limit=10)
    with pytest.raises(ConnectorValidationError, match="built-ins"):
        await connector.fetch("sql:shadow:docs:1")
    assert digest(path) == before


async def test_a_macro_that_shadows_the_catalog_function_cannot_hide_the_others(tmp_path: Path) -> None:
    path = make_duckdb(tmp_path / "shadow.duckdb")
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE MACRO duckdb_functions() AS TABLE SELECT 'x' AS function_name, true AS internal")
        con.execute("CREATE MACRO lower(a) AS a")
    with pytest.raises(ConnectorValidationError, match=r"built-ins \(duckdb_functions, lower\)"):
        await SQLConnector(dsn=f"duckdb://{path}", table="docs").search("zebra", limit=10)


async def test_macros_with_their_own_names_and_sqlite_views_change_nothing(tmp_path: Path) -> None:
    duck = make_duckdb(tmp_path / "own.duckdb")
    with duckdb.connect(str(duck)) as con:
        con.execute("CREATE MACRO my_score(a) AS a * 2")
    lite = make_sqlite(tmp_path / "views.db")
    with sqlite3.connect(lite) as con:  # SQLite files hold no functions; views named like them shadow nothing
        con.execute("CREATE VIEW instr AS SELECT 1 AS id")
        con.execute('CREATE VIEW "lower" AS SELECT * FROM docs')
    con.close()
    for dsn in (f"duckdb://{duck}", f"sqlite://{lite}"):
        found = await SQLConnector(dsn=dsn, table="docs").search("zebra", limit=10)
        assert found == []
        assert [e.metadata["row_id"] for e in await SQLConnector(dsn=dsn, table="docs").search("token", limit=10)]
