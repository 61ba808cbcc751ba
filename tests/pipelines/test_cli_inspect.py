"""The command line tells what it does: ingest progress, integrations, papercuts, loads/history/status, fast start."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aragora_pipelines import main as make_run
from aragora_pipelines.cli import Progress
from aragora_pipelines.inspection import source_health
from aragora_pipelines.sources import SourceStatus, source_statuses
from aragora_pipelines.store import EvidenceStore
from connectors.progress import ProgressEvent
from tests.pipelines.conftest import run_cli as run

ERROR_PREFIX = "aragora-pipelines: error: "
SUMMARY = re.compile(r"\((?P<total>[\d.]+)s in all, (?P<write>[\d.]+)s writing\)")


def imported_after(code: str) -> set[str]:
    """The heavy top-level modules a fresh interpreter holds after running ``code`` with the CLI imported."""
    probe = ("import sys\nfrom aragora_pipelines.cli import main\n" + code +
             "\nprint('heavy:', *sorted({m.split('.')[0] for m in sys.modules} & "
             "{'dagster', 'duckdb', 'pyarrow', 'sqlglot', 'pandas'}))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(done.stdout.splitlines()[-1].split()[1:])


# --- fast start ----------------------------------------------------------------------------------
def test_help_loads_no_dagster_duckdb_pyarrow_sqlglot_or_pandas() -> None:
    assert imported_after("try:\n    main(['--help'])\nexcept SystemExit:\n    pass") == set()


def test_sources_does_not_build_the_dagster_code_location() -> None:
    assert "dagster" not in imported_after("import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):"
                                           "\n    main(['sources'])")


# --- progress --------------------------------------------------------------------------------------
def test_ingest_shows_pages_and_retries_as_plain_lines_and_times_the_whole_run(
        capsys: pytest.CaptureFixture[str], make_sim: Callable[..., Any], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    sim = make_sim(records=120, fail_rate=0.5, seed=3)
    monkeypatch.setenv("ARAGORA_HACKERNEWS_BASE_URL", sim.hn)
    status, out, err = run(capsys, "--db", str(tmp_path / "p.duckdb"), "ingest", "hackernews", "--query", "rust",
                           "--limit", "40")
    assert status == 0, err
    faults = sim.stats()["faults"]["fail"]
    assert faults > 0  # the seed makes the simulator fail some requests
    assert err.count("  retry: GET /search attempt ") == faults
    assert re.search(r"^  page 1: GET /search \(HTTP 200\)$", err, re.MULTILINE)
    assert re.search(r"done: \d+ pages, 40 items, \d+ retries", err)
    timing = SUMMARY.search(out)
    assert timing and float(timing["total"]) > float(timing["write"]) + 0.5  # the retries' backoff is counted


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so Progress draws its live rich line."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_progress_is_a_live_line_with_retries_printed_above() -> None:
    stream = Terminal()
    with Progress("ingesting hackernews", stream=stream) as progress:
        progress.event(ProgressEvent("retry", "HackerNews", "GET /search", attempt=1, seconds=1.5, detail="HTTP 503"))
        progress.event(ProgressEvent("response", "HackerNews", "GET /search", status=200))
        progress.event(ProgressEvent("items", "HackerNews", count=20))
    text = stream.getvalue()
    assert "\x1b[" in text  # drawn by rich, not plain lines
    assert "retry: GET /search attempt 1 failed (HTTP 503); next attempt in 1.5s" in text
    assert "page 1:" not in text  # pages are counted on the live line, not printed one by one
    assert "ingesting hackernews ... done: 1 pages, 20 items, 1 retries, 0 waits" in text


def test_quiet_ingest_prints_only_the_summary(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = run(capsys, "--db", str(tmp_path / "q.duckdb"), "ingest", "local_docs", "--query", "retry",
                           "--quiet")
    assert status == 0
    assert err == "" and out.count("\n") == 1 and out.startswith("local_docs: ") and SUMMARY.search(out)


def test_ingest_reports_citations(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _ = run(capsys, "--db", str(tmp_path / "c.duckdb"), "ingest", "sql", "--query", "circuit breaker",
                         "--claim", "claim_cb", "-q")
    cited = EvidenceStore(tmp_path / "c.duckdb").query(
        "SELECT count(*) FROM claim_citations WHERE claim_id = 'claim_cb'")[0][0]
    assert status == 0 and cited > 0 and f"; {cited} items cited for claim 'claim_cb'" in out


# --- integrations and papercuts ------------------------------------------------------------------
def test_ingest_an_integration_object_type(capsys: pytest.CaptureFixture[str], apisim: Any,
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_cli")
    monkeypatch.setenv("ARAGORA_STRIPE_BASE_URL", apisim.stripe)
    db = tmp_path / "s.duckdb"
    status, out, err = run(capsys, "--db", str(db), "ingest", "stripe", "--object", "customers", "--limit", "25")
    assert status == 0, err
    assert out.startswith("stripe_customers: 25 fetched, 25 new")
    assert re.search(r"^  page 1: list customers \(HTTP 200\)$", err, re.MULTILINE)
    assert "sk_test_cli" not in out + err
    store = EvidenceStore(db)
    assert store.query("SELECT count(*) FROM stripe_customers")[0][0] == 25
    assert store.query("SELECT asset_key FROM loads") == [("stripe_customers",)]
    status, out, _ = run(capsys, "--db", str(db), "status")
    stripe = next(line for line in out.splitlines() if line.startswith("stripe "))
    assert status == 0 and stripe.split()[2] == "yes" and stripe.split()[4:7] == ["1", "25", "fresh"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["ingest", "hackernwes", "--query", "q"], "unknown source 'hackernwes' (did you mean 'hackernews'?)"),
    (["ingest", "strip", "--object", "charges"], "did you mean 'stripe'?"),
    (["ingest", "stripe"], "stripe: give --object TYPE; one of customers, charges"),
    (["ingest", "stripe", "--object", "chargez"], "unknown object type 'chargez'"),
    (["ingest", "stripe", "--object", "charges", "--query", "x"], "takes --object TYPE, not --query"),
    (["ingest", "local_docs"], "the query is empty"),
    (["ingest", "local_docs", "--query", "  "], "the query is empty"),
    (["ingest", "local_docs", "--object", "charges", "--query", "x"], "--object is for integrations"),
    (["search", "  "], "empty"),
    (["search", "x", "--source", "stripe"], "stripe is an integration, not an evidence source"),
])
def test_ingest_and_search_mistakes_are_one_line_with_status_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                                argv: list[str], needle: str) -> None:
    db = tmp_path / "m.duckdb"
    status, _, err = run(capsys, "--db", str(db), *argv)
    assert status == 2 and err.startswith(ERROR_PREFIX) and err.count("\n") == 1 and needle in err, err
    assert not db.exists()


# --- inspection ------------------------------------------------------------------------------------
@pytest.fixture
def docs_db(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
            ) -> tuple[Path, Path]:
    """A store with one document ingested twice, its body changed in between; (database, document)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    doc = docs / "budget.md"
    monkeypatch.setenv("ARAGORA_LOCAL_DOCS_ROOT", str(docs))
    db = tmp_path / "h.duckdb"
    doc.write_text("# Retry budget\n\nRetries must stop.\nA budget of three attempts.\n")
    assert run(capsys, "--db", str(db), "ingest", "local_docs", "--query", "retry", "-q")[0] == 0
    doc.write_text("# Retry budget\n\nRetries must stop.\nA budget of five attempts.\n")
    assert run(capsys, "--db", str(db), "ingest", "local_docs", "--query", "retry", "-q")[0] == 0
    return db, doc


