"""DocuSign credentials: OAuth access token, API account id, the account's base URI, Connect HMAC key."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

from connectors.credentials import CredentialProvider
from connectors.integration import IntegrationCredentials, credential

ACCESS_TOKEN_ENV = "DOCUSIGN_ACCESS_TOKEN"  # noqa: S105 (a variable name, not a value)
ACCOUNT_ID_ENV = "DOCUSIGN_ACCOUNT_ID"
HMAC_KEY_ENV = "DOCUSIGN_HMAC_KEY"
# The base URI is configuration, not a secret: read from the environment, never registered for redaction.
BASE_URL_ENVS = ("ARAGORA_DOCUSIGN_BASE_URL", "DOCUSIGN_BASE_URL")


@dataclass
class DocuSignCredentials(IntegrationCredentials):
    """What the eSignature REST API needs: a bearer token, the API account id and the account's base URI.

    ``base_url`` is the account's ``base_uri`` from ``/oauth/userinfo`` (``https://demo.docusign.net``
    for the developer sandbox, ``https://na3.docusign.net`` etc. in production); None means the
    connector's default. ``hmac_key`` verifies Connect webhooks.
    """

    CONNECTOR: ClassVar[str] = "docusign"

    access_token: str = credential(ACCESS_TOKEN_ENV, required=True)
    account_id: str = credential(ACCOUNT_ID_ENV, required=True, secret=False)
    base_url: str | None = None
    hmac_key: str | None = credential(HMAC_KEY_ENV)

    @classmethod
    def from_env(cls, provider: CredentialProvider | None = None, **values: Any) -> DocuSignCredentials:
        """Read DOCUSIGN_ACCESS_TOKEN, DOCUSIGN_ACCOUNT_ID and DOCUSIGN_HMAC_KEY through the credential provider,
        and the base URI from ARAGORA_DOCUSIGN_BASE_URL or DOCUSIGN_BASE_URL.

        A missing token or account id raises :class:`ConnectorAuthError` naming the variable.
        """
        values.setdefault("base_url", next((os.environ[name] for name in BASE_URL_ENVS if os.environ.get(name)), None))
        return super().from_env(provider, **values)
