"""GitHubConnector: REST search and issues through the HTTP boundary, with recorded GitHub bodies."""

from __future__ import annotations

import copy
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.github import GitHubConnector, created_qualifier
from connectors.provenance import SourceType

API = "https://api.github.com"
SEARCH = re.compile(r"https://api\.github\.com/search/issues\?.*")
FAST = {"base_delay": 0.01, "max_delay": 0.05, "rate_limit": (1000, 1.0)}
DAY = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))


@pytest.fixture
def gh() -> GitHubConnector:
    return GitHubConnector(**FAST)


def q_of(request: httpx.Request) -> str:
    return request.url.params["q"]


# --- parsing the recorded bodies ---------------------------------------------------------

async def test_search_parses_recorded_multi_body(httpx_mock, realapi, gh):
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_multi.json"))
    results = await gh.search("repo:saltstack/salt-api type:Issues", limit=10)

    assert [e.id for e in results] == [
        "github:saltstack/salt-api#144", "github:saltstack/salt-api#143", "github:saltstack/salt-api#142",
        "github:saltstack/salt-api#141", "github:saltstack/salt-api#73", "github:saltstack/salt-api#49",
    ]
    first = results[0]
    assert first.source_type is SourceType.CODE_REPOSITORY
    assert first.source_id == "saltstack/salt-api#144"
    assert first.title == "tools.cpstats.on needs to be placed under root"
    assert first.content.startswith("Small error, tools.cpstats.on actually needs to be under root")
    assert first.author == "LucasEwalt"
    assert first.url == "https://github.com/saltstack/salt-api/pull/144"
    assert first.created_at == "2014-03-10T22:31:05Z"
    assert first.metadata["state"] == "closed"
    assert first.metadata["is_pull_request"] is True
    assert first.metadata["closed_at"] == "2014-03-10T22:32:46Z"
    json.dumps(first.metadata)  # JSON-serialisable


async def test_old_search_items_with_null_pull_request_links_are_issues(httpx_mock, realapi, gh):
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_multi.json"))
    by_number = {e.metadata["number"]: e for e in await gh.search("salt", limit=10)}

    assert by_number[143].metadata["is_pull_request"] is True
    assert by_number[142].metadata["is_pull_request"] is False  # "pull_request": {all links null}
    assert by_number[73].metadata["labels"] == ["0 - Backlog"]
    assert by_number[142].metadata["comments"] == 3


async def test_body_line_breaks_become_plain_text(httpx_mock, realapi, gh):
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_multi.json"))
    issue = {e.metadata["number"]: e for e in await gh.search("salt", limit=10)}[142]
    assert "\r" not in issue.content
    assert issue.content.startswith("An error message:\n400 Bad Request")


async def test_recent_search_item_scores(httpx_mock, realapi, gh):
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_recent_single.json"))
    [issue] = await gh.search("commit:example_sha", limit=5)

    assert issue.id == "github:octocat/Hello-World#1347"
    assert issue.metadata["author_association"] == "COLLABORATOR"
    assert issue.metadata["labels"] == ["bug"]
    assert issue.confidence == pytest.approx(0.6)  # open 0.5 + confirming label "bug" 0.1
    assert issue.authority == pytest.approx(0.4 * 0.85)  # no reactions, no comments
    assert 0.0 <= issue.freshness < 0.01  # updated in 2011


async def test_scores_follow_association_reactions_and_comments(httpx_mock, realapi, gh):
    items = realapi("github/repo_issues_list.json")
    httpx_mock.add_response(url=SEARCH, json={"total_count": len(items), "items": items})
    by_number = {e.metadata["number"]: e for e in await gh.search("repo:PyGithub/PyGithub", limit=30)}

    # CONTRIBUTOR with 4 comments outranks a NONE author with 0 comments and 0 reactions.
    assert by_number[3014].authority > by_number[3042].authority
    assert by_number[3028].metadata["reactions"] == 1
    for evidence in by_number.values():
        for score in (evidence.confidence, evidence.authority, evidence.freshness):
            assert 0.0 <= score <= 1.0


