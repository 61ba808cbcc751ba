"""The evidence connector contract: ``Evidence`` and ``BaseConnector``.

``BaseConnector`` gives every evidence source one shared httpx client, retries built on
tenacity, a per-connector circuit breaker, a per-host rate limiter, a TTL cache,
credential lookup and provenance recording, so a connector only maps its API.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from connectors.cache import TTLCache
from connectors.credentials import (
    CredentialSource,
    aget_credential,
    get_credential,
    get_credential_provider,
    invalidate_credential,
)
from connectors.credentials.base import clean_credential
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorParseError,
    ConnectorValidationError,
    error_from_response,
    is_retryable_error,
)
from connectors.limits import (
    MAX_JSON_DEPTH,
    MAX_RESPONSE_BYTES,
    REQUEST_DEADLINE,
    ResponseLimitError,
    check_json_depth,
    deadline,
    loaded_response,
    parse_json,
    read_body,
)
from connectors.progress import notify
from connectors.provenance import ProvenanceManager, ProvenanceRecord, SourceType
from connectors.redact import get_logger, redact_url, register_secret
from connectors.resilience import (
    DEFAULT_RATE_LIMIT_BACKOFF,
    CircuitBreaker,
    get_circuit_breaker,
    get_rate_limiter,
    max_retry_wait_setting,
    retry_async,
)
from connectors.text import iso_utc, parse_datetime

__version__ = "0.1.0"
T = TypeVar("T")
log = get_logger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
MAX_API_REDIRECTS = 5  # same-origin redirects an API request follows

# created_at is hashed in its canonical form (iso_utc), so a row read back from a TIMESTAMPTZ
# column hashes the same as the item did when it was fetched.
_HASHED_FIELDS = ("source_type", "source_id", "title", "content", "url", "author", "created_at")


@dataclass
class Evidence:
    """One piece of evidence, with the reliability indicators debates weigh it by."""

    id: str
    source_type: SourceType
    source_id: str  # URL, file path, etc.
    content: str
    title: str = ""

    # Metadata
    created_at: str | None = None
    author: str | None = None
    url: str | None = None

    # Reliability indicators
    confidence: float = 0.5
    freshness: float = 1.0
    authority: float = 0.5
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("confidence", "freshness", "authority"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"Evidence.{name} must be a number in [0, 1], got {value!r} for {self.id}")

    @property
    def reliability_score(self) -> float:
        """Combined reliability score."""
        return 0.4 * self.confidence + 0.3 * self.freshness + 0.3 * self.authority

    @property
    def content_hash(self) -> str:
        """SHA-256 of what the item says (not of its scores, which drift with time)."""
        payload = [str(getattr(self, name) or "") for name in _HASHED_FIELDS]
        payload[_HASHED_FIELDS.index("created_at")] = iso_utc(self.created_at) or payload[-1]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the derived reliability score and content hash."""
        data = asdict(self)
        data["source_type"] = str(self.source_type)
        data["reliability_score"] = self.reliability_score
        data["content_hash"] = self.content_hash
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evidence:
        """Rebuild from :meth:`to_dict` output (derived keys are ignored)."""
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["source_type"] = SourceType(kwargs["source_type"])
        kwargs["metadata"] = dict(kwargs.get("metadata") or {})
        return cls(**kwargs)


def evidence_id(source: str, source_id: object) -> str:
    """The stable, source-scoped id of an item: ``"<source>:<source id>"``."""
    return f"{source}:{source_id}"


class PaginationGuard:
    """Ends pagination with an error when a cursor, page or URL repeats (never loops)."""

    def __init__(self, connector: str, operation: str, max_pages: int = 100_000) -> None:
        self.connector, self.operation, self.max_pages = connector, operation, max_pages
        self._seen: set[Hashable] = set()

    def check(self, token: Hashable) -> None:
        """Register the next page's cursor; raise :class:`ConnectorParseError` if it was seen before."""
        if not isinstance(token, str | int | tuple) or isinstance(token, bool):
            raise ConnectorParseError(
                f"{self.operation}: the API returned a cursor of type {type(token).__name__}, not text or a number",
                connector=self.connector,
            )
        if token in self._seen:
            raise ConnectorParseError(
                f"{self.operation}: the API returned cursor/page {token!r} twice; stopping instead of looping",
                connector=self.connector,
            )
        if len(self._seen) >= self.max_pages:
            raise ConnectorParseError(
                f"{self.operation}: more than {self.max_pages} pages; stopping", connector=self.connector
            )
        self._seen.add(token)


