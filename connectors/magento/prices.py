"""Base prices for Magento: ``POST /V1/products/base-prices`` and its read-back
``POST /V1/products/base-prices-information``, in the price writer contract
(:mod:`connectors.framework.prices`).

Magento answers 200 with the items it refused (``{message, parameters}`` naming the SKU);
the other items of the request are saved. Prices are written in the global scope
(``store_id`` 0), in the website's base currency: the channel's price rules convert before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.framework.prices import ItemResult, PriceItem, from_decimal
from connectors.framework.types import Outcome

__all__ = ["ItemResult", "PriceItem", "price_body", "price_results", "prices_read"]


def price_body(items: Sequence[PriceItem]) -> dict[str, Any]:
    return {"prices": [{"sku": i.sku, "price": float(i.amount), "store_id": 0} for i in items]}


def price_results(items: Sequence[PriceItem], answer: Any, render: Any) -> list[ItemResult]:
    """One result per item from Magento's list of refused items."""
    refused: dict[str, str] = {}
    for problem in answer if isinstance(answer, list) else []:
        params = problem.get("parameters") if isinstance(problem, dict) else None
        values = list(params.values()) if isinstance(params, dict) else list(params or [])
        for item in items:
            if item.sku in (str(v) for v in values):
                refused.setdefault(item.sku, render(problem))
    return [
        ItemResult(i.sku, Outcome.REFUSED, refused[i.sku])
        if i.sku in refused
        else ItemResult(i.sku, Outcome.OK)
        for i in items
    ]


def prices_read(answer: Any, currency: str) -> dict[str, int]:
    """``base-prices-information`` rows of the global scope → minor units."""
    rows = answer if isinstance(answer, list) else []
    return {
        str(row["sku"]): from_decimal(row["price"], currency)
        for row in rows
        if isinstance(row, dict) and int(row.get("store_id") or 0) == 0
    }
