"""Magento side of the refusal policies (``connectors.framework.refusals``).

- cancel: an order comment, then ``POST /V1/orders/{id}/cancel`` (skipped when the order is
  already canceled or closed);
- backorder / flag: an order comment (not visible to the customer, not notified).

Comments are written once: the ``[stockflow line <id>]`` marker is looked up among the
order's ``status_histories`` first.
"""

from __future__ import annotations

from connectors.framework.refusals import Refusal
from connectors.magento.client import MagentoClient
from connectors.magento.mapping import MagentoMapping


class MagentoRefusals:
    def __init__(self, client: MagentoClient, mapping: MagentoMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.store

    async def cancel(self, refusal: Refusal) -> None:
        state = await self._comment(refusal, "order cancelled")
        if state not in ("canceled", "closed"):
            await self._client.request("POST", f"/V1/orders/{refusal.order_id}/cancel")

    async def backorder(self, refusal: Refusal) -> None:
        await self._comment(refusal, "order kept, backordered")

    async def flag(self, refusal: Refusal) -> None:
        await self._comment(refusal, "order flagged for review")

    async def _comment(self, refusal: Refusal, action: str) -> str:
        """Writes the comment unless present; the order's state."""
        note = refusal.note(action)
        marker = note.split("]", 1)[0] + "]"
        order = await self._client.request("GET", f"/V1/orders/{refusal.order_id}")
        histories = order.get("status_histories") or []
        if not any(str(h.get("comment", "")).startswith(marker) for h in histories):
            await self._client.request(
                "POST",
                f"/V1/orders/{refusal.order_id}/comments",
                json={
                    "statusHistory": {
                        "comment": note,
                        "is_customer_notified": 0,
                        "is_visible_on_front": 0,
                    }
                },
            )
        return str(order.get("state") or "")
