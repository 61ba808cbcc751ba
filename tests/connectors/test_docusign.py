"""DocuSign connector: recorded listStatusChanges bodies, pagination, CRUD, errors, Connect webhooks."""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.docusign import (
    DocuSignConnector,
    DocuSignCredentials,
    Envelope,
    TemplateRole,
    parse_event,
    verify_signature,
)
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
)

BASE = "https://ds.example.test"
ACCOUNT = "acct-96bfbc88"
TOKEN = "ds-access-token-5f3a9c1e7b"
HMAC_KEY = "connect-hmac-key-0a1b2c"
ENVELOPES_URL = re.compile(re.escape(f"{BASE}/restapi/v2.1/accounts/{ACCOUNT}/envelopes") + r"(\?.*)?$")
FAST: dict[str, Any] = {"base_delay": 0.01, "max_delay": 0.05, "max_retries": 2, "rate_limit": (1000, 1)}


@pytest.fixture
def creds() -> DocuSignCredentials:
    return DocuSignCredentials(access_token=TOKEN, account_id=ACCOUNT, base_url=BASE, hmac_key=HMAC_KEY)


def connector(creds: DocuSignCredentials, **kwargs: Any) -> DocuSignConnector:
    return DocuSignConnector(creds, **{**FAST, **kwargs})


def page(envelopes: list[dict], start: int, *, total: int, more: bool, token: str | None = None) -> dict:
    """A listStatusChanges answer in DocuSign's shape (result-set fields are strings)."""
    body: dict[str, Any] = {
        "resultSetSize": str(len(envelopes)),
        "startPosition": str(start),
        "endPosition": str(start + len(envelopes) - 1),
        "totalSetSize": str(total),
        "nextUri": f"/envelopes?start_position={start + len(envelopes)}" if more else "",
        "previousUri": "",
        "envelopes": envelopes,
    }
    if token:
        body["continuationToken"] = token
    return body


def params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


async def collect(it: Any) -> list[Any]:
    return [item async for item in it]


# --- recorded bodies -----------------------------------------------------------------------------

async def test_recorded_status_changes_become_typed_envelopes(creds, httpx_mock, realapi):
    body = realapi("docusign/envelopes_list_status_changes.json")
    httpx_mock.add_response(url=ENVELOPES_URL, json=body)
    since, until = datetime(2026, 6, 24, tzinfo=UTC), datetime(2026, 6, 25, tzinfo=UTC)
    async with connector(creds) as ds:
        envelopes = await collect(ds.iter_objects("envelopes", since=since, until=until))

    assert [e.id for e in envelopes] == [
        "4ee72f9d-d6f6-8cfd-81e1-9bdea266189e",
        "80e32c23-33b9-8ab2-802c-4b0c546e1813",
        "acdc2f1a-fba9-871d-8159-abe4af6518ef",
    ]
    first = envelopes[0]
    assert first.status == "voided"
    assert first.email_subject == "Nango Test Envelope 3 - Employment Contract"
    assert first.sender_email == "api@nango.dev"
    assert first.sender_name == "Nango Developer"
    assert first.created_at == datetime(2026, 6, 24, 12, 15, 51, 790000, tzinfo=UTC)
    assert first.updated_at == datetime(2026, 6, 24, 12, 29, 53, 657000, tzinfo=UTC)
    assert first.voided_at == first.status_changed_at == first.updated_at
    assert first.voided_reason == "Test void for validation"
    assert first.raw == body["envelopes"][0]
    assert envelopes[1].status == "sent" and envelopes[1].voided_at is None
    assert envelopes[1].sent_at == datetime(2026, 6, 24, 12, 30, 53, 403000, tzinfo=UTC)


async def test_window_and_auth_are_sent_as_docusign_expects(creds, httpx_mock, realapi):
    httpx_mock.add_response(url=ENVELOPES_URL, json=realapi("docusign/envelopes_list_status_changes.json"))
    since, until = datetime(2026, 6, 24, tzinfo=UTC), datetime(2026, 6, 25, tzinfo=UTC)
    async with connector(creds) as ds:
        await collect(ds.list_envelopes(since=since, until=until))

    (request,) = httpx_mock.get_requests()  # nextUri is "" in the recording: one page
    assert request.url.path == f"/restapi/v2.1/accounts/{ACCOUNT}/envelopes"
    assert params(request) == {
        "from_date": "2026-06-24T00:00:00Z",
        "to_date": "2026-06-25T00:00:00Z",
        "from_to_status": "changed",
        "count": "100",
        "start_position": "0",
    }
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert "docusign" in request.headers["User-Agent"]


