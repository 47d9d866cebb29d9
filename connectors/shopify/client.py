"""HTTP transport to one Shopify store: GraphQL and REST calls under ``ShopifyLimits``."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import RejectedError, UnavailableError
from connectors.shopify.limits import ShopifyLimits

_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def next_page_info(link: str | None) -> str | None:
    """The ``page_info`` of the ``rel="next"`` URL of a ``Link`` header, if there is one."""
    if not link:
        return None
    match = _NEXT.search(link)
    if match is None:
        return None
    values = parse_qs(urlsplit(match.group(1)).query).get("page_info")
    return values[0] if values else None


class ShopifyClient:
    """``base_url`` is ``https://{shop}.myshopify.com`` (or a fake's URL in tests)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        api_version: str = "2026-01",
        limits: ShopifyLimits | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self._api = f"{base_url.rstrip('/')}/admin/api/{api_version}"
        self._headers = {"X-Shopify-Access-Token": token, "Content-Type": "application/json"}
        redact.register(token)
        self.limits = limits or ShopifyLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def graphql(self, query: str, variables: dict[str, Any], cost: float) -> dict[str, Any]:
        """The ``data`` of a GraphQL answer; raises on throttle, 5xx and top-level errors."""
        await self.limits.before_graphql(cost)
        body = await self._call(
            "POST", "/graphql.json", json={"query": query, "variables": variables}
        )
        self.limits.after_graphql(body)
        if body.get("errors"):
            raise RejectedError(f"Shopify GraphQL errors: {body['errors']}")
        data: dict[str, Any] = body.get("data") or {}
        return data

    async def orders_updated_since(
        self, updated_at_min: str, limit: int = 250
    ) -> list[dict[str, Any]]:
        """Every order (any status) updated at or after ``updated_at_min``, oldest first,
        following the ``Link: <…page_info=…>; rel="next"`` cursor page after page (Shopify
        allows only ``limit`` beside ``page_info``: the cursor carries the filters)."""
        params: dict[str, str] = {
            "updated_at_min": updated_at_min,
            "status": "any",
            "limit": str(limit),
            "order": "updated_at asc",
        }
        orders: list[dict[str, Any]] = []
        while True:
            await self.limits.before_rest()
            body, headers = await self._call_with_headers(
                "GET", "/orders.json", params=params, rest=True
            )
            orders.extend(body.get("orders", []))
            cursor = next_page_info(headers.get("Link"))
            if cursor is None:
                return orders
            params = {"limit": str(limit), "page_info": cursor}

    async def order(self, order_id: str, fields: str) -> dict[str, Any] | None:
        """``GET /orders/{id}.json?fields=…`` (REST): the order's ``fields``, or ``None``
        when the store has no such order (404)."""
        await self.limits.before_rest()
        body, _ = await self._call_with_headers(
            "GET", f"/orders/{order_id}.json", params={"fields": fields}, rest=True, missing=True
        )
        order = body.get("order")
        return order if isinstance(order, dict) else None

    async def _call(
        self, method: str, path: str, *, rest: bool = False, **kwargs: Any
    ) -> dict[str, Any]:
        body, _ = await self._call_with_headers(method, path, rest=rest, **kwargs)
        return body

    async def _call_with_headers(
        self,
        method: str,
        path: str,
        *,
        rest: bool = False,
        missing: bool = False,
        **kwargs: Any,
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """``missing``: a 404 answers ``{}`` instead of raising ``RejectedError``."""
        try:
            async with self._session.request(
                method, self._api + path, headers=self._headers, timeout=self._timeout, **kwargs
            ) as response:
                if rest:
                    self.limits.after_rest(response.status, response.headers)
                payload = await response.json(content_type=None)
                if response.status >= 500:
                    raise UnavailableError(
                        f"Shopify {response.status}",
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
                if response.status == 429:  # GraphQL throttle with a 429 status: body says more
                    if isinstance(payload, dict):
                        self.limits.after_graphql(payload)
                    self.limits.throttled(response.headers)
                if response.status == 404 and missing:
                    return {}, dict(response.headers)
                if response.status >= 400:
                    raise RejectedError(f"Shopify {response.status}: {payload}")
                result: dict[str, Any] = payload
                return result, dict(response.headers)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the token)
            raise UnavailableError(f"Shopify unreachable: {redact.describe(exc)}") from None
