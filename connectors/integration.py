"""The shared core of integration connectors (Stripe, HubSpot, DocuSign, PagerDuty).

The guide's integration pattern: an async context manager around one httpx client, and
one ``_request`` that goes through the core's rate limiter, circuit breaker and
tenacity retry and maps every failure into the connector error hierarchy.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

import httpx

from connectors.exceptions import ConnectorParseError, error_from_response, map_exception
from connectors.redact import get_logger
from connectors.resilience import CircuitBreaker, get_circuit_breaker, get_rate_limiter, retry_async

__version__ = "0.1.0"
log = get_logger(__name__)


class IntegrationConnector(ABC):
    """Base of the integration connectors: client lifecycle, ``_request``, retries, breaker, rate limit.

    Subclasses set ``NAME``, ``DEFAULT_BASE_URL``, ``ENV_NAME`` (``ARAGORA_<ENV_NAME>_BASE_URL``
    overrides the base URL when ``base_url`` is not given), ``RATE_LIMIT`` (requests, per
    seconds) and implement ``_auth_headers``.
    """

    NAME: ClassVar[str] = "integration"
    VERSION: ClassVar[str] = __version__
    DEFAULT_BASE_URL: ClassVar[str] = ""
    ENV_NAME: ClassVar[str] = ""
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = None

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        enable_circuit_breaker: bool = True,
        circuit_failure_threshold: int = 5,
        circuit_cooldown_seconds: float = 60.0,
        circuit_half_open_max_calls: int = 1,
        circuit_success_threshold: int = 1,
        rate_limit: tuple[float, float] | Literal[False] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        env_url = os.environ.get(f"ARAGORA_{self.ENV_NAME}_BASE_URL") if self.ENV_NAME else None
        self.base_url = (base_url or env_url or self.DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.enable_circuit_breaker = enable_circuit_breaker
        self._breaker_config = {
            "failure_threshold": circuit_failure_threshold,
            "cooldown_seconds": circuit_cooldown_seconds,
            "half_open_max_calls": circuit_half_open_max_calls,
            "success_threshold": circuit_success_threshold,
        }
        # None means the API's published limit (RATE_LIMIT); False switches pacing off (mock servers, tests).
        self.rate_limit = None if rate_limit is False else (rate_limit or self.RATE_LIMIT)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    @abstractmethod
    def _auth_headers(self) -> dict[str, str]:
        """Authorization headers (never logged: the values are registered secrets)."""

    def _default_headers(self) -> dict[str, str]:
        """Other headers every request carries (e.g. a versioned Accept)."""
        return {"Accept": "application/json"}

    @property
    def user_agent(self) -> str:
        """The descriptive User-Agent sent with every request."""
        return f"aragora-pipelines/{__version__} ({self.NAME} integration connector)"

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"User-Agent": self.user_agent, **self._default_headers(), **self._auth_headers()},
            timeout=self.timeout,
            transport=self._transport,
        )
        return self

    async def __aexit__(self, *args: object) -> None:
        if self._client:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The open client; using the connector outside ``async with`` is an error."""
        if not self._client:
            raise RuntimeError(f"{self.NAME} connector not initialized. Use async context manager.")
        return self._client

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The breaker shared by every connector talking to the same host."""
        if not self.enable_circuit_breaker:
            return None
        host = urlsplit(self.base_url).netloc or self.base_url
        return get_circuit_breaker(f"{self.NAME}@{host}", **self._breaker_config)

    async def _request(
        self,
        method: str,
        endpoint: str,
        data: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        form: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
        parse: Literal["json", "bytes", "response"] = "json",
        idempotent: bool | None = None,
        rate_limit: tuple[float, float] | None = None,
    ) -> Any:
        """Make one API request with rate limiting, retries, the breaker and error mapping.

        ``data`` is sent as a JSON body, ``form`` as a form-encoded body. A 204 answers ``{}``.
        Only idempotent requests are retried: by default GET, HEAD, PUT, DELETE and any request
        carrying an ``Idempotency-Key``; a plain POST or PATCH is sent once, so a create is never
        doubled. ``rate_limit`` adds a per-endpoint limit (e.g. a search API) to every attempt.
        """
        client = self.client
        op = operation or f"{method} {endpoint.split('?')[0]}"
        host = urlsplit(self.base_url).netloc or "local"

        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") or any(
                k.lower() == "idempotency-key" for k in (headers or {}))

        async def attempt() -> Any:
            for limit in (self.rate_limit, rate_limit):
                if limit:
                    rate, period = limit
                    await get_rate_limiter(f"{host}|{rate}/{period}", rate, period).acquire()
            try:
                response = await client.request(
                    method, endpoint, json=data, data=form, params=params, headers=headers
                )
            except Exception as exc:
                mapped = map_exception(exc, op, self.NAME)
                if mapped is exc:
                    raise
                raise mapped from None
            if response.status_code >= 400:
                raise error_from_response(response, self.NAME)
            if parse == "response":
                return response
            if parse == "bytes":
                return response.content
            if response.status_code == 204 or not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise ConnectorParseError(f"{op}: response is not valid JSON", connector=self.NAME) from None

        return await retry_async(
            attempt,
            operation=op,
            connector=self.NAME,
            max_retries=self.max_retries if idempotent else 0,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            breaker=self.breaker,
        )