async def test_recorded_folder_listing_keeps_draft_envelopes(creds, httpx_mock, realapi):
    body = realapi("docusign/envelopes_list_status_changes_folder.json")
    httpx_mock.add_response(url=ENVELOPES_URL, json=body)
    async with connector(creds) as ds:
        envelopes = await collect(ds.list_envelopes(status="created"))

    assert len(envelopes) == 4
    assert {e.status for e in envelopes} == {"created"}
    assert all(e.sent_at is None for e in envelopes)
    last = envelopes[3]
    assert last.id == "ffbe2429-fc88-8ef2-803e-8ad9296118b6"
    assert last.created_at == datetime(2026, 6, 24, 12, 15, 30, 153000, tzinfo=UTC)
    assert last.updated_at == datetime(2026, 6, 24, 12, 34, 18, 547000, tzinfo=UTC)
    request = httpx_mock.get_request()
    assert params(request)["status"] == "created"
    assert params(request)["from_date"] == "2000-01-01T00:00:00Z"  # no since: from the beginning
    assert "to_date" not in params(request)


# --- pagination ------------------------------------------------------------------------------------

async def test_start_position_pagination_reads_every_page(creds, httpx_mock, realapi):
    envs = realapi("docusign/envelopes_list_status_changes_folder.json")["envelopes"]
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[:2], 0, total=4, more=True))
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[2:], 2, total=4, more=False))
    async with connector(creds, page_size=2) as ds:
        envelopes = await collect(ds.list_envelopes())

    assert [e.id for e in envelopes] == [e["envelopeId"] for e in envs]
    assert [params(r)["start_position"] for r in httpx_mock.get_requests()] == ["0", "2"]
    assert [params(r)["count"] for r in httpx_mock.get_requests()] == ["2", "2"]


async def test_limit_stops_early_and_asks_only_for_what_is_left(creds, httpx_mock, realapi):
    envs = realapi("docusign/envelopes_list_status_changes_folder.json")["envelopes"]
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[:2], 0, total=4, more=True))
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[2:3], 2, total=4, more=True))
    async with connector(creds, page_size=2) as ds:
        envelopes = await collect(ds.iter_objects("envelopes", limit=3))

    assert len(envelopes) == 3
    assert [params(r)["count"] for r in httpx_mock.get_requests()] == ["2", "1"]


async def test_continuation_token_is_followed(creds, httpx_mock, realapi):
    envs = realapi("docusign/envelopes_list_status_changes.json")["envelopes"]
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[:2], 0, total=3, more=True, token="ct-page-2"))
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[2:], 2, total=3, more=False))
    async with connector(creds, page_size=2) as ds:
        envelopes = await collect(ds.list_envelopes())

    assert len(envelopes) == 3
    second = params(httpx_mock.get_requests()[1])
    assert second["continuation_token"] == "ct-page-2"
    assert "start_position" not in second


async def test_a_server_that_ignores_start_position_ends_in_an_error_not_a_loop(creds, httpx_mock, realapi):
    envs = realapi("docusign/envelopes_list_status_changes.json")["envelopes"]
    httpx_mock.add_response(url=ENVELOPES_URL, json=page(envs[:2], 0, total=9, more=True), is_reusable=True)
    async with connector(creds, page_size=2) as ds:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(ds.list_envelopes())
    assert len(httpx_mock.get_requests()) == 2


async def test_a_repeated_continuation_token_ends_in_an_error(creds, httpx_mock, realapi):
    envs = realapi("docusign/envelopes_list_status_changes.json")["envelopes"]
    httpx_mock.add_response(
        url=ENVELOPES_URL, json=page(envs[:1], 0, total=9, more=True, token="same"), is_reusable=True
    )
    async with connector(creds) as ds:
        with pytest.raises(ConnectorParseError, match="twice"):
            await collect(ds.list_envelopes())
    assert len(httpx_mock.get_requests()) == 2  # start, then "same"; "same" again is refused unsent


# --- single envelopes and writes -------------------------------------------------------------------

