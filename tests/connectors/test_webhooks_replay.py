"""Webhook hardening (issue 12): replays are reported, DocuSign and PagerDuty need a real event time, and a
validly signed but malformed body only ever raises ConnectorAuthError or ConnectorParseError.

Each delivery is signed here independently of the code under test, as each vendor documents it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aragora_pipelines.store import SCHEMA_VERSION, DuckDBSeenDeliveries, EvidenceStore
from connectors.docusign import verify_signature as docusign_verify
from connectors.exceptions import ConnectorAuthError, ConnectorParseError, ConnectorValidationError
from connectors.hubspot import verify_signature as hubspot_verify
from connectors.pagerduty import verify_signature as pagerduty_verify
from connectors.stripe import verify_signature as stripe_verify
from connectors.webhooks import InMemorySeenDeliveries, SeenDeliveries, WebhookReplayError
from tests.support.legacy import v3_store

SECRET = "whsec_test_secret_0123456789"
URI = "https://example.com/hooks"
NOW = datetime(2026, 6, 24, 12, 0, tzinfo=UTC).timestamp()
ISO_NOW = "2026-06-24T12:00:00.0000000Z"


def _hmac(message: bytes) -> bytes:
    return hmac.new(SECRET.encode(), message, hashlib.sha256).digest()


@dataclass(frozen=True)
class Service:
    """How one vendor signs a delivery, and how our verifier is called for it."""

    name: str
    body: Callable[[str], bytes]  # a genuine delivery body for an event id
    headers: Callable[[bytes, int], dict[str, str]]  # the signed headers for a body sent at a unix time
    verify: Callable[..., None]

    def deliver(self, body: bytes, seen: SeenDeliveries | None = None, sent: int = int(NOW), **kwargs: Any) -> None:
        self.verify(body, self.headers(body, sent), SECRET, now=NOW, seen=seen, **kwargs)


def _stripe_headers(body: bytes, sent: int | str) -> dict[str, str]:
    return {"Stripe-Signature": f"t={sent},v1={_hmac(f'{sent}.'.encode() + body).hex()}"}


def _hubspot_headers(body: bytes, sent: int | str, sent_ms: str | None = None) -> dict[str, str]:
    ts = sent_ms if sent_ms is not None else str(int(sent) * 1000)
    signature = base64.b64encode(_hmac(b"POST" + URI.encode() + body + ts.encode())).decode()
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": ts}


def _docusign_headers(body: bytes, _sent: int) -> dict[str, str]:
    return {"X-DocuSign-Signature-1": base64.b64encode(_hmac(body)).decode()}


def _pagerduty_headers(body: bytes, _sent: int) -> dict[str, str]:
    return {"X-PagerDuty-Signature": "v1=" + _hmac(body).hex()}


def _docusign_body(envelope: str, retry: int = 0, generated: Any = ISO_NOW) -> bytes:
    body: dict[str, Any] = {"event": "envelope-completed", "retryCount": retry, "configurationId": 10418,
                            "uri": f"/restapi/v2.1/accounts/a-1/envelopes/{envelope}",
                            "data": {"accountId": "a-1", "envelopeId": envelope}}
    if generated is not None:
        body["generatedDateTime"] = generated
    return json.dumps(body).encode()


def _pagerduty_body(event_id: str, occurred: Any = "2026-06-24T12:00:00.000Z") -> bytes:
    event: dict[str, Any] = {"id": event_id, "event_type": "incident.triggered", "resource_type": "incident",
                             "data": {"id": "PGR0VU2", "type": "incident"}}
    if occurred is not None:
        event["occurred_at"] = occurred
    return json.dumps({"event": event}).encode()


SERVICES = {
    "stripe": Service("stripe", lambda i: json.dumps({"id": i, "object": "event", "type": "charge.succeeded"}).encode(),
                      _stripe_headers, stripe_verify),
    "hubspot": Service("hubspot", lambda i: json.dumps([{"eventId": i, "subscriptionType": "contact.creation",
                                                          "attemptNumber": 0}]).encode(),
                       _hubspot_headers, lambda *a, **k: hubspot_verify(*a, method="POST", uri=URI, **k)),
    "docusign": Service("docusign", _docusign_body, _docusign_headers, docusign_verify),
    "pagerduty": Service("pagerduty", _pagerduty_body, _pagerduty_headers, pagerduty_verify),
}


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest) -> Service:
    return SERVICES[request.param]


# --- replay -------------------------------------------------------------------------------------------------------
def test_a_replayed_delivery_is_reported_as_a_replay(service: Service) -> None:
    seen = InMemorySeenDeliveries()
    body = service.body("evt_1")
    service.deliver(body, seen)
    with pytest.raises(WebhookReplayError, match="already accepted") as caught:
        service.deliver(body, seen)
    assert isinstance(caught.value, ConnectorAuthError)  # a receiver catching only auth errors still refuses it
    assert caught.value.connector == service.name
    service.deliver(service.body("evt_2"), seen)  # another delivery is still accepted


def test_a_replay_is_caught_by_the_store_across_processes_and_restarts(service: Service, tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    body = service.body("evt_1")
    service.deliver(body, DuckDBSeenDeliveries(EvidenceStore(path, lock_timeout=30)))
    with pytest.raises(WebhookReplayError):  # a second receiver, as after a restart, on the same file
        service.deliver(body, DuckDBSeenDeliveries(EvidenceStore(path, lock_timeout=30)))


def test_a_vendor_retry_of_a_processed_delivery_is_a_replay_until_it_is_forgotten() -> None:
    seen = InMemorySeenDeliveries()
    docusign, hubspot = SERVICES["docusign"], SERVICES["hubspot"]
    docusign.deliver(_docusign_body("env-1", retry=0), seen)
    with pytest.raises(WebhookReplayError):  # DocuSign retries with retryCount + 1 and the same event
        docusign.deliver(_docusign_body("env-1", retry=1), seen)
    batch = [{"eventId": 7, "subscriptionType": "contact.creation", "attemptNumber": 0},
             {"eventId": 8, "subscriptionType": "contact.creation", "attemptNumber": 0}]
    hubspot.deliver(json.dumps(batch).encode(), seen, sent=int(NOW) - 10)
    retry = [dict(event, attemptNumber=1) for event in reversed(batch)]  # re-signed later, attempt 1
    with pytest.raises(WebhookReplayError):
        hubspot.deliver(json.dumps(retry).encode(), seen)
    stripe = SERVICES["stripe"]
    stripe.deliver(stripe.body("evt_failed"), seen)
    seen.forget("stripe", "evt_failed")  # the receiver failed to process it: the vendor's retry must get through
    stripe.deliver(stripe.body("evt_failed"), seen)


def test_a_delivery_without_an_event_id_cannot_be_checked_for_replay() -> None:
    seen = InMemorySeenDeliveries()
    body = json.dumps({"object": "event", "type": "charge.succeeded"}).encode()
    with pytest.raises(ConnectorParseError, match="no event id"):
        SERVICES["stripe"].deliver(body, seen)
    with pytest.raises(ConnectorParseError, match="no event id"):
        SERVICES["pagerduty"].deliver(json.dumps({"event": {"occurred_at": ISO_NOW}}).encode(), seen)


def test_in_memory_record_forgets_after_the_retention_and_stays_bounded() -> None:
    seen = InMemorySeenDeliveries(retention=60, max_entries=3)
    assert seen.remember("stripe", "a", 1000.0) is True
    assert seen.remember("stripe", "a", 1059.0) is False
    assert seen.remember("hubspot", "a", 1059.0) is True  # ids are per service
    assert seen.remember("stripe", "a", 1060.0) is True  # retention over: pruned, accepted again
    for i in range(10):
        seen.remember("stripe", f"flood-{i}", 1061.0)
    assert len(seen) == 3
    with pytest.raises(ConnectorValidationError, match="retention"):
        InMemorySeenDeliveries(retention=0)


def test_store_record_prunes_deliveries_older_than_the_retention(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "s.duckdb", lock_timeout=30)
    seen = DuckDBSeenDeliveries(store, retention=60)
    assert [seen.remember("stripe", f"evt_{i}", 1000.0 + i) for i in range(3)] == [True, True, True]
    assert seen.remember("stripe", "evt_2", 1050.0) is False
    assert seen.remember("stripe", "evt_new", 1061.5) is True  # prunes evt_0 and evt_1 (seen 60 s ago or more)
    assert store.query("SELECT delivery_id FROM webhook_deliveries ORDER BY delivery_id") == [("evt_2",), ("evt_new",)]
    seen.forget("stripe", "evt_2")
    assert seen.remember("stripe", "evt_2", 1062.0) is True


def test_a_schema_2_store_gains_the_deliveries_table_on_its_next_write(tmp_path: Path) -> None:
    path = v3_store(tmp_path / "s.duckdb")
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE webhook_deliveries")
    con.execute("DELETE FROM schema_version WHERE version > 2")
    con.close()
    store = EvidenceStore(path, lock_timeout=30)
    assert DuckDBSeenDeliveries(store).remember("pagerduty", "01ABC", NOW) is True
    assert store.query("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)] == [(4,)]


# --- event time ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["docusign", "pagerduty"])
@pytest.mark.parametrize("moment", [None, "", "yesterday", "24/06/2026 12:00", 1782302400, "0001-01-01T00:00:00+01:00",
                                    {"at": ISO_NOW}])
def test_a_delivery_without_an_iso_event_time_is_refused(name: str, moment: Any) -> None:
    body = _docusign_body("env-1", generated=moment) if name == "docusign" else _pagerduty_body("P1", occurred=moment)
    with pytest.raises(ConnectorAuthError, match="no ISO 8601"):
        SERVICES[name].deliver(body)
    SERVICES[name].deliver(body, tolerance=None)  # the explicit opt-out still accepts it


@pytest.mark.parametrize("name", ["docusign", "pagerduty"])
def test_a_signed_body_that_is_not_json_is_a_parse_error(name: str) -> None:
    with pytest.raises(ConnectorParseError, match="not JSON"):
        SERVICES[name].deliver(b"<DocuSignEnvelopeInformation/>")


# --- malformed but validly signed input -----------------------------------------------------------------------------
ALLOWED = (ConnectorAuthError, ConnectorParseError)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _deep(depth: int, leaf: str) -> bytes:
    return ("[" * depth + leaf + "]" * depth).encode()


def _objects(depth: int) -> bytes:
    return ('{"id": ' * depth + '"x"' + "}" * depth).encode()


BODIES = st.one_of(
    st.binary(max_size=512),
    st.integers(min_value=1, max_value=60_000).map(lambda d: _deep(d, "1")),
    st.integers(min_value=1, max_value=60_000).map(_objects),
    st.integers(min_value=1, max_value=6_000).map(lambda n: b"9" * n),  # past int's 4,300-digit limit
    st.sampled_from([b"1e999999", b"-1e999999", b'{"id": 1e400}', b"NaN", b'"\\ud800"', b"[" * 100_000]),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                 max_leaves=30).map(lambda v: json.dumps(v).encode()),
    st.builds(lambda i, t, nested: _docusign_body(i, generated=t).replace(b'"data"', b'"x": ' + nested + b', "data"'),
              st.text(max_size=20), st.one_of(st.text(max_size=40), st.integers(), st.floats()),
              st.integers(min_value=1, max_value=20_000).map(lambda d: _deep(d, "0"))),
    st.builds(lambda i, t: _pagerduty_body(i, t), st.text(max_size=20),
              st.one_of(st.text(max_size=40), st.integers(), st.floats(allow_nan=True))),
)


@pytest.mark.parametrize("name", sorted(SERVICES))
@FUZZ
@given(body=BODIES, tolerance=st.sampled_from([300.0, None]))
def test_fuzz_a_validly_signed_odd_body_raises_only_auth_or_parse_errors(name: str, body: bytes,
                                                                         tolerance: float | None) -> None:
    service = SERVICES[name]
    kwargs: dict[str, Any] = {} if tolerance is not None or name in ("stripe", "hubspot") else {"tolerance": None}
    with contextlib.suppress(*ALLOWED):  # anything else (OverflowError, RecursionError, ...) fails the test
        service.deliver(body, InMemorySeenDeliveries(), **kwargs)


@FUZZ
@given(sent=st.integers(min_value=-(10**400), max_value=10**400),
       digits=st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=40).filter(
           lambda text: not text.isascii()))
def test_fuzz_a_signed_absurd_timestamp_is_an_auth_error(sent: int, digits: str) -> None:
    body = SERVICES["stripe"].body("evt_1")
    if abs(sent - int(NOW)) > 300:
        with pytest.raises(ConnectorAuthError):
            stripe_verify(body, _stripe_headers(body, sent), SECRET, now=NOW)
    hub = SERVICES["hubspot"].body("1")
    for ts in (str(abs(sent)), digits):  # epoch milliseconds far from now, or digits that are not ASCII
        if ts.isascii() and abs(int(ts) - int(NOW * 1000)) <= 300_000:
            continue
        with pytest.raises(ConnectorAuthError):
            hubspot_verify(hub, _hubspot_headers(hub, 0, sent_ms=ts), SECRET, method="POST", uri=URI, now=NOW)


def test_a_body_just_shallow_enough_to_parse_is_a_parse_error_not_a_recursion_error() -> None:
    def parses(depth: int) -> bool:
        try:
            json.loads("[" * depth + "]" * depth)
        except RecursionError:
            return False
        return True

    deepest = next(d for d in range(1, 100_000) if not parses(d)) - 1  # the parser's limit here
    docusign = SERVICES["docusign"]
    for depth in range(max(1, deepest - 40), deepest + 1):  # the DocuSign replay id serialises the parsed body
        body = ('{"generatedDateTime": "' + ISO_NOW + '", "a": ' + "[" * depth + "]" * depth + "}").encode()
        with contextlib.suppress(*ALLOWED):
            docusign.deliver(body, InMemorySeenDeliveries(), tolerance=None)


def test_the_connectors_own_verify_webhook_reports_a_replay_with_seen() -> None:
    from connectors.hubspot import HubSpotConnector, HubSpotCredentials
    from connectors.stripe import StripeConnector, StripeCredentials

    seen = InMemorySeenDeliveries()
    stripe = StripeConnector(credentials=StripeCredentials(secret_key="sk_test_x", webhook_secret=SECRET))
    body = SERVICES["stripe"].body("evt_c1")
    stripe.verify_webhook(body, _stripe_headers(body, int(NOW)), now=NOW, seen=seen)
    with pytest.raises(WebhookReplayError):
        stripe.verify_webhook(body, _stripe_headers(body, int(NOW)), now=NOW, seen=seen)
    hubspot = HubSpotConnector(credentials=HubSpotCredentials(access_token="pat-x", client_secret=SECRET))
    body = SERVICES["hubspot"].body("71")
    hubspot.verify_webhook(body, _hubspot_headers(body, int(NOW)), method="POST", uri=URI, now=NOW, seen=seen)
    with pytest.raises(WebhookReplayError):
        hubspot.verify_webhook(body, _hubspot_headers(body, int(NOW)), method="POST", uri=URI, now=NOW, seen=seen)