def check_count(name: str, value: object, connector: str | None = None, *, maximum: int | None = None) -> int:
    """``value`` if it is an integer from 1 (to ``maximum``), else a validation error naming the setting ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or (maximum is not None and value > maximum):
        what = "a positive integer" if maximum is None else f"an integer from 1 to {maximum}"
        raise ConnectorValidationError(f"{name} must be {what}, got {value!r}", connector=connector)
    return value


def check_score(name: str, value: object, connector: str | None = None) -> float:
    """``value`` if it is a number in [0, 1] (a score knob such as ``authority``), else a validation error."""
    if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ConnectorValidationError(f"{name} must be in [0, 1], got {value!r}", connector=connector)
    return value


def check_positive(name: str, value: float, connector: str | None = None) -> float:
    """``value`` if it is above zero (e.g. ``half_life_days``), else a validation error."""
    if not value > 0:
        raise ConnectorValidationError(f"{name} must be positive, got {value!r}", connector=connector)
    return value


def check_limit(limit: object, connector: str | None = None, *, allow_none: bool = False) -> int | None:
    """``limit`` if it is a positive integer (or None, meaning everything, when allowed), else a validation error."""
    if limit is None and allow_none:
        return None
    return check_count("limit", limit, connector)


def check_window(since: datetime | None, until: datetime | None, connector: str | None = None
                 ) -> tuple[datetime | None, datetime | None]:
    """The window as aware UTC datetimes; a validation error when ``since`` is not before ``until``."""
    since, until = to_utc(since), to_utc(until)
    if since is not None and until is not None and since >= until:
        raise ConnectorValidationError(
            f"empty window: since ({since.isoformat()}) must be before until ({until.isoformat()})",
            connector=connector,
        )
    return since, until


def in_window(moment: object, since: datetime | None, until: datetime | None) -> bool:
    """Whether ``moment`` (a datetime, ISO-8601 text or epoch seconds) lies in the UTC window [since, until).

    Open ends are allowed; an unknown or unreadable moment is outside any window.
    """
    if since is None and until is None:
        return True
    moment = parse_datetime(moment)
    return moment is not None and (since is None or moment >= since) and (until is None or moment < until)


def split_window(since: datetime, until: datetime) -> tuple[tuple[datetime, datetime], tuple[datetime, datetime]]:
    """Halve a time window (used when an API caps results per query)."""
    middle = since + (until - since) / 2
    return (since, middle), (middle, until)


def to_utc(moment: datetime | None) -> datetime | None:
    """An aware UTC datetime (naive input is taken as UTC)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_ceil(moment: datetime, unit: timedelta = _SECOND) -> int:
    """Whole ``unit``s since the Unix epoch, rounded up (exact integer arithmetic).

    An API filtering at ``unit`` resolution then keeps exactly [since, until): ``t >= ceil(since)``
    and ``t < ceil(until)`` hold for its whole-unit timestamps just when they hold for the instants.
    """
    return -((_EPOCH - to_utc(moment)) // unit)


def ceil_time(moment: datetime, unit: timedelta = _SECOND) -> datetime:
    """``moment`` as UTC, rounded up to a whole ``unit`` (an API's date-filter resolution)."""
    return _EPOCH + epoch_ceil(moment, unit) * unit


async def follow_api_redirects(
    client: httpx.AsyncClient, response: httpx.Response, operation: str, connector: str,
    max_redirects: int = MAX_API_REDIRECTS,
) -> httpx.Response:
    """The answer at the end of ``response``'s redirects, followed while they stay on the request's own origin.

    APIs move resources within themselves (GitHub answers 301 for a transferred issue). A redirect to
    another scheme, host or port, or more than ``max_redirects``, is a :class:`ConnectorAPIError`.
    Redirects are closed unread and each hop is sent streamed, so the final answer's body is not read yet.
    """
    origin = response.request.url
    hops = 0
    while (target := response.next_request) is not None:  # httpx builds it for each redirect it does not follow
        await response.aclose()  # a redirect's body is never read (its status and headers stay available)
        if (target.url.scheme, target.url.host, target.url.port) != (origin.scheme, origin.host, origin.port):
            raise ConnectorAPIError(
                f"{operation}: redirect (HTTP {response.status_code}) to {redact_url(target.url)} leaves "
                f"{origin.scheme}://{origin.host}; not followed, point base_url at the final address",
                connector=connector,
                status_code=response.status_code,
            )
        if hops == max_redirects:
            raise ConnectorAPIError(
                f"{operation}: more than {max_redirects} redirects", connector=connector,
                status_code=response.status_code,
            )
        hops += 1
        response = await client.send(target, stream=True)
    return response


async def send_bounded(
    client: httpx.AsyncClient, method: str, url: str | httpx.URL, settings: HttpSettings, operation: str, *,
    follow_redirects: bool = True, **kwargs: Any,
) -> httpx.Response:
    """One exchange whose answer is read under ``settings``' limits: the one request path of every connector.

    The body is streamed and refused past ``max_response_bytes`` (decompressed), a body that looks
    like JSON is refused when it nests deeper than ``max_json_depth`` (:class:`ResponseLimitError`),
    and same-origin redirects are followed (:func:`follow_api_redirects`) unless ``follow_redirects``
    is False. ``kwargs`` go to ``client.build_request``; the answer comes back fully read.
    """
    response = await client.send(client.build_request(method, url, **kwargs), stream=True)
    try:
        if follow_redirects:
            response = await follow_api_redirects(client, response, operation, settings.name)
        body = await read_body(response, settings.max_response_bytes, operation, settings.name)
    finally:
        await response.aclose()
    check_json_depth(body, settings.max_json_depth, operation, settings.name)
    return loaded_response(response, body)


class _LoopBound:
    """The httpx client and concurrency gate of one event loop (neither may cross loops).

    Once bound to a running loop, the client is closed inside that loop when the loop shuts down
    (``asyncio.run`` finalizes open async generators), so its sockets never outlive the loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop | None, client: httpx.AsyncClient, concurrency: int) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client = client
        self.gate = asyncio.Semaphore(concurrency)
        self._closer: AsyncGenerator[None, None] | None = None
        if loop is not None:
            self.bind(loop)

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Tie the client to the running ``loop``: the loop's async-generator shutdown closes it."""
        self.loop = loop
        self._closer = self._close_at_shutdown()
        with contextlib.suppress(StopIteration):  # runs it to its yield; from then on the loop tracks it
            self._closer.asend(None).send(None)

    async def _close_at_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.client.aclose()

    def usable_in(self, loop: asyncio.AbstractEventLoop | None) -> bool:
        """Whether this client may serve ``loop`` (None: no running loop): still open and not another loop's."""
        return not self.client.is_closed and (loop is None or self.loop in (loop, None))


class HttpSettings(ABC):
    """What evidence and integration connectors share: base URL, timeout, retry, breaker and pacing settings.

    Subclasses set ``DEFAULT_BASE_URL``, ``ENV_NAME`` (``ARAGORA_<ENV_NAME>_BASE_URL`` overrides the
    default when no ``base_url`` is given) and ``RATE_LIMIT`` (requests, per seconds: the API's published
    limit, used when ``rate_limit`` is None; ``rate_limit=False`` switches pacing off for simulators and
    tests). Breakers are named ``<name>@<host>`` and rate limiters keyed by host, so every instance
    talking to the same host shares them. Every answer is bounded (:mod:`connectors.limits`):
    ``max_response_bytes`` of body after decompression, ``max_json_depth`` levels of JSON nesting and
    ``request_deadline`` seconds per attempt; their defaults are the ``MAX_RESPONSE_BYTES``,
    ``MAX_JSON_DEPTH`` and ``REQUEST_DEADLINE`` class attributes, so an API can set its own.
    ``RATE_LIMIT_BACKOFF`` is the first wait after a rate limit that names no wait (doubling after
    each), as the API documents it; ``max_retry_wait`` (default ``ARAGORA_MAX_RETRY_WAIT``, else 60 s)
    bounds a server-imposed wait ridden out in-process: a longer one is raised for a later retry.
    """

    DEFAULT_BASE_URL: ClassVar[str | None] = None
    ENV_NAME: ClassVar[str | None] = None
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = None
    RATE_LIMIT_BACKOFF: ClassVar[float] = DEFAULT_RATE_LIMIT_BACKOFF
    MAX_RESPONSE_BYTES: ClassVar[int] = MAX_RESPONSE_BYTES
    MAX_JSON_DEPTH: ClassVar[int] = MAX_JSON_DEPTH
    REQUEST_DEADLINE: ClassVar[float] = REQUEST_DEADLINE

    def __init__(
        self,
        *,
        base_url: str | None = None,
        max_retries: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 30.0,
        timeout: float = 30.0,
        enable_circuit_breaker: bool = True,
        circuit_failure_threshold: int = 5,
        circuit_cooldown_seconds: float = 60.0,
        circuit_half_open_max_calls: int = 1,
        circuit_success_threshold: int = 1,
        rate_limit: tuple[float, float] | Literal[False] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int | None = None,
        max_json_depth: int | None = None,
        request_deadline: float | None = None,
        max_retry_wait: float | None = None,
    ) -> None:
        env_url = os.environ.get(f"ARAGORA_{self.ENV_NAME}_BASE_URL") if self.ENV_NAME else None
        self.base_url = (base_url or env_url or self.DEFAULT_BASE_URL or "").rstrip("/") or None
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.max_retry_wait = max_retry_wait_setting(max_retry_wait, type(self).__name__)
        self.timeout = timeout
        self.enable_circuit_breaker = enable_circuit_breaker
        self._breaker_config = {
            "failure_threshold": circuit_failure_threshold,
            "cooldown_seconds": circuit_cooldown_seconds,
            "half_open_max_calls": circuit_half_open_max_calls,
            "success_threshold": circuit_success_threshold,
        }
        self.rate_limit = None if rate_limit is False else (rate_limit or self.RATE_LIMIT)
        self._transport = transport
        self.max_response_bytes = check_count(
            "max_response_bytes", self.MAX_RESPONSE_BYTES if max_response_bytes is None else max_response_bytes)
        self.max_json_depth = check_count(
            "max_json_depth", self.MAX_JSON_DEPTH if max_json_depth is None else max_json_depth)
        self.request_deadline = check_positive(
            "request_deadline", self.REQUEST_DEADLINE if request_deadline is None else request_deadline)

    @property
    @abstractmethod
    def name(self) -> str:
        """Human-readable connector name (used in errors and breaker names)."""

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The named circuit breaker shared by every instance talking to the same host."""
        return self._breaker_for(self._host)

    def _breaker_for(self, host: str) -> CircuitBreaker | None:
        if not self.enable_circuit_breaker:
            return None
        return get_circuit_breaker(f"{self.name}@{host}", **self._breaker_config)

    @property
    def _host(self) -> str:
        return urlsplit(self.base_url or "").netloc or "local"

    async def _throttle(self, host: str, extra: tuple[float, float] | None = None) -> None:
        """Wait for a slot under the rate limit (and an ``extra`` per-endpoint one) of ``host``."""
        for limit in (self.rate_limit, extra):
            if limit:
                rate, period = limit
                wait = get_rate_limiter(f"{host}|{rate}/{period}", rate, period).reserve()
                if wait > 0:
                    notify("wait", self.name, seconds=wait, detail=f"rate limit {rate:g} per {period:g}s")
                    await asyncio.sleep(wait)


class BaseConnector(HttpSettings):
    """Base of every evidence connector (the guide's interface, plus base_url and provenance).

    Subclasses set ``SOURCE`` (registry key and id prefix), ``HAS_TIME_AXIS`` (False when
    ``since``/``until`` mean nothing, as for files), ``DEFAULT_BASE_URL``, ``ENV_NAME`` (``ARAGORA_<ENV_NAME>_BASE_URL``
    overrides the base URL), ``CREDENTIALS`` (keyword -> env var), ``REQUIRED_CREDENTIALS``
    ``SETTINGS`` (credential keywords that are plain settings, e.g. a folder, never redacted)
    and ``RATE_LIMIT`` (requests, per seconds), and implement ``name``, ``source_type``, ``search`` and ``fetch``.
    """

    SOURCE: ClassVar[str] = ""
    HAS_TIME_AXIS: ClassVar[bool] = True
    VERSION: ClassVar[str] = __version__
    CREDENTIALS: ClassVar[dict[str, str]] = {}
    REQUIRED_CREDENTIALS: ClassVar[tuple[str, ...]] = ()
    SETTINGS: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        *,
        provenance: ProvenanceManager | None = None,
        credential_provider: CredentialSource | None = None,
        max_cache_entries: int = 500,
        cache_ttl_seconds: float = 3600.0,
        max_concurrency: int = 8,
        user_agent: str | None = None,
        retry_parse_errors: bool = False,
        **settings: Any,
    ) -> None:
        """``settings`` are :class:`HttpSettings`' (base_url, timeout, retries, breaker, rate_limit, transport)."""
        super().__init__(**settings)
        self.provenance = provenance
        self._credential_provider = credential_provider
        self._credentials: dict[str, str | None] = {}
        self._provided: dict[str, str] = {}  # keyword -> env var of credentials read through the provider
        self._cache: TTLCache[Any] = TTLCache(max_cache_entries, cache_ttl_seconds)
        self.max_concurrency = max_concurrency
        self._user_agent = user_agent
        self.retry_parse_errors = retry_parse_errors
        self._bound: _LoopBound | None = None

    # --- identity -----------------------------------------------------------------------
    @property
    @abstractmethod
    def source_type(self) -> SourceType:
        """The kind of source this connector reads."""

    @property
    def is_available(self) -> bool:
        """Whether the optional dependencies this connector needs are importable."""
        return True

    @property
    def is_configured(self) -> bool:
        """Whether every required credential is present."""
        return not self.missing_credentials()

    @property
    def user_agent(self) -> str:
        """The descriptive User-Agent sent with every request."""
        return self._user_agent or f"aragora-pipelines/{__version__} ({self.name} evidence connector)"

    @abstractmethod
    async def search(self, query: str, limit: int = 10, **kwargs: Any) -> list[Evidence]:
        """Search for evidence matching ``query`` (``since``/``until`` restrict the time window)."""

    @abstractmethod
    async def fetch(self, evidence_id: str) -> Evidence | None:
        """Fetch one piece of evidence by its id."""

    # --- credentials --------------------------------------------------------------------
    def _credential(self, keyword: str, explicit: str | None = None) -> str | None:
        """Resolve a credential: the explicit value, else its env var through the credential provider."""
        secret = keyword not in self.SETTINGS
        if explicit:
            if secret:
                register_secret(explicit)
            value: str | None = clean_credential(f"{keyword} (argument of {type(self).__name__})", explicit)
        else:
            env_name = self.CREDENTIALS.get(keyword)
            value = get_credential(self._provider(), env_name, secret=secret) if env_name else None
            if env_name:
                self._provided[keyword] = env_name
        self._credentials[keyword] = value
        return value

    def _provider(self) -> CredentialSource:
        return self._credential_provider or get_credential_provider()

    async def refresh_credentials(self) -> bool:
        """Read the credentials that came from the provider again (a rotated key after an auth error).

        Cached values are dropped first and the reads run in a worker thread, off the event loop. A changed
        value replaces the ``_<keyword>`` attribute holding it (``self._token`` for ``token``) and the shared
        client's default headers. Returns whether any value changed.
        """
        provider, changed = self._provider(), False
        for keyword, env_name in self._provided.items():
            invalidate_credential(provider, env_name)
            value = await aget_credential(provider, env_name, secret=keyword not in self.SETTINGS)
            if value != self._credentials.get(keyword):
                changed = True
                self._credentials[keyword] = value
                if hasattr(self, f"_{keyword}"):
                    setattr(self, f"_{keyword}", value)
        if changed and self._bound is not None:
            self._bound.client.headers.update(self._default_headers())
        return changed

    def missing_credentials(self) -> list[str]:
        """Env var names of the required credentials that are not set."""
        return [
            self.CREDENTIALS.get(kw, kw.upper()) for kw in self.REQUIRED_CREDENTIALS if not self._credentials.get(kw)
        ]

    def require_configured(self) -> None:
        """Raise :class:`ConnectorAuthError` naming the env vars to set, before any request."""
        if self.is_configured:
            return
        missing = self.missing_credentials()
        what = ", ".join(missing) if missing else "its credentials"
        raise ConnectorAuthError(
            f"{self.name} is not configured: set {what} (environment or credential provider)",
            connector=self.name,
        )

    # --- HTTP ---------------------------------------------------------------------------
    def _make_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url or "",
            headers={"User-Agent": self.user_agent, **self._default_headers()},
            timeout=self.timeout,
            transport=self._transport,
            follow_redirects=False,
        )

    def _default_headers(self) -> dict[str, str]:
        """Headers every request carries (auth goes here in subclasses)."""
        return {}

    def _bound_state(self) -> _LoopBound:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if self._bound is None or not self._bound.usable_in(loop):
            self._bound = _LoopBound(loop, self._make_client(), self.max_concurrency)
        elif self._bound.loop is None and loop is not None:
            self._bound.bind(loop)
        return self._bound

    @property
    def client(self) -> httpx.AsyncClient:
        """The client requests go through: the one a subclass set as ``_client``, else the shared one."""
        return self._client

    @property
    def _client(self) -> httpx.AsyncClient:
        """A client the subclass assigned (the guide's integration pattern), else the shared client.

        The shared client is opened lazily, one per event loop, and closed by :meth:`close`; a client the
        subclass assigns (in ``__init__`` or ``__aenter__``) stays its own: used as given, closed by its owner.
        Assigning None goes back to the shared client.
        """
        own = self.__dict__.get("_own_client")
        return own if own is not None else self._bound_state().client

    @_client.setter
    def _client(self, client: httpx.AsyncClient | None) -> None:
        self.__dict__["_own_client"] = client

    async def _request_with_retry(
        self, request_func: Callable[[], Awaitable[T]], operation: str = "request", *, host: str | None = None,
        needs_credentials: bool = True,
    ) -> T:
        """Run ``request_func`` under the rate limiter, breaker and retry policy, mapping errors.

        ``host`` (default: the base URL's) picks the rate limiter and breaker, for a connector that
        talks to other hosts than its API (e.g. fetched web pages); ``needs_credentials=False`` is for
        such requests, which the API's credentials do not gate.
        """
        if needs_credentials:
            self.require_configured()
        state = self._bound_state()
        host = host or self._host

        async def one_attempt() -> T:
            await self._throttle(host)
            async with state.gate, deadline(self.request_deadline, operation, self.name):
                return await request_func()

        retry_on = is_retryable_error
        if self.retry_parse_errors:
            def retry_on(exc: BaseException) -> bool:
                return is_retryable_error(exc) or (
                    isinstance(exc, ConnectorParseError) and not isinstance(exc, ResponseLimitError))

        return await retry_async(
            one_attempt,
            operation=operation,
            connector=self.name,
            max_retries=self.max_retries,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            breaker=self._breaker_for(host),
            retry_on=retry_on,
            max_retry_wait=self.max_retry_wait,
            rate_limit_backoff=self.RATE_LIMIT_BACKOFF,
        )

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
        operation: str | None = None,
        parse: Literal["json", "text", "bytes", "response"] = "json",
    ) -> Any:
        """One HTTP call through :meth:`_request_with_retry`; errors mapped, body parsed as asked.

        The answer is read under the connector's limits (:func:`send_bounded`). Redirects within the
        request's origin are followed (:func:`follow_api_redirects`), except for ``parse="response"``,
        whose caller gets the redirect itself.
        """
        op = operation or f"{method} {url.split('?')[0]}"

        async def call() -> Any:
            response = await send_bounded(
                self.client, method, url, self, op, params=params, json=json_body, data=data, files=files,
                headers=headers, follow_redirects=parse != "response",  # a raw response's caller handles redirects
            )
            notify("response", self.name, operation=op, status=response.status_code)
            if response.status_code >= 400:
                raise error_from_response(response, self.name)
            if parse == "response":
                return response
            if parse == "bytes":
                return response.content
            if parse == "text":
                return response.text
            return parse_json(response.content, op, self.name)

        return await self._request_with_retry(call, op)

    async def _get_json(self, url: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """GET ``url`` and return its JSON body."""
        return await self._request("GET", url, params=params, **kwargs)

    async def close(self) -> None:
        """Close the shared client (safe to call more than once); a client the subclass set is left to it."""
        bound, self._bound = self._bound, None
        if bound is not None:
            try:
                await bound.client.aclose()
            except RuntimeError:  # the loop that owned its connections is gone
                log.debug("%s: client closed after its event loop ended", self.name)

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- cache ----------------------------------------------------------------------------
    def _cache_get(self, key: Hashable) -> Any:
        return self._cache.get(key)

    def _cache_put(self, key: Hashable, value: Any) -> None:
        self._cache.put(key, value)

    def _cache_stats(self) -> dict[str, Any]:
        return self._cache.stats()

    def get_cache_stats(self) -> dict[str, Any]:
        """Cache statistics: entries, hits, misses, evictions, expired, max_entries, ttl_seconds."""
        return self._cache_stats()

    # --- provenance and health ------------------------------------------------------------
    async def search_and_record(
        self, query: str, claim_id: str | None = None, limit: int = 10, **kwargs: Any
    ) -> list[tuple[Evidence, ProvenanceRecord | None]]:
        """Search, then record each result in the provenance chain (and cite it for ``claim_id``)."""
        results = await self.search(query, limit=limit, **kwargs)
        out: list[tuple[Evidence, ProvenanceRecord | None]] = []
        for evidence in results:
            record = None
            if self.provenance is not None:
                record = self.provenance.record_evidence(
                    evidence,
                    connector=self.name,
                    connector_version=self.VERSION,
                    claim_id=claim_id,
                    metadata={"query": query},
                )
            out.append((evidence, record))
        return out

    async def health_check(self) -> dict[str, Any]:
        """Availability, configuration, breaker state and cache stats (no request is sent)."""
        breaker = self.breaker
        state = breaker.state.value if breaker else "disabled"
        return {
            "name": self.name,
            "available": self.is_available,
            "configured": self.is_configured,
            "missing_credentials": self.missing_credentials(),
            "base_url": self.base_url,
            "circuit_state": state,
            "healthy": self.is_available and self.is_configured and state != "open",
            "cache": self._cache_stats(),
        }

    # --- search argument checks -------------------------------------------------------------
    def _check_limit(self, limit: int) -> int:
        return check_limit(limit, self.name)  # type: ignore[return-value]

    def _check_window(self, since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
        return check_window(since, until, self.name)

    def _check_options(self, options: Mapping[str, Any], allowed: Iterable[str] = ()) -> None:
        """Refuse search keyword options outside ``allowed``: a misspelt filter is never silently ignored."""
        allowed = list(allowed)
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ConnectorValidationError(
                f"unknown search option(s) {unknown}; {self.name} accepts {', '.join(allowed) or 'none'}",
                connector=self.name,
            )

    def _required_query(self, query: str | None) -> str:
        """The stripped query text; a validation error when there is none."""
        text = (query or "").strip()
        if not text:
            raise ConnectorValidationError(
                f"query is empty: give the text to search {self.name} for", connector=self.name
            )
        return text
