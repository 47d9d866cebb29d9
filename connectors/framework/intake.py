"""The one door inbound events go through, from webhooks and from polling alike.

It drops a delivery seen before (same delivery key), a payload older than one already
processed for the same order, and any event whose deterministic ``event_id`` was already
published, so webhooks and polling together hand each fact to Kafka once. Order records
(``orders.v1``) go first, with the same rule on their ``event_id``. Keys are
remembered only after the publisher succeeded: a failed publish is retried by the channel
(or the next poll) and then gets through.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from connectors.framework import metrics
from connectors.framework.bundles import BundleExpander
from connectors.framework.dedupe import DedupeStore, HighWater
from connectors.framework.types import (
    Delivery,
    OrderPublisher,
    Publisher,
    StockEventDict,
    StockObservation,
)
from streams.bundles.expand import BundleEventError

ObservationSink = Callable[[Sequence[StockObservation]], Awaitable[None]]
# a StockEvent of a bundle the ledger cannot take (connectors.framework.bundles)
BundleRefusals = Callable[[StockEventDict, BundleEventError], Awaitable[None]]


class IntakeResult(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    STALE = "stale"
    PING = "ping"


class Intake:
    def __init__(
        self,
        publish: Publisher,
        *,
        observe: ObservationSink | None = None,
        dedupe: DedupeStore | None = None,
        high_water: HighWater | None = None,
        publish_orders: OrderPublisher | None = None,
        bundles: BundleExpander | None = None,
        bundle_refusals: BundleRefusals | None = None,
    ) -> None:
        self._publish = publish
        self._publish_orders = publish_orders
        self._observe = observe
        self._bundles = bundles
        self._bundle_refusals = bundle_refusals
        self.dedupe = dedupe or DedupeStore()
        self.high_water = high_water or HighWater()

    async def accept(self, delivery: Delivery) -> IntakeResult:
        """Publish what is new in ``delivery``; raises if the publisher fails."""
        channel = delivery.channel
        if delivery.ping:
            return IntakeResult.PING
        if any(self.dedupe.seen(f"delivery:{k}") for k in delivery.delivery_keys):
            return IntakeResult.DUPLICATE
        if (
            delivery.order_key is not None
            and delivery.order_version is not None
            and self.high_water.is_stale(delivery.order_key, delivery.order_version)
        ):
            return IntakeResult.STALE
        orders = [o for o in delivery.orders if not self.dedupe.seen(f"order:{o['event_id']}")]
        if orders:
            if self._publish_orders is None:
                raise RuntimeError(f"{channel}: Order records to publish but no orders publisher")
            await self._publish_orders(orders)
            for order in orders:
                self.dedupe.add(f"order:{order['event_id']}")
                metrics.ORDERS_PUBLISHED.labels(channel, order["type"]).inc()
        fresh = [e for e in delivery.events if not self.dedupe.seen(f"event:{e['event_id']}")]
        metrics.EVENTS_DEDUPLICATED.labels(channel).inc(len(delivery.events) - len(fresh))
        if fresh:
            await self._publish_events(fresh)
            for event in fresh:
                self.dedupe.add(f"event:{event['event_id']}")
                metrics.EVENTS_PUBLISHED.labels(channel, event["type"]).inc()
        if delivery.observations and self._observe is not None:
            await self._observe(delivery.observations)
        for key in delivery.delivery_keys:
            self.dedupe.add(f"delivery:{key}")
        return IntakeResult.ACCEPTED

    async def _publish_events(self, events: list[StockEventDict]) -> None:
        """A bundle's events as its components' (refused ones dead-lettered), then publish."""
        if self._bundles is None:
            await self._publish(events)
            return
        kept, refused = self._bundles(events)
        for event, error in refused:
            if self._bundle_refusals is None:
                raise error
            await self._bundle_refusals(event, error)
        if kept:
            await self._publish(kept)
