"""eMAG's rate limits: order routes 12 requests/s, every other resource 3 requests/s
together, invalid requests counted too; over them eMAG answers 429.

Two sliding one-second windows, as eMAG counts: one for ``order/*``, one shared by
everything else (offers, reads of offers); a request waits until fewer than the limit were
sent in the last second (plus a small margin for the network). A token bucket would not do:
a full bucket plus a second's refill is twice the limit in one second. A 429 pauses the
window of the route that got it for ``Retry-After`` (eMAG sends none: one second, its
window), so a throttled offer save does not hold the order routes back. A request counts
from when its answer came back (eMAG counts from when it arrived, which is earlier, so the
window never runs ahead of eMAG's whatever the network's delays). Saves carry at most 50
entities and 4,000 input variables (eMAG refuses more).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Mapping

from connectors.framework import metrics
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import ThrottledError

ORDERS_PER_S = 12.0
OTHERS_PER_S = 3.0
MAX_ENTITIES = 50  # per save request
MAX_INPUT_VARS = 4000  # leaf values of one request
PAGE = 100  # itemsPerPage at most


MARGIN_S = 0.02


class SlidingWindow:
    """At most ``limit`` requests in any ``MARGIN_S`` + one second."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("a rate limit of at least one request per second is needed")
        self.limit = int(limit)
        self._sent: deque[list[float]] = deque()  # [sent, then answered] per request
        self._blocked_until = 0.0
        self._clock = clock
        self._lock = asyncio.Lock()

    def wait_for(self) -> float:
        now = self._clock()
        while self._sent and now - self._sent[0][0] >= 1.0 + MARGIN_S:
            self._sent.popleft()
        full = 0.0
        if len(self._sent) >= self.limit:
            oldest = self._sent[len(self._sent) - self.limit][0]
            full = oldest + 1.0 + MARGIN_S - now
        return max(full, self._blocked_until - now, 0.0)

    async def acquire(self) -> list[float]:
        """Wait for room; the request's cell, handed to :meth:`answered` when it returns."""
        async with self._lock:
            while (delay := self.wait_for()) > 0:  # noqa: ASYNC110 - computed delay
                await asyncio.sleep(delay)
            cell = [self._clock()]
            self._sent.append(cell)
            return cell

    def answered(self, cell: list[float]) -> None:
        cell[0] = self._clock()
        self._sent = deque(sorted(self._sent, key=lambda c: c[0]))

    def block(self, seconds: float) -> None:
        self._blocked_until = max(self._blocked_until, self._clock() + seconds)


def is_order_route(path: str) -> bool:
    return path.split("/", 1)[0] == "order"


class EmagLimits:
    def __init__(
        self,
        channel: str = "emag",
        *,
        orders_per_s: float = ORDERS_PER_S,
        others_per_s: float = OTHERS_PER_S,
    ) -> None:
        self.channel = channel
        self.orders = SlidingWindow(orders_per_s)
        self.others = SlidingWindow(others_per_s)

    def bucket(self, path: str) -> SlidingWindow:
        return self.orders if is_order_route(path) else self.others

    async def before_request(self, path: str) -> list[float]:
        return await self.bucket(path).acquire()

    def after_response(
        self, path: str, cell: list[float], status: int, headers: Mapping[str, str]
    ) -> None:
        self.bucket(path).answered(cell)
        if status == 429:
            metrics.THROTTLES.labels(self.channel).inc()
            wait = parse_retry_after(headers.get("Retry-After"))
            self.bucket(path).block(wait if wait is not None else 1.0)
            raise ThrottledError(f"eMAG 429 on {path}", wait if wait is not None else 1.0)


def input_vars(value: object) -> int:
    """How many input variables eMAG counts for a request body (its leaf values)."""
    if isinstance(value, Mapping):
        return sum(input_vars(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(input_vars(v) for v in value)
    return 1


__all__ = ["MAX_ENTITIES", "MAX_INPUT_VARS", "PAGE", "EmagLimits", "input_vars"]
