"""Shopify out: absolute ``available`` quantities with ``inventorySetQuantities``.

Each push is a compare-and-set: ``changeFromQuantity`` is the quantity we believe Shopify
holds (the last we wrote, or read). The ``@idempotent`` key is derived from what the write
*is* (items, level versions, expected quantities), never from the HTTP attempt, so a retry
after a lost response replays the first result instead of writing twice.

The mutation is all or nothing. On ``CHANGE_FROM_QUANTITY_STALE`` we re-read the stale items
and try once more; items Shopify refuses (unknown, not stocked, bundle) are set aside as
``refused`` and the rest retried without them.

Pre-orders: an item whose SKU has a pre-order allowance on the channel
(``PushItem.preorder`` not None) also sets its variant's ``inventoryPolicy`` with
``productVariantsBulkUpdate`` (one call per product, only when the policy changes):
``CONTINUE`` while units may be pre-sold (Shopify keeps selling at 0), ``DENY`` once the
allowance is used up. Shopify has no limit of its own for ``CONTINUE``: the ledger refuses a
pre-order beyond the allowance (the connector's refusal policy then acts on it). The
variant needs ``variant_id`` and ``product_id`` in the mapping; without them the policy is
left alone.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from connectors.framework import metrics
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)
from connectors.shopify.client import ShopifyClient
from connectors.shopify.limits import MUTATION_COST
from connectors.shopify.mapping import ShopifyMapping

log = logging.getLogger(__name__)

ITEM_GID = "gid://shopify/InventoryItem/"
LOCATION_GID = "gid://shopify/Location/"
KEY_NAMESPACE = uuid.UUID("6f1c6f43-52c5-4c59-9d8e-3f0c7f0a5e11")
REFUSED_CODES = frozenset(
    {
        "INVALID_INVENTORY_ITEM",
        "ITEM_NOT_STOCKED_AT_LOCATION",
        "NON_MUTABLE_INVENTORY_ITEM",
        "INVALID_LOCATION",
    }
)

SET_MUTATION = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) @idempotent(key: "%s") {
    inventoryAdjustmentGroup { id changes { name delta quantityAfterChange } }
    userErrors { code field message }
  }
}
"""
POLICY_MUTATION = """
mutation SetPolicy($productId: ID!, $variants: [ProductVariantsBulkInput!]!) {
  productVariantsBulkUpdate(productId: $productId, variants: $variants) {
    productVariants { id inventoryPolicy }
    userErrors { code field message }
  }
}
"""
VARIANT_GID = "gid://shopify/ProductVariant/"
PRODUCT_GID = "gid://shopify/Product/"
READ_QUERY = """
query Levels($ids: [ID!]!, $locationId: ID!) {
  nodes(ids: $ids) {
    ... on InventoryItem { id inventoryLevel(locationId: $locationId) {
      quantities(names: ["available"]) { name quantity } } }
  }
}
"""


def idempotency_key(location_id: int, parts: Sequence[tuple[int, int, int | None]]) -> str:
    """One key per logical write: (inventory item, level version, expected quantity)."""
    text = f"{location_id}|" + "|".join(f"{i}:{v}:{c}" for i, v, c in sorted(parts))
    return str(uuid.uuid5(KEY_NAMESPACE, text))


