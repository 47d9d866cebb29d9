"""Magento out: the absolute physical quantity of source items.

``write: single``: the push source's source item gets the channel's figure.
``write: per_source``: each mapped source gets its share of the figure, split by its
location's available units (``connectors.magento.sources``; the push item carries the
level's units per location: ``by_location``); a location the level does not name gives 0.
In both the push source also gets Magento's own open reservations of the SKU
(``connectors.magento.reservations``): MSI subtracts them from the stock's sum again, so the
store shows the figure. ``read`` answers the sum of the written sources (in stock) less
those reservations, i.e. the channel's figure as Magento sells it.

Synchronous: ``POST /V1/inventory/source-items`` with at most 20 source items (the Web API
input limit when the merchant enables it; per source, ``20 // sources`` SKUs a request);
the answer is ``[]``. A 400 for a batch is split in halves until the refused item is alone
(refused: drift), so the others are still written.

Asynchronous (``bulk.enabled``): one ``POST /async/bulk/V1/inventory/source-items`` with one
operation per item (all its source items; up to 5,000 operations), then
``GET /V1/bulk/{uuid}/detailed-status`` every ``bulk.poll_s`` until no operation is open (4)
or ``bulk.wait_s`` passed. Per operation: 1 complete → ok; 2 retriably failed or still open
→ retried; 3 failed or 5 rejected → failed (dead-lettered with Magento's message).

``status`` is 1 (in stock) for each source item whose physical quantity written is
positive, else 0. No compare-and-set and no
idempotency key exist: the engine's ordering (newest version only) is what keeps writes in
order, and an absolute write repeated is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)
from connectors.magento.client import MagentoClient, MagentoError
from connectors.magento.limits import ASYNC_LIST_LIMIT, SYNC_LIST_LIMIT
from connectors.magento.mapping import MagentoMapping
from connectors.magento.reservations import Reservations
from connectors.magento.sources import split

COMPLETE, RETRIABLY_FAILED, FAILED, OPEN, REJECTED = 1, 2, 3, 4, 5


class MagentoPusher:
    def __init__(
        self,
        client: MagentoClient,
        mapping: MagentoMapping,
        *,
        max_batch: int = SYNC_LIST_LIMIT,
        reservations: Reservations | None = None,
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.reservations = reservations or Reservations(frozenset(mapping.skus))
        self.channel = mapping.channel
        self.by_location = mapping.per_source  # the engine then sends units per location
        self.written = tuple(mapping.sources) if mapping.per_source else (mapping.push_source,)
        # bulk: one operation per item, whatever its sources; sync: source items per request
        per_request = SYNC_LIST_LIMIT // len(self.written)
        limit = ASYNC_LIST_LIMIT if mapping.bulk.enabled else per_request
        self.max_batch = max(1, min(max_batch, limit))

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes without compare-and-set: nothing to remember

    def quantities(self, item: PushItem) -> dict[str, int]:
        """Source code → the quantity its source item gets (before reservations)."""
        if not self.mapping.per_source:
            return {self.mapping.push_source: item.quantity}
        units = dict(item.locations or ())
        available = {code: units.get(loc, 0) for code, loc in self.mapping.sources.items()}
        return split(item.quantity, available, self.mapping.push_source)

    def source_items(self, item: PushItem) -> list[dict[str, Any]]:
        rows = []
        for code, quantity in self.quantities(item).items():
            physical = quantity
            if code == self.mapping.push_source:
                physical += self.reservations.open(item.sku)
            rows.append(
                {
                    "sku": item.sku,
                    "source_code": code,
                    "quantity": physical,
                    "status": 1 if physical > 0 else 0,
                }
            )
        return rows

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        known = [s for s in skus if self.mapping.knows(s)]
        if not known:
            return {}
        await self.reservations.ensure_loaded(self.client)
        rows = await self.client.source_items(known, self.written)
        physical: dict[str, int] = {}
        for r in rows:
            sku = str(r.get("sku"))
            if r.get("source_code") not in self.written or sku not in known:
                continue
            # single: as written; per source: what MSI sums (source items in stock)
            counted = not self.mapping.per_source or int(r.get("status") or 0) == 1
            physical[sku] = physical.get(sku, 0) + (int(float(r["quantity"])) if counted else 0)
        return {sku: q - self.reservations.open(sku) for sku, q in physical.items()}

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not mapped to Magento")
            for i in items
            if not self.mapping.knows(i.sku)
        ]
        mapped = [i for i in items if self.mapping.knows(i.sku)]
        try:
            await self.reservations.ensure_loaded(self.client)
        except (ThrottledError, UnavailableError, RejectedError, MagentoError) as exc:
            error = f"Magento's open orders unreadable: {exc}"
            retry_after = getattr(exc, "retry_after", None)
            return [*results, *(PushResult(i, Outcome.RETRY, error, retry_after) for i in mapped)]
        for start in range(0, len(mapped), self.max_batch):
            chunk = mapped[start : start + self.max_batch]
            if self.mapping.bulk.enabled:
                results.extend(await self._bulk(chunk))
            else:
                results.extend(await self._sync(chunk))
        return results

    async def _sync(self, items: list[PushItem]) -> list[PushResult]:
        try:
            await self.client.save_source_items([r for i in items for r in self.source_items(i)])
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except RejectedError as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        except MagentoError as exc:
            if exc.status == 400 and len(items) > 1:
                half = len(items) // 2  # one bad item fails the request: find it
                return [*await self._sync(items[:half]), *await self._sync(items[half:])]
            outcome = Outcome.REFUSED if exc.status in (400, 404) else Outcome.FAILED
            return [PushResult(i, outcome, str(exc)) for i in items]
        return [PushResult(i, Outcome.OK) for i in items]

    async def _bulk(self, items: list[PushItem]) -> list[PushResult]:
        try:
            uuid = await self.client.bulk_save_source_items([self.source_items(i) for i in items])
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except (RejectedError, MagentoError) as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        operations = await self._settled(uuid)
        results = []
        for n, item in enumerate(items):
            op = operations.get(n)
            status = int(op.get("status") or OPEN) if op else OPEN
            message = str((op or {}).get("result_message") or "")
            if status == COMPLETE:
                results.append(PushResult(item, Outcome.OK))
            elif status in (RETRIABLY_FAILED, OPEN):
                what = "retriably failed" if status == RETRIABLY_FAILED else "still open"
                results.append(
                    PushResult(item, Outcome.RETRY, f"bulk {uuid} #{n} {what}: {message}")
                )
            else:
                what = "rejected" if status == REJECTED else "failed"
                failed = f"bulk {uuid} #{n} {what}: {message}"
                results.append(PushResult(item, Outcome.FAILED, failed, permanent=True))
        return results

    async def _settled(self, uuid: str) -> dict[int, dict[str, Any]]:
        """The bulk's operations by index once none is open, or as they are at ``wait_s``;
        a failed status read is tried again until then."""
        deadline = time.monotonic() + self.mapping.bulk.wait_s
        operations: dict[int, dict[str, Any]] = {}
        while True:
            with contextlib.suppress(ThrottledError, UnavailableError, MagentoError):
                operations = {int(op["id"]): op for op in await self.client.bulk_operations(uuid)}
            if operations and all(
                int(op.get("status") or OPEN) != OPEN for op in operations.values()
            ):
                return operations
            if time.monotonic() >= deadline:
                return operations
            await asyncio.sleep(self.mapping.bulk.poll_s)
