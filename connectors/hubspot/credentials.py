"""HubSpot credentials: a private-app or OAuth access token, the app's client secret, the API host."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.credentials import CredentialProvider, get_credential_provider
from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret

# Names of the environment variables (not secrets themselves).
API_AUTH_VAR = "HUBSPOT_ACCESS_TOKEN"
WEBHOOK_VAR = "HUBSPOT_CLIENT_SECRET"
DEFAULT_BASE_URL = "https://api.hubapi.com"


@dataclass(frozen=True)
class HubSpotCredentials:
    """The bearer token for API calls and the client secret that signs webhooks; neither shows in ``repr``."""

    access_token: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        if not self.access_token or not self.access_token.strip():
            raise ConnectorAuthError(
                f"HubSpotCredentials.access_token is empty; pass the token or set {API_AUTH_VAR}",
                connector="hubspot",
            )
        register_secret(self.access_token)
        register_secret(self.client_secret)

    @classmethod
    def from_env(cls, provider: CredentialProvider | None = None) -> HubSpotCredentials:
        """Read ``HUBSPOT_ACCESS_TOKEN`` (required) and ``HUBSPOT_CLIENT_SECRET`` through the credential provider."""
        provider = provider or get_credential_provider()
        return cls(
            access_token=provider.require(API_AUTH_VAR, connector="hubspot"),
            client_secret=provider.get(WEBHOOK_VAR),
        )
