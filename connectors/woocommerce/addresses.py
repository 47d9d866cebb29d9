"""WooCommerce's shipping address of an order (``connectors.carriers.destinations``).

``GET /wp-json/wc/v3/orders/{id}`` → ``shipping``: ``first_name``, ``last_name``,
``company``, ``address_1``, ``address_2``, ``city``, ``postcode`` and ``country``. An
unknown order (404 ``woocommerce_rest_shop_order_invalid_id``) or an empty ``shipping``
(a virtual order) is ``None``; any other refusal is a ``RejectedError``.
"""

from __future__ import annotations

from typing import Any

from connectors.carriers.destinations import address_of
from connectors.carriers.model import Address
from connectors.framework.types import RejectedError
from connectors.woocommerce.client import WooClient, WooError


def woo_address(raw: dict[str, Any]) -> Address:
    return address_of(
        country=raw.get("country"),
        postal_code=raw.get("postcode"),
        city=raw.get("city"),
        lines=[raw.get("company"), raw.get("address_1"), raw.get("address_2")],
        name=" ".join(str(raw.get(k) or "").strip() for k in ("first_name", "last_name")),
    )


class WooAddresses:
    def __init__(self, client: WooClient) -> None:
        self._client = client

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        if not channel_order_id.isdigit():
            return None
        try:
            order, _ = await self._client.request("GET", f"/orders/{channel_order_id}")
        except WooError as exc:
            if exc.status == 404:
                return None
            raise RejectedError(f"WooCommerce {exc.status} {exc.code}") from None
        raw = order.get("shipping") if isinstance(order, dict) else None
        if not isinstance(raw, dict) or not (raw.get("address_1") or raw.get("postcode")):
            return None
        return woo_address(raw)
