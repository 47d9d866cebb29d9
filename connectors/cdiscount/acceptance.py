"""Cdiscount's side of order acceptance (``connectors.framework.acceptance``).

``POST /orders/{id}/approval-status`` with ``{"approvalStatus": "Accepted"}``, or
``{"approvalStatus": "Refused", "reason": <refusal_reason>}`` (the whole order: every line
is refused with the out-of-stock reason). Both are idempotent here: when Octopia refuses
the call (4xx), the order is read back and the call counts as done if the order already is
where it was sent (accepted and later; refused or cancelled); otherwise the error stands
(e.g. accepting an order Cdiscount cancelled when its acceptance window closed).
"""

from __future__ import annotations

from connectors.cdiscount.client import CdiscountClient, OctopiaError
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.framework.acceptance import AwaitedOrder

ACCEPTED = frozenset({"Accepted", "InPreparation", "Shipped", "Delivered"})
REFUSED = frozenset({"Refused", "Cancelled"})


class CdiscountAcceptance:
    def __init__(self, client: CdiscountClient, mapping: CdiscountMapping) -> None:
        self._client = client
        self._reason = mapping.refusal_reason
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def accept(self, order: AwaitedOrder) -> None:
        await self._decide(order.order_id, "Accepted", None, ACCEPTED)

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        await self._decide(order.order_id, "Refused", self._reason, REFUSED)

    async def _decide(
        self, order_id: str, status: str, reason: str | None, done: frozenset[str]
    ) -> None:
        try:
            await self._client.set_approval(order_id, status, reason)
        except OctopiaError as exc:
            current = await self._client.order(order_id)
            if current.get("status") in done:
                return
            raise OctopiaError(
                exc.status, f"{exc.message} (order {order_id} is {current.get('status')!r})"
            ) from None
