"""An LRU cache with per-entry TTL, safe under concurrent asyncio tasks and threads."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class TTLCache(Generic[V]):
    """Least-recently-used cache whose entries expire ``ttl_seconds`` after they are stored.

    Every operation holds a lock and never awaits, so tasks and threads see a consistent
    cache (the original's cache had no lock).
    """

    def __init__(
        self, max_entries: int = 500, ttl_seconds: float = 3600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1 or ttl_seconds <= 0:
            raise ValueError("max_entries must be >= 1 and ttl_seconds > 0")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = self.evictions = self.expired = 0

    def get(self, key: Hashable) -> V | None:
        """The live value for ``key`` (refreshing its recency), or None."""
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            expires, value = item
            if self._clock() >= expires:
                del self._data[key]
                self.expired += 1
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: V) -> None:
        """Store ``value``, evicting the least recently used entry when full."""
        with self._lock:
            self._data[key] = (self._clock() + self.ttl_seconds, value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
                self.evictions += 1

    def delete(self, key: Hashable) -> None:
        """Drop ``key`` if present."""
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        """Drop every entry (statistics are kept)."""
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def stats(self) -> dict[str, Any]:
        """Entries, hits, misses, evictions, expired, max_entries and ttl_seconds."""
        with self._lock:
            now = self._clock()
            live = sum(1 for expires, _ in self._data.values() if expires > now)
            return {
                "entries": live,
                "hits": self.hits,
                "misses": self.misses,
                "evictions": self.evictions,
                "expired": self.expired,
                "max_entries": self.max_entries,
                "ttl_seconds": self.ttl_seconds,
            }
