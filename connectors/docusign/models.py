"""Typed DocuSign objects: envelopes, recipients, documents and Connect events.

Each model keeps the fields an analyst needs as typed attributes (timestamps as aware UTC
datetimes; DocuSign sends numbers and booleans as strings, they are converted here) and the
whole API object in ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.exceptions import ConnectorParseError
from connectors.integration import api_object
from connectors.text import int_or_none, parse_datetime

_NAME = "docusign"

# The recipient groups of GET .../envelopes/{id}/recipients.
RECIPIENT_GROUPS = (
    "signers",
    "agents",
    "editors",
    "intermediaries",
    "carbonCopies",
    "certifiedDeliveries",
    "inPersonSigners",
    "seals",
    "witnesses",
    "notaries",
)


@dataclass
class Envelope:
    """One envelope (as listed by listStatusChanges, fetched by id, or answered by create)."""

    id: str
    status: str | None = None
    email_subject: str | None = None
    sender_name: str | None = None
    sender_email: str | None = None
    sender_user_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    completed_at: datetime | None = None
    declined_at: datetime | None = None
    voided_at: datetime | None = None
    voided_reason: str | None = None
    status_changed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Envelope:
        """Build from an envelope object (``envelopeId`` is required)."""
        data, envelope_id = api_object(data, "DocuSign envelope", _NAME, id_key="envelopeId")
        sender = data.get("sender") if isinstance(data.get("sender"), Mapping) else {}
        return cls(
            id=envelope_id,
            status=data.get("status"),
            email_subject=data.get("emailSubject"),
            sender_name=sender.get("userName"),
            sender_email=sender.get("email"),
            sender_user_id=sender.get("userId"),
            created_at=parse_datetime(data.get("createdDateTime")),
            updated_at=parse_datetime(data.get("lastModifiedDateTime")),
            sent_at=parse_datetime(data.get("sentDateTime")),
            delivered_at=parse_datetime(data.get("deliveredDateTime")),
            completed_at=parse_datetime(data.get("completedDateTime")),
            declined_at=parse_datetime(data.get("declinedDateTime")),
            voided_at=parse_datetime(data.get("voidedDateTime")),
            voided_reason=data.get("voidedReason"),
            # The create answer names the moment of its status "statusDateTime".
            status_changed_at=parse_datetime(data.get("statusChangedDateTime") or data.get("statusDateTime")),
            raw=dict(data),
        )


@dataclass
class Recipient:
    """One recipient of an envelope (a signer, a carbon copy, ...), with its routing and progress."""

    id: str
    envelope_id: str
    recipient_type: str
    name: str | None = None
    email: str | None = None
    status: str | None = None
    routing_order: int | None = None
    role_name: str | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    signed_at: datetime | None = None
    declined_at: datetime | None = None
    declined_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], envelope_id: str, group: str) -> Recipient:
        """Build from one entry of a recipient group (``group`` names it when ``recipientType`` is absent)."""
        data, recipient_id = api_object(data, "DocuSign recipient", _NAME, id_key="recipientId")
        return cls(
            id=recipient_id,
            envelope_id=envelope_id,
            recipient_type=data.get("recipientType") or group,
            name=data.get("name"),
            email=data.get("email"),
            status=data.get("status"),
            routing_order=int_or_none(data.get("routingOrder")),
            role_name=data.get("roleName"),
            sent_at=parse_datetime(data.get("sentDateTime")),
            delivered_at=parse_datetime(data.get("deliveredDateTime")),
            signed_at=parse_datetime(data.get("signedDateTime")),
            declined_at=parse_datetime(data.get("declinedDateTime")),
            declined_reason=data.get("declinedReason"),
            raw=dict(data),
        )

    @classmethod
    def list_from_api(cls, data: Mapping[str, Any], envelope_id: str) -> list[Recipient]:
        """Every recipient of every group of a recipients answer, in group order."""
        if not isinstance(data, Mapping):
            raise ConnectorParseError("DocuSign recipients answer is not a JSON object", connector=_NAME)
        recipients: list[Recipient] = []
        for group in RECIPIENT_GROUPS:
            entries = data.get(group) or []
            if not isinstance(entries, list):
                raise ConnectorParseError(f"DocuSign recipients.{group} is not a list", connector=_NAME)
            recipients.extend(cls.from_api(entry, envelope_id, group) for entry in entries)
        return recipients


@dataclass
class Document:
    """One document of an envelope (``type`` is "content" for uploaded documents, "summary" for the certificate)."""

    id: str
    envelope_id: str
    name: str | None = None
    type: str | None = None
    order: int | None = None
    pages: int | None = None
    uri: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], envelope_id: str) -> Document:
        """Build from one ``envelopeDocuments`` entry (v2.1 sends ``pages`` as a list, v2 as a count)."""
        data, document_id = api_object(data, "DocuSign document", _NAME, id_key="documentId")
        pages = data.get("pages")
        return cls(
            id=document_id,
            envelope_id=envelope_id,
            name=data.get("name"),
            type=data.get("type"),
            order=int_or_none(data.get("order")),
            pages=len(pages) if isinstance(pages, list) else int_or_none(pages),
            uri=data.get("uri"),
            raw=dict(data),
        )


@dataclass
class TemplateRole:
    """A person filling a template role when an envelope is created from a template."""

    role_name: str
    name: str
    email: str

    def to_api(self) -> dict[str, str]:
        """The ``templateRoles`` entry DocuSign expects."""
        return {"roleName": self.role_name, "name": self.name, "email": self.email}


@dataclass
class DocuSignEvent:
    """A Connect (JSON, SIM) webhook event: ``envelope-sent``, ``envelope-completed``, ``recipient-signed``, ..."""

    event: str
    generated_at: datetime | None = None
    api_version: str | None = None
    uri: str | None = None
    retry_count: int | None = None
    configuration_id: str | None = None
    account_id: str | None = None
    envelope_id: str | None = None
    envelope: Envelope | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DocuSignEvent:
        """Build from a Connect JSON message (``envelope`` is set when it carries an envelopeSummary)."""
        data, event = api_object(data, "DocuSign Connect event", _NAME, id_key="event")
        body = data.get("data") if isinstance(data.get("data"), Mapping) else {}
        summary = body.get("envelopeSummary")
        configuration_id = data.get("configurationId")
        return cls(
            event=event,
            generated_at=parse_datetime(data.get("generatedDateTime")),
            api_version=data.get("apiVersion"),
            uri=data.get("uri"),
            retry_count=int_or_none(data.get("retryCount")),
            configuration_id=None if configuration_id is None else str(configuration_id),
            account_id=body.get("accountId"),
            envelope_id=body.get("envelopeId"),
            envelope=(
                Envelope.from_api({"envelopeId": body.get("envelopeId"), **summary})
                if isinstance(summary, Mapping)
                else None
            ),
            raw=dict(data),
        )
