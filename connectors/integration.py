"""The shared core of integration connectors (Stripe, HubSpot, DocuSign, PagerDuty).

The guide's integration pattern: an async context manager around one httpx client, and
one ``_request`` that goes through the core's rate limiter, circuit breaker and
tenacity retry and maps every failure into the connector error hierarchy. Credentials
are dataclasses built on :class:`IntegrationCredentials`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import Field, field, fields
from datetime import datetime
from typing import Any, ClassVar, Literal, Self

import httpx

from connectors.base import HttpSettings, check_limit, check_window, send_bounded
from connectors.credentials import get_credential_provider
from connectors.credentials.base import CredentialSource, clean_credential, get_credential
from connectors.exceptions import (
    ConnectorAuthError,
    ConnectorParseError,
    ConnectorValidationError,
    error_from_response,
    map_exception,
)
from connectors.limits import deadline, parse_json
from connectors.progress import notify
from connectors.redact import get_logger, register_secret
from connectors.resilience import retry_async

__version__ = "0.1.0"
log = get_logger(__name__)


def credential(env: str, *, required: bool = False, secret: bool = True) -> Any:
    """A credentials dataclass field read from the environment variable ``env``.

    A ``required`` field has no default and must not be empty; an optional one defaults to None.
    A ``secret`` field is left out of ``repr`` and registered for redaction.
    """
    metadata = {"env": env, "required": required, "secret": secret}
    if required:
        return field(repr=not secret, metadata=metadata)
    return field(default=None, repr=not secret, metadata=metadata)


def api_object(data: object, what: str, connector: str, *, id_key: str = "id") -> tuple[Mapping[str, Any], str]:
    """An API object and its id as text; :class:`ConnectorParseError` for a body of the wrong shape.

    ``what`` names the object in the message (``"DocuSign envelope"``, ``"PagerDuty incident"``).
    """
    if not isinstance(data, Mapping):
        raise ConnectorParseError(f"{what} is not a JSON object: {type(data).__name__}", connector=connector)
    ident = data.get(id_key)
    if ident is None or ident == "":
        raise ConnectorParseError(f"{what} has no {id_key}", connector=connector)
    return data, str(ident)


class IntegrationCredentials:
    """Base of the integration connectors' credential dataclasses (fields declared with :func:`credential`)."""

    CONNECTOR: ClassVar[str] = ""

    @classmethod
    def _env_fields(cls) -> list[Field[Any]]:
        return [f for f in fields(cls) if "env" in f.metadata]  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        for f in self._env_fields():
            value = getattr(self, f.name)
            if f.metadata["secret"] and value is not None:
                register_secret(str(value))
            value = clean_credential(f"{type(self).__name__}.{f.name} ({f.metadata['env']})", value, self.CONNECTOR)
            object.__setattr__(self, f.name, value)  # the cleaned value, frozen dataclasses included
            if f.metadata["required"] and not value:
                raise ConnectorAuthError(
                    f"{type(self).__name__}.{f.name} is empty; pass it or set {f.metadata['env']}",
                    connector=self.CONNECTOR,
                )

    @classmethod
    def from_env(cls, provider: CredentialSource | None = None, **values: Any) -> Self:
        """Read every field's variable through the credential provider (``values`` are taken as given).

        A missing required variable raises :class:`ConnectorAuthError` naming it.
        """
        provider = provider or get_credential_provider()
        for f in cls._env_fields():
            if f.name not in values:
                env = f.metadata["env"]
                value = get_credential(provider, env)  # any object with get(name), as the guide's providers have
                if value is None and f.metadata["required"]:
                    raise ConnectorAuthError(
                        f"credential {env} is not set; export {env}=... or store it in the configured "
                        "credential provider (ARAGORA_CREDENTIAL_PROVIDER)", connector=cls.CONNECTOR)
                values[f.name] = value
        return cls(**values)

    def require(self, name: str, purpose: str) -> str:
        """The value of field ``name``; :class:`ConnectorAuthError` saying how to set it when it is unset."""
        value = getattr(self, name)
        if not value:
            env = next(f.metadata["env"] for f in self._env_fields() if f.name == name)
            raise ConnectorAuthError(
                f"{purpose}: set {env} or pass {type(self).__name__}({name}=...)", connector=self.CONNECTOR
            )
        return value


