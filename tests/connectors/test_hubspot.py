"""HubSpot connector: typed CRM models from recorded bodies, list/search paging, window splitting, CRUD, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.hubspot import (
    Contact,
    Deal,
    HubSpotConnector,
    HubSpotCredentials,
    HubSpotEvent,
    Ticket,
    encode_properties,
    parse_event,
    verify_signature,
)

TOKEN = "pat-eu1-11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
FAST: dict[str, Any] = {
    "base_delay": 0.01, "max_delay": 0.05, "rate_limit": (1000.0, 1.0), "search_rate_limit": (1000.0, 1.0),
}
API = "https://api.hubapi.com"
WEBHOOK_URI = "https://example.com/hubspot/webhook"
# HubSpot's documented sample webhook body (developers.hubspot.com, request validation).
SAMPLE_EVENTS = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
DAY = (datetime(2026, 2, 25, tzinfo=UTC), datetime(2026, 2, 26, tzinfo=UTC))


@pytest.fixture
def creds() -> HubSpotCredentials:
    return HubSpotCredentials(access_token=TOKEN, client_secret=CLIENT_SECRET)


def make(creds: HubSpotCredentials, cls: type[HubSpotConnector] = HubSpotConnector, **kwargs: Any) -> HubSpotConnector:
    return cls(creds, **{**FAST, **kwargs})


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def search_body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


def window_of(request: httpx.Request) -> tuple[str | None, str | None, str]:
    filters = search_body(request)["filterGroups"][0]["filters"]
    by_op = {f["operator"]: f for f in filters}
    prop = {f["propertyName"] for f in filters}.pop()
    return by_op.get("GTE", {}).get("value"), by_op.get("LT", {}).get("value"), prop


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


# --- listing without a window: GET with the after cursor -------------------------------------

async def test_contacts_list_maps_recorded_body(creds, httpx_mock, realapi):
    body = realapi("hubspot/contacts_list_v3.json")
    httpx_mock.add_response(method="GET", json=body)
    async with make(creds) as hubspot:
        contacts = await collect(hubspot.list_contacts())
    assert len(contacts) == 26 and all(isinstance(c, Contact) for c in contacts)
    first = contacts[0]
    assert first.id == "713492963559"
    assert first.email == "test-contact-2026@example.com"
    assert (first.first_name, first.last_name, first.company) == ("Updated", "Contact", "Test Company Inc")
    assert first.phone == "+1234567890" and first.job_title is None
    assert first.created_at == datetime(2026, 2, 25, 16, 23, 49, 23_000, tzinfo=UTC)
    assert first.updated_at == datetime(2026, 3, 12, 10, 4, 17, 969_000, tzinfo=UTC)
    assert first.archived is False and first.url.endswith("/713492963559")
    assert first.raw == body["results"][0]
    request = httpx_mock.get_request()
    assert request.url.path == "/crm/v3/objects/contacts"
    assert request.url.params["limit"] == "100" and request.url.params["archived"] == "false"
    requested = request.url.params["properties"].split(",")
    assert {"email", "firstname", "lastname", "lastmodifieddate"} <= set(requested)
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_list_follows_paging_next_after(creds, httpx_mock, realapi):
    results = realapi("hubspot/contacts_list_v3.json")["results"]
    httpx_mock.add_response(json={"results": results[:13], "paging": {"next": {"after": "13", "link": "x"}}})
    httpx_mock.add_response(json={"results": results[13:]})
    async with make(creds) as hubspot:
        contacts = await collect(hubspot.iter_objects("contacts"))
    assert [c.id for c in contacts] == [r["id"] for r in results]
    first, second = httpx_mock.get_requests()
    assert "after" not in first.url.params and second.url.params["after"] == "13"


async def test_list_limit_stops_early_and_sizes_the_page(creds, httpx_mock, realapi):
    results = realapi("hubspot/contacts_list_v3.json")["results"]
    httpx_mock.add_response(json={"results": results[:5], "paging": {"next": {"after": "5"}}})
    async with make(creds) as hubspot:
        contacts = await collect(hubspot.list_contacts(limit=5))
    assert len(contacts) == 5
    assert httpx_mock.get_request().url.params["limit"] == "5"


async def test_list_repeated_cursor_raises(creds, httpx_mock, realapi):
    results = realapi("hubspot/contacts_list_v3.json")["results"]
    httpx_mock.add_response(json={"results": results[:2], "paging": {"next": {"after": "2"}}}, is_reusable=True)
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(hubspot.list_contacts())
    assert len(httpx_mock.get_requests()) == 2


async def test_custom_properties_are_requested(creds, httpx_mock):
    httpx_mock.add_response(json={"results": []})
    async with make(creds) as hubspot:
        await collect(hubspot.list_companies(properties=["name", "numberofemployees"]))
    assert httpx_mock.get_request().url.params["properties"] == "name,numberofemployees,hs_lastmodifieddate"


# --- listing with a window: the search API -----------------------------------------------------

async def test_deals_window_searches_hs_lastmodifieddate_and_pages(creds, httpx_mock, realapi):
    first_page = realapi("hubspot/deals_search_v3_paged.json")
    rest = [dict(r, id=f"9{r['id']}") for r in first_page["results"]]
    httpx_mock.add_response(method="POST", json=first_page)
    httpx_mock.add_response(method="POST", json={"total": 21, "results": rest})
    async with make(creds) as hubspot:
        deals = await collect(hubspot.list_deals(since=DAY[0], until=DAY[1]))
    assert len(deals) == 10 and all(isinstance(d, Deal) for d in deals)
    first = deals[0]
    assert first.id == "479475667160" and first.name == "Test Deal Updated via Action"
    assert first.amount == Decimal("3000") and isinstance(first.amount, Decimal)
    assert deals[1].amount == Decimal("5000.00")
    assert first.stage == "appointmentscheduled" and first.pipeline == "default" and first.close_date is None
    assert first.updated_at == datetime(2026, 3, 9, 20, 29, 45, 981_000, tzinfo=UTC)
    one, two = httpx_mock.get_requests()
    assert one.url.path == "/crm/v3/objects/deals/search" and one.method == "POST"
    sent = search_body(one)
    assert window_of(one) == (str(ms(DAY[0])), str(ms(DAY[1])), "hs_lastmodifieddate")
    assert sent["sorts"] == [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    assert {"dealname", "amount", "dealstage"} <= set(sent["properties"]) and sent["limit"] == 200
    assert "after" not in sent and search_body(two)["after"] == "5"
    assert window_of(two) == window_of(one)


async def test_contacts_window_uses_lastmodifieddate(creds, httpx_mock):
    httpx_mock.add_response(method="POST", json={"total": 0, "results": []})
    async with make(creds) as hubspot:
        await collect(hubspot.iter_objects("contacts", since=DAY[0]))
    assert window_of(httpx_mock.get_request()) == (str(ms(DAY[0])), None, "lastmodifieddate")


async def test_fractional_window_bounds_round_up_to_the_millisecond(creds, httpx_mock):
    httpx_mock.add_response(method="POST", json={"total": 0, "results": []})
    async with make(creds) as hubspot:
        await collect(hubspot.list_tickets(until=DAY[1] + timedelta(microseconds=1)))
    assert window_of(httpx_mock.get_request()) == (None, str(ms(DAY[1]) + 1), "hs_lastmodifieddate")


async def test_tickets_search_maps_recorded_body(creds, httpx_mock, realapi):
    body = realapi("hubspot/tickets_search_v3_paged.json")
    httpx_mock.add_response(method="POST", json=body)
    async with make(creds) as hubspot:
        tickets = await collect(hubspot.list_tickets(since=DAY[0], until=DAY[1], limit=10))
    assert len(tickets) == 10 and all(isinstance(t, Ticket) for t in tickets)
    assert tickets[0].subject == "HubSpot - New Issue (Sample Ticket)" and tickets[0].content is None
    second = tickets[1]
    assert second.id == "394413098217" and second.priority == "MEDIUM"
    assert (second.pipeline, second.stage) == ("0", "1")
    assert second.content == "This is a test ticket created via API"
    assert len(httpx_mock.get_requests()) == 1  # the limit was reached on the first page


async def test_search_repeated_cursor_raises(creds, httpx_mock, realapi):
    httpx_mock.add_response(method="POST", json=realapi("hubspot/deals_search_v3_paged.json"), is_reusable=True)
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(hubspot.list_deals(since=DAY[0], until=DAY[1]))


async def test_window_over_the_10000_cap_is_halved(creds, httpx_mock, realapi):
    deals = realapi("hubspot/deals_search_v3_paged.json")["results"]
    httpx_mock.add_response(method="POST", json={"total": 10_001, "results": deals[:1]})
    httpx_mock.add_response(method="POST", json={"total": 2, "results": deals[:2]})
    httpx_mock.add_response(method="POST", json={"total": 3, "results": deals[2:5]})
    async with make(creds) as hubspot:
        result = await collect(hubspot.list_deals(since=DAY[0], until=DAY[1]))
    assert [d.id for d in result] == [d["id"] for d in deals[:5]]
    lo, hi = ms(DAY[0]), ms(DAY[1])
    middle = (lo + hi) // 2
    assert [window_of(r)[:2] for r in httpx_mock.get_requests()] == [
        (str(lo), str(hi)), (str(lo), str(middle)), (str(middle), str(hi)),
    ]


async def test_open_window_over_the_cap_starts_at_the_oldest_result(creds, httpx_mock, realapi):
    deals = realapi("hubspot/deals_search_v3_paged.json")["results"]
    oldest = ms(datetime(2026, 2, 26, 13, 45, 43, 181_000, tzinfo=UTC))  # deals[1] hs_lastmodifieddate
    httpx_mock.add_response(method="POST", json={"total": 20_000, "results": [deals[1]]})
    httpx_mock.add_response(method="POST", json={"total": 1, "results": [deals[1]]})
    httpx_mock.add_response(method="POST", json={"total": 0, "results": []})
    async with make(creds) as hubspot:
        result = await collect(hubspot.list_deals(until=DAY[1] + timedelta(days=30)))
    assert [d.id for d in result] == [deals[1]["id"]]
    windows = [window_of(r)[:2] for r in httpx_mock.get_requests()]
    hi = ms(DAY[1] + timedelta(days=30))
    assert windows == [(None, str(hi)), (str(oldest), str((oldest + hi) // 2)), (str((oldest + hi) // 2), str(hi))]


async def test_a_window_too_small_to_split_raises(creds, httpx_mock):
    httpx_mock.add_response(method="POST", json={"total": 10_001, "results": []})
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorAPIError, match="cannot be split"):
            await collect(hubspot.list_deals(since=DAY[0], until=DAY[0] + timedelta(milliseconds=1)))


class SmallCap(HubSpotConnector):
    """The same connector with a tiny search cap and page, so splitting recurses over a small dataset."""

    SEARCH_RESULT_CAP = 7
    SEARCH_PAGE_SIZE = 3


def fake_search(stamps: list[int], cap: int) -> Any:
    """A HubSpot search endpoint over deals modified at ``stamps``: filters, ascending sort, after, total,
    and, like HubSpot, a 400 for any page past ``cap`` results."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = search_body(request)
        filters = {f["operator"]: int(f["value"]) for f in body["filterGroups"][0]["filters"]}
        lo, hi = filters.get("GTE", -math.inf), filters.get("LT", math.inf)
        matching = sorted(s for s in stamps if lo <= s < hi)
        start = int(body.get("after", 0))
        if start + body["limit"] > cap:
            return httpx.Response(400, json={"status": "error", "message": f"cannot page past {cap} results"})
        chunk = matching[start : start + body["limit"]]
        answer: dict[str, Any] = {"total": len(matching), "results": [
            {"id": str(s), "properties": {"hs_lastmodifieddate": str(s), "amount": "1.50"},
             "createdAt": "2026-01-01T00:00:00Z", "updatedAt": datetime.fromtimestamp(s / 1000, UTC).isoformat()}
            for s in chunk
        ]}
        if start + len(chunk) < len(matching):
            answer["paging"] = {"next": {"after": str(start + len(chunk))}}
        return httpx.Response(200, json=answer)

    return respond


