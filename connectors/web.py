"""Web pages (fetched behind an SSRF guard) and web search results (Brave Search or SearxNG) as evidence."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

try:
    import trafilatura
except ImportError:  # optional: pages then fall back to connectors.text.html_to_text
    trafilatura = None

from connectors.base import BaseConnector, Evidence, check_count, check_positive, evidence_id, in_window, to_utc
from connectors.exceptions import (
    ConnectorAPIError,
    ConnectorAuthError,
    ConnectorNetworkError,
    ConnectorNotFoundError,
    ConnectorParseError,
    ConnectorValidationError,
    error_from_response,
)
from connectors.limits import check_json_depth, read_body
from connectors.provenance import SourceType
from connectors.redact import get_logger
from connectors.text import clamp, freshness, html_title, html_to_text, http_date, iso_utc, log_scale, parse_datetime

log = get_logger(__name__)
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_Hit = tuple[dict[str, Any], Any, int, datetime | None]  # (result, its url, engines, published)

ALLOWED_CONTENT_TYPES = frozenset({"text/html", "text/plain", "application/xhtml+xml", "application/json"})
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
FRESHNESS_HALF_LIFE_DAYS = 90.0
BRAVE_SEARCH_PATH = "/res/v1/web/search"
BRAVE_MAX_COUNT = 20  # results per request
BRAVE_MAX_OFFSET = 9  # offset counts pages of `count` results
DEFAULT_MAX_PAGES = 10
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SEARXNG_RANGES = (("day", 1), ("month", 31), ("year", 366))  # the time_range values SearxNG documents

METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254",  # AWS, GCP, Azure, ...
    "192.0.0.192",  # Oracle Cloud (classic)
    "100.100.100.200",  # Alibaba Cloud
))
# Not globally routable per the IANA special-purpose registries, yet ``is_global`` on Python 3.11: IETF protocol
# assignments (192.0.0.0/24), deprecated IPv6 site-local (fec0::/10), IPv6 documentation (3fff::/20, RFC 9637).
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in ("192.0.0.0/24", "fec0::/10", "3fff::/20"))
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-FxX.]+$")

GOVERNMENT_AUTHORITY = 0.85
ACADEMIC_AUTHORITY = 0.8
DEFAULT_AUTHORITY = 0.5
REFERENCE_AUTHORITY = {
    "who.int": 0.85,
    "europa.eu": 0.8,
    "britannica.com": 0.8,
    "nature.com": 0.8,
    "science.org": 0.8,
    "wikipedia.org": 0.75,
    "arxiv.org": 0.75,
    "reuters.com": 0.75,
    "apnews.com": 0.75,
    "docs.python.org": 0.75,
    "developer.mozilla.org": 0.75,
    "github.com": 0.6,
    "stackoverflow.com": 0.6,
}


def domain_authority(host: str) -> float:
    """Authority of a host: the reference table, then .gov/.mil (0.85), .edu/.ac (0.8), else 0.5."""
    host = host.lower().rstrip(".")
    for domain, score in REFERENCE_AUTHORITY.items():
        if host == domain or host.endswith(f".{domain}"):
            return score
    labels = host.split(".")
    if labels[-1] in ("gov", "mil") or (len(labels) > 2 and labels[-2] in ("gov", "mil")):
        return GOVERNMENT_AUTHORITY
    if labels[-1] == "edu" or (len(labels) > 2 and labels[-2] in ("edu", "ac")):
        return ACADEMIC_AUTHORITY
    return DEFAULT_AUTHORITY


def normalize_url(url: str) -> str:
    """The canonical form of a URL used in ids: lower-case scheme and host, no default port, no fragment."""
    parsed = httpx.URL(url)
    host = parsed.raw_host.decode("ascii").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parsed.port}" if parsed.port and parsed.port != _DEFAULT_PORTS.get(parsed.scheme) else ""
    return f"{parsed.scheme}://{host}{port}{parsed.raw_path.decode('ascii') or '/'}"


def brave_freshness(since: datetime | None, until: datetime | None) -> str:
    """Brave's ``freshness=YYYY-MM-DDtoYYYY-MM-DD`` (inclusive days) covering [since, until)."""
    start = (since or datetime(1970, 1, 1, tzinfo=UTC)).date()
    end = (until - timedelta(microseconds=1)).date() if until else datetime.now(UTC).date()
    return f"{start:%Y-%m-%d}to{end:%Y-%m-%d}"


