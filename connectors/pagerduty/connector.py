"""PagerDuty REST API v2: incidents (list, get, create, acknowledge, resolve), log entries and services."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import PaginationGuard, check_count, in_window, split_window
from connectors.exceptions import ConnectorAPIError, ConnectorParseError, ConnectorValidationError
from connectors.integration import IntegrationConnector
from connectors.pagerduty.credentials import PagerDutyCredentials
from connectors.pagerduty.models import Incident, LogEntry, Service
from connectors.text import iso_utc

# "Everything" starts before PagerDuty existed (2009); windows are sliced from here.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
Window = tuple[datetime, datetime]


class PagerDutyConnector(IntegrationConnector):
    """Incidents, log entries and services of one PagerDuty account through the REST API v2.

    Incidents and log entries are listed by creation time: ``since``/``until`` go to the API as
    UTC ISO timestamps, and a window longer than PagerDuty's 6-month cap is sliced into
    consecutive windows of at most 180 days (``since`` None means from 2009, ``until`` None
    means now). Pagination is classic offset/limit/more (at most 100 per page); PagerDuty
    stops offset paging at 10,000 results, so a window whose ``total`` exceeds that is halved
    until each half fits. ``/services`` has no time filter: ``since``/``until`` are applied to
    each service's ``updated_at`` (else ``created_at``) client-side.
    Writes send the ``From`` header (a PagerDuty user's e-mail) the API requires.
    The published limit is 960 requests per minute per token.
    """

    NAME = "pagerduty"
    DISPLAY_NAME = "PagerDuty"
    CREDENTIALS_CLASS = PagerDutyCredentials
    DEFAULT_BASE_URL = "https://api.pagerduty.com"
    ENV_NAME = "PAGERDUTY"
    RATE_LIMIT = (960, 60)
    OBJECT_TYPES: ClassVar[tuple[str, ...]] = ("incidents", "log_entries", "services")
    ACCEPT: ClassVar[str] = "application/vnd.pagerduty+json;version=2"
    MAX_WINDOW: ClassVar[timedelta] = timedelta(days=180)
    MAX_PAGE_SIZE: ClassVar[int] = 100
    OFFSET_CAP: ClassVar[int] = 10_000

    credentials: PagerDutyCredentials

    def __init__(
        self, credentials: PagerDutyCredentials | None = None, *, page_size: int = 100, **settings: Any
    ) -> None:
        super().__init__(credentials, **settings)
        self.page_size = check_count("page_size", page_size, self.NAME, maximum=self.MAX_PAGE_SIZE)

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.credentials.api_token}"}

    def _default_headers(self) -> dict[str, str]:
        return {"Accept": self.ACCEPT}  # PagerDuty wants its versioned Accept on every request

    # --- uniform interface ------------------------------------------------------------------
    async def iter_objects(
        self,
        object_type: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Incident | LogEntry | Service]:
        """Every object of ``object_type`` ("incidents", "log_entries" or "services") in [since, until)."""
        listers = {
            "incidents": self.list_incidents,
            "log_entries": self.list_log_entries,
            "services": self.list_services,
        }
        self._check_object_type(object_type)
        async for obj in listers[object_type](since=since, until=until, limit=limit):
            yield obj

    # --- lists ----------------------------------------------------------------------------------
    async def list_incidents(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        statuses: Sequence[str] | None = None,
        service_ids: Sequence[str] | None = None,
        urgencies: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Incident]:
        """Incidents created in [since, until), optionally filtered by status, service and urgency."""
        params: dict[str, Any] = {"time_zone": "UTC"}
        for name, values in (("statuses[]", statuses), ("service_ids[]", service_ids), ("urgencies[]", urgencies)):
            if values:
                params[name] = [values] if isinstance(values, str) else list(values)
        async for raw in self._iter_windowed("/incidents", "incidents", params, since, until, limit):
            yield Incident.from_api(raw)

    async def list_log_entries(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        is_overview: bool = False,
        limit: int | None = None,
    ) -> AsyncIterator[LogEntry]:
        """Log entries of every incident created in [since, until) (``is_overview``: only the key changes)."""
        params: dict[str, Any] = {"time_zone": "UTC", "is_overview": is_overview}
        async for raw in self._iter_windowed("/log_entries", "log_entries", params, since, until, limit):
            yield LogEntry.from_api(raw)

    async def list_services(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[Service]:
        """Services, filtered client-side to those updated (else created) in [since, until) when a bound is given."""
        self._check_limit(limit)
        since, until = self._check_window(since, until)
        count = 0
        async for raw in self._iter_pages("/services", "services", {"time_zone": "UTC"}, None, "list services"):
            service = Service.from_api(raw)
            if not in_window(service.updated_at or service.created_at, since, until):
                continue
            yield service
            count += 1
            if limit is not None and count >= limit:
                return

    # --- single incidents and writes --------------------------------------------------------------
    async def get_incident(self, incident_id: str) -> Incident:
        """One incident by id or number (:class:`ConnectorNotFoundError` when it does not exist)."""
        data = await self._request("GET", self._incident_path(incident_id), operation="get incident")
        return self._incident(data, "get incident")

    async def create_incident(
        self,
        title: str,
        service_id: str,
        *,
        urgency: str | None = None,
        details: str | None = None,
        incident_key: str | None = None,
        escalation_policy_id: str | None = None,
        priority_id: str | None = None,
    ) -> Incident:
        """Open an incident on a service (``incident_key`` de-duplicates: an open incident with it is a 400)."""
        for name, value in (("title", title), ("service_id", service_id)):
            if not isinstance(value, str) or not value.strip():
                raise ConnectorValidationError(f"{name} must be a non-empty string", connector=self.NAME)
        if urgency not in (None, "high", "low"):
            raise ConnectorValidationError(f"urgency must be 'high' or 'low', got {urgency!r}", connector=self.NAME)
        incident: dict[str, Any] = {
            "type": "incident",
            "title": title.strip(),
            "service": {"id": service_id.strip(), "type": "service_reference"},
        }
        if urgency:
            incident["urgency"] = urgency
        if details:
            incident["body"] = {"type": "incident_body", "details": details}
        if incident_key:
            incident["incident_key"] = incident_key
        if escalation_policy_id:
            incident["escalation_policy"] = {"id": escalation_policy_id, "type": "escalation_policy_reference"}
        if priority_id:
            incident["priority"] = {"id": priority_id, "type": "priority_reference"}
        data = await self._request(
            "POST", "/incidents", {"incident": incident}, headers=self._from_header(), operation="create incident"
        )
        return self._incident(data, "create incident")

    async def acknowledge_incident(self, incident_id: str) -> Incident:
        """Acknowledge an incident (as the ``From`` user)."""
        return await self._set_status(incident_id, "acknowledged")

    async def resolve_incident(self, incident_id: str, *, resolution: str | None = None) -> Incident:
        """Resolve an incident (as the ``From`` user), with an optional resolution note."""
        return await self._set_status(incident_id, "resolved", resolution)

    async def _set_status(self, incident_id: str, status: str, resolution: str | None = None) -> Incident:
        path = self._incident_path(incident_id)
        incident: dict[str, Any] = {"type": "incident_reference", "status": status}
        if resolution:
            incident["resolution"] = resolution
        operation = f"set incident {status}"
        data = await self._request(
            "PUT", path, {"incident": incident}, headers=self._from_header(), operation=operation
        )
        return self._incident(data, operation)

    # --- helpers --------------------------------------------------------------------------------
    def _from_header(self) -> dict[str, str]:
        """The ``From`` header incident writes require (checked before any request is sent)."""
        purpose = "PagerDuty incident writes need the e-mail of a PagerDuty user as From"
        return {"From": self.credentials.require("from_email", purpose)}

    def _incident_path(self, incident_id: str) -> str:
        if not isinstance(incident_id, str) or not incident_id.strip():
            raise ConnectorValidationError(
                f"incident_id must be a non-empty string, got {incident_id!r}", connector=self.NAME
            )
        return f"/incidents/{quote(incident_id.strip(), safe='')}"

    def _incident(self, data: Any, operation: str) -> Incident:
        incident = data.get("incident") if isinstance(data, Mapping) else None
        if not isinstance(incident, Mapping):
            raise ConnectorParseError(f"{operation}: the answer has no 'incident' object", connector=self.NAME)
        return Incident.from_api(incident)

    def windows(self, since: datetime | None, until: datetime | None) -> list[Window]:
        """[since, until) as consecutive windows of at most 180 days (PagerDuty's 6-month cap)."""
        start, end = self._check_window(since or EARLIEST, until or datetime.now(UTC))
        out: list[Window] = []
        while start < end:
            out.append((start, min(start + self.MAX_WINDOW, end)))
            start = out[-1][1]
        return out

    async def _iter_windowed(
        self,
        path: str,
        key: str,
        params: Mapping[str, Any],
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> AsyncIterator[dict[str, Any]]:
        """The raw objects of a since/until endpoint over every window, up to ``limit``."""
        self._check_limit(limit)
        count = 0
        for window in self.windows(since, until):
            async for raw in self._iter_pages(path, key, params, window, f"list {key}"):
                yield raw
                count += 1
                if limit is not None and count >= limit:
                    return

    async def _iter_pages(
        self, path: str, key: str, params: Mapping[str, Any], window: Window | None, operation: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Follow offset/limit/more to the end; a repeated offset raises, a window over the cap is halved."""
        guard = PaginationGuard(self.NAME, operation)
        offset = 0
        while True:
            guard.check(offset)
            query = {**params, "offset": offset, "limit": self.page_size}
            if window is not None:
                query["since"], query["until"] = iso_utc(window[0]), iso_utc(window[1])
                if offset == 0:
                    query["total"] = True  # only the first page asks: totals slow PagerDuty down
            page = await self._request("GET", path, params=query, operation=operation)
            items = page.get(key) if isinstance(page, Mapping) else None
            if not isinstance(items, list):
                raise ConnectorParseError(f"{operation}: '{key}' is missing or not a list", connector=self.NAME)
            total = page.get("total")
            if (
                window is not None
                and offset == 0
                and isinstance(total, int)
                and total > self.OFFSET_CAP
                and window[1] - window[0] > timedelta(seconds=2)
            ):
                for half in split_window(*window):
                    async for raw in self._iter_pages(path, key, params, half, operation):
                        yield raw
                return
            for raw in items:
                yield raw
            if not page.get("more") or not items:
                return
            served_offset = page.get("offset")
            offset = (served_offset if isinstance(served_offset, int) else offset) + len(items)
            if offset + self.page_size > self.OFFSET_CAP:
                raise ConnectorAPIError(
                    f"{operation}: more than {self.OFFSET_CAP} results, where PagerDuty's offset pagination stops; "
                    "narrow the time window or the filters",
                    connector=self.NAME,
                )
