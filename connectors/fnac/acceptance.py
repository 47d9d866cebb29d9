"""Fnac Darty's answers to an order awaiting acceptance (``orders_update`` ``accept_order``).

All or nothing: every ``order_detail`` of the order is answered ``Accepted``, or every one
``Refused`` (Fnac has no reason code on a refusal; the stock shortfall is the reason). The
order is read first (``orders_query`` on its ``order_fnac_id``), which gives every detail id
(details of SKUs stockflow does not map included) and makes both answers idempotent: an
order already accepted (or further) is done for ``accept``, one already refused or
cancelled is done for ``refuse``; the other way round is an error (Fnac took the other
answer, or cancelled the order when its window closed).
"""

from __future__ import annotations

from connectors.fnac.client import DetailAction, FnacClient, FnacError
from connectors.fnac.dialog import ApiError, text
from connectors.fnac.mapping import FnacMapping
from connectors.framework.acceptance import AwaitedOrder

AFTER_ACCEPT = frozenset({"Accepted", "ToShip", "Shipped", "NotReceived", "Received"})
AFTER_REFUSE = frozenset({"Refused", "Cancelled"})


class AnswerRefusedError(Exception):
    """Fnac holds the order in a state the answer cannot reach (already decided otherwise)."""


class FnacAcceptance:
    def __init__(self, client: FnacClient, mapping: FnacMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def accept(self, order: AwaitedOrder) -> None:
        await self._answer(order, "Accepted", AFTER_ACCEPT, AFTER_REFUSE)

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        await self._answer(order, "Refused", AFTER_REFUSE, AFTER_ACCEPT)

    async def _answer(
        self, order: AwaitedOrder, action: str, done: frozenset[str], other: frozenset[str]
    ) -> None:
        current = await self._client.order(order.order_id)
        if current is None:
            raise AnswerRefusedError(f"Fnac does not know order {order.order_id}")
        state = text(current, "state")
        if state in done:
            return
        if state in other:
            raise AnswerRefusedError(f"order {order.order_id} is already {state} on Fnac")
        details = [text(d, "order_detail_id") for d in current.findall("order_detail")]
        if not all(details):
            raise FnacError("orders_query", "ERROR", [ApiError("", "ERROR", "detail without id")])
        await self._client.orders_update(
            order.order_id, "accept_order", [DetailAction(d, action) for d in details]
        )
