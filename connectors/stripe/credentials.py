"""Stripe credentials: the secret API key and the optional webhook signing secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.credentials import CredentialProvider, get_credential_provider
from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret

# Names of the environment variables (not secrets themselves).
API_KEY_VAR = "STRIPE_API_KEY"
WEBHOOK_VAR = "STRIPE_WEBHOOK_SECRET"


@dataclass(frozen=True)
class StripeCredentials:
    """A Stripe secret (or restricted) key and the endpoint's webhook secret; neither shows in ``repr``."""

    secret_key: str = field(repr=False)
    webhook_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.secret_key or not self.secret_key.strip():
            raise ConnectorAuthError(
                f"StripeCredentials.secret_key is empty; pass the key or set {API_KEY_VAR}", connector="stripe"
            )
        register_secret(self.secret_key)
        register_secret(self.webhook_secret)

    @classmethod
    def from_env(cls, provider: CredentialProvider | None = None) -> StripeCredentials:
        """Read ``STRIPE_API_KEY`` (required) and ``STRIPE_WEBHOOK_SECRET`` through the credential provider."""
        provider = provider or get_credential_provider()
        return cls(
            secret_key=provider.require(API_KEY_VAR, connector="stripe"),
            webhook_secret=provider.get(WEBHOOK_VAR),
        )
