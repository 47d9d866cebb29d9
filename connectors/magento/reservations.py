"""Magento's own open reservations per SKU, so the source item gets the *physical* figure.

MSI computes salable qty = source quantity - its reservations (orders placed, not yet
shipped or cancelled). The ledger's channel figure already nets those orders out, so
writing it as the source quantity would subtract them twice (channel-contracts §3.3). The
pusher writes ``figure + open(sku)`` instead: Magento then shows exactly the figure.

The open units of an order item are ``qty_ordered - qty_shipped - qty_canceled`` less the
units refunded before they shipped; an order ``complete``, ``canceled`` or ``closed`` holds
none (its reservations are compensated). Every polled order updates this; the first use
loads every open order once (``state`` in the open states), so a restart starts right.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from connectors.magento.client import MagentoClient

OPEN_STATES = ("new", "pending_payment", "payment_review", "processing", "holded")


def open_units(order: Mapping[str, Any], known: frozenset[str]) -> dict[str, int]:
    if order.get("state") not in OPEN_STATES:
        return {}
    units: dict[str, int] = {}
    for item in order.get("items") or []:
        sku = item.get("sku")
        if item.get("product_type") == "configurable" or sku not in known:
            continue
        ordered = float(item.get("qty_ordered") or 0)
        shipped = float(item.get("qty_shipped") or 0)
        cancelled = float(item.get("qty_canceled") or 0)
        refunded_unshipped = max(0.0, float(item.get("qty_refunded") or 0) - shipped)
        left = int(ordered - shipped - cancelled - refunded_unshipped)
        if left > 0:
            units[str(sku)] = units.get(str(sku), 0) + left
    return units


class Reservations:
    def __init__(self, skus: frozenset[str]) -> None:
        self._skus = skus
        self._by_order: dict[int, dict[str, int]] = {}
        self._loaded = False
        self._lock = asyncio.Lock()

    def update(self, order: Mapping[str, Any]) -> None:
        units = open_units(order, self._skus)
        oid = int(order["entity_id"])
        if units:
            self._by_order[oid] = units
        else:
            self._by_order.pop(oid, None)

    def open(self, sku: str) -> int:
        return sum(units.get(sku, 0) for units in self._by_order.values())

    async def ensure_loaded(self, client: MagentoClient) -> None:
        """Every open order, read once (raises the client's errors; tried again next use)."""
        if self._loaded:
            return
        async with self._lock:
            if self._loaded:
                return
            orders = await client.search("/V1/orders", [("state", "in", ",".join(OPEN_STATES))])
            for order in orders:
                if int(order["entity_id"]) not in self._by_order:
                    self.update(order)
            self._loaded = True
