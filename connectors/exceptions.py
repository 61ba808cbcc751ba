"""The guide's connector error hierarchy, with redaction and HTTP/asyncio/JSON mapping.

Every error carries the connector name and redacted details; ``str`` and ``repr``
never show a token, key or Authorization value.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from datetime import UTC
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx

from connectors.redact import redact, redact_mapping, redact_url


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


def parse_retry_after(headers: Mapping[str, str] | httpx.Headers | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP-date) or ``X-RateLimit-Reset``.

    The reset header counts when the remaining quota is 0 or not given; it is read as epoch
    seconds (GitHub, X), or as seconds to wait when it is too small to be a date (Reddit).
    """
    if not headers:
        return None
    now = time.time() if now is None else now
    h = {k.lower(): v for k, v in headers.items()}
    value = h.get("retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                moment = parsedate_to_datetime(value)
                if moment.tzinfo is None:  # "-0000" dates parse naive; HTTP dates are always GMT
                    moment = moment.replace(tzinfo=UTC)
                return max(0.0, moment.timestamp() - now)
            except (TypeError, ValueError, IndexError):
                pass
    reset = h.get("x-ratelimit-reset") or h.get("x-rate-limit-reset")
    remaining = h.get("x-ratelimit-remaining") or h.get("x-rate-limit-remaining")
    if reset and (remaining is None or _quota_exhausted(remaining)):
        try:
            seconds = float(reset)
        except ValueError:
            return None
        return max(0.0, seconds if seconds < _EPOCH_THRESHOLD else seconds - now)
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


def map_exception(exc: BaseException, operation: str, connector: str | None = None) -> BaseException:
    """Translate httpx, asyncio and JSON failures into the hierarchy; other exceptions pass through."""
    where = f"{operation} failed"
    if isinstance(exc, ConnectorError):
        if exc.connector is None:
            exc.connector = connector
        return exc
    if isinstance(exc, httpx.HTTPStatusError):
        return error_from_response(exc.response, connector)
    if isinstance(exc, httpx.TimeoutException | asyncio.TimeoutError | TimeoutError):
        return ConnectorTimeoutError(f"{where}: request timed out ({type(exc).__name__})", connector=connector)
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ConnectorValidationError(f"{where}: invalid URL: {exc}", connector=connector)
    if isinstance(exc, httpx.DecodingError):
        return ConnectorParseError(f"{where}: could not decode the response body: {exc}", connector=connector)
    if isinstance(exc, httpx.TransportError | ConnectionError):
        return ConnectorNetworkError(f"{where}: network error ({type(exc).__name__}): {exc}", connector=connector)
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
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
