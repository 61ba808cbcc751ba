"""DocuSign integration connector: envelopes, recipients, documents and Connect webhooks."""

from connectors.docusign.connector import DocuSignConnector
from connectors.docusign.credentials import DocuSignCredentials
from connectors.docusign.models import Document, DocuSignEvent, Envelope, Recipient, TemplateRole
from connectors.docusign.webhooks import parse_event, verify_signature

__all__ = [
    "DocuSignConnector",
    "DocuSignCredentials",
    "DocuSignEvent",
    "Document",
    "Envelope",
    "Recipient",
    "TemplateRole",
    "parse_event",
    "verify_signature",
]
