"""Shopify side of the order cancellation (``connectors.framework.cancellations``).

``orderCancel(orderId, reason: OTHER, refund: true, restock: true, notifyCustomer: true,
staffNote)``: the order was cancelled in the order book, so the customer is refunded and
told, and Shopify's own committed units go back to available (the ledger's figure is pushed
anyway). Shopify cancels in a background job: an answer with a ``job`` is taken as done,
and the ``orders/cancelled`` webhook that follows is the channel's confirmation. An order
already cancelled answers a user error ("already been cancelled"): success, ``already``.
Any other user error (the order does not exist, cannot be cancelled) is a refusal.
"""

from __future__ import annotations

from typing import Any

from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.types import RejectedError
from connectors.shopify.client import ShopifyClient
from connectors.shopify.mapping import ShopifyMapping

ORDER_GID = "gid://shopify/Order/"
MUTATION_COST = 10.0

CANCEL = """
mutation Cancel($orderId: ID!, $reason: OrderCancelReason!, $refund: Boolean!,
               $restock: Boolean!, $notifyCustomer: Boolean, $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, refund: $refund, restock: $restock,
              notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { code field message }
  }
}
"""


async def order_cancel(
    client: ShopifyClient, order_id: str, *, reason: str, restock: bool, staff_note: str
) -> tuple[bool, dict[str, Any]]:
    """Shopify's ``orderCancel`` of the order with id ``order_id`` (refunded, the customer
    told): (already cancelled, the mutation's answer); RejectedError on any other user
    error."""
    data = await client.graphql(
        CANCEL,
        {
            "orderId": ORDER_GID + order_id,
            "reason": reason,
            "refund": True,
            "restock": restock,
            "notifyCustomer": True,
            "staffNote": staff_note,
        },
        MUTATION_COST,
    )
    answer = data.get("orderCancel") or {}
    errors = answer.get("orderCancelUserErrors") or []
    if errors:
        if all("already" in str(e.get("message", "")).lower() for e in errors):
            return True, answer
        raise RejectedError(f"orderCancel: {[e.get('code') for e in errors]}")
    return False, answer


class ShopifyCanceller:
    def __init__(self, client: ShopifyClient, mapping: ShopifyMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel_order(self, request: CancelRequest) -> str:
        already, answer = await order_cancel(
            self._client,
            request.channel_order_id,
            reason="OTHER",
            restock=True,
            staff_note=request.note(),
        )
        if already:
            return ALREADY
        if not answer.get("job"):
            raise RejectedError("orderCancel: no job and no user error")
        return CANCELLED