async def test_get_envelope_recipients_and_documents(creds, httpx_mock, realapi):
    envelope = realapi("docusign/envelopes_list_status_changes.json")["envelopes"][1]
    env_id = envelope["envelopeId"]
    root = f"{BASE}/restapi/v2.1/accounts/{ACCOUNT}/envelopes/{env_id}"
    httpx_mock.add_response(url=root, json=envelope)
    httpx_mock.add_response(
        url=f"{root}/recipients",
        json={
            "signers": [
                {"recipientId": "1", "recipientType": "signer", "name": "Ada", "email": "ada@example.com",
                 "status": "completed", "routingOrder": "1", "roleName": "Employee",
                 "signedDateTime": "2026-06-24T13:00:00.0000000Z"},
            ],
            "carbonCopies": [{"recipientId": "2", "name": "Bob", "email": "bob@example.com", "status": "created",
                              "routingOrder": "2"}],
            "recipientCount": "2",
        },
    )
    httpx_mock.add_response(
        url=f"{root}/documents",
        json={"envelopeId": env_id, "envelopeDocuments": [
            {"documentId": "1", "name": "Contract.pdf", "type": "content", "order": "1",
             "pages": [{"pageId": "a"}, {"pageId": "b"}], "uri": f"/envelopes/{env_id}/documents/1"},
            {"documentId": "certificate", "name": "Summary", "type": "summary", "order": "999", "pages": "4"},
        ]},
    )
    async with connector(creds) as ds:
        fetched = await ds.get_envelope(env_id)
        recipients = await ds.list_recipients(env_id)
        documents = await ds.list_documents(env_id)

    assert fetched.id == env_id and fetched.status == "sent"
    assert [(r.id, r.recipient_type, r.email, r.routing_order) for r in recipients] == [
        ("1", "signer", "ada@example.com", 1),
        ("2", "carbonCopies", "bob@example.com", 2),
    ]
    assert recipients[0].signed_at == datetime(2026, 6, 24, 13, 0, tzinfo=UTC)
    assert recipients[0].envelope_id == env_id
    assert [(d.id, d.type, d.order, d.pages) for d in documents] == [
        ("1", "content", 1, 2),
        ("certificate", "summary", 999, 4),
    ]


async def test_create_envelope_from_template_sends_it(creds, httpx_mock):
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/restapi/v2.1/accounts/{ACCOUNT}/envelopes",
        status_code=201,
        json={"envelopeId": "e-new", "uri": "/envelopes/e-new", "statusDateTime": "2026-06-24T12:00:00.0000000Z",
              "status": "sent"},
    )
    async with connector(creds) as ds:
        envelope = await ds.create_envelope_from_template(
            "tmpl-42",
            [TemplateRole("Signer", "Ada Lovelace", "ada@example.com"),
             {"roleName": "CC", "name": "Bob", "email": "bob@example.com"}],
            email_subject="Please sign",
        )

    assert envelope.id == "e-new" and envelope.status == "sent"
    assert envelope.status_changed_at == datetime(2026, 6, 24, 12, 0, tzinfo=UTC)
    assert json.loads(httpx_mock.get_request().content) == {
        "templateId": "tmpl-42",
        "templateRoles": [
            {"roleName": "Signer", "name": "Ada Lovelace", "email": "ada@example.com"},
            {"roleName": "CC", "name": "Bob", "email": "bob@example.com"},
        ],
        "status": "sent",
        "emailSubject": "Please sign",
    }


async def test_void_envelope_puts_the_voided_status_and_reason(creds, httpx_mock):
    httpx_mock.add_response(
        method="PUT", url=f"{BASE}/restapi/v2.1/accounts/{ACCOUNT}/envelopes/e-1", json={"envelopeId": "e-1"}
    )
    async with connector(creds) as ds:
        summary = await ds.void_envelope("e-1", "Sent to the wrong person")

    assert summary == {"envelopeId": "e-1"}
    assert json.loads(httpx_mock.get_request().content) == {
        "status": "voided",
        "voidedReason": "Sent to the wrong person",
    }


async def test_bad_input_is_refused_before_any_request(creds):
    async with connector(creds) as ds:
        with pytest.raises(ConnectorValidationError, match="reason"):
            await ds.void_envelope("e-1", " ")
        with pytest.raises(ConnectorValidationError, match="lacks email"):
            await ds.create_envelope_from_template("t", [{"roleName": "Signer", "name": "Ada"}])
        with pytest.raises(ConnectorValidationError, match="envelope_id"):
            await ds.get_envelope("")
        with pytest.raises(ConnectorValidationError, match="unknown DocuSign object type"):
            await collect(ds.iter_objects("templates"))
        with pytest.raises(ConnectorValidationError, match="limit"):
            await collect(ds.list_envelopes(limit=0))
        with pytest.raises(ConnectorValidationError, match="empty window"):
            await collect(ds.list_envelopes(since=datetime(2024, 1, 2), until=datetime(2024, 1, 1)))


