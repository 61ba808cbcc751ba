"""A TTL cache in front of a slower provider (Secrets Manager calls cost money and time)."""

from __future__ import annotations

import time
from collections.abc import Callable

from connectors.cache import TTLCache
from connectors.credentials.base import CredentialProvider, CredentialSource, get_credential, invalidate_credential


class CachedCredentialProvider(CredentialProvider):
    """Caches found values for ``ttl`` seconds; misses are not cached, so a new secret shows at once.

    ``provider`` is any object with ``get(name)``; :meth:`invalidate` forgets values before their time.
    """

    def __init__(
        self, provider: CredentialSource, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.provider = provider
        self.ttl = ttl
        self._cache: TTLCache[str] = TTLCache(max_entries=1024, ttl_seconds=ttl, clock=clock)

    def _lookup(self, name: str) -> str | None:
        value = self._cache.get(name)
        if value is None:
            value = get_credential(self.provider, name, secret=False)  # the outer get registers secrets
            if value is not None:
                self._cache.put(name, value)
        return value

    def invalidate(self, name: str | None = None) -> None:
        """Drop the cached value of ``name`` (all when None) here and in the wrapped provider."""
        if name is None:
            self._cache.clear()
        else:
            self._cache.delete(name)
        invalidate_credential(self.provider, name)

    def __repr__(self) -> str:
        return f"CachedCredentialProvider({self.provider!r}, ttl={self.ttl})"