async def test_recursive_splitting_returns_each_object_once(creds, httpx_mock):
    base = ms(DAY[0])
    stamps = [base + i * 997_003 % 86_400_000 for i in range(60)]
    httpx_mock.add_callback(fake_search(stamps, SmallCap.SEARCH_RESULT_CAP), method="POST", is_reusable=True)
    async with make(creds, SmallCap) as hubspot:
        deals = await collect(hubspot.list_deals(since=DAY[0] + timedelta(hours=1), until=DAY[1]))
    expected = sorted(s for s in stamps if base + 3_600_000 <= s < base + 86_400_000)
    assert len(expected) > 5 * SmallCap.SEARCH_RESULT_CAP  # several levels of halving were needed
    assert [int(d.id) for d in deals] == expected  # exactly the window, ascending, no duplicates
    assert all(d.amount == Decimal("1.50") for d in deals)


async def test_search_is_paced_by_its_own_rate_limit(creds, httpx_mock, realapi):
    first = realapi("hubspot/deals_search_v3_paged.json")
    httpx_mock.add_response(method="POST", json=first)
    httpx_mock.add_response(method="POST", json={"total": 21, "results": [], "paging": {"next": {"after": "10"}}})
    httpx_mock.add_response(method="POST", json={"total": 21, "results": []})
    async with make(creds, search_rate_limit=(10.0, 1.0)) as hubspot:
        started = time.monotonic()
        await collect(hubspot.list_deals(since=DAY[0]))
        elapsed = time.monotonic() - started
    assert elapsed >= 0.19  # three searches at 10/s: two full intervals
    assert HubSpotConnector.SEARCH_RATE_LIMIT == (4.0, 1.0) and HubSpotConnector.RATE_LIMIT == (100.0, 10.0)
    assert HubSpotConnector(creds).search_rate_limit == (4.0, 1.0)


