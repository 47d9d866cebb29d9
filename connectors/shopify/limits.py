"""Shopify's rate limits, modelled client-side so we rarely hit them.

- GraphQL: a cost bucket per app and store (``maximumAvailable``, ``restoreRate``). Every
  answer's ``extensions.cost.throttleStatus`` corrects our estimate; a ``THROTTLED`` error
  (HTTP 200 or 429, so we read the body) means wait until the requested cost is restored.
- REST: a leaky bucket of 40 leaking 2 per second; ``X-Shopify-Shop-Api-Call-Limit: n/40``
  tells how full it is; 429 carries ``Retry-After``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from connectors.framework import metrics
from connectors.framework.ratelimit import TokenBucket, parse_retry_after
from connectors.framework.types import ThrottledError

MUTATION_COST = 10.0


class ShopifyLimits:
    def __init__(
        self,
        channel: str = "shopify",
        *,
        gql_capacity: float = 1000.0,
        gql_restore: float = 50.0,
        rest_capacity: float = 40.0,
        rest_leak: float = 2.0,
    ) -> None:
        self.channel = channel
        self.graphql = TokenBucket(gql_capacity, gql_restore)
        self.rest = TokenBucket(rest_capacity, rest_leak)

    async def before_graphql(self, cost: float) -> None:
        await self.graphql.acquire(cost)

    def after_graphql(self, body: Mapping[str, Any]) -> None:
        """Learn from ``extensions.cost``; raise ``ThrottledError`` on ``THROTTLED``."""
        cost = (body.get("extensions") or {}).get("cost") or {}
        status = cost.get("throttleStatus") or {}
        if "currentlyAvailable" in status:
            self.graphql.observe(
                float(status["currentlyAvailable"]), float(status.get("maximumAvailable", 0))
            )
        if "restoreRate" in status and float(status["restoreRate"]) > 0:
            self.graphql.rate = float(status["restoreRate"])
        errors = body.get("errors")
        listed = errors if isinstance(errors, list) else []
        codes = {(e.get("extensions") or {}).get("code") for e in listed if isinstance(e, dict)}
        if "THROTTLED" in codes:
            metrics.THROTTLES.labels(self.channel).inc()
            requested = float(cost.get("requestedQueryCost") or MUTATION_COST)
            available = float(status.get("currentlyAvailable", 0))
            wait = max(0.0, requested - available) / self.graphql.rate
            self.graphql.block(wait)
            raise ThrottledError("Shopify GraphQL THROTTLED", wait)

    async def before_rest(self) -> None:
        await self.rest.acquire(1.0)

    def after_rest(self, status: int, headers: Mapping[str, str]) -> None:
        """Track the REST bucket from its header; raise ``ThrottledError`` on 429."""
        used = headers.get("X-Shopify-Shop-Api-Call-Limit")
        if used and "/" in used:
            n, cap = used.split("/", 1)
            with contextlib.suppress(ValueError):
                self.rest.observe(float(cap) - float(n), float(cap))
        if status == 429:
            self.throttled(headers)

    def throttled(self, headers: Mapping[str, str]) -> None:
        """A 429 from either API: honour ``Retry-After`` (1 s when absent)."""
        metrics.THROTTLES.labels(self.channel).inc()
        wait = parse_retry_after(headers.get("Retry-After"))
        self.rest.block(wait if wait is not None else 1.0)
        self.graphql.block(wait if wait is not None else 1.0)
        raise ThrottledError("Shopify 429", wait)
