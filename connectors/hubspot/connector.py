"""The HubSpot connector: CRM v3 objects, listed in full or by last-modified window, CRUD, webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from connectors.base import PaginationGuard, epoch_ceil, to_utc
from connectors.exceptions import ConnectorAPIError, ConnectorParseError, ConnectorValidationError
from connectors.hubspot.credentials import DEFAULT_BASE_URL, HubSpotCredentials
from connectors.hubspot.models import (
    OBJECT_MODELS,
    Company,
    Contact,
    Deal,
    HubSpotEvent,
    HubSpotObject,
    Ticket,
)
from connectors.hubspot.webhooks import DEFAULT_TOLERANCE, parse_event, verify_signature
from connectors.integration import IntegrationConnector
from connectors.webhooks import SeenDeliveries

M = TypeVar("M", bound=HubSpotObject)
_MS = timedelta(milliseconds=1)  # the resolution of HubSpot's timestamps: windows are whole ms, rounded up


def encode_properties(properties: Mapping[str, Any]) -> dict[str, str]:
    """HubSpot property values as the strings the API takes.

    None clears a property (``""``), booleans become ``true``/``false``, datetimes ISO-8601 UTC
    with milliseconds, Decimal and int their text; floats are refused (pass Decimal or str).
    """
    out: dict[str, str] = {}
    for name, value in properties.items():
        if value is None:
            out[name] = ""
        elif isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, datetime):
            out[name] = to_utc(value).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        elif isinstance(value, float):
            raise ConnectorValidationError(
                f"HubSpot property {name}={value!r} is a float; pass a Decimal or a string (e.g. Decimal('10.99'))",
                connector="hubspot",
            )
        elif isinstance(value, int | str | Decimal):
            out[name] = str(value)
        else:
            raise ConnectorValidationError(
                f"HubSpot property {name} has unsupported type {type(value).__name__}", connector="hubspot"
            )
    return out


class HubSpotConnector(IntegrationConnector):
    """HubSpot CRM v3 (https://api.hubapi.com, or any ``base_url``: a mock, a regional host, a proxy).

    Without a time window, lists page through ``GET /crm/v3/objects/{type}`` (``after`` cursor).
    With one, they use the search API filtered on the last-modified property in [since, until),
    sorted ascending; as a search answers at most 10,000 results, a window reporting more is
    halved and each half searched in turn. Rate limits: HubSpot's 100 requests / 10 s for the
    API, plus 4 requests / s for search (``search_rate_limit`` overrides it).
    """

    NAME: ClassVar[str] = "hubspot"
    DISPLAY_NAME: ClassVar[str] = "HubSpot"
    CREDENTIALS_CLASS: ClassVar[type[HubSpotCredentials]] = HubSpotCredentials
    DEFAULT_BASE_URL: ClassVar[str] = DEFAULT_BASE_URL
    ENV_NAME: ClassVar[str] = "HUBSPOT"
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (100.0, 10.0)
    SEARCH_RATE_LIMIT: ClassVar[tuple[float, float]] = (4.0, 1.0)
    SEARCH_RESULT_CAP: ClassVar[int] = 10_000
    PAGE_SIZE: ClassVar[int] = 100
    SEARCH_PAGE_SIZE: ClassVar[int] = 200
    OBJECT_TYPES: ClassVar[tuple[str, ...]] = tuple(OBJECT_MODELS)

    credentials: HubSpotCredentials

    def __init__(
        self,
        credentials: HubSpotCredentials | None = None,
        *,
        search_rate_limit: tuple[float, float] | None = None,
        **settings: Any,
    ) -> None:
        """``search_rate_limit`` overrides the search API's own limit; the rest as for IntegrationConnector."""
        super().__init__(credentials, **settings)
        self.search_rate_limit = search_rate_limit or self.SEARCH_RATE_LIMIT

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.access_token}"}

    # --- helpers --------------------------------------------------------------------------
    def _model(self, object_type: str) -> type[HubSpotObject]:
        self._check_object_type(object_type)
        return OBJECT_MODELS[object_type]

    def _path(self, object_type: str, object_id: str | None = None) -> str:
        self._model(object_type)
        if object_id is None:
            return f"/crm/v3/objects/{object_type}"
        if not str(object_id).strip():
            raise ConnectorValidationError(f"a HubSpot {object_type} id must not be empty", connector=self.NAME)
        return f"/crm/v3/objects/{object_type}/{quote(str(object_id), safe='')}"

    def _page(self, body: Any, operation: str) -> tuple[list[Any], str | None]:
        """The results and the next ``after`` cursor of a CRM v3 page."""
        if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
            raise ConnectorParseError(f"{operation}: expected an object with a results array", connector=self.NAME)
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        return body["results"], str(after) if after not in (None, "") else None

    async def _search(self, object_type: str, body: Mapping[str, Any]) -> Any:
        """One search request (a read, so retried), paced by the search API's own limit on every attempt."""
        return await self._request(
            "POST", f"{self._path(object_type)}/search", data=dict(body), operation=f"search {object_type}",
            idempotent=True, rate_limit=self.search_rate_limit,
        )

    # --- listing ----------------------------------------------------------------------------
    async def iter_objects(
        self,
        object_type: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[HubSpotObject]:
        """Every ``object_type`` object, or those last modified in [since, until) oldest first, up to ``limit``."""
        pages = self._iter(self._model(object_type), since=since, until=until, limit=limit, properties=None)
        async with aclosing(pages) as items:
            async for item in items:
                yield item

    async def _iter(
        self,
        model: type[M],
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
        properties: Sequence[str] | None,
    ) -> AsyncIterator[M]:
        self._check_limit(limit)
        since, until = self._check_window(since, until)
        props = list(dict.fromkeys([*(properties or model.DEFAULT_PROPERTIES), model.UPDATED_PROPERTY]))
        if since is None and until is None:
            source = self._list_all(model, props, min(self.PAGE_SIZE, limit or self.PAGE_SIZE))
        else:
            lo = epoch_ceil(since, _MS) if since is not None else None
            hi = epoch_ceil(until, _MS) if until is not None else None
            page_size = min(self.SEARCH_PAGE_SIZE, limit or self.SEARCH_PAGE_SIZE)
            source = self._search_window(model, lo, hi, props, page_size)
        count = 0
        async with aclosing(source) as items:
            async for item in items:
                yield item
                count += 1
                if limit is not None and count >= limit:
                    return

    async def _list_all(self, model: type[M], props: list[str], page_size: int) -> AsyncIterator[M]:
        """Page through ``GET /crm/v3/objects/{type}`` following ``paging.next.after``."""
        operation = f"list {model.OBJECT_TYPE}"
        guard = PaginationGuard(self.NAME, operation)
        params: dict[str, Any] = {"limit": page_size, "properties": ",".join(props), "archived": "false"}
        while True:
            body = await self._request("GET", self._path(model.OBJECT_TYPE), params=params, operation=operation)
            results, after = self._page(body, operation)
            for item in results:
                yield model.from_api(item)
            if after is None:
                return
            guard.check(after)
            params["after"] = after

    async def _search_window(
        self, model: type[M], lo: int | None, hi: int | None, props: list[str], page_size: int
    ) -> AsyncIterator[M]:
        """Objects modified in [lo, hi) ms, ascending; halves the window while it exceeds the result cap."""
        prop = model.UPDATED_PROPERTY
        filters = []
        if lo is not None:
            filters.append({"propertyName": prop, "operator": "GTE", "value": str(lo)})
        if hi is not None:
            filters.append({"propertyName": prop, "operator": "LT", "value": str(hi)})
        query: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": prop, "direction": "ASCENDING"}],
            "properties": props,
            "limit": page_size,
        }
        operation = f"search {model.OBJECT_TYPE}"
        body = await self._search(model.OBJECT_TYPE, query)
        results, after = self._page(body, operation)
        total = body.get("total")
        if isinstance(total, int) and total > self.SEARCH_RESULT_CAP:
            if lo is None:  # results are sorted ascending: the first one bounds the window from below
                first = model.from_api(results[0]).updated_at if results else None
                lo = epoch_ceil(first, _MS) if first else 0
            if hi is None:
                hi = epoch_ceil(datetime.now(UTC), _MS) + 1
            middle = (lo + hi) // 2
            if middle <= lo:
                raise ConnectorAPIError(
                    f"{operation}: {total} objects modified within one millisecond exceed the search cap of "
                    f"{self.SEARCH_RESULT_CAP}; the window cannot be split further",
                    connector=self.NAME,
                )
            for part_lo, part_hi in ((lo, middle), (middle, hi)):
                async with aclosing(self._search_window(model, part_lo, part_hi, props, page_size)) as part:
                    async for item in part:
                        yield item
            return
        guard = PaginationGuard(self.NAME, operation)
        while True:
            for item in results:
                yield model.from_api(item)
            if after is None:
                return
            guard.check(after)
            body = await self._search(model.OBJECT_TYPE, {**query, "after": after})
            results, after = self._page(body, operation)

    def list_contacts(self, *, since: datetime | None = None, until: datetime | None = None,
                      limit: int | None = None, properties: Sequence[str] | None = None) -> AsyncIterator[Contact]:
        """Contacts (all, or modified in [since, until)); ``properties`` replaces the default set."""
        return self._iter(Contact, since=since, until=until, limit=limit, properties=properties)

    def list_companies(self, *, since: datetime | None = None, until: datetime | None = None,
                       limit: int | None = None, properties: Sequence[str] | None = None) -> AsyncIterator[Company]:
        """Companies (all, or modified in [since, until)); ``properties`` replaces the default set."""
        return self._iter(Company, since=since, until=until, limit=limit, properties=properties)

    def list_deals(self, *, since: datetime | None = None, until: datetime | None = None,
                   limit: int | None = None, properties: Sequence[str] | None = None) -> AsyncIterator[Deal]:
        """Deals (all, or modified in [since, until)); ``properties`` replaces the default set."""
        return self._iter(Deal, since=since, until=until, limit=limit, properties=properties)

    def list_tickets(self, *, since: datetime | None = None, until: datetime | None = None,
                     limit: int | None = None, properties: Sequence[str] | None = None) -> AsyncIterator[Ticket]:
        """Tickets (all, or modified in [since, until)); ``properties`` replaces the default set."""
        return self._iter(Ticket, since=since, until=until, limit=limit, properties=properties)

    # --- single objects -----------------------------------------------------------------------
    async def _get(self, model: type[M], object_id: str, properties: Sequence[str] | None) -> M:
        params = {"properties": ",".join(properties or model.DEFAULT_PROPERTIES)}
        path = self._path(model.OBJECT_TYPE, object_id)
        return model.from_api(await self._request("GET", path, params=params, operation=f"get {model.OBJECT_TYPE}"))

    async def _create(self, model: type[M], properties: Mapping[str, Any]) -> M:
        body = {"properties": encode_properties(properties)}
        path = self._path(model.OBJECT_TYPE)
        return model.from_api(await self._request("POST", path, data=body, operation=f"create {model.OBJECT_TYPE}"))

    async def _update(self, model: type[M], object_id: str, properties: Mapping[str, Any]) -> M:
        body = {"properties": encode_properties(properties)}
        path = self._path(model.OBJECT_TYPE, object_id)
        return model.from_api(await self._request("PATCH", path, data=body, operation=f"update {model.OBJECT_TYPE}"))

    async def get_object(
        self, object_type: str, object_id: str, *, properties: Sequence[str] | None = None
    ) -> HubSpotObject:
        """One object by id; a missing one raises ConnectorNotFoundError."""
        return await self._get(self._model(object_type), object_id, properties)

    async def create_object(self, object_type: str, properties: Mapping[str, Any]) -> HubSpotObject:
        """Create an object with ``properties`` (HubSpot has no idempotency keys: retried 5xx may duplicate)."""
        return await self._create(self._model(object_type), properties)

    async def update_object(self, object_type: str, object_id: str, properties: Mapping[str, Any]) -> HubSpotObject:
        """PATCH the given properties of an object (None clears one)."""
        return await self._update(self._model(object_type), object_id, properties)

    async def archive_object(self, object_type: str, object_id: str) -> None:
        """Archive (HubSpot's delete, restorable for 90 days) an object."""
        await self._request("DELETE", self._path(object_type, object_id), operation=f"archive {object_type}")

    async def get_contact(self, contact_id: str, *, properties: Sequence[str] | None = None) -> Contact:
        """One contact by id."""
        return await self._get(Contact, contact_id, properties)

    async def create_contact(self, properties: Mapping[str, Any]) -> Contact:
        """Create a contact (``{"email": ..., "firstname": ...}``)."""
        return await self._create(Contact, properties)

    async def update_contact(self, contact_id: str, properties: Mapping[str, Any]) -> Contact:
        """Update a contact's properties."""
        return await self._update(Contact, contact_id, properties)

    async def get_company(self, company_id: str, *, properties: Sequence[str] | None = None) -> Company:
        """One company by id."""
        return await self._get(Company, company_id, properties)

    async def create_company(self, properties: Mapping[str, Any]) -> Company:
        """Create a company (``{"name": ..., "domain": ...}``)."""
        return await self._create(Company, properties)

    async def update_company(self, company_id: str, properties: Mapping[str, Any]) -> Company:
        """Update a company's properties."""
        return await self._update(Company, company_id, properties)

    async def get_deal(self, deal_id: str, *, properties: Sequence[str] | None = None) -> Deal:
        """One deal by id."""
        return await self._get(Deal, deal_id, properties)

    async def create_deal(self, properties: Mapping[str, Any]) -> Deal:
        """Create a deal (``{"dealname": ..., "amount": Decimal("10.99"), "dealstage": ...}``)."""
        return await self._create(Deal, properties)

    async def update_deal(self, deal_id: str, properties: Mapping[str, Any]) -> Deal:
        """Update a deal's properties."""
        return await self._update(Deal, deal_id, properties)

    async def get_ticket(self, ticket_id: str, *, properties: Sequence[str] | None = None) -> Ticket:
        """One ticket by id."""
        return await self._get(Ticket, ticket_id, properties)

    async def create_ticket(self, properties: Mapping[str, Any]) -> Ticket:
        """Create a ticket (``{"subject": ..., "hs_pipeline": ..., "hs_pipeline_stage": ...}``)."""
        return await self._create(Ticket, properties)

    async def update_ticket(self, ticket_id: str, properties: Mapping[str, Any]) -> Ticket:
        """Update a ticket's properties."""
        return await self._update(Ticket, ticket_id, properties)

    # --- webhooks ---------------------------------------------------------------------------
    def verify_webhook(
        self,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        method: str,
        uri: str,
        tolerance: float = DEFAULT_TOLERANCE,
        now: float | None = None,
        seen: SeenDeliveries | None = None,
    ) -> list[HubSpotEvent]:
        """Verify a delivery with the credentials' client secret and return its events (``seen``: report a replay)."""
        secret = self.credentials.require("client_secret", "no HubSpot client secret")
        verify_signature(payload, headers, secret, method=method, uri=uri, tolerance=tolerance, now=now, seen=seen)
        return parse_event(payload)
