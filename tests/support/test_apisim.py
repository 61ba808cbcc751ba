"""The loopback simulator behaves like the real APIs: each route honours the time window its connector sends
(totals count only the window), /_truth answers per window, and the faults arrive as configured."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from aragora_pipelines.ingest import ingest_evidence
from aragora_pipelines.store import EvidenceStore
from connectors.arxiv import ArXivConnector
from connectors.github import GitHubConnector
from connectors.hackernews import HackerNewsConnector
from connectors.stripe import StripeConnector, StripeCredentials
from tests.conftest import ROOT, Sim

BASE = 1_767_225_600  # 2026-01-01T00:00:00Z, record 0; record i is created at BASE + 37 * i
LO = BASE + 37 * 100  # exactly record 100's creation time
HI = LO + 3600  # one hour: records 100..197 (37 * 97 = 3589 < 3600 < 37 * 98)
IN_HOUR = range(100, 198)
SINCE, UNTIL = datetime.fromtimestamp(LO, UTC), datetime.fromtimestamp(HI, UTC)
FAST: dict[str, Any] = {"base_delay": 0.01, "max_delay": 0.05, "rate_limit": (1000.0, 1.0)}


def checksum(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()


def hn_pages(sim: Sim, numeric_filters: str, endpoint: str = "search") -> tuple[list[dict[str, Any]], int]:
    """Every hit of a HackerNews search (100 per page, as the connector asks) and the nbHits of page 0."""
    hits: list[dict[str, Any]] = []
    first = httpx.get(f"{sim.hn}/{endpoint}", params={"numericFilters": numeric_filters, "hitsPerPage": 100}).json()
    hits += first["hits"]
    for page in range(1, first["nbPages"]):
        hits += httpx.get(f"{sim.hn}/{endpoint}", params={"numericFilters": numeric_filters, "hitsPerPage": 100,
                                                         "page": page}).json()["hits"]
    return hits, first["nbHits"]


def test_hn_numeric_filters_return_exactly_the_hours_records(apisim: Sim) -> None:
    hits, nb_hits = hn_pages(apisim, f"created_at_i>={LO},created_at_i<{HI}")
    assert [h["objectID"] for h in hits] == [str(40_000_000 + i) for i in IN_HOUR]
    assert nb_hits == len(hits) == 98
    assert all(LO <= h["created_at_i"] < HI for h in hits)
    truth = apisim.truth("hn", since=SINCE, until=UNTIL)
    assert truth == {"count": 98, "sha256_sorted_ids": checksum([h["objectID"] for h in hits])}
    assert apisim.truth("hn", since=LO, until=HI) == truth  # epoch seconds work too


@pytest.mark.parametrize(("numeric_filters", "expected"), [
    (f"created_at_i>{LO},created_at_i<={HI}", range(101, 198)),  # strict lower end, inclusive upper end
    (f" created_at_i >= {LO} , created_at_i < {LO + 37} ", range(100, 101)),  # spaces, a one-record window
    (f"created_at_i:{LO} TO {LO + 74}", range(100, 103)),  # Algolia's range form includes both ends
    (f"created_at_i={LO}", range(100, 101)),
    (f"created_at_i<{BASE}", range(0)),  # before the first record
])
def test_hn_numeric_filter_operators(apisim: Sim, numeric_filters: str, expected: range) -> None:
    hits, nb_hits = hn_pages(apisim, numeric_filters)
    assert [int(h["objectID"]) - 40_000_000 for h in hits] == list(expected)
    assert nb_hits == len(expected)


def test_hn_search_by_date_lists_the_window_newest_first(apisim: Sim) -> None:
    hits, nb_hits = hn_pages(apisim, f"created_at_i>={LO},created_at_i<{HI}", endpoint="search_by_date")
    assert [h["objectID"] for h in hits] == [str(40_000_000 + i) for i in reversed(IN_HOUR)]
    assert nb_hits == 98


def test_hn_filter_on_another_attribute_is_refused_not_ignored(apisim: Sim) -> None:
    response = httpx.get(f"{apisim.hn}/search", params={"numericFilters": "points>10"})
    assert response.status_code == 400
    assert "created_at_i" in response.json()["message"]


def test_github_created_qualifier_selects_the_window(apisim: Sim) -> None:
    q = "rate limiting created:2026-01-01T01:01:40Z..2026-01-01T02:01:39Z"  # [LO, HI) with both ends included
    url, params, ids = f"{apisim.github}/search/issues", {"q": q, "per_page": 30}, []
    first = httpx.get(url, params=params)
    total = first.json()["total_count"]
    response: httpx.Response | None = first
    while response is not None:
        ids += [item["number"] - 1 for item in response.json()["items"]]
        following = response.links.get("next", {}).get("url")
        response = httpx.get(following) if following else None
    assert ids == list(IN_HOUR) and total == 98
    day = httpx.get(url, params={"q": "x created:2026-01-02"}).json()  # a date is its whole day: none that day
    assert day["total_count"] == 0 and day["items"] == []
    assert httpx.get(url, params={"q": "x created:>=2026-01-01"}).json()["total_count"] == 500


async def test_github_connector_window_matches_truth(apisim: Sim) -> None:
    async with GitHubConnector(base_url=apisim.github, **FAST) as connector:
        results = await connector.search("rate limiting", limit=1000, since=SINCE, until=UNTIL)
    assert len({e.id for e in results}) == len(results) == apisim.truth("github", since=SINCE, until=UNTIL)["count"]


async def test_arxiv_connector_window_matches_truth(apisim: Sim) -> None:
    # arXiv's window has minute resolution: [01:02, 02:02) holds records 101..197
    since, until = datetime(2026, 1, 1, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, 2, 2, tzinfo=UTC)
    async with ArXivConnector(base_url=apisim.arxiv, page_size=25, **FAST) as connector:
        results = await connector.search("rate limiting", limit=1000, since=since, until=until)
    truth = apisim.truth("arxiv", since=since, until=until)
    assert len({e.id for e in results}) == len(results) == truth["count"] == 97


async def test_stripe_created_filters_select_the_window_newest_first(apisim: Sim) -> None:
    credentials = StripeCredentials(secret_key="sk_test_apisimWindow0123", webhook_secret="whsec_apisim0123")
    async with StripeConnector(credentials, base_url=apisim.stripe, **FAST) as stripe:
        customers = [c async for c in stripe.list_customers(since=SINCE, until=UNTIL)]
    ids = [c.id for c in customers]
    assert ids == [f"cus_{i:014d}" for i in reversed(IN_HOUR)]
    truth = apisim.truth("stripe", since=SINCE, until=UNTIL)
    assert truth == {"count": 98, "sha256_sorted_ids": checksum(ids)}


def test_hackernews_connector_stores_only_the_windows_records(apisim: Sim, tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "window.duckdb")
    connector = HackerNewsConnector(base_url=apisim.hn, hits_per_page=25, **FAST)
    result = ingest_evidence(connector, store, query="rate limiting", limit=10_000, since=SINCE, until=UNTIL,
                             asset_key="evidence_hackernews", partition_key="window")
    assert result.rows_outside_window == 0  # the server honoured the window: nothing had to be dropped
    ids = [r[0] for r in store.query("SELECT source_id FROM evidence WHERE source = 'hackernews'")]
    assert apisim.truth("hn", since=SINCE, until=UNTIL) == {"count": len(ids), "sha256_sorted_ids": checksum(ids)}
    assert len(ids) == result.rows_new == 98


def test_truth_of_an_unknown_source_is_404(apisim: Sim) -> None:
    response = httpx.get(f"{apisim.root}/_truth/nope")
    assert response.status_code == 404 and "hn" in response.json()["message"]


def test_every_kth_request_is_a_429_with_retry_after(make_sim: Any) -> None:
    sim = make_sim(records=10, ratelimit_every=2, retry_after=3)
    statuses = [httpx.get(f"{sim.hn}/search") for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 200, 429]
    assert statuses[1].headers["Retry-After"] == "3"
    assert sim.stats() == {"requests": 4, "faults": {"fail": 0, "ratelimit": 2, "hang": 0, "garbage": 0}}


def test_fail_rate_one_answers_503(make_sim: Any) -> None:
    sim = make_sim(records=10, fail_rate=1.0)
    assert httpx.get(f"{sim.stripe}/v1/customers").status_code == 503
    assert sim.stats()["faults"]["fail"] == 1


def test_garbage_is_a_truncated_body(make_sim: Any, apisim: Sim) -> None:
    sim = make_sim(records=500, garbage_rate=1.0)
    params = {"hitsPerPage": 5}
    broken, whole = httpx.get(f"{sim.hn}/search", params=params), httpx.get(f"{apisim.hn}/search", params=params)
    assert broken.status_code == 200
    assert whole.content.startswith(broken.content) and len(broken.content) == len(whole.content) // 2
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.content)
    assert sim.stats()["faults"]["garbage"] == 1


def test_a_hang_outlasts_the_client_timeout(make_sim: Any) -> None:
    sim = make_sim(records=10, hang_rate=1.0, hang_s=5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sim.hn}/search", timeout=0.2)
    assert sim.stats()["faults"]["hang"] == 1


def test_seeded_faults_repeat(make_sim: Any) -> None:
    def statuses(sim: Sim) -> list[int]:
        return [httpx.get(f"{sim.hn}/search").status_code for _ in range(20)]

    first, second = make_sim(records=10, fail_rate=0.5, seed=3), make_sim(records=10, fail_rate=0.5, seed=3)
    assert statuses(first) == statuses(second) and {200, 503} == set(statuses(first))


def test_runs_as_a_module_and_refuses_a_non_loopback_host() -> None:
    module = subprocess.run([sys.executable, "-m", "tests.support.apisim", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=30)
    assert module.returncode == 0 and "--ratelimit-every" in module.stdout
    public = subprocess.run([sys.executable, str(ROOT / "tests/support/apisim.py"), "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=30)
    assert public.returncode == 2 and "loopback only" in public.stderr
    rates = subprocess.run([sys.executable, str(ROOT / "tests/support/apisim.py"), "--fail-rate", "0.7",
                            "--garbage-rate", "0.5"], capture_output=True, text=True, timeout=30)
    assert rates.returncode == 2 and "more than 1" in rates.stderr
