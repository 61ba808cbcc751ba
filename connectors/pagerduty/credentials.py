"""PagerDuty credentials: REST API token, the From e-mail writes need, the v3 webhook signing secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.credentials import CredentialProvider, get_credential_provider
from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret

API_TOKEN_ENV = "PAGERDUTY_API_TOKEN"  # noqa: S105 (a variable name, not a value)
FROM_EMAIL_ENV = "PAGERDUTY_FROM_EMAIL"
WEBHOOK_SECRET_ENV = "PAGERDUTY_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a value)


@dataclass
class PagerDutyCredentials:
    """A REST API token (account or user), the ``From`` e-mail of a valid user (required by
    incident writes) and the secret of a v3 webhook subscription."""

    api_token: str = field(repr=False)
    from_email: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.api_token or not str(self.api_token).strip():
            raise ConnectorAuthError(f"PagerDuty API token is empty: set {API_TOKEN_ENV}", connector="pagerduty")
        register_secret(self.api_token)
        register_secret(self.webhook_secret)

    @classmethod
    def from_env(cls, provider: CredentialProvider | None = None) -> PagerDutyCredentials:
        """Read PAGERDUTY_API_TOKEN (required), PAGERDUTY_FROM_EMAIL and PAGERDUTY_WEBHOOK_SECRET.

        A missing token raises :class:`ConnectorAuthError` naming the variable.
        """
        provider = provider or get_credential_provider()
        return cls(
            api_token=provider.require(API_TOKEN_ENV, "pagerduty"),
            from_email=provider.get(FROM_EMAIL_ENV),
            webhook_secret=provider.get(WEBHOOK_SECRET_ENV),
        )
