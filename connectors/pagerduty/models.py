"""Typed PagerDuty objects: incidents, log entries, services and v3 webhook events.

Each model keeps the fields an analyst needs as typed attributes (references flattened to
their ids, timestamps as aware UTC datetimes) and the whole API object in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.exceptions import ConnectorParseError
from connectors.integration import api_object
from connectors.text import parse_datetime

_NAME = "pagerduty"


def _ref(value: object, key: str = "id") -> str | None:
    """A field of a PagerDuty reference object (``{"id": ..., "type": "..._reference", "summary": ...}``)."""
    return value.get(key) if isinstance(value, Mapping) else None


def _ref_ids(values: object, nested: str | None = None) -> list[str]:
    """The ids of a list of references (``nested`` picks a sub-object first, as in assignments[].assignee)."""
    if not isinstance(values, list):
        return []
    refs = [_ref(v, nested) if nested else v for v in values]
    return [str(ref_id) for ref in refs if (ref_id := _ref(ref))]


@dataclass
class Incident:
    """One incident (from the REST API or a v3 webhook's ``data``)."""

    id: str
    incident_number: int | None = None
    title: str | None = None
    summary: str | None = None
    status: str | None = None
    urgency: str | None = None
    service_id: str | None = None
    service_name: str | None = None
    escalation_policy_id: str | None = None
    priority: str | None = None
    incident_key: str | None = None
    html_url: str | None = None
    assignee_ids: list[str] = field(default_factory=list)
    team_ids: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    resolved_at: datetime | None = None
    last_status_change_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Incident:
        """Build from an incident object (REST ``assignments`` or webhook ``assignees``, ``incident_number`` or
        ``number``)."""
        data, incident_id = api_object(data, "PagerDuty incident", _NAME)
        service = data.get("service")
        number = data.get("incident_number", data.get("number"))
        assignees = _ref_ids(data.get("assignments"), "assignee") or _ref_ids(data.get("assignees"))
        return cls(
            id=incident_id,
            incident_number=number if isinstance(number, int) else None,
            title=data.get("title"),
            summary=data.get("summary"),
            status=data.get("status"),
            urgency=data.get("urgency"),
            service_id=_ref(service),
            service_name=_ref(service, "summary") or _ref(service, "name"),
            escalation_policy_id=_ref(data.get("escalation_policy")),
            priority=_ref(data.get("priority"), "summary"),
            incident_key=data.get("incident_key"),
            html_url=data.get("html_url"),
            assignee_ids=assignees,
            team_ids=_ref_ids(data.get("teams")),
            created_at=parse_datetime(data.get("created_at")),
            updated_at=parse_datetime(data.get("updated_at")),
            resolved_at=parse_datetime(data.get("resolved_at")),
            last_status_change_at=parse_datetime(data.get("last_status_change_at")),
            raw=dict(data),
        )


@dataclass
class LogEntry:
    """One incident log entry (trigger, notify, acknowledge, resolve, annotate, ...)."""

    id: str
    type: str | None = None
    summary: str | None = None
    incident_id: str | None = None
    service_id: str | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    channel_type: str | None = None
    created_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> LogEntry:
        """Build from a log entry object."""
        data, entry_id = api_object(data, "PagerDuty log entry", _NAME)
        return cls(
            id=entry_id,
            type=data.get("type"),
            summary=data.get("summary"),
            incident_id=_ref(data.get("incident")),
            service_id=_ref(data.get("service")),
            agent_id=_ref(data.get("agent")),
            agent_type=_ref(data.get("agent"), "type"),
            channel_type=_ref(data.get("channel"), "type"),
            created_at=parse_datetime(data.get("created_at")),
            raw=dict(data),
        )


@dataclass
class Service:
    """One service (what incidents are opened against)."""

    id: str
    name: str | None = None
    description: str | None = None
    status: str | None = None
    escalation_policy_id: str | None = None
    team_ids: list[str] = field(default_factory=list)
    html_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_incident_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Service:
        """Build from a service object."""
        data, service_id = api_object(data, "PagerDuty service", _NAME)
        return cls(
            id=service_id,
            name=data.get("name") or data.get("summary"),
            description=data.get("description"),
            status=data.get("status"),
            escalation_policy_id=_ref(data.get("escalation_policy")),
            team_ids=_ref_ids(data.get("teams")),
            html_url=data.get("html_url"),
            created_at=parse_datetime(data.get("created_at")),
            updated_at=parse_datetime(data.get("updated_at")),
            last_incident_at=parse_datetime(data.get("last_incident_timestamp")),
            raw=dict(data),
        )


@dataclass
class PagerDutyEvent:
    """A v3 webhook event (``incident.triggered``, ``incident.resolved``, ``service.updated``, ...)."""

    id: str
    event_type: str
    resource_type: str | None = None
    occurred_at: datetime | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    incident: Incident | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, payload: Mapping[str, Any]) -> PagerDutyEvent:
        """Build from a webhook body ``{"event": {...}}`` (``incident`` is set for incident events)."""
        raw_event = payload.get("event") if isinstance(payload, Mapping) else None
        event, event_id = api_object(raw_event, "PagerDuty webhook event", _NAME)
        if not event.get("event_type"):
            raise ConnectorParseError("PagerDuty webhook event has no event_type", connector=_NAME)
        data = event.get("data") if isinstance(event.get("data"), Mapping) else {}
        is_incident = event.get("resource_type") == "incident" and data.get("type") == "incident"
        return cls(
            id=event_id,
            event_type=str(event["event_type"]),
            resource_type=event.get("resource_type"),
            occurred_at=parse_datetime(event.get("occurred_at")),
            agent_id=_ref(event.get("agent")),
            agent_type=_ref(event.get("agent"), "type"),
            data=dict(data),
            incident=Incident.from_api(data) if is_incident else None,
            raw=dict(payload),
        )
