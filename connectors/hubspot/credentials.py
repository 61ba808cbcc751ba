"""HubSpot credentials: a private-app or OAuth access token, the app's client secret, the API host."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.integration import IntegrationCredentials, credential

# Names of the environment variables (not secrets themselves).
API_AUTH_VAR = "HUBSPOT_ACCESS_TOKEN"
WEBHOOK_VAR = "HUBSPOT_CLIENT_SECRET"
DEFAULT_BASE_URL = "https://api.hubapi.com"


@dataclass(frozen=True)
class HubSpotCredentials(IntegrationCredentials):
    """The bearer token for API calls and the client secret that signs webhooks; neither shows in ``repr``.

    ``from_env()`` reads ``HUBSPOT_ACCESS_TOKEN`` (required) and ``HUBSPOT_CLIENT_SECRET``. The fields
    keep the guide's order, ``HubSpotCredentials(access_token, base_url)``; ``client_secret`` comes after.
    """

    CONNECTOR: ClassVar[str] = "hubspot"

    access_token: str = credential(API_AUTH_VAR, required=True)
    base_url: str = DEFAULT_BASE_URL
    client_secret: str | None = credential(WEBHOOK_VAR)