def literal_address(host: str) -> IPAddress | None:
    """The IP a host names literally, including inet_aton forms (``2130706433``, ``0177.0.0.1``, ``0x7f.1``)."""
    host = host.rstrip(".")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None]
    if address in NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def blocked_reason(address: IPAddress, allow_private_networks: bool = False) -> str | None:
    """Why ``address`` may not be fetched (None when it may).

    Cloud metadata endpoints, unspecified and multicast addresses are always refused; loopback,
    link-local, private, carrier-grade NAT (100.64/10), reserved and every other address that is not
    globally routable (``is_global``, plus :data:`NOT_GLOBAL`) unless ``allow_private_networks``.
    IPv4 addresses embedded in IPv6 ones are checked too.
    """
    for candidate in (*_embedded_ipv4(address), address):
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata endpoint"
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_multicast:
            return "multicast"
        if allow_private_networks:
            continue
        checks = (
            ("loopback", candidate.is_loopback),
            ("link-local", candidate.is_link_local),
            ("carrier-grade NAT", isinstance(candidate, ipaddress.IPv4Address) and candidate in CGNAT),
            ("reserved", candidate.is_reserved),
            ("private", candidate.is_private),
            ("not globally routable", not candidate.is_global
             or any(candidate in network for network in NOT_GLOBAL if network.version == candidate.version)),
        )
        reason = next((label for label, hit in checks if hit), None)
        if reason:
            return reason
    return None


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to the addresses ``addresses(host, port)`` allows.

    The name is resolved and checked here, when the connection is made, and the connection goes to the
    address that was checked: an answer that changes after the check (DNS rebinding) cannot redirect it.
    """

    def __init__(self, addresses: Callable[[str, int], Awaitable[list[str]]]) -> None:
        self._addresses = addresses
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        """A connection to the first allowed address of ``host`` that answers."""
        failure: Exception = httpcore.ConnectError(f"{host!r} has no address to connect to")
        for address in await self._addresses(host, port):
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure

    async def sleep(self, seconds: float) -> None:
        """Sleep as httpcore's own backend does."""
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's default transport (TLS verified against the URL's host name) over a :class:`_GuardedBackend`."""

    def __init__(self, backend: _GuardedBackend) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(  # httpx's default limits
            ssl_context=httpx.create_ssl_context(), max_connections=100, max_keepalive_connections=20,
            keepalive_expiry=5.0, network_backend=backend,
        )


@dataclass(frozen=True)
class _Page:
    """A downloaded response body that passed the type and size limits."""

    url: httpx.URL
    media_type: str
    charset: str | None
    body: bytes
    last_modified: str | None


@dataclass(frozen=True)
class _Extracted:
    title: str
    text: str
    published: datetime | None
    author: str | None
    sitename: str | None
    extractor: str


def _decode(page: _Page) -> str:
    try:
        return page.body.decode(page.charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return page.body.decode("utf-8", errors="replace")


def _extract(page: _Page) -> _Extracted:
    """Main text, title, date and author of a page (blocking: trafilatura parses the whole document)."""
    raw = _decode(page)
    last_modified = http_date(page.last_modified)
    if page.media_type not in _HTML_TYPES:
        if page.media_type == "application/json":
            with contextlib.suppress(ValueError):
                raw = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
        return _Extracted("", raw.strip(), last_modified, None, None, "verbatim")
    main = trafilatura.extract(raw, include_comments=False, include_tables=True) if trafilatura else None
    meta = trafilatura.extract_metadata(raw) if trafilatura else None
    return _Extracted(
        title=(meta.title if meta and meta.title else "") or html_title(raw),
        text=main or html_to_text(raw),
        published=parse_datetime(meta.date if meta and meta.date else None) or last_modified,
        author=meta.author if meta and meta.author else None,
        sitename=meta.sitename if meta and meta.sitename else None,
        extractor="trafilatura" if main else "html_to_text",
    )


class WebConnector(BaseConnector):
    """Web pages by URL, and web search results from the Brave Search API or a SearxNG instance.

    ``fetch(url)`` downloads a page with httpx behind an SSRF guard: http/https only; the host's
    every address (literal, inet_aton forms like ``http://2130706433/`` and ``http://0177.0.0.1/``,
    or each ``getaddrinfo`` answer, resolved in a thread) must pass :func:`blocked_reason`; every
    redirect is followed by hand (at most ``max_redirects``, default 5) and re-checked. Only
    text/html, text/plain, application/xhtml+xml and application/json bodies are read, streamed
    and stopped past ``max_bytes`` (after decompression; JSON nested over ``max_json_depth`` is
    refused). The main text comes from ``trafilatura.extract``, else
    :func:`connectors.text.html_to_text`. Pages are cached for ``cache_ttl_seconds`` (default
    3600) and then fetched again. Page fetches get a circuit breaker and rate limiter per target
    host, so one dead site cannot block the others. The guard runs again when a connection is made:
    the host is resolved, every address checked, and the connection goes to a checked address, so
    a DNS answer that changes after the first check (rebinding) cannot reach an internal address.
    That makes page fetches connect directly: proxies from the environment are not used.

    ``search`` never fetches pages: with ``api_key`` / ``BRAVE_API_KEY`` it calls Brave
    (``GET {base_url}/res/v1/web/search``, token in ``X-Subscription-Token``, ``count`` up to 20,
    ``offset`` pages 0-9, ``freshness=YYYY-MM-DDtoYYYY-MM-DD`` for since/until); else with
    ``search_url`` / ``ARAGORA_WEB_SEARCH_URL`` it calls SearxNG (``GET {search_url}/search?
    format=json&pageno=N``, the smallest covering ``time_range`` for since). Results dated outside
    [since, until) are dropped; undated ones are kept from Brave (its filter is server-side, by
    day) and dropped from SearxNG (whose time_range is coarse). ``RATE_LIMIT`` is Brave's free
    plan, one request per second; it also paces fetches per host.

    Scores (all in [0, 1]):
    - authority = :func:`domain_authority` of the host: a small table of reference sites (Wikipedia
      0.75, WHO 0.85, ...), .gov/.mil 0.85, .edu/.ac 0.8, else 0.5;
    - freshness = 0.5 ** (days since the published date / ``half_life_days``, default 90): the
      result's ``page_age``/``publishedDate``, or the page's own date (trafilatura) or Last-Modified;
      0.5 when no date is known;
    - confidence of a search result = 0.3 + 0.3 / (1 + rank / 10) + 0.2 * log_scale(engines, 5)
      (rank from 0; engines that returned it, 1 for Brave): a snippet only, worth less than a page;
    - confidence of a fetched page = 0.3 + 0.5 * log_scale(word count, 1500), + 0.1 when the main
      text was isolated (trafilatura) or the body is plain text/JSON rather than stripped HTML.
    """

    SOURCE: ClassVar[str] = "web"
    DEFAULT_BASE_URL: ClassVar[str | None] = "https://api.search.brave.com"
    ENV_NAME: ClassVar[str | None] = "WEB"
    CREDENTIALS: ClassVar[dict[str, str]] = {"api_key": "BRAVE_API_KEY", "search_url": "ARAGORA_WEB_SEARCH_URL"}
    SETTINGS: ClassVar[frozenset[str]] = frozenset({"search_url"})
    REQUIRED_CREDENTIALS: ClassVar[tuple[str, ...]] = ()
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (1.0, 1.0)

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        search_url: str | None = None,
        allow_private_networks: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        max_pages: int = DEFAULT_MAX_PAGES,
        half_life_days: float = FRESHNESS_HALF_LIFE_DAYS,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url=base_url, **kwargs)
        self._api_key = self._credential("api_key", api_key)
        self._search_url = self._credential("search_url", search_url)
        if not isinstance(max_redirects, int) or max_redirects < 0:
            raise ConnectorValidationError("max_redirects must be an integer >= 0", connector=self.name)
        self.allow_private_networks = allow_private_networks
        self.max_bytes = check_count("max_bytes", max_bytes, self.name)
        self.max_pages = check_count("max_pages", max_pages, self.name)
        self.max_redirects = max_redirects
        self.half_life_days = check_positive("half_life_days", half_life_days, self.name)
        # Without a transport of its own (tests, a proxy), every connection goes through the guard; the configured
        # search backends (Brave, SearxNG, possibly on the local network) are configuration, connected as named.
        self._guard_connections = self._transport is None
        self._backend_hosts = frozenset(
            host for host in (urlsplit(url).hostname for url in (self.base_url, self._search_url) if url) if host
        )

    def missing_credentials(self) -> list[str]:
        """Search needs one backend; fetch(url) needs nothing, so it does not check this."""
        if self._credentials.get("api_key") or self._credentials.get("search_url"):
            return []
        return ["BRAVE_API_KEY or ARAGORA_WEB_SEARCH_URL"]

    @property
    def name(self) -> str:
        """Human-readable connector name."""
        return "Web"

    @property
    def source_type(self) -> SourceType:
        """Web pages and web search results."""
        return SourceType.WEB_SEARCH

    @property
    def is_available(self) -> bool:
        """Whether trafilatura (main-text extraction) is importable."""
        return trafilatura is not None

    # --- SSRF guard -----------------------------------------------------------------------
    def _refuse(self, url: str, reason: str) -> ConnectorValidationError:
        return ConnectorValidationError(f"will not fetch {url!r}: {reason}", connector=self.name)

    async def _checked_url(self, url: str) -> httpx.URL:
        """``url`` parsed, once its scheme and every address its host resolves to are allowed."""
        split = urlsplit(url)
        if split.scheme.lower() not in ("http", "https"):
            raise self._refuse(url, "only http and https URLs are fetched")
        if split.username is not None or split.password is not None:
            raise self._refuse(url, "URLs with user:password credentials are not fetched")
        host = split.hostname
        if not host:
            raise self._refuse(url, "the URL has no host")
        literal = literal_address(host)
        if literal is not None:  # checked before httpx parses the URL (it rejects some inet_aton forms)
            self._check_address(url, host, literal)
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise self._refuse(url, f"invalid URL ({exc})") from None
        if literal is None:
            port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
            for address in await self._resolve(parsed.raw_host.decode("ascii"), port):
                self._check_address(url, host, address)
        return parsed

    def _make_client(self) -> httpx.AsyncClient:
        if self._guard_connections:  # a transport per client: closing a client closes its transport
            self._transport = _GuardedTransport(_GuardedBackend(self._connect_addresses))
        client = super()._make_client()
        hooks = client.event_hooks
        client.event_hooks = {**hooks, "response": [*hooks.get("response", []), self._refuse_unparsable_redirect]}
        return client

    async def _refuse_unparsable_redirect(self, response: httpx.Response) -> None:
        """Refuse a redirect whose Location httpx cannot parse (``http://0177.0.0.1/``) with the guard's reason.

        httpx parses the Location of every redirect it returns and raises RemoteProtocolError for one it
        rejects, which would pass for a retryable network error; this response hook runs before that.
        """
        if not response.has_redirect_location:
            return
        location = response.headers["location"]
        try:
            httpx.URL(location)
        except httpx.InvalidURL as exc:
            target = urljoin(str(response.request.url), location)
            await self._checked_url(target)  # refuses it: a blocked literal address, else an invalid URL
            raise self._refuse(target, f"the redirect target is not a valid URL ({exc})") from None

    async def _connect_addresses(self, host: str, port: int) -> list[str]:
        """The addresses a connection to ``host`` may use: resolved now, each one checked (the guard's rule)."""
        if host in self._backend_hosts:
            return [host]
        literal = literal_address(host)
        addresses = [literal] if literal is not None else await self._resolve(host, port)
        for address in addresses:
            self._check_address(f"{host}:{port}", host, address)
        return [str(address) for address in addresses]

    def _check_address(self, url: str, host: str, address: IPAddress) -> None:
        reason = blocked_reason(address, self.allow_private_networks)
        if reason:
            raise self._refuse(url, f"host {host!r} is {address} ({reason}); that address is not allowed")

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            answers = await asyncio.to_thread(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ConnectorNetworkError(f"cannot resolve host {host!r}: {exc}", connector=self.name) from None
        addresses = [ipaddress.ip_address(str(answer[4][0]).split("%", 1)[0]) for answer in answers]
        if not addresses:
            raise ConnectorNetworkError(f"host {host!r} has no addresses", connector=self.name)
        return addresses

    # --- downloading ----------------------------------------------------------------------
    async def _get_once(self, url: httpx.URL) -> _Page | str:
        """One GET of ``url``: the page, or the Location of a redirect."""
        shown = str(url.copy_with(query=None))

        async def call() -> _Page | str:
            headers = {"Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.8"}
            async with self.client.stream("GET", url, headers=headers) as response:
                if 300 <= response.status_code < 400:
                    location = response.headers.get("location")
                    if not location:
                        raise ConnectorAPIError(
                            f"{shown}: HTTP {response.status_code} redirect without a Location", connector=self.name
                        )
                    return location
                if response.status_code >= 400:
                    raise error_from_response(response, self.name)
                media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
                if media_type not in ALLOWED_CONTENT_TYPES:
                    allowed = ", ".join(sorted(ALLOWED_CONTENT_TYPES))
                    raise self._refuse(shown, f"content type {media_type or 'missing'!r} is not one of {allowed}")
                body = await read_body(response, self.max_bytes, shown, self.name, setting="max_bytes")
                if media_type == "application/json":  # _extract re-indents it, so it must parse
                    check_json_depth(body, self.max_json_depth, shown, self.name)
                charset, modified = response.charset_encoding, response.headers.get("last-modified")
                return _Page(url, media_type, charset, body, modified)

        return await self._request_with_retry(call, f"GET {shown}", host=url.host, needs_credentials=False)

    async def _download(self, url: str) -> tuple[_Page, int]:
        """The page at ``url`` and the number of redirects followed, every hop checked by the guard."""
        current = await self._checked_url(url)
        for hops in range(self.max_redirects + 1):
            answer = await self._get_once(current)
            if isinstance(answer, _Page):
                return answer, hops
            try:
                target = str(current.join(answer))
            except httpx.InvalidURL as exc:
                raise self._refuse(answer, f"the redirect target is not a valid URL ({exc})") from None
            current = await self._checked_url(target)
        raise ConnectorAPIError(f"{url}: more than {self.max_redirects} redirects", connector=self.name)

    # --- evidence -------------------------------------------------------------------------
    def _page_evidence(self, source_id: str, page: _Page, extracted: _Extracted, redirects: int) -> Evidence:
        words = len(extracted.text.split())
        bonus = 0.1 if extracted.extractor != "html_to_text" else 0.0
        final_url = normalize_url(str(page.url))
        host = page.url.host
        return Evidence(
            id=evidence_id(self.SOURCE, source_id),
            source_type=self.source_type,
            source_id=source_id,
            content=extracted.text,
            title=extracted.title or host,
            created_at=iso_utc(extracted.published),
            author=extracted.author,
            url=final_url,
            confidence=clamp(0.3 + 0.5 * log_scale(words, 1500) + bonus),
            freshness=freshness(extracted.published, self.half_life_days),
            authority=domain_authority(host),
            metadata={
                "domain": host,
                "final_url": final_url,
                "content_type": page.media_type,
                "bytes": len(page.body),
                "redirects": redirects,
                "extractor": extracted.extractor,
                "sitename": extracted.sitename,
                "published_at": iso_utc(extracted.published),
                "word_count": words,
            },
        )

    def _result_evidence(
        self, backend: str, item: dict[str, Any], url: str, rank: int, engines: int, published: datetime | None
    ) -> Evidence:
        source_id = normalize_url(url)
        host = httpx.URL(source_id).host
        title = html_to_text(str(item.get("title") or "")) or source_id
        return Evidence(
            id=evidence_id(self.SOURCE, source_id),
            source_type=self.source_type,
            source_id=source_id,
            content=html_to_text(str(item.get("description") or item.get("content") or "")),
            title=title,
            created_at=iso_utc(published),
            url=url,
            confidence=clamp(0.3 + 0.3 / (1 + rank / 10) + 0.2 * log_scale(engines, 5)),
            freshness=freshness(published, self.half_life_days),
            authority=domain_authority(host),
            metadata={
                "backend": backend,
                "rank": rank,
                "engines": engines,
                "domain": host,
                "snippet_only": True,
                "published_at": iso_utc(published),
            },
        )

    # --- search backends ------------------------------------------------------------------
    def _results(self, body: Any, *path: str) -> list[dict[str, Any]]:
        """The result objects at ``path`` of a search answer ([] when the key is absent: no matches)."""
        if not isinstance(body, dict):
            raise ConnectorParseError("the search answer is not a JSON object", connector=self.name)
        node: Any = body
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return []
        if not isinstance(node, list):
            raise ConnectorParseError(f"the search answer's {'.'.join(path)} is not a list", connector=self.name)
        return [item for item in node if isinstance(item, dict)]

    async def _brave_pages(
        self, query: str, limit: int, since: datetime | None, until: datetime | None
    ) -> AsyncIterator[list[_Hit]]:
        count = min(limit, BRAVE_MAX_COUNT)
        params: dict[str, Any] = {"q": query, "count": count}
        if since or until:
            params["freshness"] = brave_freshness(since, until)
        headers = {"X-Subscription-Token": str(self._api_key), "Accept": "application/json"}
        for offset in range(min(self.max_pages, BRAVE_MAX_OFFSET + 1)):
            body = await self._get_json(
                BRAVE_SEARCH_PATH, {**params, "offset": offset}, headers=headers, operation="GET brave web search"
            )
            items = self._results(body, "web", "results")
            yield [(item, item.get("url"), 1, parse_datetime(item.get("page_age"))) for item in items]
            more = body.get("query", {}).get("more_results_available") if isinstance(body.get("query"), dict) else None
            if len(items) < count or more is False:
                return

    async def _searxng_pages(self, query: str, since: datetime | None) -> AsyncIterator[list[_Hit]]:
        base = str(self._search_url).rstrip("/")
        endpoint = base if base.endswith("/search") else f"{base}/search"
        params: dict[str, Any] = {"q": query, "format": "json"}
        if since:
            age_days = (datetime.now(UTC) - since).total_seconds() / 86400
            time_range = next((name for name, days in _SEARXNG_RANGES if age_days <= days), None)
            if time_range:
                params["time_range"] = time_range
        for pageno in range(1, self.max_pages + 1):
            body = await self._get_json(endpoint, {**params, "pageno": pageno}, operation="GET searxng search")
            items = self._results(body, "results")
            if not items:
                return
            yield [
                (item, item.get("url"), len(item.get("engines") or []) or 1, parse_datetime(item.get("publishedDate")))
                for item in items
            ]

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        **kwargs: Any,
    ) -> list[Evidence]:
        """Web search results (title, URL, snippet) from Brave, else SearxNG; pages are not fetched."""
        self._check_limit(limit)
        if not isinstance(query, str) or not query.strip():
            raise ConnectorValidationError("web search needs a non-empty query", connector=self.name)
        since, until = to_utc(since), to_utc(until)
        if self._api_key:
            backend, pages, keep_undated = "brave", self._brave_pages(query, limit, since, until), True
        elif self._search_url:
            backend, pages, keep_undated = "searxng", self._searxng_pages(query, since), False
        else:
            raise ConnectorAuthError(
                "web search has no backend: set BRAVE_API_KEY (Brave Search API) or ARAGORA_WEB_SEARCH_URL "
                "(a SearxNG instance); fetch(url) works without either",
                connector=self.name,
            )
        windowed = since is not None or until is not None
        results: dict[str, Evidence] = {}
        seen: set[str] = set()
        rank = 0
        async for page in pages:
            seen_before = len(seen)
            for item, url, engines, published in page:
                rank += 1
                if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
                    continue
                try:
                    source_id = normalize_url(url)
                except httpx.InvalidURL:
                    continue
                seen.add(source_id)
                if source_id in results or (published is None and windowed and not keep_undated):
                    continue
                if published is not None and not in_window(published, since, until):
                    continue
                results[source_id] = self._result_evidence(backend, item, url, rank - 1, engines, published)
                if len(results) == limit:
                    return list(results.values())
            if len(seen) == seen_before:
                break  # a page with nothing new: the engine has run out
        return list(results.values())

    async def fetch(self, evidence_id: str) -> Evidence | None:
        """The page at a URL (or ``web:<url>``) as evidence; None on 404/410. Cached for the TTL."""
        url = str(evidence_id).removeprefix(f"{self.SOURCE}:")
        try:
            source_id = normalize_url(url)
        except httpx.InvalidURL:
            source_id = url  # the guard explains what is wrong with it
        cached = self._cache_get(source_id)
        if cached is not None:
            return cached
        try:
            page, redirects = await self._download(url)
        except ConnectorNotFoundError:
            return None
        extracted = await asyncio.to_thread(_extract, page)
        evidence = self._page_evidence(source_id, page, extracted, redirects)
        self._cache_put(source_id, evidence)
        return evidence
