"""A provider that asks several providers in order."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.credentials.base import CredentialProvider, CredentialSource, get_credential, invalidate_credential


class ChainedCredentialProvider(CredentialProvider):
    """Returns the first non-None answer of its providers (any objects with ``get(name)``), in order."""

    def __init__(self, providers: Sequence[CredentialSource]) -> None:
        if not providers:
            raise ValueError("ChainedCredentialProvider needs at least one provider")
        self.providers = list(providers)

    def _lookup(self, name: str) -> str | None:
        for provider in self.providers:
            value = get_credential(provider, name, secret=False)  # the outer get registers secrets
            if value is not None:
                return value
        return None

    def invalidate(self, name: str | None = None) -> None:
        """Pass :meth:`CachedCredentialProvider.invalidate` on to every provider of the chain."""
        for provider in self.providers:
            invalidate_credential(provider, name)

    def __repr__(self) -> str:
        return f"ChainedCredentialProvider({self.providers!r})"
