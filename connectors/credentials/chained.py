"""A provider that asks several providers in order."""

from __future__ import annotations

from collections.abc import Sequence

from connectors.credentials.base import CredentialProvider


class ChainedCredentialProvider(CredentialProvider):
    """Returns the first non-None answer of its providers, in order."""

    def __init__(self, providers: Sequence[CredentialProvider]) -> None:
        if not providers:
            raise ValueError("ChainedCredentialProvider needs at least one provider")
        self.providers = list(providers)

    def _lookup(self, name: str) -> str | None:
        for provider in self.providers:
            value = provider.get(name, secret=False)  # the outer get registers secrets
            if value is not None:
                return value
        return None

    def __repr__(self) -> str:
        return f"ChainedCredentialProvider({self.providers!r})"
