"""Base prices for Magento (``POST /V1/products/base-prices``).

``PriceItem`` and ``ItemResult`` follow the price writer protocol
(``async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]``); the writer
registry of the price propagation calls :meth:`MagentoClient.set_prices` with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.framework.orders import _EXPONENT


@dataclass(frozen=True, slots=True)
class PriceItem:
    sku: str
    amount_minor: int  # in minor units of ``currency`` (1999 = 19.99 EUR)
    currency: str
    store_id: int = 0  # 0 = the global (default) scope


@dataclass(frozen=True, slots=True)
class ItemResult:
    sku: str
    ok: bool
    error: str = ""


def major_units(amount_minor: int, currency: str) -> float:
    exponent = _EXPONENT.get(currency.upper(), 2)
    return float(Decimal(amount_minor).scaleb(-exponent))


def price_body(items: Sequence[PriceItem]) -> dict[str, Any]:
    return {
        "prices": [
            {
                "sku": i.sku,
                "price": major_units(i.amount_minor, i.currency),
                "store_id": i.store_id,
            }
            for i in items
        ]
    }
