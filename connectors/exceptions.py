"""The guide's connector error hierarchy, with redaction and mapping of HTTP-client (httpx, requests,
urllib3, aiohttp), asyncio, socket and JSON failures.

Every error carries the connector name and redacted details; ``str`` and ``repr``
never show a token, key or Authorization value.
"""

from __future__ import annotations

import asyncio
import errno
import json
import math
import socket
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Literal

import httpx

from connectors.redact import redact, redact_exception, redact_mapping, redact_url


class ConnectorError(Exception):
    """Base exception for all connector errors."""

    retry_after: float | None = None
    status_code: int | None = None

    def __init__(
        self,
        message: str = "",
        *,
        connector: str | None = None,
        details: Mapping[str, Any] | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = redact(message)
        self.connector = connector
        self.details = redact_mapping(details)
        if status_code is not None:
            self.status_code = status_code
        if retry_after is not None:
            self.retry_after = retry_after
        super().__init__(self.message)

    def __str__(self) -> str:
        prefix = f"[{self.connector}] " if self.connector else ""
        return f"{prefix}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword state across pickling (Dagster ships errors between processes).
        return (_rebuild_error, (type(self), self.message, self.__dict__.copy()))


def _rebuild_error(cls: type[ConnectorError], message: str, state: dict[str, Any]) -> ConnectorError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ConnectorAuthError(ConnectorError):
    """Authentication or authorization failure."""


class ConnectorRateLimitError(ConnectorError):
    """Rate limit exceeded (HTTP 429, or a 403 that is a rate-limit answer)."""


class ConnectorTimeoutError(ConnectorError):
    """Request timed out."""


class ConnectorNetworkError(ConnectorError):
    """Network connectivity issue."""


class ConnectorAPIError(ConnectorError):
    """API returned an error response."""


class ConnectorNotFoundError(ConnectorError):
    """Resource not found (HTTP 404)."""


class ConnectorValidationError(ConnectorError):
    """Invalid request parameters."""


class ConnectorQuotaError(ConnectorError):
    """API quota exceeded."""


class ConnectorParseError(ConnectorError):
    """Failed to parse API response."""


class ConnectorCircuitOpenError(ConnectorError):
    """Circuit breaker is open."""

    cooldown_remaining: float = 0.0

    def __init__(self, message: str = "", *, cooldown_remaining: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.cooldown_remaining = cooldown_remaining
        if self.retry_after is None:
            self.retry_after = cooldown_remaining


# --- Retry-After and rate-limit headers -------------------------------------------------

# X-RateLimit-Reset values below this are a delay in seconds (Reddit), above it an epoch time (GitHub, X).
_EPOCH_THRESHOLD = 1_000_000_000


def _quota_exhausted(remaining: str | None) -> bool:
    """Whether an ``X-RateLimit-Remaining`` value says nothing is left ("0", or Reddit's "0.0")."""
    try:
        return remaining is not None and float(remaining) <= 0
    except ValueError:
        return False


def _seconds(text: str) -> float:
    """A header's number of seconds, at least 0; ValueError when it is not a finite number ("inf", "nan")."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number of seconds: {text!r}")
    return max(0.0, value)


def parse_retry_after(headers: Mapping[str, str] | httpx.Headers | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP-date), ``X-RateLimit-Reset`` or ``RateLimit-Reset``.

    The reset header counts when the remaining quota is 0 or not given; it is read as epoch
    seconds (GitHub, X), or as seconds to wait when it is too small to be a date (Reddit, PagerDuty).
    A value that is not a finite number of seconds is ignored.
    """
    if not headers:
        return None
    now = time.time() if now is None else now
    h = {k.lower(): v for k, v in headers.items()}
    value = h.get("retry-after")
    if value:
        value = value.strip()
        try:
            return _seconds(value)
        except ValueError:
            try:
                moment = parsedate_to_datetime(value)
                if moment.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always GMT
                    moment = moment.replace(tzinfo=UTC)
                return max(0.0, moment.timestamp() - now)
            except (TypeError, ValueError, IndexError):
                pass
    # RateLimit-Reset (IETF draft, PagerDuty) is always the seconds to wait.
    reset = h.get("x-ratelimit-reset") or h.get("x-rate-limit-reset") or h.get("ratelimit-reset")
    remaining = h.get("x-ratelimit-remaining") or h.get("x-rate-limit-remaining") or h.get("ratelimit-remaining")
    if reset and (remaining is None or _quota_exhausted(remaining)):
        try:
            seconds = _seconds(reset)
        except ValueError:
            return None
        return seconds if seconds < _EPOCH_THRESHOLD else max(0.0, seconds - now)
    return None


def _is_rate_limit_403(response: httpx.Response) -> bool:
    if _quota_exhausted(response.headers.get("x-ratelimit-remaining")):
        return True
    if "retry-after" in response.headers:
        return True
    try:
        text = response.text[:2000].lower()
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return False
    return "rate limit" in text or "abuse detection" in text


def _response_message(response: httpx.Response) -> str:
    """A short, redacted description of an error body for the exception message."""
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        try:
            return response.text[:200].strip()
        except (httpx.ResponseNotRead, UnicodeDecodeError):
            return ""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err.get("code") or err)[:200]
        for key in ("message", "error_description", "error", "detail", "errorCode"):
            if body.get(key):
                return str(body[key])[:200]
    return str(body)[:200]


def error_from_response(response: httpx.Response, connector: str | None = None) -> ConnectorError:
    """Map an HTTP error response to the hierarchy, with status, connector name and redacted URL."""
    status = response.status_code
    url = redact_url(response.request.url) if response.request is not None else ""
    detail = _response_message(response)
    text = f"HTTP {status} from {response.request.method if response.request else 'GET'} {url}"
    if detail:
        text += f": {detail}"
    kwargs: dict[str, Any] = {"connector": connector, "status_code": status, "details": {"url": url}}
    if status == 429 or (status == 403 and _is_rate_limit_403(response)):
        return ConnectorRateLimitError(text, retry_after=parse_retry_after(response.headers), **kwargs)
    if status in (401, 403, 407):
        return ConnectorAuthError(text, **kwargs)
    if status == 404 or status == 410:
        return ConnectorNotFoundError(text, **kwargs)
    if status in (400, 409, 413, 414, 415, 422):
        return ConnectorValidationError(text, **kwargs)
    if status == 402:
        return ConnectorQuotaError(text, **kwargs)
    return ConnectorAPIError(text, **kwargs)


# --- errors of other HTTP clients (requests, urllib3, aiohttp) ----------------------------------

# Packages whose exceptions are classified by class name. None of them is imported: a connector
# written with any of them gets the same retry decisions as one written with httpx.
CLIENT_FAMILIES = frozenset({"requests", "urllib3", "aiohttp", "httpcore"})
# Words in a client's exception class names (lower case), checked along the class hierarchy.
_TIMEOUT_WORDS = ("timeout",)
_PARSE_WORDS = ("decod", "contenttype", "json")
_NETWORK_WORDS = (
    "connect", "protocol", "proxy", "ssl", "payload", "chunkedencoding", "incompleteread", "maxretry",
    "retryerror", "readerror", "writeerror", "network", "socket",
)
# OSError numbers that mean the network, not the file system, failed.
_NETWORK_ERRNOS = frozenset({
    errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT, errno.ENOTCONN,
    errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET, errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL,
})
ErrorKind = Literal["timeout", "network", "invalid", "decode", "json"]


def client_family(exc: BaseException) -> str | None:
    """The HTTP client package (one of :data:`CLIENT_FAMILIES`) an exception class comes from, or None."""
    for cls in type(exc).__mro__:
        root = cls.__module__.partition(".")[0]
        if root in CLIENT_FAMILIES:
            return root
    return None


def _foreign_response(exc: BaseException) -> httpx.Response | None:
    """The error answer a client's status exception carries, as an ``httpx.Response`` (status and headers).

    requests' ``HTTPError.response`` has ``status_code``; aiohttp's ``ClientResponseError`` has ``status``,
    ``headers`` and ``request_info``. The body is left out: reading it could block on a streamed response.
    """
    answer = getattr(exc, "response", None)
    if getattr(answer, "status_code", None) is not None:  # requests
        status, headers = answer.status_code, getattr(answer, "headers", None)
        request = getattr(answer, "request", None)
        url = getattr(request, "url", None) or getattr(answer, "url", None)
    else:  # aiohttp
        status, headers, request = getattr(exc, "status", None), getattr(exc, "headers", None), getattr(
            exc, "request_info", None)
        url = getattr(request, "real_url", None) or getattr(request, "url", None)
    if not isinstance(status, int) or isinstance(status, bool) or status < 400:
        return None
    try:
        httpx_request = httpx.Request(str(getattr(request, "method", None) or "GET"), str(url or ""))
    except (httpx.InvalidURL, TypeError, ValueError):
        httpx_request = httpx.Request("GET", "")
    pairs = list(headers.items()) if hasattr(headers, "items") else []
    return httpx.Response(status, headers=[(str(k), str(v)) for k, v in pairs], request=httpx_request)


def _kind_by_name(exc: BaseException) -> ErrorKind | None:
    """Classify a client library's exception by the names along its class hierarchy (first match wins)."""
    reason = getattr(exc, "reason", None)  # urllib3's MaxRetryError wraps the failure that used up its retries
    if isinstance(reason, BaseException) and reason is not exc and (kind := error_kind(reason)) is not None:
        return kind
    for cls in type(exc).__mro__:
        name = cls.__name__.lower()
        if any(word in name for word in _TIMEOUT_WORDS):
            return "timeout"
        if any(word in name for word in _PARSE_WORDS):
            return "decode"
        if any(word in name for word in _NETWORK_WORDS):
            return "network"
    return "invalid" if isinstance(exc, ValueError) else None


def error_kind(exc: BaseException) -> ErrorKind | None:
    """What kind of transport failure ``exc`` is, whichever HTTP client raised it (None: not one).

    By the exception hierarchy: TimeoutError (asyncio's too) and httpx timeouts are timeouts; ConnectionError,
    DNS failures, an OSError with a network errno and httpx transport errors are network errors; the
    exceptions of requests, urllib3, aiohttp and httpcore are classified by their class names.
    """
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timeout"
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return "invalid"
    if isinstance(exc, httpx.DecodingError):
        return "decode"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "json"
    if client_family(exc) is not None:
        return _kind_by_name(exc)
    if isinstance(exc, httpx.TransportError | ConnectionError | socket.gaierror | socket.herror):
        return "network"
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return "network"
    return None


def map_exception(exc: BaseException, operation: str, connector: str | None = None) -> BaseException:
    """Translate HTTP-client (httpx, requests, urllib3, aiohttp), asyncio, socket and JSON failures into the
    hierarchy; other exceptions pass through.

    A client's error answer (httpx's HTTPStatusError, requests' HTTPError, aiohttp's ClientResponseError) maps
    by its status like any response: 4xx other than 429 are not retryable, 429 and 5xx are.
    ``exc`` and its chain are redacted in place first: a mapped error keeps it as its printed cause.
    """
    where = f"{operation} failed"
    redact_exception(exc)
    if isinstance(exc, ConnectorError):
        if exc.connector is None:
            exc.connector = connector
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response, connector)
    if client_family(exc) is not None and (answer := _foreign_response(exc)) is not None:
        return error_from_response(answer, connector)
    kind = error_kind(exc)
    if kind == "timeout":
        return ConnectorTimeoutError(f"{where}: request timed out ({type(exc).__name__})", connector=connector)
    if kind == "invalid":
        return ConnectorValidationError(
            f"{where}: invalid URL or request ({type(exc).__name__}): {exc}", connector=connector
        )
    if kind == "decode":
        return ConnectorParseError(f"{where}: could not decode the response body: {exc}", connector=connector)
    if kind == "network":
        return ConnectorNetworkError(f"{where}: network error ({type(exc).__name__}): {exc}", connector=connector)
    if kind == "json":
        return ConnectorParseError(f"{where}: response is not valid JSON: {exc}", connector=connector)
    return exc


