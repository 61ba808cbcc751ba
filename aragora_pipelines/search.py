"""Full-text search over stored evidence: BM25 over title and content (DuckDB ``fts``), exact title first.

The index is built by :meth:`EvidenceStore.refresh_views` (the ``evidence_catalog`` asset and the CLI's
``ingest`` call it after loading) over a copy of the current evidence (``evidence_search``: DuckDB's fts indexes
neither a view nor a DuckLake table), so a search sees evidence as of the last refresh, on either backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from aragora_pipelines.store import FTS_SCHEMA, SEARCH_TABLE, EvidenceStore, StoreError, load_fts
from connectors.text import escape_controls, query_terms, snippet

# An exact (case-insensitive) title match ranks above every other hit, then BM25 score, then id for a stable order.
SEARCH_SQL = f"""
SELECT id, source, title, url, reliability_score, content, score, exact_title
FROM (SELECT id, source, title, url, reliability_score, content,
             {FTS_SCHEMA}.match_bm25(id, $text) AS score,
             lower(trim(coalesce(title, ''))) = lower(trim($text)) AS exact_title
      FROM {SEARCH_TABLE}) ranked
WHERE (score IS NOT NULL OR exact_title) AND ($source IS NULL OR source = $source)
ORDER BY exact_title DESC, score DESC NULLS LAST, id
LIMIT $limit"""
# Terminal control characters: C0 but tab and newline, DEL and C1 (ESC starts CSI/OSC sequences, 0x9b is a CSI).
@dataclass(frozen=True)
class SearchHit:
    """One ranked result: what it is, where it came from, how reliable, and where the query matched."""

    id: str
    source: str
    title: str
    url: str | None
    reliability: float
    score: float | None
    exact_title: bool
    snippet: str


def markdown_bold(word: str) -> str:
    """The default highlight: ``**word**``."""
    return f"**{word}**"


def highlight(text: str, stems: list[str], mark: Callable[[str], str] = markdown_bold) -> str:
    """``text`` with every word that starts with one of ``stems`` passed through ``mark``."""
    if not stems:
        return text
    return re.sub(r"\w+", lambda m: mark(m.group()) if m.group().lower().startswith(tuple(stems)) else m.group(),
                  text)


def _stems(con: duckdb.DuckDBPyConnection, terms: list[str]) -> list[str]:
    """The Porter stems of ``terms`` without the index's stop words: what BM25 matched, for highlighting."""
    if not terms:
        return []
    rows = con.execute(f"""SELECT DISTINCT stem(t, 'porter') FROM unnest($terms::VARCHAR[]) AS u(t)
                           WHERE t NOT IN (SELECT sw FROM {FTS_SCHEMA}.stopwords)""", {"terms": terms}).fetchall()
    return sorted(stem for (stem,) in rows if stem)


def search_evidence(store: EvidenceStore, text: str, *, source: str | None = None, limit: int = 10,
                    width: int = 200, mark: Callable[[str], str] = markdown_bold) -> list[SearchHit]:
    """The ``limit`` best evidence items for ``text`` (optionally from one ``source``), with highlighted snippets."""
    if not text.strip():
        raise ValueError("search text is empty; give the words to look for")
    with store.search_reader() as con:
        load_fts(con)
        if not con.execute("SELECT count(*) FROM duckdb_schemas() WHERE schema_name = ?", [FTS_SCHEMA]).fetchone()[0]:
            raise StoreError(f"{store.location} has no full-text index yet; materialize evidence_catalog (make run) "
                             "or load evidence with `aragora-pipelines ingest`, which builds it")
        stems = _stems(con, query_terms(text))
        rows = con.execute(SEARCH_SQL, {"text": text, "source": source, "limit": limit}).fetchall()
    hits = []
    for eid, src, title, url, reliability, content, score, exact in rows:
        flat = " ".join((content or "").split())
        hits.append(SearchHit(id=eid, source=src, title=title or "", url=url, reliability=reliability,
                              score=score, exact_title=exact,
                              snippet=highlight(escape_controls(snippet(flat, stems, width=width)), stems, mark)))
    return hits
