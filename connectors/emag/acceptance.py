"""eMAG's answers to a new order (status 1), for the acceptance gate, and its cancellations.

- accept: ``order/acknowledge/{id}`` (new 1 → in progress 2). An order already past new is
  taken as accepted (acknowledging twice is a no-op for us); one eMAG cancelled meanwhile
  cannot be accepted (raised: recorded as ``accept_failed``).
- refuse: the order is read (``order/read`` by id) and saved back whole (``order/save``
  takes every field as read) with status 0 and ``cancellation_reason`` 33, eMAG's reason
  "the product is no longer available in the seller's stock". Already canceled → done.

The same cancellation serves the refusal policy ``cancel`` (a rejected line of an order
already accepted) and an order cancelled in the order book. ``backorder`` and ``flag`` have
nothing to write on eMAG (no private notes or tags through the API): they are logged and
listed at ``GET /v1/exceptions`` by the framework.
"""

from __future__ import annotations

import logging

from connectors.emag.client import EmagClient
from connectors.emag.inbound import CANCELED, NEW
from connectors.emag.mapping import EmagMapping
from connectors.framework.acceptance import AwaitedOrder
from connectors.framework.cancellations import ALREADY, CANCELLED, CancelRequest
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError

log = logging.getLogger(__name__)

OUT_OF_STOCK = 33  # "The product is no longer available in the stock of the partner"


class OrderGoneError(RejectedError):
    """eMAG does not know the order (another account, or a mistyped id)."""


class EmagOrders:
    """Acceptance actions, refusal actions and canceller of one eMAG channel."""

    def __init__(self, client: EmagClient, mapping: EmagMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.account

    async def _status(self, order_id: str) -> tuple[int, dict[str, object]]:
        order = await self._client.order(int(order_id))
        if order is None:
            raise OrderGoneError(f"eMAG knows no order {order_id} on this account")
        return int(str(order.get("status"))), order

    # ---- AcceptanceActions ------------------------------------------------------------
    async def accept(self, order: AwaitedOrder) -> None:
        status, _ = await self._status(order.order_id)
        if status == CANCELED:
            raise RejectedError(f"eMAG order {order.order_id} was canceled before it was accepted")
        if status == NEW:
            await self._client.acknowledge(int(order.order_id))

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        await self._cancel(order.order_id, reason)

    # ---- RefusalActions ---------------------------------------------------------------
    async def cancel(self, refusal: Refusal) -> None:
        await self._cancel(refusal.order_id, refusal.reason)

    async def backorder(self, refusal: Refusal) -> None:
        log.info(
            "eMAG order %s line %s: backordered (nothing to write on eMAG)",
            refusal.order_id,
            refusal.line_id,
        )

    async def flag(self, refusal: Refusal) -> None:
        log.info(
            "eMAG order %s line %s: flagged (nothing to write on eMAG)",
            refusal.order_id,
            refusal.line_id,
        )

    # ---- ChannelCanceller -------------------------------------------------------------
    async def cancel_order(self, request: CancelRequest) -> str:
        return CANCELLED if await self._cancel(request.channel_order_id, "cancelled") else ALREADY

    async def _cancel(self, order_id: str, why: str) -> bool:
        """True when this call cancelled it, False when eMAG had it canceled already."""
        status, order = await self._status(order_id)
        if status == CANCELED:
            return False
        await self._client.save_order(
            {**order, "status": CANCELED, "cancellation_reason": OUT_OF_STOCK}
        )
        log.info("eMAG order %s canceled (reason %d, %s)", order_id, OUT_OF_STOCK, why)
        return True
