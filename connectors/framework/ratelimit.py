"""Client-side rate limiting and backoff shared by the channels' ``limits`` modules."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; ``acquire`` waits for enough.

    ``drain_to`` lets a channel's answer correct our estimate (Shopify reports what is left).
    """

    def __init__(
        self, capacity: float, rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("token bucket needs a positive capacity and rate")
        self.capacity = capacity
        self.rate = rate
        self._tokens = capacity
        self._clock = clock
        self._at = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    @property
    def available(self) -> float:
        self._refill()
        return self._tokens

    def wait_for(self, cost: float) -> float:
        """Seconds until ``cost`` tokens are there (0 if now)."""
        self._refill()
        blocked = max(0.0, self._blocked_until - self._clock())
        missing = min(cost, self.capacity) - self._tokens
        return max(blocked, missing / self.rate if missing > 0 else 0.0)

    async def acquire(self, cost: float = 1.0) -> None:
        async with self._lock:
            while (delay := self.wait_for(cost)) > 0:  # noqa: ASYNC110 - computed delay
                await asyncio.sleep(delay)
            self._tokens -= min(cost, self.capacity)

    def observe(self, available: float, capacity: float | None = None) -> None:
        """The channel says ``available`` tokens are left: trust it over our estimate."""
        self._refill()
        if capacity is not None and capacity > 0:
            self.capacity = capacity
        self._tokens = max(0.0, min(self.capacity, available))

    def block(self, seconds: float) -> None:
        """The channel said "retry after": hand out nothing before then."""
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    ceiling = min(cap, base * (2 ** max(0, attempt)))
    return (rng or random).uniform(ceiling / 2, ceiling)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (Shopify sends ``2.0``); dates are not used by
    our channels and count as absent."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)
