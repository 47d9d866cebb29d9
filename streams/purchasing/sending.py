"""Placeholder of the purchase-order sender the purchasing service calls
(``send_purchase_order``): email, EDIFACT or webhook to the supplier. The sending module
that replaces this file keeps these names; until then every send fails, not retryable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streams.kernel.settings import Settings
from streams.replenishment.model import Supplier


@dataclass(frozen=True, slots=True)
class SendReceipt:
    via: str  # email, edi, webhook
    ref: str  # message id, file name, webhook answer id


class SendError(Exception):
    """The purchase order did not reach the supplier; ``retryable`` when trying again may
    succeed (a server away), not when the order or the configuration is at fault."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable


async def send_purchase_order(
    proposal: Mapping[str, Any], supplier: Supplier, settings: Settings
) -> SendReceipt:
    raise SendError(
        f"sending purchase orders ({supplier.send_via}) is not installed in this build",
        retryable=False,
    )
