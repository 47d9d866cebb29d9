"""WooCommerce side of the shipping confirmation (``connectors.framework.shipments``).

``GET /orders/{id}`` first: ``completed`` is success (``already``); ``cancelled``,
``refunded`` and ``failed`` are refused (a person decides). Otherwise a private order note
with the carrier and tracking number (``POST /orders/{id}/notes``), then ``PUT
/orders/{id}`` ``{"status": "completed"}`` (WooCommerce emails the customer its completed
order). A redelivery between the two adds the note again, never a second completion.
"""

from __future__ import annotations

from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.mapping import WooMapping

REFUSED = frozenset({"cancelled", "refunded", "failed"})


class WooShipper:
    def __init__(self, client: WooClient, mapping: WooMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.site

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        path = f"/orders/{notice.channel_order_id}"
        order, _ = await self._client.request("GET", path)
        status = order.get("status")
        if status == "completed":
            return ALREADY
        if status in REFUSED:
            raise RejectedError(f"order is {status} on WooCommerce: not completed")
        await self._client.request(
            "POST", f"{path}/notes", json={"note": notice.note(), "customer_note": False}
        )
        changed, _ = await self._client.request("PUT", path, json={"status": "completed"})
        if changed.get("status") != "completed":
            raise RejectedError(f"WooCommerce kept the order {changed.get('status')!r}")
        return SHIPPED
