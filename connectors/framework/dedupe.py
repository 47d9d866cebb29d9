"""A bounded, expiring memory of keys seen, and per-order high-water marks."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class DedupeStore:
    """Remembers keys for ``ttl_s`` seconds, at most ``max_keys`` of them (oldest go first).

    It is a first line only: the ledger's own applied-id set is what makes a redelivery that
    slips past (after a restart, or beyond the TTL) change nothing.
    """

    def __init__(
        self,
        *,
        max_keys: int = 200_000,
        ttl_s: float = 48 * 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys: OrderedDict[str, float] = OrderedDict()
        self._max = max_keys
        self._ttl = ttl_s
        self._clock = clock

    def __len__(self) -> int:
        return len(self._keys)

    def _expire(self, now: float) -> None:
        while self._keys:
            key, seen_at = next(iter(self._keys.items()))
            if now - seen_at < self._ttl and len(self._keys) <= self._max:
                break
            del self._keys[key]

    def seen(self, key: str) -> bool:
        now = self._clock()
        self._expire(now)
        return key in self._keys

    def add(self, key: str) -> None:
        now = self._clock()
        self._keys.pop(key, None)
        self._keys[key] = now
        self._expire(now)

    def check_and_add(self, key: str) -> bool:
        """True if ``key`` was already seen; remembers it either way."""
        was = self.seen(key)
        if not was:
            self.add(key)
        return was


class HighWater:
    """Newest version seen per key (an order's ``updated_at``), bounded like the store."""

    def __init__(self, *, max_keys: int = 200_000) -> None:
        self._marks: OrderedDict[str, int] = OrderedDict()
        self._max = max_keys

    def is_stale(self, key: str, version: int) -> bool:
        """True if a strictly newer version of ``key`` was seen; else records ``version``."""
        current = self._marks.get(key)
        if current is not None and version < current:
            return True
        self._marks.pop(key, None)
        self._marks[key] = version if current is None else max(current, version)
        while len(self._marks) > self._max:
            self._marks.popitem(last=False)
        return False
