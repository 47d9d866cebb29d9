"""PrestaShop out: absolute quantities on ``stock_availables``, verified by reading back.

The row of a product (and combination, ``id_product_attribute`` 0 for a simple product)
in the configured shop is found once with
``GET /api/stock_availables?filter[id_product]=[P]&filter[id_product_attribute]=[A]`` and
kept (id and fields). A write is ``PUT /api/stock_availables/{id}`` with the full XML row
(the webservice resets a field left out), or with ``stock_write: patch`` (8 and 9)
``PATCH`` of the id and quantity only; one row per request: there is no batch. The
webservice has no compare-and-set and no idempotency key, so every write is read back
(``GET /api/stock_availables/{id}``): a quantity other than the one written (a module, an
ERP or the back office wrote in between) is pushed again through the engine's retries and
counted as drift (``read_after_write``); reconciliation (``read``) covers the rest.

A row whose quantity follows advanced stock management (``depends_on_stock`` 1) cannot be
written: refused (drift), as is a SKU without a row. A 404 on a kept row id (the row was
recreated) forgets it and retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.framework import metrics
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    ThrottledError,
    UnavailableError,
)
from connectors.prestashop.client import PrestaClient, PrestaError
from connectors.prestashop.mapping import PrestaMapping, PrestaProduct


class NoRowError(Exception):
    """The shop has no ``stock_available`` row for the product in the configured shop."""


class PrestaPusher:
    def __init__(
        self, client: PrestaClient, mapping: PrestaMapping, *, max_batch: int = 50
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max_batch
        self.rows: dict[tuple[int, int], dict[str, Any]] = {}  # (product, combination) → row

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes without compare-and-set: nothing to remember

    async def _row(self, product: PrestaProduct) -> dict[str, Any]:
        row = self.rows.get(product.key)
        if row is not None:
            return row
        found = await self.client.stock_availables(
            id_product=str(product.product_id), id_product_attribute=str(product.combination_id)
        )
        ours = [r for r in found if int(str(r.get("id_shop") or 0)) == self.mapping.shop_id]
        if not ours:
            raise NoRowError(
                f"no stock_available for product {product.product_id} combination "
                f"{product.combination_id} in shop {self.mapping.shop_id}"
            )
        self.rows[product.key] = ours[0]
        return ours[0]

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        wanted: dict[int, str] = {}
        for sku in skus:
            product = self.mapping.product_for_sku(sku)
            if product is None:
                continue
            try:
                wanted[int(str((await self._row(product))["id"]))] = sku
            except NoRowError:
                continue
        if not wanted:
            return {}
        found = await self.client.stock_availables(id="|".join(str(i) for i in sorted(wanted)))
        quantities: dict[str, int] = {}
        for row in found:
            owner = wanted.get(int(str(row["id"])))
            product = None if owner is None else self.mapping.product_for_sku(owner)
            if owner is not None and product is not None:
                quantities[owner] = int(str(row["quantity"]))
                self.rows[product.key] = row
        return quantities

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results: list[PushResult] = []
        stop: PushResult | None = None  # the channel is throttling or down: the rest waits
        for item in items:
            if stop is not None:
                results.append(PushResult(item, Outcome.RETRY, stop.error, stop.retry_after))
                continue
            try:
                result = await self._push_one(item)
            except (ThrottledError, UnavailableError) as exc:
                result = stop = PushResult(item, Outcome.RETRY, str(exc), exc.retry_after)
            results.append(result)
        return results

    async def _push_one(self, item: PushItem) -> PushResult:
        """Raises ``ThrottledError``/``UnavailableError``: the channel, not the item."""
        product = self.mapping.product_for_sku(item.sku)
        if product is None:
            return PushResult(item, Outcome.REFUSED, f"no PrestaShop product mapped to {item.sku}")
        try:
            row = await self._row(product)
            if str(row.get("depends_on_stock")) == "1":
                return PushResult(
                    item,
                    Outcome.REFUSED,
                    f"stock_available {row['id']} depends on advanced stock management",
                )
            if self.mapping.stock_write == "patch":
                await self.client.patch_stock_available(int(str(row["id"])), item.quantity)
            else:
                await self.client.put_stock_available({**row, "quantity": item.quantity})
            back = await self.client.stock_available(int(str(row["id"])))
        except NoRowError as exc:
            return PushResult(item, Outcome.REFUSED, str(exc))
        except PrestaError as exc:
            if exc.status == 404:
                self.rows.pop(product.key, None)  # the row was recreated: find it again
                return PushResult(item, Outcome.RETRY, f"row gone: {exc}")
            return PushResult(item, Outcome.FAILED, f"PrestaShop refused the write: {exc}")
        self.rows[product.key] = back
        shown = int(str(back.get("quantity")))
        if shown != item.quantity:
            metrics.DRIFT.labels(self.channel, "read_after_write").inc()
            return PushResult(
                item,
                Outcome.RETRY,
                f"read after write: the shop shows {shown}, {item.quantity} was written",
            )
        return PushResult(item, Outcome.OK)
