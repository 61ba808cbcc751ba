"""Typed HubSpot CRM v3 objects and webhook events; the whole API object stays in ``raw``.

HubSpot sends every property as a string; the models turn the ones an analyst needs into
typed attributes: timestamps into aware UTC datetimes, a deal's amount into ``Decimal``
(money is never a float).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Self

from connectors.exceptions import ConnectorParseError
from connectors.text import parse_datetime, text_or_none

_EPOCH_MS = re.compile(r"\d{12,14}")


def parse_hubspot_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from HubSpot's ISO-8601 text or epoch milliseconds (number or digits)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) >= 1e11:
        return datetime.fromtimestamp(value / 1000, UTC)
    if isinstance(value, str) and _EPOCH_MS.fullmatch(value.strip()):
        return datetime.fromtimestamp(int(value.strip()) / 1000, UTC)
    return parse_datetime(value)


def _decimal(value: Any, what: str) -> Decimal | None:
    """A finite Decimal from HubSpot's number text; an unreadable number is a parse error."""
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite():
        raise ConnectorParseError(f"{what} is not a number: {value!r}", connector="hubspot")
    return number


@dataclass(kw_only=True)
class HubSpotObject:
    """What every CRM object shares; ``properties`` holds every returned property as HubSpot sent it."""

    OBJECT_TYPE: ClassVar[str] = ""
    # The properties requested when the caller names none, and the last-modified property
    # that time windows filter and sort on.
    DEFAULT_PROPERTIES: ClassVar[tuple[str, ...]] = ()
    UPDATED_PROPERTY: ClassVar[str] = "hs_lastmodifieddate"

    id: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    archived: bool = False
    url: str | None = None
    properties: dict[str, str | None] = field(default_factory=dict, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        """Build from a CRM v3 object (``id``, ``properties``, ``createdAt``, ``updatedAt``, ``archived``)."""
        if not isinstance(data, Mapping) or data.get("id") in (None, ""):
            raise ConnectorParseError(
                f"expected a HubSpot {cls.OBJECT_TYPE or 'CRM'} object with an id, got {str(data)[:120]}",
                connector="hubspot",
            )
        props = data.get("properties")
        props = dict(props) if isinstance(props, Mapping) else {}
        return cls(
            id=str(data["id"]),
            created_at=parse_hubspot_datetime(data.get("createdAt") or props.get("createdate")),
            updated_at=parse_hubspot_datetime(data.get("updatedAt") or props.get(cls.UPDATED_PROPERTY)),
            archived=bool(data.get("archived")),
            url=text_or_none(data.get("url")),
            properties=props,
            raw=dict(data),
            **cls._fields(str(data["id"]), props),
        )

    @classmethod
    def _fields(cls, object_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        """The type-specific attributes read from ``properties`` (each subclass adds its own)."""
        return {}


@dataclass(kw_only=True)
class Contact(HubSpotObject):
    """A contact: e-mail, name, phone, company and lifecycle stage."""

    OBJECT_TYPE: ClassVar[str] = "contacts"
    DEFAULT_PROPERTIES: ClassVar[tuple[str, ...]] = (
        "email", "firstname", "lastname", "phone", "company", "jobtitle", "lifecyclestage",
        "createdate", "lastmodifieddate",
    )
    UPDATED_PROPERTY: ClassVar[str] = "lastmodifieddate"

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    company: str | None = None
    job_title: str | None = None
    lifecycle_stage: str | None = None

    @classmethod
    def _fields(cls, object_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "email": text_or_none(props.get("email")),
            "first_name": text_or_none(props.get("firstname")),
            "last_name": text_or_none(props.get("lastname")),
            "phone": text_or_none(props.get("phone")),
            "company": text_or_none(props.get("company")),
            "job_title": text_or_none(props.get("jobtitle")),
            "lifecycle_stage": text_or_none(props.get("lifecyclestage")),
        }


@dataclass(kw_only=True)
class Company(HubSpotObject):
    """A company: name, domain, industry and location."""

    OBJECT_TYPE: ClassVar[str] = "companies"
    DEFAULT_PROPERTIES: ClassVar[tuple[str, ...]] = (
        "name", "domain", "industry", "phone", "city", "country", "lifecyclestage",
        "createdate", "hs_lastmodifieddate",
    )

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    phone: str | None = None
    city: str | None = None
    country: str | None = None
    lifecycle_stage: str | None = None

    @classmethod
    def _fields(cls, object_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": text_or_none(props.get("name")),
            "domain": text_or_none(props.get("domain")),
            "industry": text_or_none(props.get("industry")),
            "phone": text_or_none(props.get("phone")),
            "city": text_or_none(props.get("city")),
            "country": text_or_none(props.get("country")),
            "lifecycle_stage": text_or_none(props.get("lifecyclestage")),
        }


@dataclass(kw_only=True)
class Deal(HubSpotObject):
    """A deal: name, ``amount`` as Decimal in ``currency`` (None: the account's default), stage, close date."""

    OBJECT_TYPE: ClassVar[str] = "deals"
    DEFAULT_PROPERTIES: ClassVar[tuple[str, ...]] = (
        "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
        "createdate", "hs_lastmodifieddate",
    )

    name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    stage: str | None = None
    pipeline: str | None = None
    close_date: datetime | None = None
    owner_id: str | None = None

    @classmethod
    def _fields(cls, object_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": text_or_none(props.get("dealname")),
            "amount": _decimal(props.get("amount"), f"HubSpot deal {object_id} amount"),
            "currency": text_or_none(props.get("deal_currency_code")),
            "stage": text_or_none(props.get("dealstage")),
            "pipeline": text_or_none(props.get("pipeline")),
            "close_date": parse_hubspot_datetime(props.get("closedate")),
            "owner_id": text_or_none(props.get("hubspot_owner_id")),
        }


@dataclass(kw_only=True)
class Ticket(HubSpotObject):
    """A support ticket: subject, content, pipeline stage, priority and category."""

    OBJECT_TYPE: ClassVar[str] = "tickets"
    DEFAULT_PROPERTIES: ClassVar[tuple[str, ...]] = (
        "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
        "createdate", "hs_lastmodifieddate",
    )

    subject: str | None = None
    content: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    priority: str | None = None
    category: str | None = None

    @classmethod
    def _fields(cls, object_id: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "subject": text_or_none(props.get("subject")),
            "content": text_or_none(props.get("content")),
            "pipeline": text_or_none(props.get("hs_pipeline")),
            "stage": text_or_none(props.get("hs_pipeline_stage")),
            "priority": text_or_none(props.get("hs_ticket_priority")),
            "category": text_or_none(props.get("hs_ticket_category")),
        }


OBJECT_MODELS: dict[str, type[HubSpotObject]] = {
    model.OBJECT_TYPE: model for model in (Contact, Company, Deal, Ticket)
}
"""CRM object type (``/crm/v3/objects/<type>``) -> model."""

_EVENT_OBJECT_TYPES = {"contact": "contacts", "company": "companies", "deal": "deals", "ticket": "tickets"}


@dataclass(kw_only=True)
class HubSpotEvent:
    """One webhook event (HubSpot batches up to 100 per delivery); ``id`` is HubSpot's ``eventId``."""

    id: str
    subscription_type: str
    object_type: str | None = None
    object_id: str | None = None
    occurred_at: datetime | None = None
    portal_id: str | None = None
    app_id: str | None = None
    subscription_id: str | None = None
    attempt_number: int | None = None
    property_name: str | None = None
    property_value: str | None = None
    change_source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        """Build from one element of a webhook body (``eventId``, ``subscriptionType``, ``objectId``...)."""
        if not isinstance(data, Mapping) or data.get("eventId") in (None, "") or not data.get("subscriptionType"):
            raise ConnectorParseError(
                f"expected a HubSpot webhook event with eventId and subscriptionType, got {str(data)[:120]}",
                connector="hubspot",
            )
        subscription_type = str(data["subscriptionType"])
        prefix = subscription_type.split(".", 1)[0]
        attempt = data.get("attemptNumber")
        return cls(
            id=str(data["eventId"]),
            subscription_type=subscription_type,
            object_type=_EVENT_OBJECT_TYPES.get(prefix, prefix or None),
            object_id=text_or_none(data.get("objectId")),
            occurred_at=parse_hubspot_datetime(data.get("occurredAt")),
            portal_id=text_or_none(data.get("portalId")),
            app_id=text_or_none(data.get("appId")),
            subscription_id=text_or_none(data.get("subscriptionId")),
            attempt_number=attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None,
            property_name=text_or_none(data.get("propertyName")),
            property_value=text_or_none(data.get("propertyValue")),
            change_source=text_or_none(data.get("changeSource")),
            raw=dict(data),
        )