@pytest.mark.parametrize("limit", [0, -3, 1.5])
async def test_bad_limit_is_rejected(creds, limit):
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorValidationError, match="limit"):
            await collect(hubspot.iter_objects("deals", limit=limit))


async def test_unknown_object_type_and_empty_window_are_rejected(creds):
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorValidationError, match="unknown HubSpot object type 'leads'"):
            await collect(hubspot.iter_objects("leads"))
        with pytest.raises(ConnectorValidationError, match="must be before until"):
            await collect(hubspot.iter_objects("deals", since=DAY[1], until=DAY[0]))


def test_object_types_cover_the_issue():
    assert HubSpotConnector.OBJECT_TYPES == ("contacts", "companies", "deals", "tickets")


# --- single objects ---------------------------------------------------------------------------

async def test_get_deal_by_id(creds, httpx_mock, realapi):
    deal = realapi("hubspot/deals_search_v3_paged.json")["results"][1]
    httpx_mock.add_response(method="GET", json=deal)
    async with make(creds) as hubspot:
        result = await hubspot.get_deal("480202228957")
    assert result.name == "Test Deal - Feb 26 2026" and result.amount == Decimal("5000.00")
    request = httpx_mock.get_request()
    assert request.url.path == "/crm/v3/objects/deals/480202228957"
    assert "amount" in request.url.params["properties"].split(",")


