"""PagerDuty connector: the recorded incidents list, windows and pagination, writes, errors, v3 webhooks."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.pagerduty import (
    Incident,
    PagerDutyConnector,
    PagerDutyCredentials,
    parse_event,
    verify_signature,
)

BASE = "https://pd.example.test"
TOKEN = "pd-api-token-u+y3kx9Qz"
FROM = "oncall@example.com"
SECRET = "pd-webhook-secret-7e1f"
FAST: dict[str, Any] = {"base_delay": 0.01, "max_delay": 0.05, "max_retries": 2, "rate_limit": (1000, 1)}


def url(path: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"{BASE}{path}") + r"(\?.*)?$")


@pytest.fixture
def creds() -> PagerDutyCredentials:
    return PagerDutyCredentials(api_token=TOKEN, from_email=FROM, webhook_secret=SECRET)


def connector(creds: PagerDutyCredentials, **kwargs: Any) -> PagerDutyConnector:
    return PagerDutyConnector(creds, base_url=BASE, **{**FAST, **kwargs})


def params(request: httpx.Request) -> dict[str, Any]:
    """Query parameters; repeated keys (statuses[]) as lists."""
    query = request.url.params
    return {key: query.get_list(key) if key.endswith("[]") else query[key] for key in query}


def incidents_page(items: list[dict], offset: int, more: bool, total: int | None = None) -> dict:
    return {"incidents": items, "limit": 100, "offset": offset, "more": more, "total": total}


def incident(n: int, created: str = "2024-01-01T00:00:00Z") -> dict:
    return {"id": f"P{n:06d}", "type": "incident", "incident_number": n, "status": "triggered", "urgency": "low",
            "created_at": created, "service": {"id": "PSVC001", "type": "service_reference", "summary": "API"}}


async def collect(it: Any) -> list[Any]:
    return [item async for item in it]


JAN_1, JAN_2 = datetime(2015, 10, 6, tzinfo=UTC), datetime(2015, 10, 7, tzinfo=UTC)


# --- the recorded list ---------------------------------------------------------------------------------

async def test_recorded_incidents_become_typed_incidents(creds, httpx_mock, realapi):
    body = realapi("pagerduty/incidents_list.json")  # the official example: one incident and "more": true
    httpx_mock.add_response(url=url("/incidents"), json=body)
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([], 1, more=False))
    async with connector(creds) as pd:
        incidents = await collect(pd.iter_objects("incidents", since=JAN_1, until=JAN_2))

    (inc,) = incidents
    assert inc.id == "PT4KHLK" and inc.incident_number == 1234
    assert inc.title == "The server is on fire." and inc.summary == "[#1234] The server is on fire."
    assert (inc.status, inc.urgency, inc.priority) == ("resolved", "high", "P2")
    assert (inc.service_id, inc.service_name) == ("PIJ90N7", "My Mail Service")
    assert inc.escalation_policy_id == "PT20YPA" and inc.team_ids == ["PQ9K7I8"] and inc.assignee_ids == []
    assert inc.incident_key == "baf7cf21b1da41b4b0221008339ff357"
    assert inc.created_at == datetime(2015, 10, 6, 21, 30, 42, tzinfo=UTC)
    assert inc.updated_at == datetime(2015, 10, 6, 21, 40, 23, tzinfo=UTC)
    assert inc.resolved_at == inc.last_status_change_at == datetime(2015, 10, 6, 21, 38, 23, tzinfo=UTC)
    assert inc.raw == body["incidents"][0]
    # "more": true was followed from the answer's offset plus what it held
    assert [params(r)["offset"] for r in httpx_mock.get_requests()] == ["0", "1"]


async def test_window_auth_and_versioned_accept_are_sent(creds, httpx_mock, realapi):
    httpx_mock.add_response(url=url("/incidents"), json={**realapi("pagerduty/incidents_list.json"), "more": False})
    async with connector(creds) as pd:
        await collect(pd.list_incidents(since=JAN_1, until=JAN_2))

    request = httpx_mock.get_request()
    assert request.url.path == "/incidents"
    assert params(request) == {
        "time_zone": "UTC",
        "since": "2015-10-06T00:00:00Z",
        "until": "2015-10-07T00:00:00Z",
        "offset": "0",
        "limit": "100",
        "total": "true",
    }
    assert request.headers["Authorization"] == f"Token token={TOKEN}"
    assert request.headers["Accept"] == "application/vnd.pagerduty+json;version=2"


async def test_status_and_service_filters_are_repeated_array_params(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([], 0, more=False))
    async with connector(creds) as pd:
        await collect(pd.list_incidents(since=JAN_1, until=JAN_2, statuses=["triggered", "acknowledged"],
                                        service_ids=["PSVC001"], urgencies="high"))
    query = params(httpx_mock.get_request())
    assert query["statuses[]"] == ["triggered", "acknowledged"]
    assert query["service_ids[]"] == ["PSVC001"]
    assert query["urgencies[]"] == ["high"]


# --- windows and pagination ----------------------------------------------------------------------------

async def test_a_13_month_window_is_read_as_three_windows_of_at_most_180_days(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(1)], 0, more=False))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(2)], 0, more=False))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(3)], 0, more=False))
    since, until = datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC)
    async with connector(creds) as pd:
        incidents = await collect(pd.list_incidents(since=since, until=until))

    assert [i.incident_number for i in incidents] == [1, 2, 3]
    windows = [(params(r)["since"], params(r)["until"]) for r in httpx_mock.get_requests()]
    assert windows == [
        ("2023-01-01T00:00:00Z", "2023-06-30T00:00:00Z"),
        ("2023-06-30T00:00:00Z", "2023-12-27T00:00:00Z"),
        ("2023-12-27T00:00:00Z", "2024-02-01T00:00:00Z"),
    ]


def test_windows_cover_the_range_exactly(creds):
    pd = connector(creds)
    since, until = datetime(2020, 3, 1, 12, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
    windows = pd.windows(since, until)
    assert windows[0][0] == since and windows[-1][1] == until
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert all(timedelta(0) < end - start <= timedelta(days=180) for start, end in windows)
    assert pd.windows(None, datetime(2009, 2, 1, tzinfo=UTC)) == [
        (datetime(2009, 1, 1, tzinfo=UTC), datetime(2009, 2, 1, tzinfo=UTC))
    ]


async def test_offset_pagination_reads_every_page_and_honours_limit(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(1), incident(2)], 0, more=True))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(3), incident(4)], 2, more=True))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(5)], 4, more=False))
    async with connector(creds, page_size=2) as pd:
        numbers = [i.incident_number async for i in pd.list_incidents(since=JAN_1, until=JAN_2)]
    assert numbers == [1, 2, 3, 4, 5]
    requests = httpx_mock.get_requests()
    assert [(params(r)["offset"], params(r)["limit"]) for r in requests] == [("0", "2"), ("2", "2"), ("4", "2")]
    assert [params(r).get("total") for r in requests] == ["true", None, None]  # only the first page asks


async def test_limit_stops_paging(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(1), incident(2)], 0, more=True))
    async with connector(creds, page_size=2) as pd:
        incidents = await collect(pd.iter_objects("incidents", since=JAN_1, until=JAN_2, limit=2))
    assert len(incidents) == 2 and len(httpx_mock.get_requests()) == 1


async def test_a_server_that_ignores_offset_ends_in_an_error_not_a_loop(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(1)], 0, more=True),
                            is_reusable=True)
    async with connector(creds) as pd:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(pd.list_incidents(since=JAN_1, until=JAN_2))
    assert len(httpx_mock.get_requests()) == 2


async def test_a_window_over_the_10000_offset_cap_is_halved(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(1)], 0, more=True, total=10_001))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(2)], 0, more=False, total=1))
    httpx_mock.add_response(url=url("/incidents"), json=incidents_page([incident(3)], 0, more=False, total=1))
    async with connector(creds) as pd:
        numbers = [i.incident_number async for i in pd.list_incidents(since=JAN_1, until=JAN_2)]
    assert numbers == [2, 3]
    windows = [(params(r)["since"], params(r)["until"]) for r in httpx_mock.get_requests()]
    assert windows == [
        ("2015-10-06T00:00:00Z", "2015-10-07T00:00:00Z"),
        ("2015-10-06T00:00:00Z", "2015-10-06T12:00:00Z"),
        ("2015-10-06T12:00:00Z", "2015-10-07T00:00:00Z"),
    ]


async def test_log_entries_use_the_window_and_are_typed(creds, httpx_mock):
    httpx_mock.add_response(url=url("/log_entries"), json={
        "log_entries": [{
            "id": "Q02JTSNZWHSEKV", "type": "trigger_log_entry", "summary": "Triggered through the API",
            "created_at": "2015-10-06T21:30:42Z",
            "agent": {"id": "PXPGF42", "type": "user_reference"},
            "channel": {"type": "api"},
            "service": {"id": "PIJ90N7", "type": "service_reference"},
            "incident": {"id": "PT4KHLK", "type": "incident_reference"},
        }],
        "limit": 100, "offset": 0, "more": False, "total": None,
    })
    async with connector(creds) as pd:
        (entry,) = await collect(pd.iter_objects("log_entries", since=JAN_1, until=JAN_2))
    assert (entry.id, entry.type, entry.incident_id, entry.service_id) == (
        "Q02JTSNZWHSEKV", "trigger_log_entry", "PT4KHLK", "PIJ90N7"
    )
    assert (entry.agent_id, entry.agent_type, entry.channel_type) == ("PXPGF42", "user_reference", "api")
    assert entry.created_at == datetime(2015, 10, 6, 21, 30, 42, tzinfo=UTC)
    query = params(httpx_mock.get_request())
    assert (query["since"], query["until"], query["is_overview"]) == (
        "2015-10-06T00:00:00Z", "2015-10-07T00:00:00Z", "false"
    )


async def test_services_are_filtered_by_updated_time_in_utc(creds, httpx_mock):
    def service(sid: str, updated: str) -> dict:
        return {"id": sid, "name": sid.lower(), "status": "active", "created_at": "2023-01-01T00:00:00Z",
                "updated_at": updated, "escalation_policy": {"id": "PEP1"}, "teams": [{"id": "PT1"}]}

    httpx_mock.add_response(url=url("/services"), json={
        "services": [service("PIN", "2023-08-03T16:53:48+03:00"), service("PLATE", "2023-08-04T02:30:00+08:00")],
        "limit": 100, "offset": 0, "more": False, "total": None,
    })
    since, until = datetime(2023, 8, 3, tzinfo=UTC), datetime(2023, 8, 3, 18, 30, tzinfo=UTC)
    async with connector(creds) as pd:
        services = await collect(pd.iter_objects("services", since=since, until=until))
    # 02:30+08:00 is 18:30Z, the (exclusive) end of the window
    assert [s.id for s in services] == ["PIN"]
    assert services[0].updated_at == datetime(2023, 8, 3, 13, 53, 48, tzinfo=UTC)
    assert services[0].updated_at.utcoffset() == timedelta(0)
    assert (services[0].escalation_policy_id, services[0].team_ids) == ("PEP1", ["PT1"])
    assert "since" not in params(httpx_mock.get_request())  # /services has no time filter


# --- single incidents and writes -------------------------------------------------------------------------

async def test_get_incident(creds, httpx_mock, realapi):
    raw = realapi("pagerduty/incidents_list.json")["incidents"][0]
    httpx_mock.add_response(url=f"{BASE}/incidents/PT4KHLK", json={"incident": raw})
    async with connector(creds) as pd:
        inc = await pd.get_incident("PT4KHLK")
    assert inc.id == "PT4KHLK" and inc.status == "resolved"


async def test_create_incident_posts_with_the_from_header(creds, httpx_mock):
    httpx_mock.add_response(method="POST", url=f"{BASE}/incidents", status_code=201,
                            json={"incident": {**incident(7), "title": "Disk full"}})
    async with connector(creds) as pd:
        inc = await pd.create_incident("Disk full", "PSVC001", urgency="high", details="/var at 100%",
                                       incident_key="disk/var")
    assert inc.incident_number == 7 and inc.title == "Disk full"
    request = httpx_mock.get_request()
    assert request.headers["From"] == FROM
    assert request.headers["Authorization"] == f"Token token={TOKEN}"
    assert json.loads(request.content) == {"incident": {
        "type": "incident",
        "title": "Disk full",
        "service": {"id": "PSVC001", "type": "service_reference"},
        "urgency": "high",
        "body": {"type": "incident_body", "details": "/var at 100%"},
        "incident_key": "disk/var",
    }}


async def test_acknowledge_and_resolve_put_the_status_with_the_from_header(creds, httpx_mock):
    httpx_mock.add_response(method="PUT", url=f"{BASE}/incidents/P000001",
                            json={"incident": {**incident(1), "status": "acknowledged"}})
    httpx_mock.add_response(method="PUT", url=f"{BASE}/incidents/P000001",
                            json={"incident": {**incident(1), "status": "resolved"}})
    async with connector(creds) as pd:
        acked = await pd.acknowledge_incident("P000001")
        resolved = await pd.resolve_incident("P000001", resolution="Rolled back")
    assert (acked.status, resolved.status) == ("acknowledged", "resolved")
    ack, res = httpx_mock.get_requests()
    assert ack.headers["From"] == res.headers["From"] == FROM
    assert json.loads(ack.content) == {"incident": {"type": "incident_reference", "status": "acknowledged"}}
    assert json.loads(res.content) == {
        "incident": {"type": "incident_reference", "status": "resolved", "resolution": "Rolled back"}
    }


async def test_writes_without_a_from_email_are_refused_before_sending(httpx_mock):
    async with connector(PagerDutyCredentials(api_token=TOKEN)) as pd:
        with pytest.raises(ConnectorAuthError, match="PAGERDUTY_FROM_EMAIL"):
            await pd.acknowledge_incident("P000001")
        with pytest.raises(ConnectorAuthError, match="PAGERDUTY_FROM_EMAIL"):
            await pd.create_incident("Disk full", "PSVC001")
    assert httpx_mock.get_requests() == []


async def test_bad_input_is_refused(creds):
    async with connector(creds) as pd:
        with pytest.raises(ConnectorValidationError, match="urgency"):
            await pd.create_incident("t", "PSVC001", urgency="urgent")
        with pytest.raises(ConnectorValidationError, match="incident_id"):
            await pd.get_incident(" ")
        with pytest.raises(ConnectorValidationError, match="unknown PagerDuty object type"):
            await collect(pd.iter_objects("alerts"))
        with pytest.raises(ConnectorValidationError, match="empty window"):
            await collect(pd.list_incidents(since=JAN_2, until=JAN_1))
        with pytest.raises(ConnectorValidationError, match="limit"):
            await collect(pd.list_services(limit=-1))
    with pytest.raises(ConnectorValidationError, match="page_size"):
        connector(creds, page_size=101)


# --- errors ------------------------------------------------------------------------------------------

async def test_401_is_an_auth_error_that_never_shows_the_token(creds, httpx_mock):
    httpx_mock.add_response(status_code=401, json={"error": {"message": f"Invalid token {TOKEN}", "code": 2006}})
    async with connector(creds) as pd:
        with pytest.raises(ConnectorAuthError) as info:
            await pd.get_incident("PT4KHLK")
    assert info.value.status_code == 401
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert len(httpx_mock.get_requests()) == 1


async def test_404_is_not_found(creds, httpx_mock):
    httpx_mock.add_response(status_code=404, json={"error": {"message": "Not Found", "code": 2100}})
    async with connector(creds) as pd:
        with pytest.raises(ConnectorNotFoundError):
            await pd.get_incident("PNOPE")


async def test_429_with_retry_after_is_retried(creds, httpx_mock, realapi):
    httpx_mock.add_response(url=url("/incidents"), status_code=429, headers={"Retry-After": "0.01"},
                            json={"error": {"message": "Rate Limit Exceeded", "code": 2020}})
    httpx_mock.add_response(url=url("/incidents"), json={**realapi("pagerduty/incidents_list.json"), "more": False})
    async with connector(creds) as pd:
        incidents = await collect(pd.list_incidents(since=JAN_1, until=JAN_2))
    assert [i.id for i in incidents] == ["PT4KHLK"]
    assert len(httpx_mock.get_requests()) == 2


async def test_a_list_without_its_key_is_a_parse_error(creds, httpx_mock):
    httpx_mock.add_response(url=url("/incidents"), json={"error": "nope"})
    async with connector(creds) as pd:
        with pytest.raises(ConnectorParseError, match="'incidents'"):
            await collect(pd.list_incidents(since=JAN_1, until=JAN_2))


# --- credentials ---------------------------------------------------------------------------------------

def test_from_env_names_the_missing_token():
    with pytest.raises(ConnectorAuthError, match="PAGERDUTY_API_TOKEN"):
        PagerDutyConnector()


def test_from_env_reads_every_setting_and_hides_secrets(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", TOKEN)
    monkeypatch.setenv("PAGERDUTY_FROM_EMAIL", FROM)
    monkeypatch.setenv("PAGERDUTY_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("ARAGORA_PAGERDUTY_BASE_URL", "https://api.eu.pagerduty.com")
    pd = PagerDutyConnector()
    assert (pd.credentials.api_token, pd.credentials.from_email, pd.credentials.webhook_secret) == (TOKEN, FROM, SECRET)
    assert pd.base_url == "https://api.eu.pagerduty.com"
    assert TOKEN not in repr(pd.credentials) and SECRET not in repr(pd.credentials)
    monkeypatch.delenv("ARAGORA_PAGERDUTY_BASE_URL")
    assert PagerDutyConnector().base_url == "https://api.pagerduty.com"


# --- v3 webhooks ------------------------------------------------------------------------------------------

OCCURRED = datetime(2020, 10, 2, 18, 45, 22, 169000, tzinfo=UTC)
NOW = OCCURRED.timestamp() + 5


def webhook_body(occurred: str | None = "2020-10-02T18:45:22.169Z") -> bytes:
    event: dict[str, Any] = {
        "id": "01BAJ6ZLBJ1HX7CXQKGKQUF2CH",
        "event_type": "incident.triggered",
        "resource_type": "incident",
        "agent": {"id": "PLH1HKV", "type": "user_reference"},
        "client": None,
        "data": {
            "id": "PGR0VU2", "type": "incident", "number": 2, "status": "triggered", "urgency": "high",
            "title": "A little bump in the road", "created_at": "2020-04-09T15:16:27Z",
            "service": {"id": "PF9KMXH", "type": "service_reference", "summary": "API Service"},
            "assignees": [{"id": "PTUXL6G", "type": "user_reference"}],
            "priority": {"id": "PSO75BM", "type": "priority_reference", "summary": "P1"},
        },
    }
    if occurred is not None:
        event["occurred_at"] = occurred
    return json.dumps({"event": event}).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_valid_signature_passes():
    body = webhook_body()
    verify_signature(body, {"X-PagerDuty-Signature": sign(body)}, SECRET, now=NOW)


def test_tampered_body_is_refused():
    body = webhook_body()
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(body.replace(b"high", b"low"), {"X-PagerDuty-Signature": sign(body)}, SECRET, now=NOW)


def test_wrong_secret_is_refused():
    body = webhook_body()
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(body, {"X-PagerDuty-Signature": sign(body, "some-other-secret")}, SECRET, now=NOW)


def test_stale_occurred_at_is_refused_unless_the_check_is_disabled():
    body = webhook_body()
    headers = {"x-pagerduty-signature": sign(body)}
    with pytest.raises(ConnectorAuthError, match="stale"):
        verify_signature(body, headers, SECRET, now=OCCURRED.timestamp() + 301)
    verify_signature(body, headers, SECRET, now=OCCURRED.timestamp() + 301, tolerance=None)
    with pytest.raises(ConnectorAuthError, match=r"no ISO 8601 event\.occurred_at"):  # no time: its age is unknown
        verify_signature(webhook_body(occurred=None), {"X-PagerDuty-Signature": sign(webhook_body(None))}, SECRET,
                         now=OCCURRED.timestamp() + 10**6)


def test_any_of_several_signatures_may_match():
    body = webhook_body()
    header = f"{sign(body, 'rotated-out-secret')}, v1=deadbeef,{sign(body)}"
    verify_signature(body, {"X-PagerDuty-Signature": header}, SECRET, now=NOW)
    with pytest.raises(ConnectorAuthError):
        verify_signature(body, {"X-PagerDuty-Signature": f"{sign(body, 'x' * 12)},v1=00"}, SECRET, now=NOW)


def test_missing_header_scheme_or_secret_is_refused():
    body = webhook_body()
    digest = sign(body)[3:]
    with pytest.raises(ConnectorAuthError, match="X-PagerDuty-Signature"):
        verify_signature(body, {}, SECRET, now=NOW)
    with pytest.raises(ConnectorAuthError, match="X-PagerDuty-Signature"):
        verify_signature(body, {"X-PagerDuty-Signature": f"v0={digest}"}, SECRET, now=NOW)
    with pytest.raises(ConnectorAuthError, match="PAGERDUTY_WEBHOOK_SECRET"):
        verify_signature(body, {"X-PagerDuty-Signature": sign(body)}, "", now=NOW)


def test_parse_event_returns_a_typed_incident_event():
    event = parse_event(webhook_body())
    assert (event.id, event.event_type, event.resource_type) == (
        "01BAJ6ZLBJ1HX7CXQKGKQUF2CH", "incident.triggered", "incident"
    )
    assert event.occurred_at == OCCURRED
    assert (event.agent_id, event.agent_type) == ("PLH1HKV", "user_reference")
    assert isinstance(event.incident, Incident)
    inc = event.incident
    assert (inc.id, inc.incident_number, inc.urgency, inc.service_id, inc.priority) == (
        "PGR0VU2", 2, "high", "PF9KMXH", "P1"
    )
    assert inc.assignee_ids == ["PTUXL6G"]
    with pytest.raises(ConnectorParseError):
        parse_event(b"not json")
    with pytest.raises(ConnectorParseError, match="event_type"):
        parse_event(json.dumps({"event": {"id": "x"}}).encode())
