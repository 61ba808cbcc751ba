"""The error hierarchy: connector names, redaction, HTTP/asyncio/JSON mapping, retry classification, pickling."""

from __future__ import annotations

import asyncio
import json
import pickle
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorCircuitOpenError,
    ConnectorError,
    ConnectorNetworkError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorQuotaError,
    ConnectorRateLimitError,
    ConnectorTimeoutError,
    ConnectorValidationError,
    connector_error_handler,
    error_from_response,
    get_retry_delay,
    is_retryable_error,
    parse_retry_after,
)
from connectors.redact import redact, register_secret

ALL_ERRORS = [
    ConnectorAuthError, ConnectorRateLimitError, ConnectorTimeoutError, ConnectorNetworkError, ConnectorAPIError,
    ConnectorNotFoundError, ConnectorValidationError, ConnectorQuotaError, ConnectorParseError,
    ConnectorCircuitOpenError,
]
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def response(status: int, url: str = "https://api.example.test/v1/items", *, headers: dict | None = None,
             json_body: object = None, text: str | None = None) -> httpx.Response:
    """An httpx response bound to a GET request, as the client would hand it back."""
    kwargs = {"json": json_body} if text is None else {"text": text}
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", url), **kwargs)


# --- hierarchy and connector name -------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_every_error_is_a_connector_error_and_carries_the_connector_name(cls: type[ConnectorError]) -> None:
    error = cls("something failed", connector="GitHub")
    assert isinstance(error, ConnectorError) and isinstance(error, Exception)
    assert error.connector == "GitHub"
    assert str(error) == "[GitHub] something failed"
    assert repr(error) == f"{cls.__name__}('[GitHub] something failed')"


def test_error_without_connector_prints_just_the_message() -> None:
    assert str(ConnectorError("plain")) == "plain"


def test_typed_attributes_of_rate_limit_api_and_circuit_errors() -> None:
    assert ConnectorRateLimitError("slow", retry_after=12.5).retry_after == 12.5
    assert ConnectorRateLimitError("slow").retry_after is None
    assert ConnectorAPIError("boom", status_code=502).status_code == 502
    assert ConnectorAPIError("boom").status_code is None
    opened = ConnectorCircuitOpenError("open", cooldown_remaining=4.5)
    assert opened.cooldown_remaining == 4.5 and opened.retry_after == 4.5
    assert ConnectorCircuitOpenError("open").cooldown_remaining == 0.0


# --- redaction ----------------------------------------------------------------------------------

SECRET_CASES = {
    "bearer": ("request failed with Authorization: Bearer abcDEF123456789token", "abcDEF123456789token"),
    "api_key query": ("GET https://newsapi.test/v2/everything?q=x&api_key=QzXv81LmNa0p failed", "QzXv81LmNa0p"),
    "apiKey json": ('body was {"apiKey": "k3y-V4lue-998877"}', "k3y-V4lue-998877"),
    "stripe live key": ("Invalid API Key provided: sk_live_51HxAbCdEfGh0123", "sk_live_51HxAbCdEfGh0123"),
    "stripe restricted key": ("key rk_live_9QwErTy12345 rejected", "rk_live_9QwErTy12345"),
}


@pytest.mark.parametrize("cls", [ConnectorError, ConnectorAuthError, ConnectorAPIError])
@pytest.mark.parametrize("case", SECRET_CASES)
def test_no_secret_in_str_or_repr(cls: type[ConnectorError], case: str) -> None:
    message, secret = SECRET_CASES[case]
    error = cls(message, connector="X", details={"url": message, "note": message})
    for text in (str(error), repr(error), str(error.args), json.dumps(error.details)):
        assert secret not in text, (case, text)


def test_a_bearer_token_with_underscores_is_redacted_whole() -> None:
    error = ConnectorAuthError("sent Authorization: Bearer ya29.a0AfH6SM_abcDEF-123_tailPart", connector="X")
    assert "tailPart" not in str(error) and "ya29" not in str(error)


def test_secrets_inside_detail_lists_are_redacted() -> None:
    error = ConnectorError("x", details={"tried": ["https://a.test/?api_key=QzXv81LmNa0p", ("Bearer abcdefgh12345",)]})
    assert "QzXv81LmNa0p" not in json.dumps(error.details) and "abcdefgh12345" not in json.dumps(error.details)