async def test_a_redirect_within_the_api_is_followed_and_one_elsewhere_refused(creds, httpx_mock, realapi):
    deal = realapi("hubspot/deals_search_v3_paged.json")["results"][1]
    moved = f"{API}/crm/v3/objects/deals/480202228957?properties=amount"
    httpx_mock.add_response(url=re.compile(r".*/deals/1\?.*"), status_code=301, headers={"Location": moved})
    httpx_mock.add_response(url=moved, json=deal)
    httpx_mock.add_response(url=re.compile(r".*/deals/2\?.*"), status_code=302,
                            headers={"Location": "https://elsewhere.example/deals/2"})
    async with make(creds) as hubspot:
        assert (await hubspot.get_deal("1")).name == "Test Deal - Feb 26 2026"
        with pytest.raises(ConnectorAPIError, match=r"to https://elsewhere\.example/deals/2 leaves https://api\.hubapi"):
            await hubspot.get_deal("2")
    requests = httpx_mock.get_requests()
    assert len(requests) == 3 and requests[1].headers["Authorization"] == f"Bearer {TOKEN}"


async def test_create_contact_posts_properties(creds, httpx_mock, realapi):
    contact = realapi("hubspot/contacts_list_v3.json")["results"][0]
    httpx_mock.add_response(method="POST", url=f"{API}/crm/v3/objects/contacts", json=contact, status_code=201)
    async with make(creds) as hubspot:
        created = await hubspot.create_contact({"email": "test-contact-2026@example.com", "firstname": "Updated"})
    assert created.id == "713492963559"
    assert json.loads(httpx_mock.get_request().content) == {
        "properties": {"email": "test-contact-2026@example.com", "firstname": "Updated"}
    }


