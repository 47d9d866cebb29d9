"""Cdiscount's side of the refusal policies and of cancellations from the order book.

A Cdiscount order line the ledger rejects never stands on the marketplace: the acceptance
gate refuses the whole order before it is accepted. The refusal policies therefore have
nothing to do on Cdiscount (``on_refusal`` is kept for the listing at
``GET /v1/exceptions`` with ``flag``). The Seller API offers the seller no cancellation:
an order cancelled in the order book (``orders: book``) is refused here, which the
framework turns into a dead letter and a drift alert, for a person to cancel it in the
seller's back office.
"""

from __future__ import annotations

from connectors.cdiscount.mapping import CdiscountMapping
from connectors.framework.cancellations import CancelRequest
from connectors.framework.refusals import Refusal
from connectors.framework.types import RejectedError


class CdiscountRefusals:
    def __init__(self, mapping: CdiscountMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def cancel(self, refusal: Refusal) -> None:
        return None  # the acceptance gate refused the order

    async def backorder(self, refusal: Refusal) -> None:
        return None

    async def flag(self, refusal: Refusal) -> None:
        return None


class CdiscountCanceller:
    def __init__(self, mapping: CdiscountMapping) -> None:
        self.channel = mapping.channel
        self.account = mapping.seller_id

    async def cancel_order(self, request: CancelRequest) -> str:
        raise RejectedError("Cdiscount orders are cancelled in the seller's back office")