async def test_freshness_decays_smoothly_with_updated_at(httpx_mock, realapi, gh):
    template = realapi("github/search_issues_recent_single.json")["items"][0]
    now = datetime.now(UTC)
    items = []
    for number, days in ((1, 0), (2, 90), (3, 180), (4, 720)):
        item = copy.deepcopy(template) | {"number": number, "updated_at": (now - timedelta(days=days)).isoformat()}
        item["url"] = f"{API}/repos/octocat/Hello-World/issues/{number}"
        items.append(item)
    httpx_mock.add_response(url=SEARCH, json={"total_count": 4, "items": items})
    fresh = [e.freshness for e in await gh.search("x", limit=4)]

    assert fresh[0] == pytest.approx(1.0, abs=1e-3)
    assert fresh[2] == pytest.approx(0.5, abs=1e-3)  # half-life 180 days
    assert fresh[0] > fresh[1] > fresh[2] > fresh[3] > 0


async def test_null_and_missing_fields_never_crash(httpx_mock, gh):
    item = {
        "url": f"{API}/repos/acme/tool/issues/7", "html_url": None, "number": 7, "title": None, "body": None,
        "user": None, "labels": None, "state": None, "comments": None, "reactions": None, "created_at": None,
        "updated_at": None, "author_association": None, "pull_request": None,
    }
    httpx_mock.add_response(url=SEARCH, json={"total_count": 3, "items": [item, {"id": 1}, None]})
    [evidence] = await gh.search("x", limit=5)

    assert evidence.id == "github:acme/tool#7"
    assert evidence.title == evidence.content == ""
    assert evidence.author is None and evidence.created_at is None
    assert evidence.url == "https://github.com/acme/tool/issues/7"
    assert evidence.freshness == 0.5  # unknown date
    assert evidence.metadata["is_pull_request"] is False


async def test_html_in_body_becomes_text(httpx_mock, gh):
    item = {"url": f"{API}/repos/acme/tool/issues/8", "number": 8, "title": "A &amp; B",
            "body": "<!-- template -->\n<details><summary>Log</summary>\n\nboom &lt;here&gt;</details>"}
    httpx_mock.add_response(url=SEARCH, json={"total_count": 1, "items": [item]})
    [evidence] = await gh.search("x", limit=1)
    assert evidence.title == "A & B"
    assert evidence.content == "Log\n\nboom <here>"


# --- request shape -----------------------------------------------------------------------

async def test_search_request_carries_query_paging_and_github_headers(httpx_mock, gh):
    httpx_mock.add_response(url=SEARCH, json={"total_count": 0, "items": []})
    assert await gh.search("rate limiting", limit=5, sort="updated", order="asc", repo="acme/tool", type="pr") == []

    [request] = httpx_mock.get_requests()
    assert request.url.path == "/search/issues"
    assert q_of(request) == "rate limiting repo:acme/tool is:pr"
    assert request.url.params["per_page"] == "5"
    assert request.url.params["page"] == "1"
    assert request.url.params["sort"] == "updated" and request.url.params["order"] == "asc"
    assert request.headers["Accept"] == "application/vnd.github+json"
    assert request.headers["X-GitHub-Api-Version"] == "2022-11-28"
    assert "aragora-pipelines" in request.headers["User-Agent"]
    assert "Authorization" not in request.headers


