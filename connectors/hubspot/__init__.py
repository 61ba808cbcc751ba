"""HubSpot integration connector: CRM v3 contacts, companies, deals and tickets, and webhooks."""

from connectors.hubspot.connector import HubSpotConnector, encode_properties
from connectors.hubspot.credentials import HubSpotCredentials
from connectors.hubspot.models import (
    OBJECT_MODELS,
    Company,
    Contact,
    Deal,
    HubSpotEvent,
    HubSpotObject,
    Ticket,
    parse_hubspot_datetime,
)
from connectors.hubspot.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, parse_event, verify_signature

__all__ = [
    "OBJECT_MODELS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Company",
    "Contact",
    "Deal",
    "HubSpotConnector",
    "HubSpotCredentials",
    "HubSpotEvent",
    "HubSpotObject",
    "Ticket",
    "encode_properties",
    "parse_event",
    "parse_hubspot_datetime",
    "verify_signature",
]
