"""Mirakl's limits: a "call frequency" per operation, and 429 when a caller goes past it.

The seller API documents, per operation, a recommended and a maximum frequency: OR11 (list
orders) and OF01 (offer file import) at most once a minute, OF02/OF03 after each import.
The client keeps the maximum itself (``or11_interval_s``, ``of01_interval_s``: it waits
rather than be refused), and honours what the operator says: 429 with ``Retry-After``
(seconds) pauses every request of this operator that long; a bare 429 (some instances send
no header) pauses ``throttle_pause_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping

from connectors.framework import metrics
from connectors.framework.ratelimit import TokenBucket, parse_retry_after
from connectors.framework.types import ThrottledError

LIMIT_KEYS = {"or11_interval_s", "of01_interval_s", "throttle_pause_s", "per_s", "burst"}
MAX_PAGE = 100  # OR11, OF21: ``max`` at most 100


class MiraklLimits:
    def __init__(
        self,
        channel: str = "mirakl",
        *,
        or11_interval_s: float = 60.0,
        of01_interval_s: float = 60.0,
        throttle_pause_s: float = 5.0,
        per_s: float | None = None,
        burst: float = 10.0,
    ) -> None:
        self.channel = channel
        self.intervals = {"OR11": or11_interval_s, "OF01": of01_interval_s}
        self.throttle_pause_s = throttle_pause_s
        self.bucket = TokenBucket(burst, per_s) if per_s else None
        self._pause = TokenBucket(1.0, 1.0)  # used only for its Retry-After block
        self._last: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def spaced(self, operation: str) -> AsyncIterator[None]:
        """Around one call of ``operation``: waits until it may be called again (its maximum
        call frequency), counted from the end of the previous call (the operator stamps the
        call when it arrives, which is before our end of it)."""
        interval = self.intervals.get(operation, 0.0)
        lock = self._locks.setdefault(operation, asyncio.Lock())
        async with lock:
            last = self._last.get(operation)
            if last is not None:
                wait = last + interval - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            try:
                yield
            finally:
                self._last[operation] = time.monotonic()

    async def before_request(self) -> None:
        if self.bucket is not None:
            await self.bucket.acquire(1.0)
        if (wait := self._pause.wait_for(0)) > 0:
            await asyncio.sleep(wait)

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        if status == 429 or (status == 503 and "Retry-After" in headers):
            metrics.THROTTLES.labels(self.channel).inc()
            said = parse_retry_after(headers.get("Retry-After"))
            wait = said if said is not None else self.throttle_pause_s
            self._pause.block(wait)
            raise ThrottledError(f"Mirakl {status} (Retry-After {said})", wait)
