"""Fnac Darty out: quantities through ``offers_update``, confirmed by ``batch_status``.

``offers_update`` only queues the offers: it answers a ``batch_id`` and processes them
later, so a push is acknowledged only by the batch's report (channel-contracts §8.7). The
report is polled every ``batch.poll_s`` until the batch leaves ``ACTIVE``/``RUNNING`` or
``batch.wait_s`` has passed. Then, per offer of the report:

- ``OK`` or ``WARNING`` → ok;
- ``ERROR`` (Fnac refused this offer: unknown offer without a product reference, a value
  out of range) → failed: dead-lettered with Fnac's code and message, the SKU stays dirty;
- missing from a finished report, a ``FATAL`` batch (processing aborted), a batch still
  running after ``wait_s`` → retry: the same absolute quantity is queued again, which is
  harmless (no compare-and-set on Fnac, and a newer level replaces it).

A request refused as a whole (XML validation) is split in halves to find the offer at fault
(failed); throttles and outages retry the whole push.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

from connectors.fnac.client import BatchReport, FnacClient, FnacError, OfferQuantity
from connectors.fnac.mapping import FnacMapping
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)


class FnacPusher:
    def __init__(self, client: FnacClient, mapping: FnacMapping, *, max_batch: int = 500) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max_batch

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes without compare-and-set: nothing to remember

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        return await self.client.offer_quantities([s for s in skus if self.mapping.knows(s)])

    def _offer(self, item: PushItem) -> OfferQuantity:
        return OfferQuantity(
            sku=item.sku,
            quantity=item.quantity,
            ean=self.mapping.products.get(item.sku),
            product_state=self.mapping.product_state,
        )

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not mapped to a Fnac offer")
            for i in items
            if not self.mapping.knows(i.sku)
        ]
        mapped = [i for i in items if self.mapping.knows(i.sku)]
        for start in range(0, len(mapped), max(1, self.max_batch)):
            results.extend(await self._batch(mapped[start : start + self.max_batch]))
        return results

    async def _batch(self, items: list[PushItem]) -> list[PushResult]:
        if not items:
            return []
        try:
            batch_id = await self.client.offers_update([self._offer(i) for i in items])
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except RejectedError as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        except FnacError as exc:
            if len(items) > 1:
                half = len(items) // 2  # one bad offer refuses the request: find it
                return [*await self._batch(items[:half]), *await self._batch(items[half:])]
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        report = await self._settled(batch_id)
        return [self._result(item, report, batch_id) for item in items]

    @staticmethod
    def _result(item: PushItem, report: BatchReport | None, batch_id: str) -> PushResult:
        if report is None or not report.done:
            return PushResult(item, Outcome.RETRY, f"batch {batch_id} not processed in time")
        if report.status == "FATAL":
            why = "; ".join(str(e) for e in report.errors) or "processing aborted"
            return PushResult(item, Outcome.RETRY, f"batch {batch_id} FATAL: {why}")
        offer = report.offers.get(item.sku)
        if offer is None:
            return PushResult(item, Outcome.RETRY, f"batch {batch_id} does not report {item.sku}")
        if offer.status in ("OK", "WARNING"):
            return PushResult(item, Outcome.OK)
        why = "; ".join(str(e) for e in offer.errors) or offer.status
        if offer.status == "FATAL":
            return PushResult(item, Outcome.RETRY, f"batch {batch_id} {item.sku}: {why}")
        why = f"Fnac refused offer {item.sku}: {why}"
        return PushResult(item, Outcome.FAILED, why, permanent=True)

    async def _settled(self, batch_id: str) -> BatchReport | None:
        """The batch's report once processed, or the last one read at ``wait_s`` (None if
        none could be read); a failed read is tried again until then."""
        deadline = time.monotonic() + self.mapping.batch.wait_s
        report: BatchReport | None = None
        while True:
            await asyncio.sleep(self.mapping.batch.poll_s)
            with contextlib.suppress(ThrottledError, UnavailableError, FnacError):
                report = await self.client.batch_status(batch_id)
                if report.done:
                    return report
            if time.monotonic() >= deadline:
                return report
