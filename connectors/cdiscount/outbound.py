"""Cdiscount out: offer quantities through asynchronous offer packages.

One push batch is one ``Update`` package (at most ``packages.max_offers`` offer requests,
each ``{sellerExternalReference, quantity}``): create it, upload the offer requests while it
is ``WaitingForCompletion``, set it ``Ready``, then poll it every ``packages.poll_s`` until
``Integrated`` or ``Rejected`` (``IntegrationPending`` meanwhile) for at most
``packages.wait_s``. An accepted upload is not success: only the package's per-request
results say what Octopia applied:

- ``Integrated`` → ok;
- ``Rejected`` with a transient result code (:data:`TRANSIENT`) or no result at all (the
  package did not finish in time, or a failure before it was ``Ready``) → retried (an
  absolute quantity written twice is harmless);
- ``Rejected`` with any other code (unknown offer, invalid quantity, ...) → failed: dead-
  lettered with Octopia's code and message, never retried in a loop;
- ``Duplicated`` (the reference twice in the package, which the pusher never sends) → retried.

No compare-and-set and no idempotency key exist: the engine's ordering (newest version only,
one batch at a time per channel) keeps writes in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

from connectors.cdiscount.client import CdiscountClient, OctopiaError
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.framework.types import (
    Outcome,
    PushItem,
    PushResult,
    RejectedError,
    ThrottledError,
    UnavailableError,
)

UPLOAD_CHUNK = 500  # offer requests per upload call
DONE = frozenset({"Integrated", "Rejected"})
TRANSIENT = frozenset({"InternalError", "TemporarilyUnavailable", "Timeout", "Locked"})


class CdiscountPusher:
    def __init__(
        self, client: CdiscountClient, mapping: CdiscountMapping, *, max_batch: int = 1000
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.channel = mapping.channel
        self.max_batch = max(1, min(max_batch, mapping.packages.max_offers))
        self.packages = 0  # packages submitted by this process

    def observed(self, sku: str, quantity: int) -> None:
        return None

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        return await self.client.offers(self.mapping.sales_channel, skus)

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        results = [
            PushResult(i, Outcome.REFUSED, f"SKU {i.sku} is not mapped to Cdiscount")
            for i in items
            if not self.mapping.knows(i.sku)
        ]
        mapped = [i for i in items if self.mapping.knows(i.sku)]
        for start in range(0, len(mapped), self.max_batch):
            results.extend(await self._package(mapped[start : start + self.max_batch]))
        return results

    async def _package(self, items: list[PushItem]) -> list[PushResult]:
        if not items:
            return []
        try:
            package_id = await self.client.create_package(
                f"stockflow-{uuid.uuid4().hex[:12]}", self.mapping.sales_channel
            )
            for start in range(0, len(items), UPLOAD_CHUNK):
                await self.client.add_offer_requests(
                    package_id,
                    [
                        {"sellerExternalReference": i.sku, "quantity": i.quantity}
                        for i in items[start : start + UPLOAD_CHUNK]
                    ],
                )
            await self.client.submit_package(package_id)
        except (ThrottledError, UnavailableError) as exc:
            return [PushResult(i, Outcome.RETRY, str(exc), exc.retry_after) for i in items]
        except (RejectedError, OctopiaError) as exc:
            return [PushResult(i, Outcome.FAILED, f"offer package refused: {exc}") for i in items]
        self.packages += 1
        package = await self._settled(package_id)
        state = str(package.get("packageState") or "unknown")
        if state not in DONE:
            error = f"package {package_id} still {state} after {self.mapping.packages.wait_s}s"
            return [PushResult(i, Outcome.RETRY, error) for i in items]
        try:
            rows = await self.client.package_results(package_id)
        except (ThrottledError, UnavailableError, RejectedError, OctopiaError) as exc:
            error = f"package {package_id} results unreadable: {exc}"
            return [PushResult(i, Outcome.RETRY, error) for i in items]
        by_ref = {str(r.get("sellerExternalReference")): r for r in rows}
        return [self._result(package_id, state, i, by_ref.get(i.sku)) for i in items]

    def _result(
        self, package_id: str, state: str, item: PushItem, row: dict[str, Any] | None
    ) -> PushResult:
        if row is None:
            return PushResult(item, Outcome.RETRY, f"package {package_id} {state}: no result")
        status = str(row.get("integrationStatus") or "")
        code = str(row.get("resultCode") or "")
        what = f"package {package_id}: {status} {code}: {row.get('message') or ''}".rstrip(": ")
        if status == "Integrated":
            return PushResult(item, Outcome.OK)
        if status == "Rejected" and code not in TRANSIENT:
            return PushResult(item, Outcome.FAILED, what, permanent=True)
        return PushResult(item, Outcome.RETRY, what)

    async def _settled(self, package_id: str) -> dict[str, Any]:
        """The package once ``Integrated``/``Rejected``, or as it is at ``wait_s``; a failed
        read is tried again until then."""
        options = self.mapping.packages
        deadline = time.monotonic() + options.wait_s
        package: dict[str, Any] = {}
        while True:
            with contextlib.suppress(ThrottledError, UnavailableError, OctopiaError, RejectedError):
                package = await self.client.package(package_id)
            if package.get("packageState") in DONE or time.monotonic() >= deadline:
                return package
            await asyncio.sleep(options.poll_s)
