"""WooCommerce out: absolute ``stock_quantity`` through the batch endpoints.

Simple products go to ``POST /products/batch``, variations to
``POST /products/{parent}/variations/batch``, at most 100 updates per request. Items can
fail inside a 200: a 5xx-like item error is retried, any other is the channel refusing the
item (drift). WooCommerce has no compare-and-set and no idempotency key; ordering comes from
the engine (one worker per channel, newest version only).

A SKU with a pre-order allowance on the channel (``PushItem.preorder`` not None) also sets
``backorders``: ``notify`` while units may be pre-sold (the shop keeps selling at 0 and tells
the customer), ``no`` once the allowance is used up, and the units left in the product's
``_stockflow_preorders`` meta; the ledger refuses a pre-order beyond it either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    ThrottledError,
    UnavailableError,
)
from connectors.woocommerce.client import WooClient, WooError
from connectors.woocommerce.limits import BATCH_LIMIT
from connectors.woocommerce.mapping import WooMapping


def _item_outcome(status: int) -> Outcome:
    return Outcome.RETRY if status >= 500 or status == 429 else Outcome.REFUSED


PREORDER_META = "_stockflow_preorders"


def _update(wid: int, item: PushItem) -> dict[str, Any]:
    change: dict[str, Any] = {"id": wid, "manage_stock": True, "stock_quantity": item.quantity}
    if item.preorder is not None:
        change["backorders"] = "notify" if item.preorder > 0 else "no"
        change["meta_data"] = [{"key": PREORDER_META, "value": str(item.preorder)}]
    return change


class WooPusher:
    def __init__(
        self, client: WooClient, mapping: WooMapping, *, max_batch: int = BATCH_LIMIT
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = min(max_batch, BATCH_LIMIT)

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes without compare-and-set: nothing to remember

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        """Quantities of simple products (variations would need one call per parent)."""
        ids = {p.write_id: s for s in skus if (p := self.mapping.product_for_sku(s))}
        if not ids:
            return {}
        include = ",".join(str(i) for i in ids)
        body, _ = await self.client.request(
            "GET", "/products", params={"include": include, "per_page": "100"}
        )
        return {
            ids[int(p["id"])]: int(p["stock_quantity"])
            for p in body
            if int(p["id"]) in ids and p.get("stock_quantity") is not None
        }

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results: list[PushResult] = []
        groups: dict[str, list[tuple[int, PushItem]]] = {}
        for item in items:
            product = self.mapping.product_for_sku(item.sku)
            if product is None:
                results.append(
                    PushResult(
                        item, Outcome.REFUSED, f"no WooCommerce product mapped to {item.sku}"
                    )
                )
                continue
            groups.setdefault(product.batch_path, []).append((product.write_id, item))
        for path, members in groups.items():
            for start in range(0, len(members), self.max_batch):
                results.extend(await self._batch(path, members[start : start + self.max_batch]))
        return results

    async def _batch(self, path: str, members: list[tuple[int, PushItem]]) -> list[PushResult]:
        update = [_update(wid, item) for wid, item in members]
        try:
            body, _ = await self.client.request("POST", path, json={"update": update})
        except ThrottledError as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for _, i in members]
        except UnavailableError as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for _, i in members]
        except WooError as exc:
            if exc.code == "woocommerce_rest_request_entity_too_large" and len(members) > 1:
                half = len(members) // 2  # the site lowered the limit: split and go on
                return [
                    *await self._batch(path, members[:half]),
                    *await self._batch(path, members[half:]),
                ]
            outcome = Outcome.RETRY if exc.status == 429 else Outcome.FAILED
            return [PushResult(i, outcome, str(exc)) for _, i in members]
        answers: dict[int, dict[str, Any]] = {
            int(a["id"]): a for a in (body or {}).get("update", [])
        }
        results = []
        for wid, item in members:
            answer = answers.get(wid)
            if answer is None:
                results.append(PushResult(item, Outcome.RETRY, "item missing from batch answer"))
            elif "error" in answer:
                err = answer["error"]
                status = int((err.get("data") or {}).get("status") or 400)
                results.append(
                    PushResult(
                        item, _item_outcome(status), f"{err.get('code')}: {err.get('message')}"
                    )
                )
            else:
                results.append(PushResult(item, Outcome.OK))
        return results
