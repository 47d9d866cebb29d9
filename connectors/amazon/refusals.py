"""Amazon side of the refusal policies and of cancellations from the order book.

Amazon asks no acceptance of the seller, and the Selling Partner API has no call that
cancels a merchant-fulfilled order outright (the seller cancels it in Seller Central, or it
is cancelled by confirming no shipment). So:

- ``flag`` (the default for Amazon): nothing to write on Amazon; the refused line is listed
  at ``GET /v1/exceptions`` for a person;
- ``backorder``: nothing to write either (the order waits on Amazon as it is);
- ``cancel`` and a cancellation from the order book: refused with a message saying to cancel
  in Seller Central (recorded by the framework as an exception / a dead letter).
"""

from __future__ import annotations

from connectors.amazon.mapping import AmazonMapping
from connectors.framework.cancellations import CancelRequest
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError

SELLER_CENTRAL = (
    "the Selling Partner API cannot cancel a merchant-fulfilled order: cancel it in Seller Central"
)


class AmazonRefusals:
    def __init__(self, mapping: AmazonMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def cancel(self, refusal: Refusal) -> None:
        raise RejectedError(SELLER_CENTRAL)

    async def backorder(self, refusal: Refusal) -> None:
        return None

    async def flag(self, refusal: Refusal) -> None:
        return None

    async def cancel_order(self, request: CancelRequest) -> str:
        raise RejectedError(SELLER_CENTRAL)