def test_a_registered_secret_is_redacted_even_without_a_recognisable_shape() -> None:
    secret = "plain-looking-value-5Gq2"  # nothing marks it as a key: only registration can catch it
    register_secret(secret)
    error = ConnectorAuthError(f"login with {secret} refused", connector="X")
    assert secret not in str(error) and secret not in repr(error)
    assert "***" in str(error)


def test_sensitive_detail_keys_are_masked() -> None:
    error = ConnectorError("x", details={"Authorization": "Basic dXNlcjpwYXNz", "headers": {"X-Api-Key": "abc123"}})
    assert error.details == {"Authorization": "***", "headers": {"X-Api-Key": "***"}}


def test_http_error_hides_query_keys_and_echoed_tokens() -> None:
    body = {"message": "Bad credentials: token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 is revoked"}
    error = error_from_response(
        response(401, "https://api.example.test/v1/items?q=ok&api_key=QzXv81LmNa0p&access_token=tok9988776655",
                 json_body=body),
        "Example",
    )
    text = str(error) + repr(error) + json.dumps(error.details)
    for secret in ("QzXv81LmNa0p", "tok9988776655", "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"):
        assert secret not in text
    assert "q=ok" in str(error) and "HTTP 401" in str(error)


# --- HTTP status mapping --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, ConnectorValidationError), (401, ConnectorAuthError), (402, ConnectorQuotaError),
     (403, ConnectorAuthError), (404, ConnectorNotFoundError), (410, ConnectorNotFoundError),
     (422, ConnectorValidationError), (429, ConnectorRateLimitError), (500, ConnectorAPIError),
     (503, ConnectorAPIError)],
)
def test_status_codes_map_to_the_hierarchy(status: int, cls: type[ConnectorError]) -> None:
    error = error_from_response(response(status, json_body={"message": "nope"}), "Example")
    assert type(error) is cls
    assert error.status_code == status and error.connector == "Example"
    assert "nope" in str(error) and error.details["url"] == "https://api.example.test/v1/items"


def test_github_style_403_rate_limit_is_a_rate_limit_error_with_reset() -> None:
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(datetime.now(UTC).timestamp()) + 30)}
    error = error_from_response(response(403, headers=headers, json_body={"message": "API rate limit exceeded"}))
    assert isinstance(error, ConnectorRateLimitError) and error.status_code == 403
    assert 25 <= error.retry_after <= 31
    assert is_retryable_error(error)


def test_github_secondary_rate_limit_403_with_retry_after() -> None:
    body = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}
    error = error_from_response(response(403, headers={"Retry-After": "60"}, json_body=body))
    assert isinstance(error, ConnectorRateLimitError) and error.retry_after == 60.0


