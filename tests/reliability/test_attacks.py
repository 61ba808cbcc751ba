"""Attacks the connector tests do not already cover, and the same attacks through the pipeline's own paths.

Already covered, not repeated here:
- Web SSRF guard: tests/connectors/test_web.py (literal 127.0.0.1, [::1], 10/8, 192.168/16, 169.254.169.254,
  decimal 2130706433, octal 0177.0.0.1, hex, IPv4-mapped IPv6, names resolving to loopback or to several
  addresses, a redirect from a public host to loopback or to a name resolving to the metadata address,
  schemes, userinfo).
- SQL connector: tests/connectors/test_sql.py (writes, ATTACH, COPY, PRAGMA, INSTALL/LOAD, SET, several and
  comment-smuggled statements, a DML CTE; the database file byte-identical; file access inside a SELECT).
- `aragora-pipelines query`: tests/pipelines/test_cli.py (INSERT/UPDATE/DELETE/DROP/CREATE/ATTACH/COPY/
  INSTALL/LOAD/PRAGMA/SET/CHECKPOINT/CALL/EXPORT and two statements refused, the file byte-identical).
- LocalDocs: tests/connectors/test_local_docs.py ('..', absolute paths, hidden files and folders, symlinks
  out of the root and to hidden files, in search and fetch).
Added here: the query path against comment-smuggled statements, statements hidden behind comments or case,
table functions that read files or run SQL text, and writes through a SELECT; web redirects to every
address form and names resolving to ::1 and 10/8; LocalDocs FIFOs, device links, symlink loops and more
'..' spellings, and LocalDocs ingested through the Dagster asset, where none of it may reach the store;
a folder of bad files (loops, deep JSON, a damaged PDF, undecodable names, a quadratic page) ingested through
the asset, the good ones stored and the bad ones counted; terminal control sequences from a source stripped.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
from pathlib import Path

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize
from pytest_httpx import HTTPXMock

from aragora_pipelines.cli import UsageError, run_query
from aragora_pipelines.definitions import RESOURCES, evidence_assets
from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.resources import DuckDBStoreResource, TopicsResource, evidence_resource_class
from aragora_pipelines.store import EvidenceStore, LoadContext
from connectors.base import Evidence
from connectors.exceptions import ConnectorValidationError
from connectors.hackernews import HackerNewsConnector
from connectors.local_docs import LocalDocsConnector
from connectors.provenance import SourceType
from connectors.web import WebConnector
from tests.connectors.test_local_docs import mutated_pdfs
from tests.connectors.test_web import PUBLIC_IP, dns  # noqa: F401  (dns: the DNS-table fixture)

FAST = {"rate_limit": False, "base_delay": 0.01, "max_delay": 0.05, "max_retries": 1}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- SQL through the query path ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def evidence_db(tmp_path_factory: pytest.TempPathFactory) -> EvidenceStore:
    store = EvidenceStore(tmp_path_factory.mktemp("attacks") / "evidence.duckdb", lock_timeout=30)
    store.load_evidence([Evidence(id="hackernews:1", source_type=SourceType.FORUM, source_id="1",
                                  content="token buckets", title="Rate limiting")], LoadContext(connector="HN"))
    store.refresh_views()
    return store


@pytest.mark.parametrize(("sql", "needle"), [
    ("SELECT 1 /* harmless */; DELETE FROM evidence", "exactly one SELECT statement (found 2)"),
    ("SELECT 1 -- harmless\n; DROP TABLE evidence", "exactly one SELECT statement (found 2)"),
    ("SELECT 1; -- x\nATTACH 'other.duckdb' AS other", "exactly one SELECT statement"),
    ("SELECT id FROM evidence; ATTACH 'other.duckdb' AS other", "exactly one SELECT statement (found 2)"),
    ("/* a comment first */ ATTACH 'other.duckdb' AS other", "refused: ATTACH"),
    ("  attach 'other.duckdb' as other", "refused: ATTACH"),
    ("/**/INSTALL httpfs", "refused: INSTALL"),
    ("LOAD '/tmp/evil.duckdb_extension'", "refused: LOAD"),
    ("COPY (SELECT * FROM evidence) TO 'dump.csv'", "refused: COPY"),
    ("RESET threads", "refused: RESET"),
    ("BEGIN TRANSACTION", "refused: BEGIN"),
    ("USE memory", "refused: USE"),
    ("WITH gone AS (DELETE FROM evidence RETURNING *) SELECT * FROM gone", "refused: the SELECT contains DELETE"),
    ("SELECT * FROM query('DELETE FROM evidence')", "Expected a single SELECT statement"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM read_json_auto('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM glob('/etc/*')", "file system operations are disabled"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM 'dump.csv'", "file system operations are disabled"),
])
def test_query_path_refuses_smuggled_writes_and_file_access(evidence_db: EvidenceStore, sql: str,
                                                            needle: str) -> None:
    before = digest(evidence_db.path)
    with pytest.raises(UsageError) as caught:
        run_query(evidence_db, sql)
    assert needle in str(caught.value)
    assert digest(evidence_db.path) == before
    assert not (evidence_db.path.parent / "other.duckdb").exists()
    assert not (evidence_db.path.parent / "dump.csv").exists()


def test_query_path_runs_a_select_whose_text_merely_looks_dangerous(evidence_db: EvidenceStore) -> None:
    before = digest(evidence_db.path)
    table = run_query(evidence_db, "SELECT ';DROP TABLE evidence; ATTACH ''x''' AS s, count(*) AS n FROM evidence")
    assert table.to_pylist() == [{"s": ";DROP TABLE evidence; ATTACH 'x'", "n": 1}]
    assert digest(evidence_db.path) == before


# --- Web SSRF: the forms test_web.py does not try -----------------------------------------------------
@pytest.mark.parametrize(("host", "address", "reason"), [
    ("six.example", "::1", "loopback"),
    ("corp.example", "10.20.30.40", "private"),
    ("meta.example", "169.254.169.254", "cloud metadata"),
])
async def test_names_resolving_outside_the_public_internet_are_refused(
        dns: dict[str, list[str]], host: str, address: str, reason: str) -> None:  # noqa: F811
    dns[host] = [address]
    with pytest.raises(ConnectorValidationError, match=reason):
        await WebConnector(**FAST).fetch(f"http://{host}/")


@pytest.mark.parametrize(("location", "reason"), [
    ("http://2130706433/admin", "loopback"),
    ("http://0x7f000001/admin", "loopback"),
    ("http://[::1]/admin", "loopback"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "cloud metadata"),
    ("http://10.0.0.7/internal", "private"),
    ("//127.0.0.1/admin", "loopback"),
])
async def test_a_redirect_from_a_public_host_to_any_internal_form_is_refused_before_it_is_followed(
        dns: dict[str, list[str]], httpx_mock: HTTPXMock, location: str, reason: str) -> None:  # noqa: F811
    httpx_mock.add_response(url="https://example.org/start", status_code=302, headers={"Location": location})
    with pytest.raises(ConnectorValidationError, match=reason):
        await WebConnector(**FAST).fetch("https://example.org/start")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["https://example.org/start"]


async def test_an_octal_redirect_target_is_never_followed(dns: dict[str, list[str]],  # noqa: F811
                                                          httpx_mock: HTTPXMock) -> None:
    # httpx rejects the octal form in a Location header; the connector refuses it first, as the guard does,
    # and does not retry: nothing reaches 127.0.0.1 and the start page is asked once.
    httpx_mock.add_response(url="https://example.org/start", status_code=302,
                            headers={"Location": "http://0177.0.0.1:8080/admin"})
    with pytest.raises(ConnectorValidationError, match="loopback"):
        await WebConnector(**FAST).fetch("https://example.org/start")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["https://example.org/start"]


async def test_a_redirect_chain_is_checked_at_every_hop(dns: dict[str, list[str]],  # noqa: F811
                                                        httpx_mock: HTTPXMock) -> None:
    dns["cdn.example"] = [PUBLIC_IP]
    dns["internal.example"] = ["192.168.0.10"]
    httpx_mock.add_response(url="https://example.org/a", status_code=301, headers={"Location": "https://cdn.example/b"})
    httpx_mock.add_response(url="https://cdn.example/b", status_code=302,
                            headers={"Location": "http://internal.example/secret"})
    with pytest.raises(ConnectorValidationError, match="private"):
        await WebConnector(**FAST).fetch("https://example.org/a")
    assert [str(r.url) for r in httpx_mock.get_requests()] == ["https://example.org/a", "https://cdn.example/b"]


# --- LocalDocs ------------------------------------------------------------------------------------
@pytest.fixture
def hostile_root(tmp_path: Path) -> Path:
    """A document root holding one real document and every trap: hidden, outside, device, FIFO, loops."""
    outside = tmp_path / "outside.md"
    outside.write_text("zebra outside the root")
    root = tmp_path / "docs"
    (root / ".hidden").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / "guide.md").write_text("# Zebra guide\n\nzebra crossings")
    (root / ".secret.md").write_text("zebra secret")
    (root / ".hidden" / "notes.md").write_text("zebra hidden folder")
    (root / "escape.md").symlink_to(outside)
    (root / "parent").symlink_to(tmp_path, target_is_directory=True)
    (root / "zero.md").symlink_to("/dev/zero")
    (root / "loop").symlink_to(root, target_is_directory=True)
    (root / "sub" / "up").symlink_to(root / "sub", target_is_directory=True)
    os.mkfifo(root / "pipe.md")
    return root


@pytest.mark.parametrize(("path", "reason"), [
    ("local_docs:../outside.md", "'..'"),
    ("./../outside.md", "'..'"),
    ("sub//../../outside.md", "'..'"),
    ("guide.md\x00.txt", "non-empty path"),
    ("\\..\\outside.md", "'/' separators"),
    ("parent/outside.md", "outside the root"),
    ("zero.md", "outside the root"),
    ("pipe.md", "not a regular file"),
])
async def test_local_docs_fetch_refuses_more_spellings_of_the_same_escapes(hostile_root: Path, path: str,
                                                                           reason: str) -> None:
    with pytest.raises(ConnectorValidationError, match=reason):
        await asyncio.wait_for(LocalDocsConnector(root=hostile_root).fetch(path), 10)


async def test_local_docs_search_skips_every_trap_without_hanging(hostile_root: Path) -> None:
    found = await asyncio.wait_for(LocalDocsConnector(root=hostile_root).search("zebra", limit=50), 10)
    assert [e.source_id for e in found] == ["guide.md"]


def materialize_local_docs(root: Path, tmp_path: Path
                           ) -> tuple[EvidenceStore, ExecuteInProcessResult, DagsterInstance]:
    """evidence_local_docs over ``root`` for the topic 'zebra', into a store under ``tmp_path``."""
    topics = tmp_path / "topics.yaml"
    topics.write_text("topics:\n  zebra:\n    query: zebra\n")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("topics", ["zebra"])
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)
    resources = {**RESOURCES, "store": DuckDBStoreResource(path=str(store.path)),
                 "topics": TopicsResource(file=str(topics)),
                 "local_docs": evidence_resource_class(LocalDocsConnector)(root=str(root))}
    result = materialize([evidence_assets["local_docs"]], partition_key="zebra", resources=resources,
                         instance=instance, raise_on_error=False)
    return store, result, instance


def test_the_local_docs_asset_stores_only_the_real_document(hostile_root: Path, tmp_path: Path) -> None:
    store, result, _ = materialize_local_docs(hostile_root, tmp_path)
    assert result.success
    rows = store.query("SELECT source_id, content FROM evidence")
    assert [r[0] for r in rows] == ["guide.md"]
    assert not any("outside" in r[1] or "secret" in r[1] or "hidden" in r[1] for r in rows)
    assert store.verify() == []


def test_the_local_docs_asset_stores_the_readable_files_and_counts_the_bad_ones(tmp_path: Path) -> None:
    # Before: any one of these files ended the materialization with a traceback and stored nothing.
    root = tmp_path / "docs"
    root.mkdir()
    (root / "guide.md").write_text("# Zebra guide\n\nzebra crossings")
    (root / "loop.md").symlink_to("loop.md")
    (root / "deep.json").write_text('{"zebra": ' * 1000 + "1" + "}" * 1000)
    (root / "damaged.pdf").write_bytes(mutated_pdfs(8)[7])  # pypdf raises AttributeError on this one
    (root / "slow.html").write_text("zebra" + "<title" * 200_000)  # was quadratic: minutes
    for raw in (b"notes\xff.md", b"notes\xfe.md"):
        (root / os.fsdecode(raw)).write_text(f"zebra notes {raw!r}")
    store, result, instance = materialize_local_docs(root, tmp_path)
    assert result.success
    meta = next(iter(result.get_asset_materialization_events())).materialization.metadata
    assert (meta["items_skipped"].value, meta["rows_new"].value) == (3, 4)
    assert [r[0] for r in store.query("SELECT id FROM evidence ORDER BY id")] == [
        "local_docs:guide.md", "local_docs:notes\\xfe.md", "local_docs:notes\\xff.md", "local_docs:slow.html"]
    warnings = [e.message for e in instance.all_logs(result.run_id) if e.level == logging.WARNING]
    for name in ("loop.md", "deep.json", "damaged.pdf"):
        assert any(f"skipped a file: {name}" in w or f"'{name}'" in w for w in warnings), name
    assert store.verify() == []


# --- stored text: terminal control sequences from a source -------------------------------------------
HN_SEARCH = re.compile(r"https://hn\.algolia\.com/api/v1/search\?.*")


def test_terminal_control_sequences_from_a_source_are_stripped_before_storing(tmp_path: Path,
                                                                             httpx_mock: HTTPXMock) -> None:
    # Before: HN's author and story_text reached the store raw: OSC 52 (clipboard), ESC[8m (hidden text),
    # CSI 2J (clear screen), C1 CSI, BEL and a carriage return that overwrites the line.
    hit = {"objectID": "42", "created_at_i": 1_767_225_600, "points": 3, "num_comments": 0, "_tags": ["story"],
           "title": "Rate limiting\x1b]52;c;cm0gLXJmIH4=\x07 explained",
           "author": "mallory\x1b[8m (trusted admin)",
           "story_text": "<p>Token buckets\x1b[2J refill\x9b31m steadily.\x07\rFAKE: all clear</p>"}
    httpx_mock.add_response(url=HN_SEARCH, json={"hits": [hit], "page": 0, "nbPages": 1, "nbHits": 1,
                                                 "hitsPerPage": 20})
    store = EvidenceStore(tmp_path / "evidence.duckdb", lock_timeout=30)
    ingest_evidence(HackerNewsConnector(**FAST), store, query="rate limiting", limit=20)
    [(title, author, content)] = store.query("SELECT title, author, content FROM evidence")
    assert title == "Rate limiting explained"
    assert author == "mallory (trusted admin)"
    assert content == "Token buckets refill steadily.\nFAKE: all clear"
    assert store.verify() == []
