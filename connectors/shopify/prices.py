"""Shopify prices: ``productVariantsBulkUpdate`` per product, read back through ``nodes``.

One mutation per product (the mutation takes one ``productId``), without
``allowPartialUpdates``: a user error on one variant applies nothing, so the variants Shopify
refused are answered ``refused`` and the others are sent once more without them. Setting a
price is absolute, so a retry after a lost answer writes the same value again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.framework.prices import ItemResult, PriceItem, from_decimal
from connectors.framework.types import Outcome, RejectedError, ThrottledError, UnavailableError
from connectors.shopify.client import ShopifyClient
from connectors.shopify.limits import MUTATION_COST
from connectors.shopify.mapping import ShopifyMapping

VARIANT_GID = "gid://shopify/ProductVariant/"
PRODUCT_GID = "gid://shopify/Product/"
UPDATE_MUTATION = """
mutation SetPrices($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id price }
    userErrors { code field message }
  }
}
"""
READ_QUERY = """
query Prices($ids: [ID!]!) {
  nodes(ids: $ids) { ... on ProductVariant { id price } }
}
"""


class ShopifyPrices:
    """The :class:`connectors.framework.prices.PriceWriter` (and reader) of a Shopify shop."""

    def __init__(self, client: ShopifyClient, mapping: ShopifyMapping, *, max_batch: int = 100):
        self.client = client
        self.mapping = mapping
        self.max_batch = max_batch
        self.currency = ""  # the shop's currency, for reading back; set by the caller

    async def set_prices(self, items: Sequence[PriceItem]) -> list[ItemResult]:
        results: list[ItemResult] = []
        products: dict[int, list[tuple[int, PriceItem]]] = {}
        for item in items:
            mapped = self.mapping.item_for_sku(item.sku)
            if mapped is None or mapped.variant_id is None or mapped.product_id is None:
                results.append(
                    ItemResult(
                        item.sku,
                        Outcome.REFUSED,
                        f"no Shopify variant_id and product_id mapped to {item.sku}",
                    )
                )
                continue
            products.setdefault(mapped.product_id, []).append((mapped.variant_id, item))
        for product, members in products.items():
            results.extend(await self._update(product, members, again=True))
        return results

    async def _update(
        self, product: int, members: list[tuple[int, PriceItem]], *, again: bool
    ) -> list[ItemResult]:
        variables = {
            "productId": f"{PRODUCT_GID}{product}",
            "variants": [{"id": f"{VARIANT_GID}{v}", "price": i.text()} for v, i in members],
        }
        try:
            data = await self.client.graphql(UPDATE_MUTATION, variables, cost=MUTATION_COST)
        except (ThrottledError, UnavailableError) as exc:
            return [ItemResult(i.sku, Outcome.RETRY, str(exc), exc.retry_after) for _, i in members]
        except RejectedError as exc:
            return [ItemResult(i.sku, Outcome.FAILED, str(exc)) for _, i in members]
        answer: dict[str, Any] = data.get("productVariantsBulkUpdate") or {}
        errors = answer.get("userErrors") or []
        if not errors:
            return [ItemResult(i.sku, Outcome.OK) for _, i in members]
        bad: dict[int, str] = {}
        for err in errors:
            field = err.get("field") or []
            message = f"{err.get('code')}: {err.get('message')}"
            if len(field) >= 2 and field[0] == "variants" and str(field[1]).isdigit():
                bad[int(field[1])] = message
        if not bad:  # an error about the product itself: every variant is refused
            text = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            return [ItemResult(i.sku, Outcome.REFUSED, text) for _, i in members]
        refused = [ItemResult(members[n][1].sku, Outcome.REFUSED, m) for n, m in bad.items()]
        rest = [m for n, m in enumerate(members) if n not in bad]
        if not rest:
            return refused
        if not again:
            return [*refused, *(ItemResult(i.sku, Outcome.RETRY, "batch refused") for _, i in rest)]
        return [*refused, *await self._update(product, rest, again=False)]

    async def get_prices(self, skus: Sequence[str]) -> dict[str, int]:
        """Variant prices in minor units of the shop's currency (``currency``)."""
        variants = {
            m.variant_id: sku
            for sku in skus
            if (m := self.mapping.item_for_sku(sku)) is not None and m.variant_id is not None
        }
        if not variants:
            return {}
        ids = [f"{VARIANT_GID}{v}" for v in variants]
        data = await self.client.graphql(READ_QUERY, {"ids": ids}, cost=1.0 + len(ids))
        prices: dict[str, int] = {}
        for node in data.get("nodes") or []:
            if not node or node.get("price") is None:
                continue
            variant = int(str(node["id"]).rsplit("/", 1)[-1])
            prices[variants[variant]] = from_decimal(str(node["price"]), self.currency or "EUR")
        return prices
