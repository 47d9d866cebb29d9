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
from connectors.shopify.cancel import MUTATION_COST, ORDER_GID, order_cancel
from connectors.shopify.client import ShopifyClient
from connectors.shopify.mapping import ShopifyMapping

BACKORDER_TAG = "stockflow-backordered"
EXCEPTION_TAG = "stockflow-exception"

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
        await order_cancel(
            self._client,
            refusal.order_id,
            reason="INVENTORY",
            restock=False,
            staff_note=refusal.note("order cancelled, not restocked"),
        )

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
