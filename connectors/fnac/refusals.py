"""Fnac Darty side of the refusal policies and of the order book's cancellations.

An order waiting for the seller is answered by the acceptance gate, so the refusal policies
only meet orders already accepted (by a person, in the back office) whose line the ledger
rejected. The seller API's order actions (``accept_order``, ``confirm_to_send``,
``update`` and their ``_all`` forms) include no note and no cancellation of an accepted
order (Fnac's customer service cancels), so every policy is a flag: the line is listed at
``GET /v1/exceptions`` for a person to handle in the Fnac back office. Cancelling from the
order book is refused for the same reason.
"""

from __future__ import annotations

from connectors.fnac.mapping import FnacMapping
from connectors.framework.cancellations import CancelRequest
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError


class FnacRefusals:
    def __init__(self, mapping: FnacMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel(self, refusal: Refusal) -> None:
        raise RejectedError(
            "Fnac's seller API cannot cancel an accepted order: handle it in the back office"
        )

    async def backorder(self, refusal: Refusal) -> None:
        return None  # nothing to mark on Fnac; the exceptions list shows the line

    async def flag(self, refusal: Refusal) -> None:
        return None  # listed at GET /v1/exceptions by the refusal handler


class FnacCanceller:
    def __init__(self, mapping: FnacMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.shop

    async def cancel_order(self, request: CancelRequest) -> str:
        raise RejectedError(
            "Fnac's seller API cannot cancel an accepted order: handle it in the back office"
        )
