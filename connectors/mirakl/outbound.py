"""Mirakl out: offers' quantities by import, confirmed by the import's report.

Each batch is one import: OF24 (JSON ``{offers: [...]}``, ``update_delete: update``, the
default) or OF01 (a CSV file with ``update-delete=update``, at most once a minute: the
lane's coalescing gathers what changed meanwhile into the next file). An import is
asynchronous: its id is followed with OF02 every ``import.poll_s`` until ``COMPLETE`` or
``FAILED``; when it has an error report, OF03 names the lines in error. Per item:

- import ``COMPLETE`` and the SKU not in the error report → ok (the operator applied it);
- in the error report with a transient cause (the offer held by another import, an
  internal error, "try again") → retried; any other cause (unknown offer, field refused)
  → failed: dead-lettered with the operator's message, the SKU dirty until it is fixed;
- import ``FAILED`` as a whole, unreadable, or still pending after ``import.wait_s`` →
  retried (absolute quantities: writing again is harmless);
- a SKU the mapping does not list → refused (a drift alert), never sent.

Mirakl gives a refused or cancelled order's units back to the offer by itself, whatever
stockflow's figure is; when that release changes nothing in the ledger (an order the
ledger never reserved, refused by the gate or at the operator's deadline) no new level
comes, so the inbound asks for the SKU's figure to be written again (:meth:`reassert`):
the newest quantity this pusher was given, in its own import. Imports are serialised, so
such a write never lands after a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)
from connectors.mirakl.client import MiraklClient, MiraklError, csv_file
from connectors.mirakl.mapping import MiraklMapping, Offer

log = logging.getLogger(__name__)

DONE = ("COMPLETE", "FAILED")
TRANSIENT = (
    "try again",
    "temporar",
    "internal error",
    "another import",
    "being processed",
    "timeout",
)
OF01_HEADER = (
    "sku",
    "product-id",
    "product-id-type",
    "price",
    "quantity",
    "state",
    "update-delete",
)


def transient(message: str) -> bool:
    text = message.lower()
    return any(word in text for word in TRANSIENT)


def of24_offer(offer: Offer, quantity: int) -> dict[str, Any]:
    return {
        "shop_sku": offer.sku,
        "product_id": offer.product_id or offer.sku,
        "product_id_type": offer.product_id_type,
        "price": offer.price,
        "state_code": offer.state_code,
        "quantity": quantity,
        "update_delete": "update",
    }


def of01_row(offer: Offer, quantity: int) -> list[object]:
    return [
        offer.sku,
        offer.product_id or offer.sku,
        offer.product_id_type,
        offer.price,
        quantity,
        offer.state_code,
        "update",
    ]


class MiraklPusher:
    def __init__(self, client: MiraklClient, mapping: MiraklMapping, *, max_batch: int) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max_batch
        self._newest: dict[str, PushItem] = {}  # per SKU, the newest quantity given to push
        self._lock = asyncio.Lock()  # one import at a time: none lands after a newer one
        self._background: set[asyncio.Task[None]] = set()

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        async with self._lock:
            for item in items:
                known = self._newest.get(item.sku)
                if known is None or item.version >= known.version:
                    self._newest[item.sku] = item
            return await self._push(items)

    def reassert(self, skus: Iterable[str]) -> None:
        """Write the newest known quantity of ``skus`` again, in the background (the
        operator gave a refused or cancelled order's units back to the offers)."""
        wanted = sorted({s for s in skus if s in self._newest})
        if not wanted:
            return
        task = asyncio.ensure_future(self._reassert(wanted))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reassert(self, skus: list[str]) -> None:
        async with self._lock:
            results = await self._push([self._newest[s] for s in skus])
        for result in results:
            if result.outcome is not Outcome.OK:
                # the reconciliation (OF21 read back) catches what is still off
                log.warning(
                    "mirakl re-write channel=%s sku=%s %s: %s",
                    self.channel,
                    result.item.sku,
                    result.outcome,
                    result.error,
                )

    async def _push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not an offer of this Mirakl shop")
            for i in items
            if not self.mapping.knows(i.sku)
        ]
        mapped = [i for i in items if self.mapping.knows(i.sku)]
        for start in range(0, len(mapped), self.max_batch):
            results.extend(await self._import(mapped[start : start + self.max_batch]))
        return results

    async def _import(self, items: list[PushItem]) -> list[PushResult]:
        offers = [(i, self.mapping.offer(i.sku)) for i in items]
        try:
            if self.mapping.write == "of01":
                content = csv_file(OF01_HEADER, [of01_row(o, i.quantity) for i, o in offers if o])
                import_id = await self.client.import_offers_file(content)
            else:
                import_id = await self.client.update_offers(
                    [of24_offer(o, i.quantity) for i, o in offers if o]
                )
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except (RejectedError, MiraklError) as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        status = await self._settled(import_id)
        state = str(status.get("status") or "")
        if state != "COMPLETE":
            what = f"import {import_id} {state or 'unread'} {status.get('reason_status') or ''}"
            return [PushResult(i, Outcome.RETRY, what.strip()) for i in items]
        errors: dict[str, str] = {}
        if status.get("has_error_report"):
            try:
                rows = await self.client.import_errors(import_id)
            except (ThrottledError, UnavailableError, MiraklError, RejectedError) as exc:
                error = f"import {import_id} error report unreadable: {exc}"
                return [PushResult(i, Outcome.RETRY, error) for i in items]
            for row in rows:
                errors.setdefault(str(row.get("sku") or ""), str(row.get("error-message") or ""))
        results = []
        for item in items:
            message = errors.get(item.sku)
            if message is None:
                results.append(PushResult(item, Outcome.OK))
            elif transient(message):
                results.append(PushResult(item, Outcome.RETRY, f"import {import_id}: {message}"))
            else:
                failed = f"import {import_id}: {message}"
                results.append(PushResult(item, Outcome.FAILED, failed, permanent=True))
        return results

    async def _settled(self, import_id: int) -> dict[str, Any]:
        """OF02 until the import is done, or as it is at ``import_wait_s``; a failed read is
        tried again until then."""
        deadline = time.monotonic() + self.mapping.import_wait_s
        status: dict[str, Any] = {}
        while True:
            await asyncio.sleep(self.mapping.import_poll_s)
            with contextlib.suppress(ThrottledError, UnavailableError, MiraklError):
                status = await self.client.import_status(import_id)
            if status.get("status") in DONE or time.monotonic() >= deadline:
                return status

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        quantities = await self.client.offer_quantities()
        return {s: quantities[s] for s in skus if s in quantities}

    def observed(self, sku: str, quantity: int) -> None:
        return None
