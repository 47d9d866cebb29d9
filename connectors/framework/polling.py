"""Polling backup: orders changed since a checkpoint, through the same intake as webhooks.

Webhooks are not guaranteed (WooCommerce never retries, both channels disable a failing
subscription), so each channel is also polled. The checkpoint is the newest order version
seen; each poll asks again from ``overlap_s`` before it (clock skew, second-resolution
times), and the intake's dedupe makes the overlap harmless.

The checkpoint is handed to ``save`` after every poll that moved it (the runtime keeps it in
the state folder), so a restart resumes where the last poll ended, however long the process
was down; only a first start, with nothing saved, looks back a fixed time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from connectors.framework import metrics, redact
from connectors.framework.intake import Intake
from connectors.framework.types import Delivery, ThrottledError, UnavailableError

log = logging.getLogger(__name__)


class OrderFeed(Protocol):
    channel: str

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]: ...


class Poller:
    def __init__(
        self,
        feed: OrderFeed,
        intake: Intake,
        *,
        checkpoint_ms: int,
        interval_s: float = 60.0,
        overlap_s: float = 60.0,
        save: Callable[[int], None] | None = None,
    ) -> None:
        self.feed = feed
        self.intake = intake
        self.checkpoint_ms = checkpoint_ms
        self.interval_s = interval_s
        self.overlap_ms = int(overlap_s * 1000)
        self._save = save

    async def poll_once(self) -> int:
        """One poll; returns how many orders were read. The checkpoint moves only after every
        delivery of the poll went through the intake."""
        deliveries, newest = await self.feed.changed_since(
            max(0, self.checkpoint_ms - self.overlap_ms)
        )
        for delivery in deliveries:
            await self.intake.accept(delivery)
        metrics.POLLED_ORDERS.labels(self.feed.channel).inc(len(deliveries))
        if newest > self.checkpoint_ms:
            self.checkpoint_ms = newest
            if self._save is not None:
                self._save(newest)
        return len(deliveries)

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except (ThrottledError, UnavailableError) as exc:
                log.warning(
                    "poll %s failed, next in %.0fs: %s",
                    self.feed.channel,
                    self.interval_s,
                    redact.describe(exc),
                )
            await asyncio.sleep(self.interval_s)