class connector_error_handler:
    """Context manager (sync and async) that maps failures inside it into the hierarchy."""

    def __init__(self, operation: str, connector: str | None = None) -> None:
        self.operation = operation
        self.connector = connector

    def _translate(self, exc: BaseException | None) -> None:
        if exc is None or isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
            return
        mapped = map_exception(exc, self.operation, self.connector)
        if mapped is not exc:
            raise mapped from exc

    def __enter__(self) -> connector_error_handler:
        return self

    def __exit__(self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        self._translate(exc)
        return False

    async def __aenter__(self) -> connector_error_handler:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        self._translate(exc)
        return False


_RETRYABLE = (ConnectorTimeoutError, ConnectorNetworkError, ConnectorRateLimitError)


def is_retryable_error(error: BaseException) -> bool:
    """Timeouts, network errors, rate limits and 5xx answers are retryable; nothing else is."""
    error = map_exception(error, "request")
    if isinstance(error, _RETRYABLE):
        return True
    if isinstance(error, ConnectorAPIError):
        return error.status_code is not None and error.status_code >= 500
    return False


def get_retry_delay(
    error: BaseException, attempt: int = 0, base_delay: float = 1.0, max_delay: float = 60.0
) -> float:
    """The server's Retry-After when it gave one (capped), else exponential backoff for ``attempt``."""
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        return min(float(retry_after), max_delay)
    return min(base_delay * (2**attempt), max_delay)
