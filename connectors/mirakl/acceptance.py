"""Mirakl's side of order acceptance (``connectors.framework.acceptance``): OR21.

``accept`` answers every line of the order ``accepted: true``; ``refuse`` every line
``accepted: false``. OR21 carries no reason: Mirakl records a refused line as refused by the
shop (the operator's out-of-stock refusal), stockflow's reason stays in its own records.
Both are idempotent: the order is read first (OR11 by ``order_ids``, and again after an
``ORDER_INVALID_STATE`` answer: the operator refused it meanwhile); already past
``WAITING_ACCEPTANCE`` in the asked direction is done; in the other direction (accepting an
order the operator refused at its deadline, refusing one already accepted) is refused by
the marketplace (raised, recorded by the gate).
"""

from __future__ import annotations

from connectors.framework.acceptance import AwaitedOrder
from connectors.framework.types import RejectedError
from connectors.mirakl.client import MiraklClient, MiraklError
from connectors.mirakl.inbound import AWAITING, ENDED
from connectors.mirakl.mapping import MiraklMapping


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
        try:
            await self._answer_once(order, accepted=accepted)
        except MiraklError as exc:
            if exc.code != "ORDER_INVALID_STATE":
                raise
            # the operator moved the order between our read and OR21 (its deadline): the
            # state it is in now says whether that is already the answer asked
            await self._answer_once(order, accepted=accepted)

    async def _answer_once(self, order: AwaitedOrder, *, accepted: bool) -> None:
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
        lines = [str(line["order_line_id"]) for line in current.get("order_lines") or []]
        await self._client.answer_lines(order.order_id, dict.fromkeys(lines, accepted))
