"""eMAG offers to stockflow SKUs, for one seller account on one platform (RO, BG or HU).

Configuration shape::

    {"account": "ro", "timezone": "Europe/Bucharest", "warehouse_id": 1,
     "accept_within_s": 0, "products": [{"sku": "chair", "offer_id": 1001}]}

``offer_id`` is the seller's own offer id on eMAG (``id`` of ``product_offer/save``,
1..16,777,215; order lines name it as ``product_id``). eMAG gives and filters times in the
platform's local time without an offset, hence ``timezone`` (Europe/Bucharest on RO,
Europe/Sofia on BG, Europe/Budapest on HU). ``accept_within_s``: how long after an order is
placed it must be answered (0: eMAG states no deadline; the gate then waits for the ledger).
Each platform is its own channel (``emag-ro``, ``emag-bg``...), with its own host and
credentials; every event is for the channel's pool (eMAG has no stock locations of ours).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_OFFER_ID = 16_777_215


@dataclass(frozen=True, slots=True)
class EmagProduct:
    sku: str
    offer_id: int


@dataclass(frozen=True)
class EmagMapping:
    account: str
    products: tuple[EmagProduct, ...] = ()
    timezone: str = "Europe/Bucharest"
    warehouse_id: int = 1
    accept_within_s: float = 0.0
    channel: str = "emag"
    _by_sku: dict[str, EmagProduct] = field(init=False, repr=False, compare=False)
    _by_offer: dict[int, EmagProduct] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_sku", {p.sku: p for p in self.products})
        object.__setattr__(self, "_by_offer", {p.offer_id: p for p in self.products})
        for p in self.products:
            if not 1 <= p.offer_id <= MAX_OFFER_ID:
                raise ValueError(f"offer_id {p.offer_id} of {p.sku}: eMAG takes 1..{MAX_OFFER_ID}")
        if len(self._by_offer) != len(self.products):
            raise ValueError("an offer_id is mapped to two SKUs")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} unknown (use e.g. Europe/Bucharest)"
            ) from None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> EmagMapping:
        return cls(
            account=str(data["account"]),
            products=tuple(
                EmagProduct(sku=str(p["sku"]), offer_id=int(p["offer_id"]))
                for p in data.get("products", [])
            ),
            timezone=str(data.get("timezone", "Europe/Bucharest")),
            warehouse_id=int(data.get("warehouse_id", 1)),
            accept_within_s=float(data.get("accept_within_s", 0)),
            channel=str(data.get("channel", "emag")),
        )

    @property
    def skus(self) -> list[str]:
        return [p.sku for p in self.products]

    def offer_for_sku(self, sku: str) -> int | None:
        product = self._by_sku.get(sku)
        return None if product is None else product.offer_id

    def sku_for(self, offer_id: object) -> str | None:
        try:
            product = self._by_offer.get(int(str(offer_id)))
        except ValueError:
            return None
        return None if product is None else product.sku
