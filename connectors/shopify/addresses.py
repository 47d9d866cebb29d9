"""Shopify's shipping address of an order (``connectors.carriers.destinations``).

``GET /admin/api/{version}/orders/{id}.json?fields=shipping_address`` (REST, under the
store's REST bucket like the order polling): ``name`` (else first and last name),
``company``, ``address1``, ``address2``, ``city``, ``zip`` and ``country_code``. An unknown
order (404) or one without a shipping address is ``None``.
"""

from __future__ import annotations

from typing import Any

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.shopify.client import ShopifyClient


def shopify_address(raw: dict[str, Any]) -> Address:
    name = raw.get("name") or " ".join(str(raw.get(k) or "") for k in ("first_name", "last_name"))
    return address_of(
        country=raw.get("country_code"),
        postal_code=raw.get("zip"),
        city=raw.get("city"),
        lines=[raw.get("company"), raw.get("address1"), raw.get("address2")],
        name=name,
    )


class ShopifyAddresses:
    def __init__(self, client: ShopifyClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        if not channel_order_id.isdigit():
            return None
        order = await self._client.order(channel_order_id, "id,shipping_address")
        raw = (order or {}).get("shipping_address")
        return shopify_address(raw) if isinstance(raw, dict) else None
