"""The credential provider interface."""

from __future__ import annotations

from abc import ABC, abstractmethod

from connectors.exceptions import ConnectorAuthError
from connectors.redact import register_secret


class CredentialProvider(ABC):
    """Answers a credential name with its value, or None when this provider does not have it."""

    @abstractmethod
    def _lookup(self, name: str) -> str | None:
        """Provider-specific lookup."""

    def get(self, name: str, *, secret: bool = True) -> str | None:
        """The value of credential ``name`` or None; a secret value is registered for redaction.

        ``secret=False`` is for settings read the same way (a folder, a DSN path, a contact string)
        that must stay readable in error messages.
        """
        value = self._lookup(name)
        if value is not None:
            value = str(value)
            if not value.strip():
                return None
            if secret:
                register_secret(value)
        return value

    def require(self, name: str, connector: str | None = None) -> str:
        """The value of ``name``, or :class:`ConnectorAuthError` saying what to set."""
        value = self.get(name)
        if value is None:
            raise ConnectorAuthError(
                f"credential {name} is not set; export {name}=... or store it in the configured "
                "credential provider (ARAGORA_CREDENTIAL_PROVIDER)",
                connector=connector,
            )
        return value
