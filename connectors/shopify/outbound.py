"""Shopify out: absolute ``available`` quantities with ``inventorySetQuantities``.

Each push is a compare-and-set: ``changeFromQuantity`` is the quantity we believe Shopify
holds (the last we wrote, or read). The ``@idempotent`` key is derived from what the write
*is* (items, level versions, expected quantities), never from the HTTP attempt, so a retry
after a lost response replays the first result instead of writing twice.

The mutation is all or nothing. On ``CHANGE_FROM_QUANTITY_STALE`` we re-read the stale items
and try once more; items Shopify refuses (unknown, not stocked, bundle) are set aside as
``refused`` and the rest retried without them.
"""

from __future__ import annotations

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
        return results

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
