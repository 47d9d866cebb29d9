"""PrestaShop products and combinations to stockflow SKUs, and its order state ids.

Configuration shape::

    {"channel": "prestashop", "shop": "https://shop.example/", "shop_id": 1,
     "timezone": "UTC", "reserve_unpaid": true, "currency": "EUR", "stock_write": "put",
     "states": {"paid": [2, 3, 9, 11], "shipped": [4, 5], "cancelled": [6, 8],
                "refunded": [7]},
     "products": [{"sku": "chair", "product_id": 1},
                  {"sku": "chair-red", "product_id": 2, "combination_id": 21}]}

State ids differ per shop (merchants add their own); the defaults are a fresh install's.
An order reserves its units from the moment it exists (``reserve_unpaid: true``, as the
shop's own stock does) or only once its state is paid, shipped or refunded. ``timezone``
is the shop's (``PS_TIMEZONE``): the webservice gives and filters times in it, without an
offset. ``stock_write: patch`` (PrestaShop 8 and 9) sends only the row's id and quantity
instead of the full row. PrestaShop has no stock locations: every event is for the channel's pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_STATES: dict[str, frozenset[int]] = {
    "paid": frozenset({2, 3, 9, 11}),
    "shipped": frozenset({4, 5}),
    "cancelled": frozenset({6, 8}),
    "refunded": frozenset({7}),
}
STATE_KINDS = tuple(DEFAULT_STATES)


@dataclass(frozen=True, slots=True)
class PrestaProduct:
    sku: str
    product_id: int
    combination_id: int = 0  # id_product_attribute; 0 for a simple product

    @property
    def key(self) -> tuple[int, int]:
        return (self.product_id, self.combination_id)


@dataclass(frozen=True)
class PrestaMapping:
    shop: str
    products: tuple[PrestaProduct, ...] = ()
    states: Mapping[str, frozenset[int]] = field(default_factory=lambda: dict(DEFAULT_STATES))
    shop_id: int = 1
    timezone: str = "UTC"
    reserve_unpaid: bool = True
    currency: str = "EUR"
    stock_write: str = "put"  # put: the full row (every version); patch: id + quantity (8, 9)
    channel: str = "prestashop"
    _by_sku: dict[str, PrestaProduct] = field(init=False, repr=False, compare=False)
    _by_key: dict[tuple[int, int], PrestaProduct] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_sku", {p.sku: p for p in self.products})
        object.__setattr__(self, "_by_key", {p.key: p for p in self.products})
        if self.stock_write not in ("put", "patch"):
            raise ValueError(f"stock_write {self.stock_write!r}: use put or patch (8 and 9)")
        try:  # an unknown zone fails at start, not at the first order
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {self.timezone!r} unknown (use e.g. Europe/Paris)"
            ) from None

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> PrestaMapping:
        states_raw = data.get("states") or {}
        unknown = set(states_raw) - set(STATE_KINDS)
        if unknown:
            raise ValueError(f"states: unknown {sorted(unknown)}; use {', '.join(STATE_KINDS)}")
        states = {
            kind: frozenset(int(i) for i in states_raw.get(kind, DEFAULT_STATES[kind]))
            for kind in STATE_KINDS
        }
        return cls(
            shop=str(data["shop"]),
            products=tuple(
                PrestaProduct(
                    sku=str(p["sku"]),
                    product_id=int(p["product_id"]),
                    combination_id=int(p.get("combination_id") or 0),
                )
                for p in data.get("products", [])
            ),
            states=states,
            shop_id=int(data.get("shop_id", 1)),
            timezone=str(data.get("timezone", "UTC")),
            reserve_unpaid=bool(data.get("reserve_unpaid", True)),
            currency=str(data.get("currency", "EUR")).upper(),
            stock_write=str(data.get("stock_write", "put")),
            channel=str(data.get("channel", "prestashop")),
        )

    def product_for_sku(self, sku: str) -> PrestaProduct | None:
        return self._by_sku.get(sku)

    def sku_for(self, product_id: object, combination_id: object) -> str | None:
        product = self._by_key.get((int(str(product_id or 0)), int(str(combination_id or 0))))
        return None if product is None else product.sku

    def state(self, state_id: object) -> str | None:
        """``paid``, ``shipped``, ``cancelled``, ``refunded`` or None (any other state)."""
        sid = int(str(state_id or 0))
        return next((kind for kind in STATE_KINDS if sid in self.states[kind]), None)