async def test_envelope_ids_stay_one_path_segment(creds, httpx_mock):
    httpx_mock.add_response(status_code=404, json={"errorCode": "ENVELOPE_DOES_NOT_EXIST"})
    async with connector(creds) as ds:
        with pytest.raises(ConnectorNotFoundError):
            await ds.get_envelope("../../users")
    assert httpx_mock.get_request().url.raw_path.decode().endswith("/envelopes/..%2F..%2Fusers")


# --- errors ------------------------------------------------------------------------------------------

async def test_401_is_an_auth_error_that_never_shows_the_token(creds, httpx_mock):
    httpx_mock.add_response(
        status_code=401,
        json={"errorCode": "AUTHORIZATION_INVALID_TOKEN", "message": f"The access token {TOKEN} is invalid"},
    )
    async with connector(creds) as ds:
        with pytest.raises(ConnectorAuthError) as info:
            await ds.get_envelope("e-1")
    assert info.value.status_code == 401
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert len(httpx_mock.get_requests()) == 1  # auth failures are not retried


async def test_404_is_not_found(creds, httpx_mock):
    httpx_mock.add_response(status_code=404, json={"errorCode": "ENVELOPE_DOES_NOT_EXIST", "message": "gone"})
    async with connector(creds) as ds:
        with pytest.raises(ConnectorNotFoundError):
            await ds.get_envelope("missing")


async def test_429_with_retry_after_is_retried(creds, httpx_mock, realapi):
    httpx_mock.add_response(url=ENVELOPES_URL, status_code=429, headers={"Retry-After": "0.01"})
    httpx_mock.add_response(url=ENVELOPES_URL, json=realapi("docusign/envelopes_list_status_changes.json"))
    async with connector(creds) as ds:
        envelopes = await collect(ds.list_envelopes())
    assert len(envelopes) == 3
    assert len(httpx_mock.get_requests()) == 2


async def test_a_body_of_the_wrong_shape_is_a_parse_error(creds, httpx_mock):
    httpx_mock.add_response(url=ENVELOPES_URL, json={"envelopes": {"not": "a list"}})
    async with connector(creds) as ds:
        with pytest.raises(ConnectorParseError, match="envelopes"):
            await collect(ds.list_envelopes())


# --- credentials and configuration ---------------------------------------------------------------------

def test_from_env_names_the_missing_variable(monkeypatch):
    monkeypatch.setenv("DOCUSIGN_ACCOUNT_ID", ACCOUNT)
    with pytest.raises(ConnectorAuthError, match="DOCUSIGN_ACCESS_TOKEN"):
        DocuSignCredentials.from_env()
    with pytest.raises(ConnectorAuthError, match="DOCUSIGN_ACCESS_TOKEN"):
        DocuSignConnector()


