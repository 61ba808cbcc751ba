"""PagerDuty integration connector: incidents, log entries, services and v3 webhooks."""

from connectors.pagerduty.connector import PagerDutyConnector
from connectors.pagerduty.credentials import PagerDutyCredentials
from connectors.pagerduty.models import Incident, LogEntry, PagerDutyEvent, Service
from connectors.pagerduty.webhooks import parse_event, verify_signature

__all__ = [
    "Incident",
    "LogEntry",
    "PagerDutyConnector",
    "PagerDutyCredentials",
    "PagerDutyEvent",
    "Service",
    "parse_event",
    "verify_signature",
]