async def test_update_deal_patches_with_decimal_amount(creds, httpx_mock, realapi):
    deal = realapi("hubspot/deals_search_v3_paged.json")["results"][0]
    httpx_mock.add_response(method="PATCH", url=f"{API}/crm/v3/objects/deals/479475667160", json=deal)
    async with make(creds) as hubspot:
        await hubspot.update_deal("479475667160", {"amount": Decimal("10.99"), "closedate": None})
    assert json.loads(httpx_mock.get_request().content) == {"properties": {"amount": "10.99", "closedate": ""}}


async def test_archive_is_a_delete(creds, httpx_mock):
    httpx_mock.add_response(method="DELETE", url=f"{API}/crm/v3/objects/tickets/394413098217", status_code=204)
    async with make(creds) as hubspot:
        assert await hubspot.archive_object("tickets", "394413098217") is None


def test_encode_properties_refuses_floats():
    assert encode_properties({"flag": True, "when": datetime(2026, 1, 1, tzinfo=UTC), "n": 3}) == {
        "flag": "true", "when": "2026-01-01T00:00:00.000Z", "n": "3",
    }
    with pytest.raises(ConnectorValidationError, match="float"):
        encode_properties({"amount": 10.99})


def test_unreadable_deal_amount_is_a_parse_error(realapi):
    deal = realapi("hubspot/deals_search_v3_paged.json")["results"][0]
    deal["properties"]["amount"] = "three thousand"
    with pytest.raises(ConnectorParseError, match="amount"):
        Deal.from_api(deal)


# --- errors, credentials, base URL ------------------------------------------------------------

async def test_401_is_auth_error_without_the_token(creds, httpx_mock):
    httpx_mock.add_response(status_code=401, json={"status": "error", "message": f"Authentication failed for {TOKEN}",
                                                   "category": "INVALID_AUTHENTICATION"})
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorAuthError) as info:
            await collect(hubspot.list_contacts())
    assert info.value.status_code == 401 and TOKEN not in str(info.value) and TOKEN not in repr(info.value)


