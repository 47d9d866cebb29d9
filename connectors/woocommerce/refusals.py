"""WooCommerce side of the refusal policies (``connectors.framework.refusals``), REST v3.

- cancel: a private order note, then ``PUT /orders/{id}`` ``{"status": "cancelled"}``
  (skipped when the order is already cancelled). WooCommerce puts the units of a cancelled
  order back in its own stock count; the next level push sets the ledger's figure anyway.
- backorder: a private note and the order meta ``_stockflow_backordered_<line>``;
- flag: a private note and the order meta ``_stockflow_exception_<line>``.

Notes are written once: the note's ``[stockflow line <id>]`` marker is looked up among the
order's notes first. Meta is updated by key, so writing it twice keeps one.
"""

from __future__ import annotations

from typing import Any

from connectors.framework.refusals import Refusal
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.mapping import WooMapping


class WooRefusals:
    def __init__(self, client: WooClient, mapping: WooMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.site

    async def cancel(self, refusal: Refusal) -> None:
        await self._note(refusal, "order cancelled")
        order, _ = await self._client.request("GET", f"/orders/{refusal.order_id}")
        if order.get("status") != "cancelled":
            await self._put(refusal, {"status": "cancelled"})

    async def backorder(self, refusal: Refusal) -> None:
        await self._note(refusal, "order kept, backordered")
        await self._meta(refusal, f"_stockflow_backordered_{refusal.line_id}")

    async def flag(self, refusal: Refusal) -> None:
        await self._note(refusal, "order flagged for review")
        await self._meta(refusal, f"_stockflow_exception_{refusal.line_id}")

    async def _note(self, refusal: Refusal, action: str) -> None:
        note = refusal.note(action)
        marker = note.split("]", 1)[0] + "]"
        notes, _ = await self._client.request("GET", f"/orders/{refusal.order_id}/notes")
        if any(str(n.get("note", "")).startswith(marker) for n in notes):
            return
        await self._client.request(
            "POST",
            f"/orders/{refusal.order_id}/notes",
            json={"note": note, "customer_note": False},
        )

    async def _meta(self, refusal: Refusal, key: str) -> None:
        value = f"{refusal.qty} x {refusal.sku}: {refusal.reason}"
        await self._put(refusal, {"meta_data": [{"key": key, "value": value}]})

    async def _put(self, refusal: Refusal, body: dict[str, Any]) -> None:
        await self._client.request("PUT", f"/orders/{refusal.order_id}", json=body)
