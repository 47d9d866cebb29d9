"""Amazon's limits: a token bucket per operation, as documented, corrected by what Amazon says.

Every SP-API operation has its own bucket (rate per second, burst) per selling partner and
application. The defaults below are the documented ones; ``x-amzn-RateLimit-Limit`` on an
answer gives the rate Amazon applies to this account (usage plans can change), and the
bucket follows it. A 429 ``QuotaExceeded`` (Amazon sends no ``Retry-After``) empties the
operation's bucket and blocks it for the time one token takes to come back; the other
operations go on. The connectors configuration may override a rate (``limits:
{getOrders: 0.5}``), e.g. for a sandbox or a fake.

Feeds: at most 25,000 messages per ``JSON_LISTINGS_FEED``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from connectors.framework import metrics
from connectors.framework.ratelimit import TokenBucket
from connectors.framework.types import ThrottledError

RATES: dict[str, tuple[float, float]] = {  # operation: (rate per second, burst)
    "patchListingsItem": (5.0, 5.0),
    "getListingsItem": (5.0, 10.0),
    "getOrders": (0.0167, 20.0),
    "getOrderItems": (0.5, 30.0),
    "getOrder": (0.5, 30.0),
    "confirmShipment": (2.0, 10.0),
    "createRestrictedDataToken": (1.0, 10.0),
    "getOrderAddress": (0.5, 30.0),
    "createFeedDocument": (0.5, 15.0),
    "createFeed": (0.0083, 15.0),
    "getFeed": (2.0, 15.0),
    "getFeedDocument": (0.0222, 10.0),
    "getInventorySummaries": (2.0, 2.0),
}
FEED_MAX_MESSAGES = 25_000
MAX_BLOCK_S = 120.0  # never wait longer than this for one token after a 429
RATE_HEADER = "x-amzn-RateLimit-Limit"


class AmazonLimits:
    def __init__(self, channel: str = "amazon", **rates: float) -> None:
        unknown = set(rates) - set(RATES)
        if unknown:
            raise ValueError(f"unknown Amazon operations {sorted(unknown)}; use {sorted(RATES)}")
        self.channel = channel
        self.buckets = {
            op: TokenBucket(burst, rates.get(op, rate)) for op, (rate, burst) in RATES.items()
        }

    def rate(self, op: str) -> float:
        return self.buckets[op].rate

    async def before(self, op: str) -> None:
        await self.buckets[op].acquire(1.0)

    def after(self, op: str, status: int, headers: Mapping[str, str]) -> None:
        """Follow Amazon's rate header; raise ``ThrottledError`` on a 429."""
        bucket = self.buckets[op]
        with contextlib.suppress(TypeError, ValueError):
            rate = float(headers.get(RATE_HEADER) or "")
            if rate > 0:
                bucket.rate = rate
        if status == 429:
            metrics.THROTTLES.labels(self.channel).inc()
            wait = min(MAX_BLOCK_S, 1.0 / bucket.rate)
            bucket.observe(0.0)
            bucket.block(wait)
            raise ThrottledError(f"Amazon 429 QuotaExceeded on {op}", wait)