def test_history_shows_every_version_with_a_unified_diff(capsys: pytest.CaptureFixture[str],
                                                          docs_db: tuple[Path, Path]) -> None:
    db, _ = docs_db
    status, out, _ = run(capsys, "--db", str(db), "history", "local_docs:budget.md")
    assert status == 0
    assert out.startswith("local_docs:budget.md: 2 version(s)")
    assert re.search(r"^v1  .*LocalDocs  evidence_local_docs  run cli-", out, re.MULTILINE)
    lines = out.splitlines()
    assert "--- local_docs:budget.md v1" in lines and "+++ local_docs:budget.md v2" in lines
    assert "-A budget of three attempts." in lines and "+A budget of five attempts." in lines
    assert " Retries must stop." in lines


def test_history_of_an_unknown_item_suggests_ids(capsys: pytest.CaptureFixture[str],
                                                  docs_db: tuple[Path, Path]) -> None:
    status, _, err = run(capsys, "--db", str(docs_db[0]), "history", "budget")
    assert status == 2 and "no provenance for item 'budget'" in err and "did you mean 'local_docs:budget.md'?" in err


def test_loads_lists_the_latest_per_asset_and_partition_or_every_load(capsys: pytest.CaptureFixture[str],
                                                                      docs_db: tuple[Path, Path]) -> None:
    db, _ = docs_db
    status, out, _ = run(capsys, "--db", str(db), "loads")
    header, _, *rows = out.splitlines()
    assert status == 0 and header.split() == ["asset_key", "partition_key", "status", "fetched", "new", "changed",
                                              "unchanged", "seconds", "finished_at", "loads"]
    assert len(rows) == 1 and rows[0].split()[:6] == ["evidence_local_docs", "success", "1", "0", "1", "0"]
    assert rows[0].split()[-1] == "2"
    status, out, _ = run(capsys, "--db", str(db), "loads", "--every", "--asset", "local_docs")
    assert status == 0 and len(out.splitlines()) == 4
    status, out, err = run(capsys, "--db", str(db), "loads", "--asset", "stripe")
    assert status == 0 and "no rows: no loads of stripe" in err