async def test_404_is_not_found(creds, httpx_mock):
    httpx_mock.add_response(status_code=404, json={"status": "error", "message": "Object not found"})
    async with make(creds) as hubspot:
        with pytest.raises(ConnectorNotFoundError, match="Object not found"):
            await hubspot.get_contact("1")


async def test_429_with_retry_after_is_retried(creds, httpx_mock, realapi):
    httpx_mock.add_response(method="POST", status_code=429, headers={"Retry-After": "0"},
                            json={"status": "error", "message": "You have reached your secondly limit."})
    httpx_mock.add_response(method="POST", json=realapi("hubspot/tickets_search_v3_paged.json"))
    async with make(creds) as hubspot:
        tickets = await collect(hubspot.list_tickets(since=DAY[0], limit=10))
    assert len(tickets) == 10 and len(httpx_mock.get_requests()) == 2


def test_credentials_repr_hides_secrets(creds):
    text = repr(creds)
    assert TOKEN not in text and CLIENT_SECRET not in text and "api.hubapi.com" in text


def test_credentials_from_env_and_missing_token(monkeypatch):
    with pytest.raises(ConnectorAuthError, match="HUBSPOT_ACCESS_TOKEN"):
        HubSpotConnector()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", CLIENT_SECRET)
    assert HubSpotCredentials.from_env() == HubSpotCredentials(TOKEN, client_secret=CLIENT_SECRET)


def test_base_url_precedence(creds, monkeypatch):
    monkeypatch.setenv("ARAGORA_HUBSPOT_BASE_URL", "http://from-env.local")
    assert HubSpotConnector(creds).base_url == "http://from-env.local"
    regional = HubSpotCredentials(TOKEN, base_url="https://api-eu1.hubapi.com/")
    assert HubSpotConnector(regional).base_url == "https://api-eu1.hubapi.com"
    assert HubSpotConnector(regional, base_url="http://mock.local").base_url == "http://mock.local"


# --- webhooks (signature v3) ------------------------------------------------------------------

def sign(body: bytes, *, method: str = "POST", uri: str = WEBHOOK_URI, secret: str = CLIENT_SECRET,
         timestamp_ms: int | None = None) -> dict[str, str]:
    """Sign as HubSpot documents it, computed here independently of the code under test."""
    ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    digest = hmac.new(secret.encode(), method.encode() + uri.encode() + body + ts.encode(), hashlib.sha256).digest()
    return {"X-HubSpot-Signature-v3": base64.b64encode(digest).decode(), "X-HubSpot-Request-Timestamp": ts}


def test_valid_signature_verifies_and_events_parse():
    verify_signature(SAMPLE_EVENTS, sign(SAMPLE_EVENTS), CLIENT_SECRET, method="POST", uri=WEBHOOK_URI)
    [event] = parse_event(SAMPLE_EVENTS)
    assert isinstance(event, HubSpotEvent)
    assert (event.id, event.subscription_type, event.object_type, event.object_id) == (
        "1", "contact.creation", "contacts", "123"
    )
    assert event.occurred_at == datetime(2019, 7, 26, 4, 0, tzinfo=UTC)
    assert (event.portal_id, event.app_id, event.attempt_number) == ("62515", "54321", 0)


def test_tampered_body_is_rejected():
    headers = sign(SAMPLE_EVENTS)
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(SAMPLE_EVENTS.replace(b"123", b"124"), headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI)


def test_wrong_secret_method_or_uri_is_rejected():
    headers = sign(SAMPLE_EVENTS, secret="zzzzzzzz-other-secret")
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI)
    headers = sign(SAMPLE_EVENTS)
    with pytest.raises(ConnectorAuthError):
        verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="PUT", uri=WEBHOOK_URI)
    with pytest.raises(ConnectorAuthError):
        verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI + "?x=1")