def test_from_env_reads_every_setting_and_hides_secrets(monkeypatch):
    monkeypatch.setenv("DOCUSIGN_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("DOCUSIGN_ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("DOCUSIGN_HMAC_KEY", HMAC_KEY)
    monkeypatch.setenv("DOCUSIGN_BASE_URL", "https://na3.docusign.net")
    creds = DocuSignCredentials.from_env()
    assert (creds.access_token, creds.account_id, creds.hmac_key) == (TOKEN, ACCOUNT, HMAC_KEY)
    assert DocuSignConnector(creds).base_url == "https://na3.docusign.net"
    assert TOKEN not in repr(creds) and HMAC_KEY not in repr(creds)


def test_base_url_precedence(monkeypatch, creds):
    assert DocuSignConnector(creds, base_url="https://eu.docusign.net/").base_url == "https://eu.docusign.net"
    assert DocuSignConnector(creds).base_url == BASE
    bare = DocuSignCredentials(access_token=TOKEN, account_id=ACCOUNT)
    assert DocuSignConnector(bare).base_url == "https://demo.docusign.net"
    monkeypatch.setenv("ARAGORA_DOCUSIGN_BASE_URL", "http://127.0.0.1:9999")
    assert DocuSignConnector(bare).base_url == "http://127.0.0.1:9999"


# --- Connect webhooks ----------------------------------------------------------------------------------

GENERATED = datetime(2026, 6, 24, 12, 31, 15, tzinfo=UTC)


def connect_body(generated: datetime = GENERATED) -> bytes:
    return json.dumps({
        "event": "envelope-voided",
        "apiVersion": "v2.1",
        "uri": f"/restapi/v2.1/accounts/{ACCOUNT}/envelopes/e-1",
        "retryCount": 0,
        "configurationId": 10418,
        "generatedDateTime": generated.strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "data": {
            "accountId": ACCOUNT,
            "userId": "u-1",
            "envelopeId": "e-1",
            "envelopeSummary": {"status": "voided", "emailSubject": "Contract",
                                "voidedDateTime": "2026-06-24T12:31:15.3770000Z"},
        },
    }).encode()


def sign(body: bytes, key: str = HMAC_KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


NOW = GENERATED.timestamp() + 10


def test_valid_connect_signature_passes():
    body = connect_body()
    verify_signature(body, {"X-DocuSign-Signature-1": sign(body)}, HMAC_KEY, now=NOW)


def test_tampered_body_is_refused():
    body = connect_body()
    tampered = body.replace(b"voided", b"completed", 1)
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(tampered, {"X-DocuSign-Signature-1": sign(body)}, HMAC_KEY, now=NOW)


def test_wrong_key_is_refused():
    body = connect_body()
    with pytest.raises(ConnectorAuthError, match="does not match"):
        verify_signature(body, {"X-DocuSign-Signature-1": sign(body, "another-key-999")}, HMAC_KEY, now=NOW)


def test_stale_generated_time_is_refused_unless_the_check_is_disabled():
    body = connect_body()
    headers = {"X-DocuSign-Signature-1": sign(body)}
    with pytest.raises(ConnectorAuthError, match="stale"):
        verify_signature(body, headers, HMAC_KEY, now=GENERATED.timestamp() + 301)
    verify_signature(body, headers, HMAC_KEY, now=GENERATED.timestamp() + 3600, tolerance=7200)
    verify_signature(body, headers, HMAC_KEY, now=GENERATED.timestamp() + 86400, tolerance=None)


def test_any_of_several_signatures_may_match_during_key_rotation():
    body = connect_body()
    headers = {"x-docusign-signature-1": sign(body, "retired-key-123"), "X-DocuSign-Signature-2": sign(body)}
    verify_signature(body, headers, HMAC_KEY, now=NOW)
    with pytest.raises(ConnectorAuthError):
        verify_signature(body, {"X-DocuSign-Signature-1": sign(body, "retired-key-123")}, HMAC_KEY, now=NOW)


def test_missing_signature_or_key_is_refused():
    body = connect_body()
    with pytest.raises(ConnectorAuthError, match="X-DocuSign-Signature-1"):
        verify_signature(body, {"Content-Type": "application/json"}, HMAC_KEY, now=NOW)
    with pytest.raises(ConnectorAuthError, match="DOCUSIGN_HMAC_KEY"):
        verify_signature(body, {"X-DocuSign-Signature-1": sign(body)}, "", now=NOW)


def test_a_signed_body_without_generated_time_is_refused_unless_the_check_is_disabled():
    body = json.dumps({"event": "envelope-sent", "data": {"envelopeId": "e-1"}}).encode()
    with pytest.raises(ConnectorAuthError, match="no ISO 8601 generatedDateTime"):
        verify_signature(body, {"X-DocuSign-Signature-1": sign(body)}, HMAC_KEY, now=0.0)
    verify_signature(body, {"X-DocuSign-Signature-1": sign(body)}, HMAC_KEY, now=0.0, tolerance=None)


def test_parse_event_returns_a_typed_event():
    event = parse_event(connect_body())
    assert event.event == "envelope-voided"
    assert event.generated_at == GENERATED
    assert (event.account_id, event.envelope_id, event.configuration_id, event.retry_count) == (
        ACCOUNT, "e-1", "10418", 0
    )
    assert isinstance(event.envelope, Envelope)
    assert event.envelope.id == "e-1" and event.envelope.status == "voided"
    assert event.envelope.voided_at == datetime(2026, 6, 24, 12, 31, 15, 377000, tzinfo=UTC)
    with pytest.raises(ConnectorParseError):
        parse_event(b"<DocuSignEnvelopeInformation/>")
    with pytest.raises(ConnectorParseError, match="event"):
        parse_event(json.dumps({"data": {}}).encode())


def test_envelope_from_api_refuses_an_object_without_id(realapi):
    envelope = copy.deepcopy(realapi("docusign/envelopes_list_status_changes.json")["envelopes"][0])
    del envelope["envelopeId"]
    with pytest.raises(ConnectorParseError, match="envelopeId"):
        Envelope.from_api(envelope)