class ShopifyPusher:
    def __init__(
        self, client: ShopifyClient, mapping: ShopifyMapping, *, max_batch: int = 100
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max_batch
        self.known: dict[int, int] = {}  # inventory item id -> quantity we believe Shopify holds
        self.policies: dict[int, str] = {}  # variant id -> inventoryPolicy we last set
        self._location_gid = f"{LOCATION_GID}{mapping.push_location_id}"

    def observed(self, sku: str, quantity: int) -> None:
        if (item := self.mapping.item_for_sku(sku)) is not None:
            self.known[item.inventory_item_id] = quantity

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        items = {i.inventory_item_id: s for s in skus if (i := self.mapping.item_for_sku(s))}
        found = await self._read_items(list(items))
        return {items[i]: q for i, q in found.items()}

    async def _read_items(self, item_ids: Sequence[int]) -> dict[int, int]:
        if not item_ids:
            return {}
        variables = {"ids": [f"{ITEM_GID}{i}" for i in item_ids], "locationId": self._location_gid}
        data = await self.client.graphql(READ_QUERY, variables, cost=1.0 + len(item_ids))
        result: dict[int, int] = {}
        for node in data.get("nodes") or []:
            level = (node or {}).get("inventoryLevel")
            if not node or not level:
                continue
            for q in level.get("quantities") or []:
                if q.get("name") == "available":
                    result[int(node["id"].removeprefix(ITEM_GID))] = int(q["quantity"])
        self.known.update(result)
        return result

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results: list[PushResult] = []
        todo: dict[int, PushItem] = {}
        for item in items:
            mapped = self.mapping.item_for_sku(item.sku)
            if mapped is None:
                results.append(
                    PushResult(item, Outcome.REFUSED, f"no Shopify item mapped to {item.sku}")
                )
            else:
                todo[mapped.inventory_item_id] = item
        try:
            unknown = [i for i in todo if i not in self.known]
            await self._read_items(unknown)
            for _ in range(3):  # the write, then again without refused items / after re-reading
                if not todo:
                    break
                before = len(todo)
                stale = await self._write(todo, results)
                if stale:
                    metrics.CAS_CONFLICTS.labels(self.channel).inc(len(stale))
                    await self._read_items(stale)
                    for item_id in stale:
                        if self.known.get(item_id) == todo[item_id].quantity:  # already right
                            results.append(PushResult(todo.pop(item_id), Outcome.OK))
                elif len(todo) == before:
                    break
            results.extend(
                PushResult(i, Outcome.RETRY, "not settled: CAS stale or unexplained userErrors")
                for i in todo.values()
            )
            todo.clear()
        except ThrottledError as exc:
            results.extend(
                PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in todo.values()
            )
        except UnavailableError as exc:
            results.extend(
                PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in todo.values()
            )
        except RejectedError as exc:
            results.extend(PushResult(i, Outcome.FAILED, str(exc)) for i in todo.values())
        if any(r.item.preorder is not None and r.outcome is Outcome.OK for r in results):
            results = await self._policies(results)
        return results

    async def _policies(self, results: list[PushResult]) -> list[PushResult]:
        """Set the inventory policy of the pushed items that carry a pre-order figure. An
        item whose policy Shopify could not take now (throttled, unavailable) is answered
        ``retry``; a refusal is logged and the quantity stands."""
        products: dict[int, list[tuple[int, str]]] = {}
        for r in results:
            mapped = self.mapping.item_for_sku(r.item.sku)
            if r.item.preorder is None or r.outcome is not Outcome.OK or mapped is None:
                continue
            if mapped.variant_id is None or mapped.product_id is None:
                continue
            policy = "CONTINUE" if r.item.preorder > 0 else "DENY"
            if self.policies.get(mapped.variant_id) != policy:
                products.setdefault(mapped.product_id, []).append((mapped.variant_id, policy))
        failed: dict[int, str] = {}
        for product, variants in products.items():
            variables = {
                "productId": f"{PRODUCT_GID}{product}",
                "variants": [
                    {"id": f"{VARIANT_GID}{v}", "inventoryPolicy": p} for v, p in variants
                ],
            }
            try:
                data = await self.client.graphql(POLICY_MUTATION, variables, cost=MUTATION_COST)
            except (ThrottledError, UnavailableError) as exc:  # transient: push again
                failed.update((v, f"inventory policy not set: {exc}") for v, _ in variants)
                continue
            except RejectedError as exc:  # e.g. no write_products scope: said, not retried
                log.warning(
                    "%s: inventory policy of product %s refused: %s", self.channel, product, exc
                )
                continue
            errors = (data.get("productVariantsBulkUpdate") or {}).get("userErrors") or []
            if errors:
                log.warning(
                    "%s: inventory policy of product %s refused: %s",
                    self.channel,
                    product,
                    "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors),
                )
            else:
                self.policies.update(variants)
        if not failed:
            return results
        out = []
        for r in results:
            mapped = self.mapping.item_for_sku(r.item.sku)
            if mapped is not None and mapped.variant_id in failed:
                r = PushResult(r.item, Outcome.RETRY, failed[mapped.variant_id])
            out.append(r)
        return out

    async def _write(self, todo: dict[int, PushItem], results: list[PushResult]) -> list[int]:
        """One mutation for everything in ``todo``; settles what it can (removing it from
        ``todo``) and returns the items whose compare-and-set was stale."""
        order = list(todo)
        quantities = [
            {
                "inventoryItemId": f"{ITEM_GID}{i}",
                "locationId": self._location_gid,
                "quantity": todo[i].quantity,
                "changeFromQuantity": self.known.get(i),
            }
            for i in order
        ]
        key = idempotency_key(
            self.mapping.push_location_id, [(i, todo[i].version, self.known.get(i)) for i in order]
        )
        variables: dict[str, Any] = {
            "input": {
                "name": "available",
                "reason": "correction",
                "quantities": quantities,
                "referenceDocumentUri": f"gid://stockflow/StockLevel/{key}",
            }
        }
        data = await self.client.graphql(SET_MUTATION % key, variables, cost=MUTATION_COST)
        payload = data.get("inventorySetQuantities") or {}
        errors = payload.get("userErrors") or []
        if not errors:
            for i in order:
                self.known[i] = todo[i].quantity
                results.append(PushResult(todo.pop(i), Outcome.OK))
            return []
        stale: list[int] = []
        for error in errors:
            field = error.get("field") or []
            index = int(field[2]) if len(field) > 2 and str(field[2]).isdigit() else None
            if index is None or index >= len(order) or order[index] not in todo:
                continue
            item_id = order[index]
            code = error.get("code") or ""
            if code == "CHANGE_FROM_QUANTITY_STALE":
                stale.append(item_id)
            else:
                outcome = Outcome.REFUSED if code in REFUSED_CODES else Outcome.FAILED
                results.append(
                    PushResult(todo.pop(item_id), outcome, f"{code}: {error.get('message')}")
                )
        return stale
