"""Shopify side of the refusal policies (``connectors.framework.refusals``), GraphQL Admin.

- cancel: ``orderCancel(reason: INVENTORY, restock: false, refund: true,
  notifyCustomer: true, staffNote: …)``. Shopify cancels in a background job; an order
  already cancelled answers a user error, taken as done (the action is idempotent).
- backorder: ``tagsAdd`` ``stockflow-backordered``;
- flag: ``tagsAdd`` ``stockflow-exception`` (tags are a set: adding one twice keeps one).
"""

from __future__ import annotations

from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError
from connectors.shopify.client import ShopifyClient
from connectors.shopify.mapping import ShopifyMapping

ORDER_GID = "gid://shopify/Order/"
MUTATION_COST = 10.0
BACKORDER_TAG = "stockflow-backordered"
EXCEPTION_TAG = "stockflow-exception"

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
TAGS_ADD = """
mutation Tag($id: ID!, $tags: [String!]!) {
  tagsAdd(id: $id, tags: $tags) { node { id } userErrors { field message } }
}
"""


class ShopifyRefusals:
    def __init__(self, client: ShopifyClient, mapping: ShopifyMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel(self, refusal: Refusal) -> None:
        data = await self._client.graphql(
            CANCEL,
            {
                "orderId": ORDER_GID + refusal.order_id,
                "reason": "INVENTORY",
                "refund": True,
                "restock": False,
                "notifyCustomer": True,
                "staffNote": refusal.note("order cancelled, not restocked"),
            },
            MUTATION_COST,
        )
        errors = (data.get("orderCancel") or {}).get("orderCancelUserErrors") or []
        if errors and not all("already" in str(e.get("message", "")).lower() for e in errors):
            raise RejectedError(f"orderCancel: {[e.get('code') for e in errors]}")

    async def backorder(self, refusal: Refusal) -> None:
        await self._tag(refusal, BACKORDER_TAG)

    async def flag(self, refusal: Refusal) -> None:
        await self._tag(refusal, EXCEPTION_TAG)

    async def _tag(self, refusal: Refusal, tag: str) -> None:
        data = await self._client.graphql(
            TAGS_ADD, {"id": ORDER_GID + refusal.order_id, "tags": [tag]}, MUTATION_COST
        )
        errors = (data.get("tagsAdd") or {}).get("userErrors") or []
        if errors:
            raise RejectedError(f"tagsAdd: {[e.get('message') for e in errors]}")
