"""The limits of a shop whose API has no rate limit of its own (WooCommerce, Magento,
PrestaShop): a host or WAF may add one.

An optional client-side token bucket (off unless ``per_s`` is configured) plus what the server
says: 429, or 503 with ``Retry-After`` (maintenance mode, a host's throttle), pauses every
request of the channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from connectors.framework import metrics
from connectors.framework.ratelimit import TokenBucket, parse_retry_after
from connectors.framework.types import ThrottledError


class HostLimits:
    shop = "the shop"  # named in the throttle's message

    def __init__(self, channel: str, *, per_s: float | None = None, burst: float = 10.0) -> None:
        self.channel = channel
        self.bucket = TokenBucket(burst, per_s) if per_s else None
        self._pause = TokenBucket(1.0, 1.0)  # used only for its Retry-After block

    async def before_request(self) -> None:
        if self.bucket is not None:
            await self.bucket.acquire(1.0)
        if (wait := self._pause.wait_for(0)) > 0:
            await asyncio.sleep(wait)

    def after_response(self, status: int, headers: Mapping[str, str]) -> None:
        if status == 429 or (status == 503 and "Retry-After" in headers):
            metrics.THROTTLES.labels(self.channel).inc()
            wait = parse_retry_after(headers.get("Retry-After"))
            self._pause.block(wait if wait is not None else 1.0)
            raise ThrottledError(f"{self.shop} {status}", wait)
