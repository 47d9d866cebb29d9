"""Drift: the channel shows a quantity we did not send.

Shopify tells us every stock change (``inventory_levels/update``), including our own writes,
and does not say who made it, so an observation equal to a quantity we recently wrote is an
*echo* and is ignored. Any other value may be a sale whose order event is still on its way,
so we wait ``grace_s``: if by then no newer level was pushed and the channel's value still
differs from ours, it is drift: alert and push our quantity again. ``reconcile`` does the
same for every SKU by reading the channel's quantities (periodic reconciliation).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

from connectors.framework import metrics
from connectors.framework.engine import OutboundEngine
from connectors.framework.types import StockObservation

DriftAlert = Callable[[str, str, int, int, str], Awaitable[None]]
"""(channel, sku, our quantity, channel's quantity, source) → alert."""


async def _no_alert(channel: str, sku: str, ours: int, theirs: int, source: str) -> None:
    return None


class DriftDetector:
    def __init__(
        self, engine: OutboundEngine, *, alert: DriftAlert = _no_alert, grace_s: float = 10.0
    ) -> None:
        self.engine = engine
        self.alert = alert
        self.grace_s = grace_s
        self._checks: set[asyncio.Task[None]] = set()

    async def observe(self, observations: Sequence[StockObservation]) -> None:
        for obs in observations:
            lane = self.engine.lanes.get(obs.channel)
            if lane is None:
                continue
            if obs.quantity in lane.recent.get(obs.sku, ()):
                metrics.ECHOES.labels(obs.channel).inc()
                continue
            latest = lane.latest.get(obs.sku)
            task = asyncio.create_task(
                self._check_later(obs, None if latest is None else latest.version)
            )
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _check_later(self, obs: StockObservation, version: int | None) -> None:
        await asyncio.sleep(self.grace_s)
        lane = self.engine.lanes[obs.channel]
        latest = lane.latest.get(obs.sku)
        acked = lane.acked.get(obs.sku)
        if latest is None or acked is None or latest.version != version or obs.sku in lane.pending:
            return  # nothing of ours to compare with, or a newer quantity is on its way
        if acked.version == latest.version and acked.quantity != obs.quantity:
            await self._drift(obs.channel, obs.sku, acked.quantity, obs.quantity, "webhook")

    async def reconcile(self, channel: str) -> int:
        """Compare every SKU ``channel`` acknowledged (since the process started or, through
        the lane store, before) with what it shows; returns the number of drifting SKUs (each
        alerted and pushed again). Dirty SKUs are queued again too."""
        lane = self.engine.lanes[channel]
        settled = {sku: item for sku, item in lane.acked.items() if sku not in lane.pending}
        theirs = await lane.pusher.read(list(settled))
        lane.heal()  # the channel answered: push the SKUs it missed while it did not
        drifting = 0
        for sku, quantity in theirs.items():
            ours = settled[sku]
            if quantity != ours.quantity and lane.latest[sku].version == ours.version:
                drifting += 1
                await self._drift(channel, sku, ours.quantity, quantity, "reconciliation")
        return drifting

    async def _drift(self, channel: str, sku: str, ours: int, theirs: int, source: str) -> None:
        metrics.DRIFT.labels(channel, source).inc()
        await self.alert(channel, sku, ours, theirs, source)
        self.engine.lanes[channel].pusher.observed(sku, theirs)
        self.engine.force(channel, sku)

    async def close(self) -> None:
        for task in list(self._checks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