async def test_token_is_sent_as_bearer_and_read_from_env(httpx_mock, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_envtoken123")
    httpx_mock.add_response(url=SEARCH, json={"total_count": 0, "items": []})
    await GitHubConnector(**FAST).search("x")
    assert httpx_mock.get_requests()[0].headers["Authorization"] == "Bearer ghp_envtoken123"


def test_rate_limit_depends_on_token():
    assert GitHubConnector().rate_limit == (10, 60.0)
    assert GitHubConnector(token="ghp_abc").rate_limit == (30, 60.0)
    assert GitHubConnector(token="ghp_abc", rate_limit=(5, 1.0)).rate_limit == (5, 1.0)


def test_base_url_from_env(monkeypatch):
    monkeypatch.setenv("ARAGORA_GITHUB_BASE_URL", "https://ghe.example.com/api/v3/")
    assert GitHubConnector().base_url == "https://ghe.example.com/api/v3"
    assert GitHubConnector(base_url="https://other.example").base_url == "https://other.example"


def test_created_qualifier_is_half_open_at_second_resolution():
    assert created_qualifier(*DAY) == "created:2026-01-01T00:00:00Z..2026-01-01T23:59:59Z"
    assert created_qualifier(DAY[0], None) == "created:>=2026-01-01T00:00:00Z"
    assert created_qualifier(None, DAY[1]) == "created:<=2026-01-01T23:59:59Z"
    assert created_qualifier(None, None) is None


async def test_window_is_sent_as_created_qualifier(httpx_mock, gh):
    httpx_mock.add_response(url=SEARCH, json={"total_count": 0, "items": []})
    await gh.search("evidence", since=DAY[0], until=DAY[1])
    assert q_of(httpx_mock.get_requests()[0]) == "evidence created:2026-01-01T00:00:00Z..2026-01-01T23:59:59Z"


async def test_naive_window_is_taken_as_utc(httpx_mock, gh):
    httpx_mock.add_response(url=SEARCH, json={"total_count": 0, "items": []})
    await gh.search("", since=datetime(2026, 1, 1), until=datetime(2026, 1, 1, 12))
    assert q_of(httpx_mock.get_requests()[0]) == "created:2026-01-01T00:00:00Z..2026-01-01T11:59:59Z"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "", "limit": 3}, "query is empty"),
        ({"query": "x", "limit": 0}, "limit"),
        ({"query": "x", "since": DAY[1], "until": DAY[0]}, "before"),
        ({"query": "created:>2020-01-01", "since": DAY[0]}, "created:"),
        ({"query": "x", "colour": "red"}, "unknown search option"),
        ({"query": "x", "sort": "stars"}, "sort must be one of"),
        ({"query": "x", "type": "discussion"}, "type must be"),
    ],
)
async def test_bad_search_input_is_rejected_before_any_request(gh, kwargs, message):
    with pytest.raises(ConnectorValidationError, match=message):
        await gh.search(**kwargs)


# --- pagination --------------------------------------------------------------------------

