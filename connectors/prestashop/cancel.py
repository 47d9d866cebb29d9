"""PrestaShop side of order cancellations and of the ledger's refusals.

A state change is an ``order_histories`` record (``id_order``, ``id_order_state``), as the
back office makes it: the shop then runs its own hooks (stock put back, emails). Cancel:
``GET /api/orders/{id}`` first; already in a cancelled state is ``already``; shipped is
refused (a person decides); otherwise the first configured cancelled state id. Backorder
and flag leave a private message on the order (``messages``, ``private`` 1), written once:
the ``[stockflow line <id>]`` marker is looked up among the order's messages first.
"""

from __future__ import annotations

from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError
from connectors.prestashop.client import PrestaClient, to_xml
from connectors.prestashop.facts import shipped
from connectors.prestashop.mapping import PrestaMapping


class PrestaCanceller:
    def __init__(self, client: PrestaClient, mapping: PrestaMapping) -> None:
        self._client = client
        self._mapping = mapping
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel(self, order_id: int) -> str:
        m = self._mapping
        order = await self._client.order(order_id)
        if m.state(order.get("current_state")) == "cancelled":
            return ALREADY
        if shipped(order, m):
            raise RejectedError("order has shipped on PrestaShop: not cancelled")
        await self._client.add_order_history(order_id, min(m.states["cancelled"]))
        return CANCELLED

    async def cancel_order(self, request: CancelRequest) -> str:
        return await self.cancel(int(request.channel_order_id))


class PrestaRefusals:
    def __init__(self, client: PrestaClient, mapping: PrestaMapping) -> None:
        self._client = client
        self._canceller = PrestaCanceller(client, mapping)
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel(self, refusal: Refusal) -> None:
        await self._message(refusal, "order cancelled")
        await self._canceller.cancel(int(refusal.order_id))

    async def backorder(self, refusal: Refusal) -> None:
        await self._message(refusal, "order kept, backordered")

    async def flag(self, refusal: Refusal) -> None:
        await self._message(refusal, "order flagged for review")

    async def _message(self, refusal: Refusal, action: str) -> None:
        note = refusal.note(action)
        marker = note.split("]", 1)[0] + "]"
        body = await self._client.request(
            "GET",
            "/messages",
            params={"filter[id_order]": f"[{refusal.order_id}]", "display": "full"},
        )
        found = body.get("messages", []) if isinstance(body, dict) else []
        if any(str(m.get("message", "")).startswith(marker) for m in found):
            return
        await self._client.request(
            "POST",
            "/messages",
            xml=to_xml("message", {"id_order": refusal.order_id, "message": note, "private": 1}),
        )
