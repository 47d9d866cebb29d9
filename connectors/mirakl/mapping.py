"""One Mirakl operator's shop: its offers (SKUs), how stock is written, from configuration.

Configuration shape::

    {"channel": "mirakl-leroymerlin", "operator": "leroymerlin", "shop": "2001",
     "shop_id": 2001,                       # optional: only when the key reaches several shops
     "write": "of24",                       # of24 (JSON offers) | of01 (CSV file import)
     "import": {"poll_s": 60, "wait_s": 600},
     "offers": [{"sku": "chair", "price": "49.00", "state_code": "11",
                 "product_id": "3600000000017", "product_id_type": "EAN"}]}

The offer's ``shop_sku`` is the stockflow SKU. Mirakl's ``update`` of an offer rewrites it
whole, so the price, state and product reference configured here travel with every
quantity (they are the offer's own; prices are not synced here). ``import.poll_s`` is how
often an import's status (OF02) is read, ``wait_s`` how long before the lines still
pending are retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WRITES = ("of24", "of01")


@dataclass(frozen=True)
class Offer:
    sku: str
    price: str
    state_code: str = "11"  # "new" on most operators
    product_id: str | None = None
    product_id_type: str = "SHOP_SKU"


@dataclass(frozen=True)
class MiraklMapping:
    operator: str
    shop: str
    offers: tuple[Offer, ...] = ()
    shop_id: int | None = None
    write: str = "of24"
    import_poll_s: float = 60.0
    import_wait_s: float = 600.0
    channel: str = "mirakl"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> MiraklMapping:
        write = str(data.get("write", "of24"))
        if write not in WRITES:
            raise ValueError(f"write {write!r}: use of24 (JSON offers) or of01 (CSV import)")
        imports = data.get("import") or {}
        if not isinstance(imports, Mapping) or set(imports) - {"poll_s", "wait_s"}:
            raise ValueError("import must be a mapping {poll_s, wait_s}")
        poll_s, wait_s = float(imports.get("poll_s", 60)), float(imports.get("wait_s", 600))
        if poll_s <= 0 or wait_s <= 0:
            raise ValueError("import.poll_s and import.wait_s must be positive")
        offers = []
        for raw in data.get("offers") or []:
            unknown = set(raw) - {"sku", "price", "state_code", "product_id", "product_id_type"}
            if unknown:
                raise ValueError(f"unknown offer keys {sorted(unknown)}")
            offers.append(
                Offer(
                    sku=str(raw["sku"]),
                    price=str(raw["price"]),
                    state_code=str(raw.get("state_code", "11")),
                    product_id=None if raw.get("product_id") is None else str(raw["product_id"]),
                    product_id_type=str(raw.get("product_id_type", "SHOP_SKU")),
                )
            )
        shop_id = data.get("shop_id")
        return cls(
            operator=str(data["operator"]),
            shop=str(data["shop"]),
            offers=tuple(offers),
            shop_id=None if shop_id is None else int(shop_id),
            write=write,
            import_poll_s=poll_s,
            import_wait_s=wait_s,
            channel=str(data.get("channel", "mirakl")),
        )

    @property
    def skus(self) -> tuple[str, ...]:
        return tuple(o.sku for o in self.offers)

    def offer(self, sku: object) -> Offer | None:
        return next((o for o in self.offers if o.sku == sku), None)

    def knows(self, sku: object) -> bool:
        return self.offer(sku) is not None
