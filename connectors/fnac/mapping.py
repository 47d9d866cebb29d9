"""Fnac Darty offers and stockflow SKUs, from configuration.

Configuration shape::

    {"channel": "fnac", "shop": "my-fnac-shop", "product_state": 11,
     "acceptance_hours": 48, "batch": {"poll_s": 2.0, "wait_s": 60.0},
     "products": [{"sku": "chair", "ean": "3700000000017"}, {"sku": "table"}]}

Fnac names an offer by the seller's reference (``offer_reference type="SellerSku"``,
``offer_seller_id`` in orders), so a stockflow SKU is the Fnac seller SKU. ``ean`` is sent as
``product_reference`` (it lets Fnac create an offer it does not know; without it a quantity
for an unknown offer is refused in the batch report). ``product_state`` is the offer's
condition (11: new). ``shop`` is the account part of the event ids. ``acceptance_hours`` is
how long Fnac waits for the seller to accept a new order (the gate refuses before then);
``batch`` paces the ``batch_status`` polling of each stock write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BatchOptions:
    poll_s: float = 2.0
    wait_s: float = 60.0


@dataclass(frozen=True)
class FnacMapping:
    shop: str
    products: Mapping[str, str | None] = field(default_factory=dict)  # SKU → EAN (or None)
    product_state: int = 11
    acceptance_hours: float = 48.0
    batch: BatchOptions = BatchOptions()
    date_type: str = "Modified"  # orders_query date filter polled
    channel: str = "fnac"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> FnacMapping:
        batch = data.get("batch") or {}
        if not isinstance(batch, Mapping):
            raise TypeError("batch must be a mapping {poll_s, wait_s}")
        unknown = set(batch) - {"poll_s", "wait_s"}
        if unknown:
            raise ValueError(f"unknown batch keys {sorted(unknown)}; use poll_s, wait_s")
        options = BatchOptions(
            poll_s=float(batch.get("poll_s", 2.0)), wait_s=float(batch.get("wait_s", 60.0))
        )
        if options.poll_s <= 0 or options.wait_s <= 0:
            raise ValueError("batch.poll_s and batch.wait_s must be positive")
        products: dict[str, str | None] = {}
        for p in data.get("products") or []:
            if not isinstance(p, Mapping):
                raise TypeError("products must list {sku, ean}")
            ean = p.get("ean")
            products[str(p["sku"])] = None if ean in (None, "") else str(ean)
        hours = float(data.get("acceptance_hours", 48.0))
        if hours <= 0:
            raise ValueError("acceptance_hours must be positive")
        return cls(
            shop=str(data["shop"]),
            products=products,
            product_state=int(data.get("product_state", 11)),
            acceptance_hours=hours,
            batch=options,
            date_type=str(data.get("date_type", "Modified")),
            channel=str(data.get("channel", "fnac")),
        )

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(self.products)

    def knows(self, sku: object) -> bool:
        return isinstance(sku, str) and sku in self.products
