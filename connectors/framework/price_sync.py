"""Price propagation: the price book in, each channel's price out through the outbound engine.

Price changes are pushed by the same engine as stock, with a separate set of lanes (one per
channel, named ``<channel>:prices``): coalescing (only the newest version of a SKU's price
waits), the channel's limits and retries, dead letters after ``max_attempts``, dirty SKUs
pushed again when the channel answers. A lane item's ``quantity`` is the channel's price in
minor units and its ``version`` the PriceChange version, so a channel never receives an
older price after a newer one.

For each current base price and each channel that maps the SKU and has price rules, the
channel's price is computed (``connectors.framework.pricing``). A price below the channel's
floor is not offered: an alert says so and the channel keeps its previous price. Drift is the
stock drift detector run over the price lanes: reconciliation reads every acknowledged price
back, alerts on a difference and pushes ours again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connectors.framework.drift import DriftAlert, DriftDetector
from connectors.framework.engine import LanePolicy, OutboundEngine
from connectors.framework.prices import ItemResult, PriceItem, PriceReader, PriceWriter
from connectors.framework.pricing import (
    BasePrice,
    BelowFloor,
    PriceBook,
    PriceRule,
    PriceRuleError,
    Rates,
    channel_price,
)
from connectors.framework.types import DeadLetterSink, Outcome, PushItem, PushResult
from schemas.times import now_ms

log = logging.getLogger(__name__)

LANE_SUFFIX = ":prices"

FloorAlert = Callable[[str, BelowFloor], Awaitable[None]]
"""(channel, why) → alert: a price was not pushed because it is below the channel's floor."""


def lane_name(channel: str) -> str:
    return f"{channel}{LANE_SUFFIX}"


class PricePusher:
    """A :class:`connectors.framework.types.ChannelPusher` over a price writer, so the
    engine's lanes push prices: ``PushItem.quantity`` is the price in minor units."""

    def __init__(self, channel: str, writer: PriceWriter) -> None:
        self.channel = lane_name(channel)
        self.writer = writer
        self.max_batch = max(1, int(getattr(writer, "max_batch", 100)))
        self.currencies: dict[str, str] = {}  # sku -> currency of its channel price

    async def push(self, items: Sequence[PushItem]) -> list[PushResult]:
        prices = [
            PriceItem(i.sku, i.quantity, self.currencies.get(i.sku, "EUR"), i.version)
            for i in items
        ]
        answers: list[ItemResult] = await self.writer.set_prices(prices)
        by_sku = {a.sku: a for a in answers}
        results = []
        for item in items:
            answer = by_sku.get(item.sku)
            if answer is None:
                results.append(PushResult(item, Outcome.RETRY, "no result from price writer"))
            else:
                results.append(PushResult(item, answer.outcome, answer.error, answer.retry_after))
        return results

    async def read(self, skus: Sequence[str]) -> dict[str, int]:
        if isinstance(self.writer, PriceReader):
            return await self.writer.get_prices(skus)
        return {}  # a channel that cannot be read back is not reconciled

    def observed(self, sku: str, quantity: int) -> None:
        return None  # prices are written absolutely: nothing to remember


@dataclass(frozen=True)
class PriceChannel:
    """One channel whose prices are pushed."""

    name: str
    rule: PriceRule
    writer: PriceWriter
    skus: frozenset[str]
    policy: LanePolicy = field(default_factory=LanePolicy)


async def _no_floor_alert(channel: str, why: BelowFloor) -> None:
    return None


class PriceSync:
    """Keeps the price book and offers each channel's price to its lane."""

    def __init__(
        self,
        channels: Sequence[PriceChannel],
        rates: Rates,
        *,
        floor_alert: FloorAlert = _no_floor_alert,
        drift_alert: DriftAlert | None = None,
        dead_letter: DeadLetterSink | None = None,
        seed: int | None = None,
    ) -> None:
        self.channels = {c.name: c for c in channels}
        self.rates = rates
        self.book = PriceBook()
        self.pushers = {c.name: PricePusher(c.name, c.writer) for c in channels}
        kwargs: dict[str, Any] = {} if dead_letter is None else {"dead_letter": dead_letter}
        self.engine = OutboundEngine(
            self.pushers.values(),
            policies={lane_name(c.name): c.policy for c in channels},
            seed=seed,
            **kwargs,
        )
        self.drift = (
            DriftDetector(self.engine)
            if drift_alert is None
            else DriftDetector(self.engine, alert=drift_alert)
        )
        self._floor_alert = floor_alert
        self.blocked: dict[tuple[str, str], BelowFloor] = {}  # (channel, sku) -> why

    async def take(self, change: Mapping[str, Any], now: int | None = None) -> int:
        """A PriceChange record read from the topic; returns the pushes it queued."""
        current = self.book.add(change, now_ms() if now is None else now)
        return 0 if current is None else await self.offer(current)

    async def tick(self, now: int | None = None) -> int:
        """Scheduled prices that became due; returns the pushes they queued."""
        queued = 0
        for price in self.book.due(now_ms() if now is None else now):
            queued += await self.offer(price)
        return queued

    async def offer(self, price: BasePrice) -> int:
        queued = 0
        for channel in self.channels.values():
            if price.sku not in channel.skus:
                continue
            try:
                shown = channel_price(
                    channel.rule,
                    self.rates,
                    price.sku,
                    price.amount_minor,
                    price.currency,
                    price.cost_minor,
                )
            except BelowFloor as why:
                self.blocked[(channel.name, price.sku)] = why
                log.warning("price floor channel=%s: %s", channel.name, why)
                await self._floor_alert(channel.name, why)
                continue
            except PriceRuleError as exc:
                log.warning("price not pushed channel=%s sku=%s: %s", channel.name, price.sku, exc)
                continue
            self.blocked.pop((channel.name, price.sku), None)
            pusher = self.pushers[channel.name]
            pusher.currencies[price.sku] = shown.currency
            item = PushItem(
                channel=pusher.channel,
                sku=price.sku,
                quantity=shown.amount_minor,
                version=price.version,
                occurred_at=price.valid_from,
            )
            queued += self.engine.lanes[pusher.channel].offer(item)
        return queued

    async def reconcile(self) -> dict[str, int]:
        """Read back every channel's acknowledged prices; drifting SKUs per channel."""
        return {name: await self.drift.reconcile(lane_name(name)) for name in self.channels}

    def start(self) -> None:
        self.engine.start()

    async def stop(self) -> None:
        await self.drift.close()
        await self.engine.stop()
