"""Mirakl's side of order acceptance (``connectors.framework.acceptance``): OR21.

``accept`` answers every line of the order ``accepted: true``; ``refuse`` every line
``accepted: false``. OR21 carries no reason: Mirakl records a refused line as refused by the
shop (the operator's out-of-stock refusal), stockflow's reason stays in its own records.

OR21 is sent straight away with the awaited lines (no read first: OR11 is the operation
with the tightest call frequency). Two answers send us to the order (OR11 by
``order_ids``): ``ORDER_LINE_ACCEPTANCE_DECISION_MISSING`` (the order also has lines of
offers stockflow does not manage: they get the same answer) and ``ORDER_INVALID_STATE``
(answered already, or refused by the operator at its deadline). Past
``WAITING_ACCEPTANCE`` in the asked direction is done (both calls are idempotent); in the
other direction (accepting an order the operator refused, refusing one already accepted)
is refused by the marketplace: raised, recorded by the gate.
"""

from __future__ import annotations

from connectors.framework.acceptance import AwaitedOrder
from connectors.framework.types import RejectedError
from connectors.mirakl.client import MiraklClient, MiraklError
from connectors.mirakl.inbound import AWAITING, ENDED
from connectors.mirakl.mapping import MiraklMapping

READ_AGAIN = ("ORDER_INVALID_STATE", "ORDER_LINE_ACCEPTANCE_DECISION_MISSING")


class MiraklAcceptance:
    def __init__(self, client: MiraklClient, mapping: MiraklMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def accept(self, order: AwaitedOrder) -> None:
        await self._answer(order, accepted=True)

    async def refuse(self, order: AwaitedOrder, reason: str) -> None:
        await self._answer(order, accepted=False)

    async def _answer(self, order: AwaitedOrder, *, accepted: bool) -> None:
        lines = {line.line_id: accepted for line in order.lines}
        try:
            await self._client.answer_lines(order.order_id, lines)
            return
        except MiraklError as exc:
            if exc.code not in READ_AGAIN:
                raise
        current = await self._client.order(order.order_id)
        if current is None:
            raise RejectedError(f"Mirakl has no order {order.order_id}")
        state = str(current.get("order_state") or "")
        if state != AWAITING:
            if (state in ENDED) != accepted:
                return  # already as asked
            raise RejectedError(
                f"Mirakl order {order.order_id} is {state}: cannot be "
                f"{'accepted' if accepted else 'refused'} any more"
            )
        every = [str(line["order_line_id"]) for line in current.get("order_lines") or []]
        await self._client.answer_lines(order.order_id, dict.fromkeys(every, accepted))