def test_stale_timestamp_is_rejected():
    sent_ms = 1_700_000_000_000
    headers = sign(SAMPLE_EVENTS, timestamp_ms=sent_ms)
    with pytest.raises(ConnectorAuthError, match="stale"):
        verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI,
                         now=sent_ms / 1000 + 301)
    verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI, now=sent_ms / 1000 + 299)


def test_uri_escapes_in_hubspots_table_are_decoded_before_signing():
    headers = sign(SAMPLE_EVENTS, uri="https://example.com/hook?source=hub:spot,eu&x=%20")
    verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="post",
                     uri="https://example.com/hook?source=hub%3aspot%2Ceu&x=%20")


# HubSpot's table of escapes decoded in the URI before signing, from "Validate the v3 request signature" at
# https://developers.hubspot.com/docs/apps/developer-platform/build-apps/authentication/request-validation
DOCUMENTED_URI_DECODES = {
    "%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$",
    "%27": "'", "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";",
}


@pytest.mark.parametrize(("escape", "char"), sorted(DOCUMENTED_URI_DECODES.items()))
def test_every_escape_in_hubspots_documented_table_is_decoded(escape: str, char: str) -> None:
    headers = sign(SAMPLE_EVENTS, uri=f"https://example.com/hook?v=a{char}b")
    verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=f"https://example.com/hook?v=a{escape}b")


@pytest.mark.parametrize("escape", ["%20", "%23", "%25", "%26", "%2B", "%3D", "%5B", "%7E"])
def test_escapes_outside_the_documented_table_are_signed_as_sent(escape: str) -> None:
    uri = f"https://example.com/hook?v=a{escape}b"
    verify_signature(SAMPLE_EVENTS, sign(SAMPLE_EVENTS, uri=uri), CLIENT_SECRET, method="POST", uri=uri)
    decoded = sign(SAMPLE_EVENTS, uri=uri.replace(escape, bytes.fromhex(escape[1:]).decode()))
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(SAMPLE_EVENTS, decoded, CLIENT_SECRET, method="POST", uri=uri)


def test_hubspots_published_v3_example_verifies() -> None:
    # HubSpot's own client pins this v3 example (hubspot-api-python, tests/spec/utils/test_signature.py,
    # test_get_signature__v3): the docs' secret, URI and method, its example body, timestamp 15000000 ms.
    headers = {"X-HubSpot-Signature-v3": "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=",
               "X-HubSpot-Request-Timestamp": "15000000"}
    body = b"{'example_field':'example_value'}"
    verify_signature(body, headers, "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", method="POST",
                     uri="https://www.example.com/webhook_uri", now=15000.0)
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(body, headers, "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", method="POST",
                         uri="https://www.example.com/webhook_uri/", now=15000.0)


@pytest.mark.parametrize("drop", ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"])
def test_missing_header_is_rejected(drop):
    headers = {k: v for k, v in sign(SAMPLE_EVENTS).items() if k != drop}
    with pytest.raises(ConnectorAuthError, match="missing"):
        verify_signature(SAMPLE_EVENTS, headers, CLIENT_SECRET, method="POST", uri=WEBHOOK_URI)


def test_connector_verify_webhook_uses_the_client_secret(creds):
    events = make(creds).verify_webhook(SAMPLE_EVENTS, sign(SAMPLE_EVENTS), method="POST", uri=WEBHOOK_URI)
    assert [e.id for e in events] == ["1"]
    with pytest.raises(ConnectorAuthError, match="HUBSPOT_CLIENT_SECRET"):
        make(HubSpotCredentials(TOKEN)).verify_webhook(SAMPLE_EVENTS, sign(SAMPLE_EVENTS), method="POST",
                                                       uri=WEBHOOK_URI)


def test_parse_event_rejects_bad_bodies():
    with pytest.raises(ConnectorParseError, match="not JSON"):
        parse_event(b"[{")
    with pytest.raises(ConnectorParseError, match="eventId"):
        parse_event(b'[{"objectId": 1}]')
