"""WooCommerce product and variation ids to stockflow SKUs, from configuration.

Configuration shape::

    {"channel": "woocommerce", "site": "https://shop.example/", "refunds_restock": false,
     "products": [{"sku": "chair", "product_id": 1},
                  {"sku": "chair-red", "product_id": 2, "variation_id": 21}]}

WooCommerce has no locations: every event is for the channel's pool (location null).
``refunds_restock: true`` counts every refunded unit of a completed order as restocked;
by default only the units WooCommerce says it restocked (the order line's
``_restock_refunded_items``) come back sellable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class WooProduct:
    sku: str
    product_id: int
    variation_id: int = 0

    @property
    def write_id(self) -> int:
        """The id a stock write addresses: the variation's own id, or the product's."""
        return self.variation_id or self.product_id

    @property
    def batch_path(self) -> str:
        """The batch endpoint that updates this product (a variation's is under its parent)."""
        if self.variation_id:
            return f"/products/{self.product_id}/variations/batch"
        return "/products/batch"


@dataclass(frozen=True)
class WooMapping:
    site: str
    products: tuple[WooProduct, ...] = ()
    refunds_restock: bool = False
    channel: str = "woocommerce"
    _by_sku: dict[str, WooProduct] = field(init=False, repr=False, compare=False)
    _by_id: dict[int, WooProduct] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_sku", {p.sku: p for p in self.products})
        object.__setattr__(self, "_by_id", {p.write_id: p for p in self.products})

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> WooMapping:
        return cls(
            site=str(data["site"]),
            products=tuple(
                WooProduct(
                    sku=str(p["sku"]),
                    product_id=int(p["product_id"]),
                    variation_id=int(p.get("variation_id") or 0),
                )
                for p in data.get("products", [])
            ),
            refunds_restock=bool(data.get("refunds_restock", False)),
            channel=str(data.get("channel", "woocommerce")),
        )

    def product_for_sku(self, sku: str) -> WooProduct | None:
        return self._by_sku.get(sku)

    def sku_for_id(self, write_id: int) -> str | None:
        product = self._by_id.get(write_id)
        return None if product is None else product.sku

    def sku_for_line(self, line: Mapping[str, Any]) -> str | None:
        """The line's ``sku`` when set, else the SKU of ``variation_id`` or ``product_id``."""
        sku = line.get("sku")
        if sku:
            return str(sku)
        return self.sku_for_id(
            int(line.get("variation_id") or 0) or int(line.get("product_id") or 0)
        )
