"""WooCommerce side of the order cancellation (``connectors.framework.cancellations``).

``GET /orders/{id}`` first: ``cancelled`` is success (``already``), as are ``refunded`` and
``failed`` (nothing left to cancel or to release); ``completed`` has shipped and is refused
(a person decides). Otherwise ``PUT /orders/{id}`` ``{"status": "cancelled"}``: WooCommerce
puts the units back in its own stock count and sends ``order.updated``; the next level push
sets the ledger's figure anyway.
"""

from __future__ import annotations

from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.types import RejectedError
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.mapping import WooMapping

DONE = frozenset({"cancelled", "refunded", "failed"})


class WooCanceller:
    def __init__(self, client: WooClient, mapping: WooMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.site

    async def cancel_order(self, request: CancelRequest) -> str:
        path = f"/orders/{request.channel_order_id}"
        order, _ = await self._client.request("GET", path)
        status = order.get("status")
        if status in DONE:
            return ALREADY
        if status == "completed":
            raise RejectedError("order is completed on WooCommerce (shipped): not cancelled")
        changed, _ = await self._client.request("PUT", path, json={"status": "cancelled"})
        if changed.get("status") != "cancelled":
            raise RejectedError(f"WooCommerce kept the order {changed.get('status')!r}")
        return CANCELLED