class IntegrationConnector(HttpSettings):
    """Base of the integration connectors: credentials, client lifecycle, ``_request``, retries, breaker, pacing.

    Subclasses set ``NAME`` (registry key), ``DISPLAY_NAME``, ``CREDENTIALS_CLASS`` (read from the
    environment when no credentials are given), ``OBJECT_TYPES``, ``DEFAULT_BASE_URL``, ``ENV_NAME``,
    ``RATE_LIMIT`` (see :class:`HttpSettings`) and implement ``_auth_headers``. The base URL is the
    explicit ``base_url``, else the credentials' own ``base_url`` when it is not the default, else
    ``ARAGORA_<ENV_NAME>_BASE_URL``, else ``DEFAULT_BASE_URL``.
    """

    NAME: ClassVar[str] = "integration"
    DISPLAY_NAME: ClassVar[str] = "integration"
    VERSION: ClassVar[str] = __version__
    CREDENTIALS_CLASS: ClassVar[type[IntegrationCredentials]]
    OBJECT_TYPES: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        credentials: IntegrationCredentials | None = None,
        *,
        base_url: str | None = None,
        base_delay: float = 0.5,
        **settings: Any,
    ) -> None:
        """``credentials=None`` reads them from the environment; ``settings`` are :class:`HttpSettings`'."""
        self.credentials: Any = credentials if credentials is not None else self.CREDENTIALS_CLASS.from_env()
        configured = getattr(self.credentials, "base_url", None)
        if not base_url and configured and configured.rstrip("/") != self.DEFAULT_BASE_URL:
            base_url = configured
        super().__init__(base_url=base_url, base_delay=base_delay, **settings)
        self._client: httpx.AsyncClient | None = None

    @property
    def name(self) -> str:
        """The registry key (``NAME``), used in errors and breaker names."""
        return self.NAME

    @abstractmethod
    def _auth_headers(self) -> dict[str, str]:
        """Authorization headers (never logged: the values are registered secrets)."""

    def _default_headers(self) -> dict[str, str]:
        """Other headers every request carries (e.g. a versioned Accept)."""
        return {"Accept": "application/json"}

    def _check_object_type(self, object_type: str) -> None:
        if object_type not in self.OBJECT_TYPES:
            raise ConnectorValidationError(
                f"unknown {self.DISPLAY_NAME} object type {object_type!r}; use one of {', '.join(self.OBJECT_TYPES)}",
                connector=self.NAME,
            )

    def _check_limit(self, limit: int | None) -> int | None:
        return check_limit(limit, self.NAME, allow_none=True)

    def _check_window(self, since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
        return check_window(since, until, self.NAME)

    @property
    def user_agent(self) -> str:
        """The descriptive User-Agent sent with every request."""
        return f"aragora-pipelines/{__version__} ({self.NAME} integration connector)"

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(
            base_url=self.base_url or "",
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
        Redirects are followed only within the API's origin (:func:`connectors.base.follow_api_redirects`).
        Each attempt has ``request_deadline`` seconds and its answer is read under the size and JSON depth
        limits (:func:`connectors.base.send_bounded`).
        """
        client = self.client
        op = operation or f"{method} {endpoint.split('?')[0]}"
        host = self._host

        if idempotent is None:
            idempotent = method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS") or any(
                k.lower() == "idempotency-key" for k in (headers or {}))

        async def attempt() -> Any:
            await self._throttle(host, rate_limit)
            try:
                async with deadline(self.request_deadline, op, self.NAME):
                    response = await send_bounded(
                        client, method, endpoint, self, op, json=data, data=form, params=params, headers=headers,
                        follow_redirects=parse != "response",
                    )
            except Exception as exc:
                mapped = map_exception(exc, op, self.NAME)
                if mapped is exc:
                    raise
                raise mapped from None
            notify("response", self.NAME, operation=op, status=response.status_code)
            if response.status_code >= 400:
                raise error_from_response(response, self.NAME)
            if parse == "response":
                return response
            if parse == "bytes":
                return response.content
            if response.status_code == 204 or not response.content:
                return {}
            return parse_json(response.content, op, self.NAME)

        return await retry_async(
            attempt,
            operation=op,
            connector=self.NAME,
            max_retries=self.max_retries if idempotent else 0,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            breaker=self.breaker,
            max_retry_wait=self.max_retry_wait,
            rate_limit_backoff=self.RATE_LIMIT_BACKOFF,
        )
