"""PagerDuty credentials: REST API token, the From e-mail writes need, the v3 webhook signing secret."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from connectors.integration import IntegrationCredentials, credential

API_TOKEN_ENV = "PAGERDUTY_API_TOKEN"  # noqa: S105 (a variable name, not a value)
FROM_EMAIL_ENV = "PAGERDUTY_FROM_EMAIL"
WEBHOOK_SECRET_ENV = "PAGERDUTY_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a value)


@dataclass
class PagerDutyCredentials(IntegrationCredentials):
    """A REST API token (account or user), the ``From`` e-mail of a valid user (required by
    incident writes) and the secret of a v3 webhook subscription.

    ``from_env()`` reads PAGERDUTY_API_TOKEN (required), PAGERDUTY_FROM_EMAIL and PAGERDUTY_WEBHOOK_SECRET.
    """

    CONNECTOR: ClassVar[str] = "pagerduty"

    api_token: str = credential(API_TOKEN_ENV, required=True)
    from_email: str | None = credential(FROM_EMAIL_ENV, secret=False)
    webhook_secret: str | None = credential(WEBHOOK_SECRET_ENV)
