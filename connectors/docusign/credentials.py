"""DocuSign credentials: OAuth access token, API account id, the account's base URI, Connect HMAC key."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from connectors.credentials import CredentialProvider, get_credential_provider
from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret

ACCESS_TOKEN_ENV = "DOCUSIGN_ACCESS_TOKEN"  # noqa: S105 (a variable name, not a value)
ACCOUNT_ID_ENV = "DOCUSIGN_ACCOUNT_ID"
HMAC_KEY_ENV = "DOCUSIGN_HMAC_KEY"
# The base URI is configuration, not a secret: read from the environment, never registered for redaction.
BASE_URL_ENVS = ("ARAGORA_DOCUSIGN_BASE_URL", "DOCUSIGN_BASE_URL")


@dataclass
class DocuSignCredentials:
    """What the eSignature REST API needs: a bearer token, the API account id and the account's base URI.

    ``base_url`` is the account's ``base_uri`` from ``/oauth/userinfo`` (``https://demo.docusign.net``
    for the developer sandbox, ``https://na3.docusign.net`` etc. in production); None means the
    connector's default. ``hmac_key`` verifies Connect webhooks.
    """

    access_token: str = field(repr=False)
    account_id: str
    base_url: str | None = None
    hmac_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for value, env in ((self.access_token, ACCESS_TOKEN_ENV), (self.account_id, ACCOUNT_ID_ENV)):
            if not value or not str(value).strip():
                raise ConnectorAuthError(f"DocuSign credential is empty: set {env}", connector="docusign")
        register_secret(self.access_token)
        register_secret(self.hmac_key)

    @classmethod
    def from_env(cls, provider: CredentialProvider | None = None) -> DocuSignCredentials:
        """Read DOCUSIGN_ACCESS_TOKEN, DOCUSIGN_ACCOUNT_ID and DOCUSIGN_HMAC_KEY through the credential provider.

        A missing token or account id raises :class:`ConnectorAuthError` naming the variable.
        """
        provider = provider or get_credential_provider()
        return cls(
            access_token=provider.require(ACCESS_TOKEN_ENV, "docusign"),
            account_id=provider.require(ACCOUNT_ID_ENV, "docusign"),
            base_url=next((os.environ[name] for name in BASE_URL_ENVS if os.environ.get(name)), None),
            hmac_key=provider.get(HMAC_KEY_ENV),
        )
