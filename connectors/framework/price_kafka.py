"""Kafka glue of price propagation: the price changes source and the price alerts.

The source reads ``prices.events.v1`` whole from the start at every start (no consumer
group offsets: the book is rebuilt, and every channel's current price pushed once), then
follows it. A record that cannot be decoded, or is no usable PriceChange, is dead-lettered
and skipped; the records around it are kept.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, TopicPartition

from connectors.framework import metrics, redact
from connectors.framework.kafka import STOPPED, KafkaPublisher, RecordDecoder
from connectors.framework.price_sync import LANE_SUFFIX
from connectors.framework.pricing import BelowFloor
from schemas.codec import Codec
from schemas.prices import problems
from schemas.times import now_ms
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)


class PriceSource:
    """Checked PriceChange records of ``prices.events.v1``, from the start, then new ones."""

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        *,
        group_id: str,
        dead_letters: KafkaPublisher | None = None,
    ) -> None:
        self._consumer = Consumer(
            consumer_config(settings, group_id, **{"enable.auto.commit": False})
        )
        self._codec = codec
        self._dead_letters = dead_letters
        self._decoder = RecordDecoder(codec, dead_letters, "prices")
        self._stopping = False
        self.consumed = 0
        self.rejected = 0

    def stop(self) -> None:
        self._stopping = True
        self._decoder.stopping = True

    def close(self) -> None:
        self._consumer.close()

    def _assign(self) -> None:
        name = topics.PRICE_EVENTS.name
        while True:
            try:
                meta = self._consumer.list_topics(name, timeout=10)
                partitions = meta.topics[name].partitions
                if partitions:
                    break
            except (KafkaException, KeyError) as exc:
                log.warning("%s: metadata not available yet: %s", name, exc)
            if self._stopping:
                return
            time.sleep(0.5)
        # from the first offset of each partition: the whole history rebuilds the book
        self._consumer.assign(
            [TopicPartition(name, p, OFFSET_BEGINNING) for p in sorted(partitions)]
        )

    async def changes(self) -> AsyncIterator[dict[str, Any]]:
        await asyncio.to_thread(self._assign)
        while not self._stopping:
            msg = await asyncio.to_thread(self._consumer.poll, 0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("%s consumer error: %s", topics.PRICE_EVENTS.name, msg.error())
                continue
            record = await self._decoder.decode(msg)
            if record is STOPPED:
                break
            self.consumed += 1
            if record is None:
                self.rejected += 1
                continue
            found = problems(record)
            if found:
                self.rejected += 1
                await self._reject(msg, found[0].reason, "; ".join(str(p) for p in found))
                continue
            yield record

    async def _reject(self, msg: Message, reason: str, error: str) -> None:
        log.warning(
            "%s[%s] offset=%s: not a usable price change (%s); dead-lettered",
            msg.topic(),
            msg.partition(),
            msg.offset(),
            error,
        )
        letter = dead_letter(
            metrics.DEAD_LETTERS,
            component="connectors",
            reason=reason,
            error=error,
            original=msg.value() or b"",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            key=msg.key(),
        )
        if self._dead_letters is not None:
            value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, letter)
            await self._dead_letters.produce(
                topics.STOCK_DEADLETTER.name, [(msg.key() or b"", value)]
            )


class KafkaPriceAlerts:
    """Price alerts on ``stock.alerts.v1``: a push blocked by the floor (kind ``other``, value
    the refused price and threshold the floor, in minor units) and price drift (kind
    ``drift``). A failure to publish is logged, never raised."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def floor(self, channel: str, why: BelowFloor) -> None:
        at = now_ms()
        await self._send(
            {
                "alert_id": f"price-floor:{channel}:{why.sku}:{why.price_minor}:{why.floor_minor}",
                "kind": "other",
                "sku": why.sku,
                "location": None,
                "channel": channel,
                "value": why.price_minor,
                "threshold": why.floor_minor,
                "message": f"price below floor on {channel}: {why}",
                "event_id": None,
                "at": at,
            },
            "price_floor",
        )

    async def drift(self, lane: str, sku: str, ours: int, theirs: int, source: str) -> None:
        channel = lane.removesuffix(LANE_SUFFIX)
        at = now_ms()
        log.warning(
            "price drift channel=%s sku=%s ours=%d theirs=%d: pushing ours again",
            channel,
            sku,
            ours,
            theirs,
        )
        await self._send(
            {
                "alert_id": f"price-drift:{channel}:{sku}:{source}:{at}",
                "kind": "drift",
                "sku": sku,
                "location": None,
                "channel": channel,
                "value": theirs - ours,
                "threshold": ours,
                "message": f"price drift: {channel} shows {theirs} (minor units) for {sku} "
                f"where the price pushed is {ours} (found by {source}); ours is pushed again",
                "event_id": None,
                "at": at,
            },
            "price_drift",
        )

    async def _send(self, record: dict[str, Any], kind: str) -> None:
        sku = str(record["sku"])
        try:
            value = self._codec.encode(topics.STOCK_ALERTS.value_schema, record)
            await self._publisher.produce(topics.STOCK_ALERTS.name, [(sku.encode(), value)])
        except Exception as exc:  # the push decision stands whatever becomes of the alert
            log.warning("%s alert sku=%s not published: %s", kind, sku, redact.describe(exc))
            return
        metrics.ALERTS.labels(str(record["channel"]), kind).inc()
