"""Amazon out: the merchant-fulfilled quantity of each listing, confirmed once applied.

Amazon has no compare-and-set and applies every write asynchronously: an ``ACCEPTED`` answer
only means queued. So a quantity is acknowledged (``ok``) only when Amazon shows it:

- up to ``feed.above`` SKUs (real-time changes): one ``patchListingsItem`` per SKU
  (``fulfillment_availability``, channel ``DEFAULT``), then ``getListingsItem``
  (``includedData=fulfillmentAvailability``) every ``confirm.poll_s`` until the listing
  shows the quantity; not shown after ``confirm.wait_s`` → retried (an absolute write
  repeated is harmless). ``INVALID`` with ``ERROR`` issues → failed (dead-lettered with
  Amazon's issue);
- more (bulk): one ``JSON_LISTINGS_FEED`` (document created, uploaded to its pre-signed
  URL, feed created), its status polled every ``feed.poll_s`` until ``DONE``, then the
  processing report read per ``messageId``: a message with an ``ERROR`` issue → failed
  (dead-lettered), the others ok; ``FATAL``/``CANCELLED`` or not done in ``feed.wait_s`` →
  every message retried. A feed still running when the next write starts is waited for
  first, so an older feed message never lands after a newer quantity.

Throttles (429 ``QuotaExceeded``) and outages retry the items; a refused authorisation fails
them. Per SKU the engine's lane already orders writes (one batch at a time, newest version).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from connectors.amazon.client import AmazonClient, AmazonError, quantity_patch
from connectors.amazon.limits import FEED_MAX_MESSAGES
from connectors.amazon.mapping import AmazonMapping
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)

FINISHED = ("DONE", "CANCELLED", "FATAL")


def _errors(issues: Any) -> list[str]:
    return [
        f"{i.get('code', '')}: {i.get('message', '')}".strip(": ")
        for i in issues or []
        if isinstance(i, dict) and i.get("severity") == "ERROR"
    ]


class AmazonPusher:
    def __init__(
        self, client: AmazonClient, mapping: AmazonMapping, *, max_batch: int = 100
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max(1, min(max_batch, FEED_MAX_MESSAGES))
        self._open_feed: str | None = None  # a feed not seen finished (waited for first)
        self.feeds = 0  # feeds submitted (a figure)

    def observed(self, sku: str, quantity: int) -> None:
        return None  # absolute writes without compare-and-set: nothing to remember

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for sku in skus:
            if not self.mapping.knows(sku):
                continue
            quantity = await self.client.listed_quantity(sku)
            if quantity is not None:
                found[sku] = quantity
        return found

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not mapped to Amazon")
            for i in items
            if not self.mapping.knows(i.sku)
        ]
        mapped = [i for i in items if self.mapping.knows(i.sku)]
        if not mapped:
            return results
        if self._open_feed is not None:
            await self._finish_open_feed()
            if self._open_feed is not None:
                error = f"feed {self._open_feed} still processing: waiting before a newer write"
                return [*results, *(PushResult(i, Outcome.RETRY, error) for i in mapped)]
        if self.mapping.feed.above and len(mapped) > self.mapping.feed.above:
            return [*results, *await self._feed(mapped)]
        return [*results, *await asyncio.gather(*(self._patch(i) for i in mapped))]

    # ---- real time: patch, then read back ---------------------------------------------
    async def _patch(self, item: PushItem) -> PushResult:
        try:
            answer = await self.client.patch_quantity(item.sku, item.quantity)
        except (ThrottledError, UnavailableError) as exc:
            return PushResult(item, Outcome.RETRY, str(exc), exc.retry_after)
        except (RejectedError, AmazonError) as exc:
            return PushResult(item, Outcome.FAILED, str(exc))
        status = answer.get("status")
        errors = _errors(answer.get("issues"))
        if status != "ACCEPTED" or errors:
            why = "; ".join(errors) or f"status {status}"
            return PushResult(
                item, Outcome.FAILED, f"Amazon refused the patch: {why}", permanent=True
            )
        return await self._confirm(item, str(answer.get("submissionId") or ""))

    async def _confirm(self, item: PushItem, submission: str) -> PushResult:
        deadline = time.monotonic() + self.mapping.confirm.wait_s
        while True:
            await asyncio.sleep(self.mapping.confirm.poll_s)
            with contextlib.suppress(ThrottledError, UnavailableError, AmazonError):
                if await self.client.listed_quantity(item.sku) == item.quantity:
                    return PushResult(item, Outcome.OK)
            if time.monotonic() >= deadline:
                return PushResult(
                    item,
                    Outcome.RETRY,
                    f"submission {submission} accepted but not shown after "
                    f"{self.mapping.confirm.wait_s:g}s",
                )

    # ---- bulk: JSON_LISTINGS_FEED ----------------------------------------------------
    async def _feed(self, items: list[PushItem]) -> list[PushResult]:
        messages = [
            {
                "messageId": n,
                "sku": item.sku,
                "operationType": "PATCH",
                "productType": "PRODUCT",
                "patches": [quantity_patch(item.quantity)],
            }
            for n, item in enumerate(items, start=1)
        ]
        try:
            feed_id = await self.client.submit_listings_feed(messages)
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except (RejectedError, AmazonError) as exc:
            return [PushResult(i, Outcome.FAILED, str(exc)) for i in items]
        self.feeds += 1
        self._open_feed = feed_id
        feed = await self._settled(feed_id, self.mapping.feed.wait_s)
        status = str(feed.get("processingStatus") or "unknown")
        if status not in FINISHED:
            error = f"feed {feed_id} {status} after {self.mapping.feed.wait_s:g}s"
            return [PushResult(i, Outcome.RETRY, error) for i in items]
        self._open_feed = None
        if status != "DONE" or not feed.get("resultFeedDocumentId"):
            return [PushResult(i, Outcome.RETRY, f"feed {feed_id} {status}") for i in items]
        try:
            report = await self.client.feed_report(str(feed["resultFeedDocumentId"]))
        except (ThrottledError, UnavailableError, AmazonError, RejectedError, ValueError) as exc:
            error = f"feed {feed_id} report unreadable: {exc}"
            return [PushResult(i, Outcome.RETRY, error) for i in items]
        return report_results(feed_id, items, report)

    async def _settled(self, feed_id: str, wait_s: float) -> dict[str, Any]:
        """The feed once finished, or as last read at ``wait_s``."""
        deadline = time.monotonic() + wait_s
        feed: dict[str, Any] = {}
        while True:
            await asyncio.sleep(self.mapping.feed.poll_s)
            with contextlib.suppress(ThrottledError, UnavailableError, AmazonError):
                feed = await self.client.feed(feed_id)
            if feed.get("processingStatus") in FINISHED or time.monotonic() >= deadline:
                return feed

    async def _finish_open_feed(self) -> None:
        assert self._open_feed is not None
        feed = await self._settled(self._open_feed, self.mapping.feed.wait_s)
        if feed.get("processingStatus") in FINISHED:
            self._open_feed = None


def report_results(
    feed_id: str, items: Sequence[PushItem], report: dict[str, Any]
) -> list[PushResult]:
    """One result per message of a done feed: an ``ERROR`` issue fails its message."""
    by_message: dict[int, list[str]] = {}
    for issue in report.get("issues") or []:
        if isinstance(issue, dict) and issue.get("severity") == "ERROR":
            with contextlib.suppress(KeyError, TypeError, ValueError):
                by_message.setdefault(int(issue["messageId"]), []).extend(_errors([issue]))
    results = []
    for n, item in enumerate(items, start=1):
        errors = by_message.get(n)
        if errors:
            why = "; ".join(errors)
            failed = f"feed {feed_id} #{n}: {why}"
            results.append(PushResult(item, Outcome.FAILED, failed, permanent=True))
        else:
            results.append(PushResult(item, Outcome.OK))
    return results