def test_403_with_a_fractional_zero_remaining_is_a_rate_limit() -> None:
    error = error_from_response(response(403, headers={"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "5"}))
    assert isinstance(error, ConnectorRateLimitError) and error.retry_after == 5.0


def test_plain_403_stays_an_auth_error() -> None:
    error = error_from_response(response(403, json_body={"message": "Resource not accessible by integration"}))
    assert type(error) is ConnectorAuthError and not is_retryable_error(error)


def test_429_carries_retry_after_seconds() -> None:
    error = error_from_response(response(429, headers={"Retry-After": "7"}, text="slow down"))
    assert isinstance(error, ConnectorRateLimitError) and error.retry_after == 7.0


# --- connector_error_handler ---------------------------------------------------------------------

def _status_error(status: int) -> httpx.HTTPStatusError:
    resp = response(status, json_body={"message": "x"})
    return httpx.HTTPStatusError(f"{status}", request=resp.request, response=resp)


MAPPINGS = [
    (httpx.ReadTimeout("read timed out"), ConnectorTimeoutError),
    (httpx.ConnectTimeout("connect timed out"), ConnectorTimeoutError),
    (httpx.PoolTimeout("pool timed out"), ConnectorTimeoutError),
    (httpx.ConnectError("connection refused"), ConnectorNetworkError),
    (httpx.RemoteProtocolError("peer closed connection"), ConnectorNetworkError),
    (TimeoutError(), ConnectorTimeoutError),
    (json.JSONDecodeError("Expecting value", "{", 1), ConnectorParseError),
    (_status_error(404), ConnectorNotFoundError),
    (_status_error(429), ConnectorRateLimitError),
    (_status_error(500), ConnectorAPIError),
]


@pytest.mark.parametrize(("raised", "expected"), MAPPINGS, ids=lambda v: type(v).__name__)
def test_error_handler_maps_failures_sync(raised: BaseException, expected: type[ConnectorError]) -> None:
    with pytest.raises(expected) as caught, connector_error_handler("load_items", connector="Example"):
        raise raised
    assert caught.value.connector == "Example"
    assert caught.value.__cause__ is raised


@pytest.mark.parametrize(("raised", "expected"), MAPPINGS, ids=lambda v: type(v).__name__)
async def test_error_handler_maps_failures_async(raised: BaseException, expected: type[ConnectorError]) -> None:
    with pytest.raises(expected) as caught:
        async with connector_error_handler("load_items", connector="Example"):
            await asyncio.sleep(0)
            raise raised
    assert caught.value.connector == "Example"


async def test_error_handler_maps_a_real_httpx_timeout() -> None:
    async def never_answers(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ConnectorTimeoutError, match=r"\[Example\] load_items failed: request timed out"):
        async with httpx.AsyncClient(transport=httpx.MockTransport(never_answers)) as client, \
                connector_error_handler("load_items", connector="Example"):
            await client.get("https://api.example.test/")


def test_error_handler_names_the_connector_on_connector_errors_and_passes_others() -> None:
    with pytest.raises(ConnectorParseError) as caught, connector_error_handler("op", connector="Example"):
        raise ConnectorParseError("bad shape")
    assert caught.value.connector == "Example"
    with pytest.raises(KeyError), connector_error_handler("op", connector="Example"):
        raise KeyError("programming error stays itself")
    with connector_error_handler("op"):
        pass


async def test_error_handler_lets_cancellation_through() -> None:
    with pytest.raises(asyncio.CancelledError):
        async with connector_error_handler("op"):
            raise asyncio.CancelledError


# --- retry classification ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (ConnectorTimeoutError("t"), True),
        (ConnectorNetworkError("n"), True),
        (ConnectorRateLimitError("r"), True),
        (ConnectorAPIError("5xx", status_code=503), True),
        (ConnectorAPIError("5xx", status_code=500), True),
        (ConnectorAPIError("unknown status"), False),
        (ConnectorAuthError("a", status_code=401), False),
        (ConnectorNotFoundError("nf", status_code=404), False),
        (ConnectorValidationError("v", status_code=422), False),
        (ConnectorQuotaError("q"), False),
        (ConnectorParseError("p"), False),
        (ConnectorCircuitOpenError("open"), False),
        (httpx.ReadTimeout("raw timeout"), True),
        (httpx.ConnectError("raw connect"), True),
        (ValueError("a bug"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else f"{type(v).__name__}:{v}",
)
def test_is_retryable_error(error: BaseException, retryable: bool) -> None:
    assert is_retryable_error(error) is retryable


def test_get_retry_delay_prefers_retry_after_capped_else_exponential() -> None:
    assert get_retry_delay(ConnectorRateLimitError("r", retry_after=3.0)) == 3.0
    assert get_retry_delay(ConnectorRateLimitError("r", retry_after=3600.0), max_delay=60.0) == 60.0
    assert get_retry_delay(ConnectorRateLimitError("r", retry_after=0.0)) == 0.0
    timeout = ConnectorTimeoutError("t")
    assert [get_retry_delay(timeout, attempt=a, base_delay=0.5) for a in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert get_retry_delay(timeout, attempt=20, base_delay=1.0, max_delay=30.0) == 30.0


# --- parse_retry_after ----------------------------------------------------------------------------

def test_parse_retry_after_seconds() -> None:
    assert parse_retry_after({"Retry-After": "120"}) == 120.0
    assert parse_retry_after({"retry-after": " 1.5 "}) == 1.5
    assert parse_retry_after({"Retry-After": "-5"}) == 0.0
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0


def test_parse_retry_after_http_date() -> None:
    when = datetime.fromtimestamp(NOW, UTC) + timedelta(seconds=45)
    assert parse_retry_after({"Retry-After": format_datetime(when, usegmt=True)}, now=NOW) == pytest.approx(45.0)
    assert parse_retry_after({"Retry-After": "Thu, 01 Jan 2026 00:00:30 -0000"}, now=NOW) == pytest.approx(30.0)
    past = datetime.fromtimestamp(NOW, UTC) - timedelta(minutes=5)
    assert parse_retry_after({"Retry-After": format_datetime(past, usegmt=True)}, now=NOW) == 0.0


def test_parse_retry_after_rate_limit_reset_epoch_seconds() -> None:
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(NOW) + 90)}
    assert parse_retry_after(reset, now=NOW) == 90.0
    assert parse_retry_after({"X-RateLimit-Reset": str(int(NOW) + 10)}, now=NOW) == 10.0
    assert parse_retry_after({"x-rate-limit-reset": str(int(NOW) + 15), "x-rate-limit-remaining": "0"},
                             now=NOW) == 15.0
    # Reddit: remaining is a float and the reset is seconds to wait, not an epoch
    assert parse_retry_after({"X-Ratelimit-Remaining": "0.0", "X-Ratelimit-Reset": "42"}, now=NOW) == 42.0
    # quota left: the reset time is not a reason to wait
    assert parse_retry_after({"X-RateLimit-Remaining": "29", "X-RateLimit-Reset": str(int(NOW) + 60)}, now=NOW) is None


@pytest.mark.parametrize("headers", [None, {}, {"Retry-After": "soon"}, {"X-RateLimit-Reset": "tomorrow"}])
def test_parse_retry_after_without_a_usable_header(headers: dict | None) -> None:
    assert parse_retry_after(headers, now=NOW) is None


# --- pickling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_errors_survive_pickling(cls: type[ConnectorError]) -> None:
    error = cls("failed with sk_live_51HxAbCdEfGh0123", connector="Stripe", details={"url": "https://x.test/a"},
                status_code=503, retry_after=2.0)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is cls
    assert (str(clone), repr(clone), clone.connector, clone.details, clone.status_code, clone.retry_after) == (
        str(error), repr(error), "Stripe", {"url": "https://x.test/a"}, 503, 2.0)
    assert "sk_live_51HxAbCdEfGh0123" not in str(clone)


def test_circuit_open_error_keeps_cooldown_across_pickling() -> None:
    clone = pickle.loads(pickle.dumps(ConnectorCircuitOpenError("open", connector="X", cooldown_remaining=3.5)))
    assert clone.cooldown_remaining == 3.5 and clone.retry_after == 3.5



# --- redaction: escaped forms, header reprs, library error chains, no eaten names (issue 12) ----------------------

def test_a_percent_does_not_end_a_bearer_tokens_redaction() -> None:
    # httpx's message for a pasted token; the token was cut at its first '%' and the rest printed.
    text = redact("Illegal header value b'Bearer zzcanaryAB%2Fpercent-tail-0413\\r'")
    assert "percent-tail-0413" not in text and "Bearer ***" in text


def test_a_registered_secret_is_redacted_in_the_forms_errors_print_it() -> None:
    register_secret("pasted/value-8816\r\n")  # as read, with the line break a paste brings
    shown = [
        "Illegal header value b'Bearer pasted/value-8816\\r\\n'",  # repr of bytes, as h11 quotes a header
        "GET /v1?k=pasted%2Fvalue-8816 failed",  # percent-encoded in a URL
        "sent pasted/value-8816 twice",  # the trimmed value that is actually sent
    ]
    for text in shown:
        assert "value-8816" not in redact(text), text


def test_the_repr_of_headers_is_redacted() -> None:
    headers = httpx.Headers([("X-Api-Key", "hdr-key-value-5150"), ("X-Api-Key", "hdr-key-other-5151"),
                             ("Cookie", "session=hdr-cookie-5152"), ("Accept", "application/json")])
    raw = [(b"x-subscription-token", b"hdr-raw-token-5153")]
    for text in (repr(headers), repr(dict(headers)), repr(raw)):
        cleaned = redact(text)
        assert not any(f"-{n}" in cleaned for n in range(5150, 5154)), cleaned
        assert "application/json" in cleaned or "application/json" not in text


def test_a_library_error_chain_is_redacted_when_mapped() -> None:
    secret = "chain-secret-value-3300"  # a variable: the traceback prints source lines too
    register_secret(secret)
    try:
        try:
            raise ValueError(f"Illegal header value b'{secret}\\r'")
        except ValueError as inner:
            raise httpx.LocalProtocolError(inner) from inner  # wrapped the way httpcore wraps h11's error
    except httpx.LocalProtocolError as exc:
        mapped = connector_error_handler("GET /x", "X")
        with pytest.raises(ConnectorNetworkError) as caught, mapped:
            raise exc
    printed = "".join(traceback.format_exception(caught.value))
    assert "LocalProtocolError" in printed and "ValueError" in printed
    assert secret not in printed


def test_redaction_keeps_a_secret_name_ending_in_secret() -> None:
    text = "AWS Secrets Manager unreachable for secret 'prod/aragora-secret': EndpointConnectionError"
    assert redact(text) == text
    assert redact('{"secret": "sv-4411-value"}') == '{"secret": "***"}'  # a quoted key with its value still goes
