"""Magento side of the order cancellation (``connectors.framework.cancellations``).

``GET /V1/orders/{id}`` first: ``canceled`` or ``closed`` is success (``already``);
``complete`` has shipped and is refused (a person decides). Otherwise
``POST /V1/orders/{id}/cancel``, which answers ``true`` when Magento cancelled it (it
answers ``false`` for an order it cannot cancel, e.g. one fully invoiced).
"""

from __future__ import annotations

from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.types import RejectedError
from connectors.magento.client import MagentoClient
from connectors.magento.mapping import MagentoMapping

DONE = frozenset({"canceled", "closed"})


class MagentoCanceller:
    def __init__(self, client: MagentoClient, mapping: MagentoMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.store

    async def cancel_order(self, request: CancelRequest) -> str:
        order = await self._client.request("GET", f"/V1/orders/{request.channel_order_id}")
        state = order.get("state")
        if state in DONE:
            return ALREADY
        if state == "complete":
            raise RejectedError("order is complete on Magento (shipped): not cancelled")
        done = await self._client.request("POST", f"/V1/orders/{request.channel_order_id}/cancel")
        if done is not True:
            raise RejectedError(f"Magento cannot cancel the order (state {state!r})")
        return CANCELLED