def test_status_shows_configured_last_load_rows_and_freshness(capsys: pytest.CaptureFixture[str],
                                                              docs_db: tuple[Path, Path]) -> None:
    status, out, _ = run(capsys, "--db", str(docs_db[0]), "status")
    rows = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert status == 0 and set(rows) == {s.source for s in source_statuses()}
    local = rows["local_docs"].split()
    assert local[1:3] == ["evidence", "yes"] and local[4:7] == ["2", "1", "fresh"]
    assert rows["twitter"].split()[2] == "no" and "never loaded" in rows["twitter"]
    assert rows["twitter"].endswith("not configured: set TWITTER_BEARER_TOKEN")


def test_freshness_follows_the_daily_and_weekly_policies(docs_db: tuple[Path, Path]) -> None:
    statuses = [SourceStatus("local_docs", "evidence", False, True, True, ""),
                SourceStatus("hackernews", "evidence", True, True, True, "")]
    store = EvidenceStore(docs_db[0])
    with store.writer() as con:  # the hackernews load happened 30 hours ago
        con.execute("INSERT INTO loads (load_id, asset_key, status, finished_at) "
                    "VALUES ('x', 'evidence_hackernews', 'success', now() - INTERVAL 30 HOUR)")
    now = datetime.now(UTC)
    fresh = {h.source: h.freshness for h in source_health(store, statuses, now)}
    assert fresh["local_docs"] == "fresh" and fresh["hackernews"].startswith("late: 30h old (warn after 26h")
    later = {h.source: h.freshness for h in source_health(store, statuses, now + timedelta(days=9))}
    assert later["local_docs"].startswith("stale: 9d old") and later["hackernews"].startswith("stale")


# --- make run --------------------------------------------------------------------------------------
def test_make_run_prints_its_summary_without_dagster_debug_lines(capfd: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("ARAGORA_DUCKDB_PATH", str(tmp_path / "run.duckdb"))
    for name in ("DAGSTER_HOME", "ARAGORA_TOPICS_FILE"):
        monkeypatch.delenv(name, raising=False)
    assert make_run.main() == 0
    out, err = capfd.readouterr()
    assert "DEBUG" not in out + err and "STEP_" not in out + err
    assert "provenance chain: intact" in out
    assert "skipped twitter: not configured: set TWITTER_BEARER_TOKEN" in out
    assert "skipped stripe: not configured: set STRIPE_API_KEY" in out
