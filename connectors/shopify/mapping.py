"""Shopify ids to stockflow SKUs and locations, from configuration.

Configuration shape (YAML or JSON)::

    {"channel": "shopify", "shop": "demo.myshopify.com", "push_location_id": 1,
     "locations": {"1": "paris"},
     "items": [{"sku": "chair", "inventory_item_id": 101, "variant_id": 10,
                "product_id": 1}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ShopifyItem:
    sku: str
    inventory_item_id: int
    variant_id: int | None = None
    product_id: int | None = None  # needed to push prices (productVariantsBulkUpdate)


@dataclass(frozen=True)
class ShopifyMapping:
    shop: str
    push_location_id: int
    items: tuple[ShopifyItem, ...] = ()
    locations: Mapping[int, str] = field(default_factory=dict)
    channel: str = "shopify"
    _by_sku: dict[str, ShopifyItem] = field(init=False, repr=False, compare=False)
    _by_item: dict[int, ShopifyItem] = field(init=False, repr=False, compare=False)
    _by_variant: dict[int, ShopifyItem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_sku", {i.sku: i for i in self.items})
        object.__setattr__(self, "_by_item", {i.inventory_item_id: i for i in self.items})
        object.__setattr__(
            self, "_by_variant", {i.variant_id: i for i in self.items if i.variant_id is not None}
        )

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> ShopifyMapping:
        return cls(
            shop=str(data["shop"]),
            push_location_id=int(data["push_location_id"]),
            items=tuple(
                ShopifyItem(
                    sku=str(i["sku"]),
                    inventory_item_id=int(i["inventory_item_id"]),
                    variant_id=None if i.get("variant_id") is None else int(i["variant_id"]),
                    product_id=None if i.get("product_id") is None else int(i["product_id"]),
                )
                for i in data.get("items", [])
            ),
            locations={int(k): str(v) for k, v in (data.get("locations") or {}).items()},
            channel=str(data.get("channel", "shopify")),
        )

    def item_for_sku(self, sku: str) -> ShopifyItem | None:
        return self._by_sku.get(sku)

    def sku_for_item(self, inventory_item_id: int) -> str | None:
        item = self._by_item.get(inventory_item_id)
        return None if item is None else item.sku

    def sku_for_line(self, line: Mapping[str, Any]) -> str | None:
        """The line's own ``sku`` when set, else the SKU mapped to its ``variant_id``."""
        sku = line.get("sku")
        if sku:
            return str(sku)
        variant = line.get("variant_id")
        item = None if variant is None else self._by_variant.get(int(variant))
        return None if item is None else item.sku

    def location(self, location_id: object) -> str | None:
        if location_id is None:
            return None
        return self.locations.get(int(str(location_id)), str(location_id))
