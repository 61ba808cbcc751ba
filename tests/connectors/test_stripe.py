"""Stripe connector: typed models from recorded bodies, pagination, windows, CRUD, idempotency, webhooks."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)
from connectors.stripe import (
    Charge,
    Customer,
    PaymentIntent,
    StripeConnector,
    StripeCredentials,
    StripeEvent,
    encode_form,
    parse_event,
    verify_signature,
)
from connectors.webhooks import hmac_sha256_hex

SECRET_KEY = "sk_test_51NzTestKeyAbcdefGhijklmnop"
WEBHOOK_SECRET = "whsec_testEndpointSecret0123"
FAST: dict[str, Any] = {"base_delay": 0.01, "max_delay": 0.05, "rate_limit": (1000.0, 1.0)}
API = "https://api.stripe.com"


@pytest.fixture
def creds() -> StripeCredentials:
    return StripeCredentials(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET)


def make(creds: StripeCredentials, **kwargs: Any) -> StripeConnector:
    return StripeConnector(creds, **{**FAST, **kwargs})


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {"object": "list", "url": "/v1/customers", "data": data, "has_more": has_more}


def customers(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"id": f"cus_{i:06d}", "object": "customer", "created": 1_700_000_000 - i} for i in range(start, start + n)]


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


# --- typed models from recorded real bodies ---------------------------------------------------

async def test_customers_list_maps_recorded_body(creds, httpx_mock, realapi):
    body = realapi("stripe/customers_list.json")
    httpx_mock.add_response(url=f"{API}/v1/customers?limit=100", json=body)
    async with make(creds) as stripe:
        result = await collect(stripe.list_customers())
    assert [c.id for c in result] == [c["id"] for c in body["data"]]
    first = result[0]
    assert isinstance(first, Customer)
    assert first.id == "cus_Uaekz7QozWkTzF"
    assert first.email == "test@example.com"
    assert first.currency == "usd" and first.balance == 0
    assert first.created_at == datetime(2026, 5, 26, 22, 27, 5, tzinfo=UTC)  # created 1779834425
    assert first.raw == body["data"][0]
    assert result[2].email is None
    assert result[3].currency is None  # cus_UaedCimNyxl5H2 has no currency yet
    request = httpx_mock.get_request()
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert "aragora-pipelines" in request.headers["User-Agent"]


async def test_payment_intents_keep_integer_minor_units(creds, httpx_mock, realapi):
    body = realapi("stripe/payment_intents_list.json")
    httpx_mock.add_response(url=f"{API}/v1/payment_intents?limit=100", json=body)
    async with make(creds) as stripe:
        intents = await collect(stripe.iter_objects("payment_intents"))
    assert len(intents) == 29 and all(isinstance(p, PaymentIntent) for p in intents)
    assert all(type(p.amount) is int for p in intents)
    first = intents[0]
    assert (first.id, first.amount, first.currency, first.status) == ("pi_3TbTWDEZpD6kXrae0vjEKN0y", 1000, "usd",
                                                                       "canceled")
    assert first.customer_id == "cus_UaepkMAC4Sf8Di"
    assert first.canceled_at == datetime.fromtimestamp(1779834746, UTC)
    assert first.cancellation_reason == "void_invoice"
    assert intents[2].amount == 5000 and intents[2].status == "succeeded"


async def test_charges_list_docs_example(creds, httpx_mock, realapi):
    httpx_mock.add_response(url=f"{API}/v1/charges?limit=100", json=realapi("stripe/charges_list_docs_example.json"))
    async with make(creds) as stripe:
        [charge] = await collect(stripe.list_charges())
    assert isinstance(charge, Charge)
    assert charge.id == "ch_3MmlLrLkdIwHu7ix0snN0B15"
    assert (charge.amount, charge.amount_captured, charge.amount_refunded, charge.currency) == (1099, 1099, 0, "usd")
    assert charge.status == "succeeded" and charge.paid is True and charge.captured is True
    assert charge.payment_method_type == "card"
    assert charge.created_at == datetime.fromtimestamp(1679090539, UTC)


async def test_get_charge_fixture_by_id(creds, httpx_mock, realapi):
    fixture = realapi("stripe/charge_object_fixture.json")
    httpx_mock.add_response(url=f"{API}/v1/charges/ch_1PgafuB7WZ01zgkWXYmPNZs8", json=fixture)
    async with make(creds) as stripe:
        charge = await stripe.get_charge("ch_1PgafuB7WZ01zgkWXYmPNZs8")
    assert charge.billing_name == "Jenny Rosen"
    assert charge.amount == 100 and charge.captured is False
    assert charge.description == "My First Test Charge (created for API docs)"
    assert charge.created_at == datetime(2009, 2, 13, 23, 31, 30, tzinfo=UTC)
    assert charge.raw["payment_method_details"]["card"]["last4"] == "4242"  # nothing is lost


async def test_get_customer_fixture_keeps_raw(creds, httpx_mock, realapi):
    fixture = realapi("stripe/customer_object_fixture.json")
    httpx_mock.add_response(url=f"{API}/v1/customers/cus_QXg1o8vcGmoR32", json=fixture)
    async with make(creds) as stripe:
        customer = await stripe.get_customer("cus_QXg1o8vcGmoR32")
    assert customer.id == "cus_QXg1o8vcGmoR32" and customer.currency == "usd"
    assert customer.email is None and customer.delinquent is False and customer.deleted is False
    assert customer.raw["discount"]["id"] == "obj_123"


def test_event_fixture_parses_as_typed_event(realapi):
    event = StripeEvent.from_api(realapi("stripe/event_object_fixture.json"))
    assert event.id == "evt_1Pgc76B7WZ01zgkWwyRHS12y" and event.type == "plan.created"
    assert event.object_type == "plan" and event.object_id == "price_1PgafmB7WZ01zgkW6dKueIc5"
    assert event.data_object["amount"] == 2000
    assert event.typed_object() is None  # plans have no model; the object stays in data_object


def test_event_typed_object_builds_the_carried_model(realapi):
    event = realapi("stripe/event_object_fixture.json")
    event["type"] = "customer.updated"
    event["data"] = {"object": realapi("stripe/customer_object_fixture.json"), "previous_attributes": {"name": "A"}}
    parsed = StripeEvent.from_api(event)
    customer = parsed.typed_object()
    assert isinstance(customer, Customer) and customer.id == "cus_QXg1o8vcGmoR32"
    assert parsed.previous_attributes == {"name": "A"}


def test_float_amount_is_a_parse_error(realapi):
    charge = realapi("stripe/charge_object_fixture.json")
    charge["amount"] = 10.99
    with pytest.raises(ConnectorParseError, match="integer amount in minor units"):
        Charge.from_api(charge)


def test_wrong_object_type_is_a_parse_error(realapi):
    with pytest.raises(ConnectorParseError, match="expected a Stripe customer"):
        Customer.from_api(realapi("stripe/charge_object_fixture.json"))


# --- pagination, limits, windows ------------------------------------------------------------

async def test_pagination_follows_starting_after_to_the_end(creds, httpx_mock, realapi):
    data = realapi("stripe/customers_list.json")["data"]
    for chunk, more in ((data[:4], True), (data[4:8], True), (data[8:], False)):
        httpx_mock.add_response(json=page(chunk, more))
    async with make(creds) as stripe:
        result = await collect(stripe.list_customers())
    assert [c.id for c in result] == [c["id"] for c in data]
    requests = httpx_mock.get_requests()
    assert "starting_after" not in params(requests[0])
    assert params(requests[1])["starting_after"] == data[3]["id"]
    assert params(requests[2])["starting_after"] == data[7]["id"]


async def test_limit_is_exact_and_sizes_the_last_page(creds, httpx_mock):
    httpx_mock.add_response(json=page(customers(100), True))
    httpx_mock.add_response(json=page(customers(50, 100), True))
    async with make(creds) as stripe:
        result = await collect(stripe.iter_objects("customers", limit=150))
    assert len(result) == 150 and len({c.id for c in result}) == 150
    first, second = httpx_mock.get_requests()
    assert params(first)["limit"] == "100" and params(second)["limit"] == "50"


async def test_small_limit_asks_for_one_small_page(creds, httpx_mock):
    httpx_mock.add_response(json=page(customers(3), True))
    async with make(creds) as stripe:
        result = await collect(stripe.list_customers(limit=3))
    assert len(result) == 3
    assert params(httpx_mock.get_request())["limit"] == "3"


async def test_window_is_sent_as_created_gte_and_lt(creds, httpx_mock):
    httpx_mock.add_response(json=page([], False))
    async with make(creds) as stripe:
        window = {"since": datetime(2026, 5, 1, tzinfo=UTC), "until": datetime(2026, 5, 2, tzinfo=UTC)}
        await collect(stripe.list_charges(**window))
    sent = params(httpx_mock.get_request())
    assert sent["created[gte]"] == "1777593600" and sent["created[lt]"] == "1777680000"


async def test_window_rounds_fractional_bounds_up_and_reads_naive_as_utc(creds, httpx_mock):
    httpx_mock.add_response(json=page([], False))
    async with make(creds) as stripe:
        await collect(stripe.list_charges(since=datetime(2026, 5, 1, 0, 0, 0, 500_000)))
    sent = params(httpx_mock.get_request())
    assert sent["created[gte]"] == "1777593601" and "created[lt]" not in sent


async def test_empty_window_is_rejected(creds):
    async with make(creds) as stripe:
        with pytest.raises(ConnectorValidationError, match=r"since .* must be before until"):
            await collect(stripe.list_charges(since=datetime(2026, 5, 2, tzinfo=UTC),
                                              until=datetime(2026, 5, 1, tzinfo=UTC)))


async def test_subscriptions_list_includes_canceled(creds, httpx_mock):
    httpx_mock.add_response(json=page([], False))
    async with make(creds) as stripe:
        await collect(stripe.iter_objects("subscriptions"))
    request = httpx_mock.get_request()
    assert request.url.path == "/v1/subscriptions" and params(request)["status"] == "all"


async def test_repeated_cursor_raises_instead_of_looping(creds, httpx_mock):
    httpx_mock.add_response(json=page(customers(2), True), is_reusable=True)
    async with make(creds) as stripe:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(stripe.list_customers())
    assert len(httpx_mock.get_requests()) == 2


async def test_has_more_with_an_empty_page_raises(creds, httpx_mock):
    httpx_mock.add_response(json=page([], True))
    async with make(creds) as stripe:
        with pytest.raises(ConnectorParseError, match="has_more"):
            await collect(stripe.list_customers())


async def test_non_list_body_is_a_parse_error(creds, httpx_mock):
    httpx_mock.add_response(json={"object": "customer", "id": "cus_1"})
    async with make(creds) as stripe:
        with pytest.raises(ConnectorParseError, match="list object"):
            await collect(stripe.list_customers())


@pytest.mark.parametrize("limit", [0, -1, 2.5, True])
async def test_bad_limit_is_rejected(creds, limit):
    async with make(creds) as stripe:
        with pytest.raises(ConnectorValidationError, match="limit"):
            await collect(stripe.iter_objects("customers", limit=limit))


async def test_unknown_object_type_is_rejected(creds):
    async with make(creds) as stripe:
        with pytest.raises(ConnectorValidationError, match="unknown Stripe object type 'payouts'"):
            await collect(stripe.iter_objects("payouts"))


def test_object_types_cover_the_issue():
    assert StripeConnector.OBJECT_TYPES == (
        "customers", "charges", "payment_intents", "invoices", "subscriptions", "refunds", "events"
    )


# --- writes: form encoding, idempotency --------------------------------------------------------

async def test_create_customer_posts_nested_form_with_idempotency_key(creds, httpx_mock, realapi):
    fixture = realapi("stripe/customer_object_fixture.json")
    httpx_mock.add_response(method="POST", url=f"{API}/v1/customers", json=fixture)
    async with make(creds) as stripe:
        customer = await stripe.create_customer(email="a@example.com", metadata={"foo": "bar"}, name=None)
    assert customer.id == "cus_QXg1o8vcGmoR32"
    request = httpx_mock.get_request()
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(request.content.decode()) == {"email": ["a@example.com"], "metadata[foo]": ["bar"]}
    assert uuid.UUID(request.headers["Idempotency-Key"]).version == 4


async def test_idempotency_key_is_reused_across_retries_of_one_call(creds, httpx_mock, realapi):
    fixture = realapi("stripe/customer_object_fixture.json")
    httpx_mock.add_response(method="POST", status_code=500, json={"error": {"message": "boom"}})
    httpx_mock.add_response(method="POST", status_code=429, headers={"Retry-After": "0"})
    httpx_mock.add_response(method="POST", json=fixture)
    httpx_mock.add_response(method="POST", json=fixture)
    async with make(creds) as stripe:
        await stripe.update_customer("cus_QXg1o8vcGmoR32", name="New")
        await stripe.update_customer("cus_QXg1o8vcGmoR32", name="Newer")
    keys = [r.headers["Idempotency-Key"] for r in httpx_mock.get_requests()]
    assert keys[0] == keys[1] == keys[2]  # one logical call, three attempts
    assert keys[3] != keys[0]  # the next logical call gets its own key


async def test_caller_supplied_idempotency_key_is_sent(creds, httpx_mock, realapi):
    body = realapi("stripe/payment_intents_list.json")["data"][0]
    httpx_mock.add_response(method="POST", url=f"{API}/v1/payment_intents", json=body)
    async with make(creds) as stripe:
        intent = await stripe.create_payment_intent(1000, "usd", idempotency_key="order-42")
    request = httpx_mock.get_request()
    assert request.headers["Idempotency-Key"] == "order-42"
    assert parse_qs(request.content.decode()) == {"amount": ["1000"], "currency": ["usd"]}
    assert intent.amount == 1000


async def test_float_amount_is_refused_before_any_request(creds):
    async with make(creds) as stripe:
        with pytest.raises(ConnectorValidationError, match="minor units"):
            await stripe.create_payment_intent(10.99, "usd")  # type: ignore[arg-type]
        with pytest.raises(ConnectorValidationError, match="float"):
            await stripe.create_customer(metadata={"price": 1.5})


async def test_delete_customer_returns_deleted_stub(creds, httpx_mock):
    httpx_mock.add_response(method="DELETE", url=f"{API}/v1/customers/cus_1",
                            json={"id": "cus_1", "object": "customer", "deleted": True})
    async with make(creds) as stripe:
        deleted = await stripe.delete_customer("cus_1")
    assert deleted.deleted is True and deleted.created_at is None


async def test_cancel_subscription_is_a_delete(creds, httpx_mock):
    httpx_mock.add_response(method="DELETE", url=f"{API}/v1/subscriptions/sub_1",
                            json={"id": "sub_1", "object": "subscription", "status": "canceled",
                                  "customer": {"id": "cus_9", "object": "customer"},
                                  "items": {"data": [{"price": {"id": "price_1"}, "current_period_start": 1,
                                                      "current_period_end": 2}]}})
    async with make(creds) as stripe:
        subscription = await stripe.cancel_subscription("sub_1")
    assert subscription.status == "canceled" and subscription.customer_id == "cus_9"
    assert subscription.price_ids == ["price_1"]
    assert subscription.current_period_end == datetime.fromtimestamp(2, UTC)


async def test_writes_the_api_does_not_have_are_refused(creds):
    async with make(creds) as stripe:
        with pytest.raises(ConnectorValidationError, match="events do not support create"):
            await stripe.create_object("events", {})
        with pytest.raises(ConnectorValidationError, match="charge= or payment_intent="):
            await stripe.create_refund(amount=100)


def test_encode_form_flattens_nested_values():
    encoded = encode_form({
        "items": [{"price": "price_1", "quantity": 2}],
        "metadata": {"a": "1"},
        "expand": ["customer"],
        "off_session": True,
        "description": None,
        "trial_end": datetime(2026, 1, 1, tzinfo=UTC),
    })
    assert encoded == {
        "items[0][price]": "price_1",
        "items[0][quantity]": "2",
        "metadata[a]": "1",
        "expand[0]": "customer",
        "off_session": "true",
        "trial_end": "1767225600",
    }


# --- errors and secrets ---------------------------------------------------------------------

async def test_401_is_auth_error_without_the_key(creds, httpx_mock):
    httpx_mock.add_response(status_code=401, json={"error": {"message": f"Invalid API Key provided: {SECRET_KEY}"}})
    async with make(creds) as stripe:
        with pytest.raises(ConnectorAuthError) as info:
            await stripe.get_customer("cus_1")
    assert info.value.status_code == 401
    assert SECRET_KEY not in str(info.value) and SECRET_KEY not in repr(info.value)
    assert len(httpx_mock.get_requests()) == 1  # auth errors are never retried


async def test_404_is_not_found(creds, httpx_mock):
    httpx_mock.add_response(status_code=404, json={"error": {"message": "No such customer: 'cus_missing'"}})
    async with make(creds) as stripe:
        with pytest.raises(ConnectorNotFoundError, match="No such customer"):
            await stripe.get_customer("cus_missing")


async def test_429_with_retry_after_is_retried(creds, httpx_mock, realapi):
    httpx_mock.add_response(status_code=429, headers={"Retry-After": "0"}, json={"error": {"message": "slow"}})
    httpx_mock.add_response(json=realapi("stripe/customers_list.json"))
    async with make(creds) as stripe:
        result = await collect(stripe.list_customers())
    assert len(result) == 10 and len(httpx_mock.get_requests()) == 2


def test_credentials_repr_hides_secrets(creds):
    text = repr(creds)
    assert SECRET_KEY not in text and WEBHOOK_SECRET not in text and "StripeCredentials" in text


def test_credentials_from_env(monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_fromEnvironment123")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_fromEnvironment")
    loaded = StripeCredentials.from_env()
    assert loaded.secret_key == "sk_live_fromEnvironment123" and loaded.webhook_secret == "whsec_fromEnvironment"
    assert StripeConnector().credentials == loaded


def test_missing_key_names_the_env_var():
    with pytest.raises(ConnectorAuthError, match="STRIPE_API_KEY"):
        StripeConnector()


def test_rate_limit_follows_the_key_mode(creds):
    assert StripeConnector(creds).rate_limit == (25.0, 1.0)
    assert StripeConnector(StripeCredentials("sk_live_abcdefgh123")).rate_limit == (100.0, 1.0)
    assert StripeConnector(creds, rate_limit=(5.0, 1.0)).rate_limit == (5.0, 1.0)


async def test_base_url_from_environment(creds, httpx_mock, monkeypatch):
    monkeypatch.setenv("ARAGORA_STRIPE_BASE_URL", "http://stripe-mock.local:12111")
    httpx_mock.add_response(url="http://stripe-mock.local:12111/v1/customers?limit=100", json=page([], False))
    async with make(creds) as stripe:
        assert await collect(stripe.list_customers()) == []


def test_use_outside_the_context_manager_is_an_error(creds):
    with pytest.raises(RuntimeError, match="async context manager"):
        _ = make(creds).client


# --- webhooks -------------------------------------------------------------------------------

def signed(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> tuple[dict[str, str], int]:
    t = int(time.time()) if timestamp is None else timestamp
    return {"Stripe-Signature": f"t={t},v1={hmac_sha256_hex(secret, f'{t}.'.encode() + payload)}"}, t


@pytest.fixture
def event_payload(realapi) -> bytes:
    return json.dumps(realapi("stripe/event_object_fixture.json")).encode()


def test_valid_signature_verifies_and_parses(event_payload):
    headers, t = signed(event_payload)
    verify_signature(event_payload, headers, WEBHOOK_SECRET, now=t + 10)
    event = parse_event(event_payload)
    assert isinstance(event, StripeEvent) and event.type == "plan.created"


def test_tampered_body_is_rejected(event_payload):
    headers, t = signed(event_payload)
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(event_payload.replace(b"plan.created", b"plan.deleted"), headers, WEBHOOK_SECRET, now=t)


def test_wrong_secret_is_rejected(event_payload):
    headers, t = signed(event_payload, secret="whsec_someoneElse")
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(event_payload, headers, WEBHOOK_SECRET, now=t)


def test_stale_timestamp_is_rejected(event_payload):
    headers, t = signed(event_payload, timestamp=1_700_000_000)
    with pytest.raises(ConnectorAuthError, match="stale"):
        verify_signature(event_payload, headers, WEBHOOK_SECRET, now=t + 301)
    verify_signature(event_payload, headers, WEBHOOK_SECRET, now=t + 301, tolerance=600)


def test_one_valid_signature_among_several_is_enough(event_payload):
    headers, t = signed(event_payload)
    valid = headers["Stripe-Signature"].split("v1=")[1]
    bogus = hashlib.sha256(b"x").hexdigest()
    header_value = f"t={t},v1={bogus},v0={bogus},v1={valid}"
    verify_signature(event_payload, {"stripe-signature": header_value}, WEBHOOK_SECRET, now=t)
    with pytest.raises(ConnectorAuthError):
        verify_signature(event_payload, {"Stripe-Signature": f"t={t},v1={bogus},v0={valid}"}, WEBHOOK_SECRET, now=t)


@pytest.mark.parametrize("headers", [{}, {"Stripe-Signature": "v1=abc"}, {"Stripe-Signature": "t=12,v0=abc"},
                                     {"Stripe-Signature": "t=soon,v1=abc"}])
def test_missing_or_malformed_header_is_rejected(event_payload, headers):
    with pytest.raises(ConnectorAuthError, match="Stripe-Signature"):
        verify_signature(event_payload, headers, WEBHOOK_SECRET)


def test_connector_verify_webhook_uses_its_secret(creds, event_payload):
    headers, _ = signed(event_payload)
    assert make(creds).verify_webhook(event_payload, headers).id == "evt_1Pgc76B7WZ01zgkWwyRHS12y"
    with pytest.raises(ConnectorAuthError, match="STRIPE_WEBHOOK_SECRET"):
        make(StripeCredentials(SECRET_KEY)).verify_webhook(event_payload, headers)


def test_parse_event_rejects_non_events():
    with pytest.raises(ConnectorParseError, match="not JSON"):
        parse_event(b"{not json")
    with pytest.raises(ConnectorParseError, match="not an event"):
        parse_event(b'{"object": "customer", "id": "cus_1"}')


# --- the loopback simulator -----------------------------------------------------------------

async def test_simulator_limit_250_gives_250_distinct_customers(creds, apisim):
    async with make(creds, base_url=apisim.stripe) as stripe:
        result = await collect(stripe.list_customers(limit=250))
    assert len(result) == 250 and len({c.id for c in result}) == 250
    assert all(re.fullmatch(r"cus_\d{14}", c.id) and c.created_at for c in result)


async def test_simulator_full_listing_matches_truth_despite_faults(creds, make_sim):
    sim = make_sim(records=300, fail_rate=0.15, ratelimit_every=2)
    async with make(creds, base_url=sim.stripe, max_retries=10, circuit_failure_threshold=50) as stripe:
        ids = [c.id async for c in stripe.iter_objects("customers")]
    truth = sim.truth("stripe")
    assert len(ids) == truth["count"] == 300
    assert hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest() == truth["sha256_sorted_ids"]
    faults = sim.stats()["faults"]
    assert faults["ratelimit"] >= 1  # the 429s (Retry-After: 1, capped by max_delay) were retried

