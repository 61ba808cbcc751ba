"""Every connector by name: evidence sources (name -> class) and integration services.

Dagster builds one resource per entry and the CLI lists and runs them from here.
"""

from __future__ import annotations

from connectors.arxiv import ArXivConnector
from connectors.base import BaseConnector
from connectors.docusign import DocuSignConnector, DocuSignCredentials
from connectors.exceptions import ConnectorValidationError
from connectors.github import GitHubConnector
from connectors.hackernews import HackerNewsConnector
from connectors.hubspot import HubSpotConnector, HubSpotCredentials
from connectors.integration import IntegrationConnector
from connectors.local_docs import LocalDocsConnector
from connectors.newsapi import NewsAPIConnector
from connectors.pagerduty import PagerDutyConnector, PagerDutyCredentials
from connectors.reddit import RedditConnector
from connectors.sec import SECConnector
from connectors.sql import SQLConnector
from connectors.stripe import StripeConnector, StripeCredentials
from connectors.twitter import TwitterConnector
from connectors.web import WebConnector
from connectors.whisper import WhisperConnector
from connectors.wikipedia import WikipediaConnector

EVIDENCE_CONNECTORS: dict[str, type[BaseConnector]] = {
    cls.SOURCE: cls
    for cls in (
        LocalDocsConnector, GitHubConnector, WebConnector, ArXivConnector, HackerNewsConnector,
        WikipediaConnector, RedditConnector, TwitterConnector, SQLConnector, NewsAPIConnector,
        SECConnector, WhisperConnector,
    )
}

INTEGRATION_CONNECTORS: dict[str, tuple[type[IntegrationConnector], type]] = {
    "stripe": (StripeConnector, StripeCredentials),
    "hubspot": (HubSpotConnector, HubSpotCredentials),
    "docusign": (DocuSignConnector, DocuSignCredentials),
    "pagerduty": (PagerDutyConnector, PagerDutyCredentials),
}


def get_connector_class(name: str) -> type[BaseConnector]:
    """The evidence connector class registered as ``name``, or a clear error listing the names."""
    try:
        return EVIDENCE_CONNECTORS[name]
    except KeyError:
        raise ConnectorValidationError(
            f"unknown source {name!r}; known sources: {', '.join(sorted(EVIDENCE_CONNECTORS))}"
        ) from None
