"""HTTP transport to one Magento 2 store (REST, ``Authorization: Bearer <integration token>``).

``base_url`` is the store's root, e.g. ``https://shop.example`` (a fake's URL in tests);
requests go to ``<base_url>/rest/<store code>/V1/...`` (store code ``all`` by default, which
is how Magento addresses global writes such as source items and base prices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from connectors.framework import redact
from connectors.framework.ratelimit import parse_retry_after
from connectors.framework.types import (
    Outcome,
    RejectedError,
    ThrottledError,
    UnavailableError,
)
from connectors.magento.limits import MAX_PAGE_SIZE, SYNC_LIST_LIMIT, MagentoLimits
from connectors.magento.prices import ItemResult, PriceItem, price_body, price_results, prices_read

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # Magento's UTC timestamps: "2026-11-30 06:00:00"


class MagentoError(Exception):
    """A Magento error answer ``{message, parameters}``; the message's ``%1`` placeholders
    are filled with the parameters."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def render(body: Any) -> str:
    if not isinstance(body, dict):
        return str(body)[:200]
    message = str(body.get("message", ""))
    params = body.get("parameters")
    if isinstance(params, list):
        for n, value in enumerate(params, start=1):
            message = message.replace(f"%{n}", str(value))
    elif isinstance(params, dict):
        for key, value in params.items():
            message = message.replace(f"%{key}", str(value))
    return message


def magento_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(TIME_FORMAT)


def search_criteria(
    filters: Sequence[tuple[str, str, str]],
    *,
    sort: str | None = None,
    page_size: int | None = None,
    page: int | None = None,
) -> dict[str, str]:
    """``searchCriteria`` query parameters; each ``(field, condition, value)`` is its own
    filter group (groups are ANDed)."""
    params: dict[str, str] = {}
    for n, (name, condition, value) in enumerate(filters):
        prefix = f"searchCriteria[filter_groups][{n}][filters][0]"
        params[f"{prefix}[field]"] = name
        params[f"{prefix}[value]"] = value
        params[f"{prefix}[condition_type]"] = condition
    if sort:
        params["searchCriteria[sortOrders][0][field]"] = sort
        params["searchCriteria[sortOrders][0][direction]"] = "ASC"
    if page_size is not None:
        params["searchCriteria[pageSize]"] = str(page_size)
    if page is not None:
        params["searchCriteria[currentPage]"] = str(page)
    return params


class MagentoClient:
    max_batch = SYNC_LIST_LIMIT  # prices per base-prices request (the Web API input limit)

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        *,
        store_code: str = "all",
        currency: str = "EUR",
        limits: MagentoLimits | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._session = session
        self._root = f"{base_url.rstrip('/')}/rest/{store_code}"
        self.currency = currency  # the website's base currency (prices read back)
        self._headers = {"Authorization": f"Bearer {token}"}
        redact.register(token)
        self.limits = limits or MagentoLimits()
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """The decoded JSON body; raises ``ThrottledError``, ``UnavailableError`` (5xx,
        network), ``RejectedError`` (401/403: the token) or ``MagentoError`` (other 4xx)."""
        await self.limits.before_request()
        try:
            async with self._session.request(
                method, self._root + path, headers=self._headers, timeout=self._timeout, **kwargs
            ) as response:
                self.limits.after_response(response.status, response.headers)
                body = await response.json(content_type=None)
                if response.status >= 500:
                    raise UnavailableError(
                        f"Magento {response.status}",
                        parse_retry_after(response.headers.get("Retry-After")),
                    )
                if response.status in (401, 403):
                    raise RejectedError(
                        f"Magento {response.status}: {render(body)} (check the integration "
                        "token and its resource access)"
                    )
                if response.status >= 400:
                    raise MagentoError(response.status, render(body))
                return body
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # never {exc!r}: aiohttp's response errors print the request headers (the token)
            raise UnavailableError(f"Magento unreachable: {redact.describe(exc)}") from None

    async def search(
        self, path: str, filters: Sequence[tuple[str, str, str]], *, sort: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a ``searchCriteria`` list, all pages. Magento answers a page past
        the end with the last page again, so ``total_count`` decides when to stop."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            params = search_criteria(filters, sort=sort, page_size=MAX_PAGE_SIZE, page=page)
            body = await self.request("GET", path, params=params)
            batch = list(body.get("items") or [])
            items.extend(batch)
            if not batch or len(items) >= int(body.get("total_count") or 0):
                return items
            page += 1

    async def orders_updated_since(self, since_ms: int) -> list[dict[str, Any]]:
        return await self.search(
            "/V1/orders", [("updated_at", "gteq", magento_time(since_ms))], sort="updated_at"
        )

    async def shipments(self, order_id: int) -> list[dict[str, Any]]:
        return await self.search("/V1/shipments", [("order_id", "eq", str(order_id))])

    async def creditmemos(self, order_id: int) -> list[dict[str, Any]]:
        return await self.search("/V1/creditmemos", [("order_id", "eq", str(order_id))])

    async def source_items(
        self, skus: Sequence[str], source_codes: Sequence[str]
    ) -> list[dict[str, Any]]:
        return await self.search(
            "/V1/inventory/source-items",
            [("sku", "in", ",".join(skus)), ("source_code", "in", ",".join(source_codes))],
        )

    async def save_source_items(self, items: Sequence[Mapping[str, Any]]) -> None:
        await self.request("POST", "/V1/inventory/source-items", json={"sourceItems": list(items)})

    async def bulk_save_source_items(
        self, operations: Sequence[Sequence[Mapping[str, Any]]]
    ) -> str:
        """One asynchronous operation per group of source items (one SKU's sources, saved
        together); the bulk's uuid."""
        body = await self.request(
            "POST",
            "/async/bulk/V1/inventory/source-items",
            json=[{"sourceItems": [dict(item) for item in group]} for group in operations],
        )
        if not isinstance(body, dict) or not body.get("bulk_uuid"):
            raise UnavailableError(f"Magento bulk answer without bulk_uuid: {render(body)}")
        return str(body["bulk_uuid"])

    async def bulk_operations(self, bulk_uuid: str) -> list[dict[str, Any]]:
        """``GET /V1/bulk/{uuid}/detailed-status``: ``operations_list`` with ``id`` (the
        request item's index), ``status`` (1 complete, 2 retriably failed, 3 failed, 4 open,
        5 rejected) and ``result_message``."""
        body = await self.request("GET", f"/V1/bulk/{bulk_uuid}/detailed-status")
        return list(body.get("operations_list") or [])

    async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]:
        """``POST /V1/products/base-prices``: one result per item, never raises for a
        channel error (throttle or 5xx → retry; a 4xx for the request → failed; an item
        Magento lists as refused → refused, the others are saved)."""
        if not items:
            return []
        try:
            answer = await self.request("POST", "/V1/products/base-prices", json=price_body(items))
        except (ThrottledError, UnavailableError) as exc:
            return [ItemResult(i.sku, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except (RejectedError, MagentoError) as exc:
            return [ItemResult(i.sku, Outcome.FAILED, str(exc)) for i in items]
        return price_results(items, answer, render)

    async def get_prices(self, skus: Sequence[str]) -> dict[str, int]:
        """Global-scope base prices in minor units of ``currency`` (unknown SKUs left out)."""
        if not skus:
            return {}
        answer = await self.request(
            "POST", "/V1/products/base-prices-information", json={"skus": list(skus)}
        )
        return prices_read(answer, self.currency)


__all__ = ["MagentoClient", "MagentoError", "RejectedError"]
