"""WooCommerce prices: ``regular_price`` through the same batch endpoints as stock.

Simple products go to ``POST /products/batch``, variations to
``POST /products/{parent}/variations/batch``; prices are decimal strings ("19.99"). Per-item
errors come inside a 200: a 5xx-like one is retried, any other is refused (drift).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.framework.prices import ItemResult, PriceItem, from_decimal
from connectors.framework.types import Outcome, ThrottledError, UnavailableError
from connectors.woocommerce.client import WooClient, WooError
from connectors.woocommerce.limits import BATCH_LIMIT
from connectors.woocommerce.mapping import WooMapping


class WooPrices:
    """The :class:`connectors.framework.prices.PriceWriter` (and reader) of a WooCommerce
    site."""

    def __init__(self, client: WooClient, mapping: WooMapping, *, max_batch: int = BATCH_LIMIT):
        self.client = client
        self.mapping = mapping
        self.max_batch = min(max_batch, BATCH_LIMIT)
        self.currency = ""  # the site's currency, for reading back; set by the caller

    async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]:
        results: list[ItemResult] = []
        groups: dict[str, list[tuple[int, PriceItem]]] = {}
        for item in items:
            product = self.mapping.product_for_sku(item.sku)
            if product is None:
                results.append(
                    ItemResult(item.sku, Outcome.REFUSED, f"no WooCommerce product for {item.sku}")
                )
                continue
            groups.setdefault(product.batch_path, []).append((product.write_id, item))
        for path, members in groups.items():
            for start in range(0, len(members), self.max_batch):
                results.extend(await self._batch(path, members[start : start + self.max_batch]))
        return results

    async def _batch(self, path: str, members: list[tuple[int, PriceItem]]) -> list[ItemResult]:
        update = [{"id": wid, "regular_price": item.text()} for wid, item in members]
        try:
            body, _ = await self.client.request("POST", path, json={"update": update})
        except (ThrottledError, UnavailableError) as exc:
            return [ItemResult(i.sku, Outcome.RETRY, str(exc), exc.retry_after) for _, i in members]
        except WooError as exc:
            if exc.code == "woocommerce_rest_request_entity_too_large" and len(members) > 1:
                half = len(members) // 2
                return [
                    *await self._batch(path, members[:half]),
                    *await self._batch(path, members[half:]),
                ]
            outcome = Outcome.RETRY if exc.status == 429 else Outcome.FAILED
            return [ItemResult(i.sku, outcome, str(exc)) for _, i in members]
        answers: dict[int, dict[str, Any]] = {
            int(a["id"]): a for a in (body or {}).get("update", [])
        }
        results = []
        for wid, item in members:
            answer = answers.get(wid)
            if answer is None:
                results.append(ItemResult(item.sku, Outcome.RETRY, "item missing from answer"))
            elif "error" in answer:
                err = answer["error"]
                status = int((err.get("data") or {}).get("status") or 400)
                outcome = Outcome.RETRY if status >= 500 or status == 429 else Outcome.REFUSED
                results.append(
                    ItemResult(item.sku, outcome, f"{err.get('code')}: {err.get('message')}")
                )
            else:
                results.append(ItemResult(item.sku, Outcome.OK))
        return results

    async def get_prices(self, skus: Sequence[str]) -> dict[str, int]:
        """``regular_price`` of simple products in minor units (variations: not read)."""
        ids = {
            p.write_id: s
            for s in skus
            if (p := self.mapping.product_for_sku(s)) is not None and not p.variation_id
        }
        if not ids:
            return {}
        include = ",".join(str(i) for i in ids)
        body, _ = await self.client.request(
            "GET", "/products", params={"include": include, "per_page": "100"}
        )
        return {
            ids[int(p["id"])]: from_decimal(str(p["regular_price"]), self.currency or "EUR")
            for p in body
            if int(p["id"]) in ids and p.get("regular_price") not in (None, "")
        }