def _items(numbers: range, template: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for number in numbers:
        item = dict(template, number=number, html_url=f"https://github.com/acme/tool/issues/{number}")
        item["url"] = f"{API}/repos/acme/tool/issues/{number}"
        out.append(item)
    return out


async def test_link_pagination_honours_limit_exactly(httpx_mock, realapi, gh):
    template = realapi("github/search_issues_recent_single.json")["items"][0]

    def serve(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        per_page = int(request.url.params["per_page"])
        headers = {}
        if page < 5:
            headers["Link"] = (f'<{API}/search/issues?q=x&per_page={per_page}&page={page + 1}>; rel="next", '
                               f'<{API}/search/issues?q=x&per_page={per_page}&page=5>; rel="last"')
        start = (page - 1) * per_page + 1
        return httpx.Response(200, json={"total_count": 500, "items": _items(range(start, start + per_page), template)},
                              headers=headers)

    httpx_mock.add_callback(serve, url=SEARCH, is_reusable=True)
    results = await gh.search("x", limit=250)

    assert len(results) == 250 == len({e.id for e in results})
    assert results[-1].id == "github:acme/tool#250"
    assert [r.url.params["page"] for r in httpx_mock.get_requests()] == ["1", "2", "3"]


async def test_repeated_next_link_raises_parse_error(httpx_mock, realapi, gh):
    template = realapi("github/search_issues_recent_single.json")["items"][0]
    same = {"Link": f'<{API}/search/issues?q=x&per_page=2&page=2>; rel="next"'}
    httpx_mock.add_response(url=SEARCH, json={"total_count": 99, "items": _items(range(1, 3), template)},
                            headers=same, is_reusable=True)
    with pytest.raises(ConnectorParseError, match="twice"):
        await gh.search("x", limit=50)


async def test_next_link_to_another_host_is_not_followed(httpx_mock, realapi, gh):
    template = realapi("github/search_issues_recent_single.json")["items"][0]
    httpx_mock.add_response(url=SEARCH, json={"total_count": 9, "items": _items(range(1, 3), template)},
                            headers={"Link": '<https://evil.example/search/issues?page=2>; rel="next"'})
    with pytest.raises(ConnectorParseError, match="another host"):
        await GitHubConnector(token="ghp_secret", **FAST).search("x", limit=9)


async def test_total_over_the_1000_cap_splits_the_window(httpx_mock, realapi, gh):
    """A fake search API with 1500 issues in a day that, like GitHub, serves only the first 1000 per query."""
    template = realapi("github/search_issues_recent_single.json")["items"][0]
    start = DAY[0]
    corpus = []
    for n in range(1, 1501):
        created = start + timedelta(seconds=n * 50)  # spread over the day
        corpus.append(dict(_items(range(n, n + 1), template)[0], created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ")))

    def serve(request: httpx.Request) -> httpx.Response:
        lo, hi = re.search(r"created:(\S+)\.\.(\S+)", q_of(request)).groups()
        chosen = [i for i in corpus if lo <= i["created_at"] <= hi]
        per_page, page = int(request.url.params["per_page"]), int(request.url.params["page"])
        reachable = chosen[:1000]
        headers = {}
        if page * per_page < len(reachable):
            headers["Link"] = (f'<{API}/search/issues?q={q_of(request)}&per_page={per_page}&page={page + 1}>; '
                               'rel="next"')
        body = {"total_count": len(chosen), "items": reachable[(page - 1) * per_page: page * per_page]}
        return httpx.Response(200, json=body, headers=headers)

    httpx_mock.add_callback(serve, url=SEARCH, is_reusable=True)
    results = await gh.search("x", limit=1500, since=DAY[0], until=DAY[1])

    assert len(results) == 1500 == len({e.id for e in results})
    windows = {re.search(r"created:\S+", q_of(r)).group() for r in httpx_mock.get_requests()}
    assert "created:2026-01-01T00:00:00Z..2026-01-01T11:59:59Z" in windows
    assert "created:2026-01-01T12:00:00Z..2026-01-01T23:59:59Z" in windows


async def test_total_over_cap_within_limit_does_not_split(httpx_mock, realapi, gh):
    template = realapi("github/search_issues_recent_single.json")["items"][0]
    httpx_mock.add_response(url=SEARCH, json={"total_count": 50_000, "items": _items(range(1, 11), template)})
    results = await gh.search("x", limit=10, since=DAY[0], until=DAY[1])
    assert len(results) == 10
    assert len(httpx_mock.get_requests()) == 1


# --- rate limits and errors -----------------------------------------------------------------

async def test_403_with_exhausted_rate_limit_is_retried_after_reset(httpx_mock, realapi, gh):
    reset = str(int(time.time()))
    httpx_mock.add_response(url=SEARCH, status_code=403, json={"message": "API rate limit exceeded"},
                            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_recent_single.json"))
    results = await gh.search("x", limit=1)
    assert [e.id for e in results] == ["github:octocat/Hello-World#1347"]
    assert len(httpx_mock.get_requests()) == 2


async def test_secondary_limit_429_with_retry_after_is_retried(httpx_mock, realapi, gh):
    httpx_mock.add_response(url=SEARCH, status_code=429, headers={"Retry-After": "0"},
                            json={"message": "You have exceeded a secondary rate limit"})
    httpx_mock.add_response(url=SEARCH, json=realapi("github/search_issues_recent_single.json"))
    assert len(await gh.search("x", limit=1)) == 1


async def test_plain_403_is_an_auth_error_without_retry_and_without_the_token(httpx_mock):
    httpx_mock.add_response(url=SEARCH, status_code=403, json={"message": "Resource not accessible by integration"})
    connector = GitHubConnector(token="ghp_supersecret999", **FAST)
    with pytest.raises(ConnectorAuthError) as info:
        await connector.search("x")
    assert len(httpx_mock.get_requests()) == 1
    assert "ghp_supersecret999" not in str(info.value) + repr(info.value)


# --- fetch -------------------------------------------------------------------------------

async def test_fetch_reads_one_issue_and_caches_it(httpx_mock, realapi, gh):
    issue = realapi("github/repo_issues_list.json")[0]
    httpx_mock.add_response(url=f"{API}/repos/PyGithub/PyGithub/issues/3045", json=issue)

    evidence = await gh.fetch("github:PyGithub/PyGithub#3045")
    assert evidence is not None
    assert evidence.id == "github:PyGithub/PyGithub#3045"
    assert evidence.title == "Make tests pass some more years"
    assert evidence.author == "bmwiedemann"
    assert evidence.content.startswith("Without this patch, tests fail after 2024-11-25.")
    assert evidence.metadata["is_pull_request"] is True
    assert evidence.metadata["author_association"] == "FIRST_TIME_CONTRIBUTOR"
    assert evidence.metadata["updated_at"] == "2024-09-16T14:19:35Z"
    assert await gh.fetch("PyGithub/PyGithub#3045") == evidence  # bare id, served from the cache
    assert len(httpx_mock.get_requests()) == 1


async def test_fetch_plain_issue_from_list(httpx_mock, realapi, gh):
    issue = next(i for i in realapi("github/repo_issues_list.json") if i["number"] == 3042)
    httpx_mock.add_response(url=f"{API}/repos/PyGithub/PyGithub/issues/3042", json=issue)
    evidence = await gh.fetch("PyGithub/PyGithub#3042")
    assert evidence.metadata["is_pull_request"] is False
    assert evidence.url == "https://github.com/PyGithub/PyGithub/issues/3042"


async def test_fetch_missing_issue_returns_none(httpx_mock, gh):
    httpx_mock.add_response(url=f"{API}/repos/acme/tool/issues/404", status_code=404, json={"message": "Not Found"})
    assert await gh.fetch("acme/tool#404") is None


@pytest.mark.parametrize("bad", ["acme/tool", "acme#1", "github:acme/tool#x", "hackernews:1"])
async def test_fetch_rejects_malformed_ids(gh, bad):
    with pytest.raises(ConnectorValidationError, match="owner/repo#123"):
        await gh.fetch(bad)


async def test_fetch_of_a_non_object_is_a_parse_error(httpx_mock, gh):
    httpx_mock.add_response(url=f"{API}/repos/acme/tool/issues/1", json=[1, 2])
    with pytest.raises(ConnectorParseError):
        await gh.fetch("acme/tool#1")


# --- the loopback simulator ------------------------------------------------------------------

async def test_simulator_paginates_to_the_exact_limit(apisim):
    async with GitHubConnector(base_url=apisim.github, **FAST) as connector:
        results = await connector.search("evidence", limit=250, since=DAY[0], until=DAY[1])
    assert len(results) == 250 == len({e.id for e in results})
    assert results[0].id == "github:acme/repo#1" and results[-1].id == "github:acme/repo#250"
    assert results[0].metadata["labels"] == ["bug"]


# --- redirects ---------------------------------------------------------------------------------

def _moved(httpx_mock, url: str, location: str) -> None:
    """GitHub's answer for a transferred issue: 301 with the new API location (header and body)."""
    httpx_mock.add_response(url=url, status_code=301, headers={"Location": location}, json={
        "message": "Moved Permanently", "url": location,
        "documentation_url": "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api#follow-redirects",
    })


async def test_fetch_follows_a_transferred_issue_to_its_new_repository(httpx_mock, realapi):
    issue = realapi("github/repo_issues_list.json")[0]  # PyGithub/PyGithub#3045, its new home
    new_location = f"{API}/repositories/1234567/issues/3045"
    _moved(httpx_mock, f"{API}/repos/old-owner/old-repo/issues/12", new_location)
    httpx_mock.add_response(url=new_location, json=issue)
    connector = GitHubConnector(token="ghp_transferTest0123456789", **FAST)

    evidence = await connector.fetch("github:old-owner/old-repo#12")
    assert evidence is not None and evidence.id == "github:PyGithub/PyGithub#3045"
    requests = httpx_mock.get_requests()
    assert [str(r.url) for r in requests] == [f"{API}/repos/old-owner/old-repo/issues/12", new_location]
    assert requests[1].headers["Authorization"] == requests[0].headers["Authorization"]  # same host: token kept


async def test_a_redirect_off_the_api_host_is_refused_once_without_sending_the_token(httpx_mock):
    _moved(httpx_mock, f"{API}/repos/acme/tool/issues/1", "https://attacker.example/steal")
    connector = GitHubConnector(token="ghp_offHostTest0123456789", **FAST)
    with pytest.raises(ConnectorAPIError, match=r"redirect \(HTTP 301\) to https://attacker\.example/steal leaves "
                                                r"https://api\.github\.com; not followed"):
        await connector.fetch("acme/tool#1")
    assert [str(r.url) for r in httpx_mock.get_requests()] == [f"{API}/repos/acme/tool/issues/1"]


async def test_same_host_redirects_are_bounded(httpx_mock, gh):
    for hop in range(6):
        _moved(httpx_mock, f"{API}/repositories/{hop}/issues/1", f"{API}/repositories/{hop + 1}/issues/1")
    with pytest.raises(ConnectorAPIError, match="more than 5 redirects"):
        await gh._get_json(f"{API}/repositories/0/issues/1")
    assert len(httpx_mock.get_requests()) == 6
