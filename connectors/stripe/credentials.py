"""Stripe credentials: the secret API key and the optional webhook signing secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.integration import IntegrationCredentials, credential

# Names of the environment variables (not secrets themselves).
API_KEY_VAR = "STRIPE_API_KEY"
WEBHOOK_VAR = "STRIPE_WEBHOOK_SECRET"


@dataclass(frozen=True)
class StripeCredentials(IntegrationCredentials):
    """A Stripe secret (or restricted) key and the endpoint's webhook secret; neither shows in ``repr``.

    ``from_env()`` reads ``STRIPE_API_KEY`` (required) and ``STRIPE_WEBHOOK_SECRET``.
    """

    CONNECTOR: ClassVar[str] = "stripe"

    secret_key: str = credential(API_KEY_VAR, required=True)
    webhook_secret: str | None = credential(WEBHOOK_VAR)
