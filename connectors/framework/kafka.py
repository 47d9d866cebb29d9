"""Thin Kafka adapters: the event publisher, the dead-letter sink and the levels source.

Everything here is I/O glue; the logic it feeds (intake, engine) is tested without Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, Message, Producer

from connectors.framework.engine import OutboundEngine
from connectors.framework.types import PushItem, StockEventDict
from schemas.codec import Codec, CodecError
from streams import topics
from streams.deadletter import dead_letter
from streams.kafka_config import consumer_config, producer_config
from streams.settings import Settings

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """Kafka did not acknowledge an event; the webhook answers 503 so the channel retries."""


class KafkaPublisher:
    """Encodes StockEvents with the codec and produces them to ``stock.events.v1`` keyed by
    SKU (acks=all, idempotent, murmur2 like Faust); ``await publisher(events)`` returns once
    Kafka acknowledged every one of them."""

    def __init__(self, settings: Settings, codec: Codec, *, timeout_s: float = 10.0) -> None:
        self._producer = Producer(
            producer_config(settings, **{"client.id": "stockflow-connectors"})
        )
        self._codec = codec
        self._timeout = timeout_s

    async def __call__(self, events: Sequence[StockEventDict]) -> None:
        await self.produce(
            topics.STOCK_EVENTS.name,
            [
                (e["sku"].encode(), self._codec.encode(topics.STOCK_EVENTS.value_schema, e))
                for e in events
            ],
        )

    async def produce(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> None:
        errors: list[str] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                errors.append(str(err))

        for key, value in records:
            self._producer.produce(topic, value=value, key=key, on_delivery=delivered)
        remaining = await asyncio.to_thread(self._producer.flush, self._timeout)
        if remaining or errors:
            raise PublishError(f"{topic}: {remaining} unacknowledged, errors {errors[:3]}")

    def close(self) -> None:
        self._producer.flush(self._timeout)


class KafkaDeadLetters:
    """The engine's dead-letter sink: a DeadLetter record whose original bytes are the push
    item as JSON (the level version, SKU, channel and quantity that could not be pushed)."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, item: PushItem, error: str) -> None:
        record = dead_letter(
            component=f"connector:{item.channel}",
            reason="push_failed",
            error=error,
            original=orjson.dumps(item),
            key=item.sku.encode(),
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(item.sku.encode(), value)])


async def levels_from_kafka(
    settings: Settings,
    codec: Codec,
    engine: OutboundEngine,
    *,
    group_id: str = "stockflow-outbound",
    commit_every_s: float = 5.0,
) -> AsyncIterator[dict[str, Any]]:
    """Decoded ``stock.levels.v1`` records, for ``engine.consume``. Offsets are committed
    only while every lane is idle, i.e. after everything offered was pushed or given up on;
    after a crash the levels since the last commit are read again (pushes are absolute and
    ordered by version, so that is harmless)."""
    consumer = Consumer(consumer_config(settings, group_id))
    consumer.subscribe([topics.STOCK_LEVELS.name])
    loop = asyncio.get_running_loop()
    last_commit = loop.time()
    dirty = False
    try:
        while True:
            msg = await asyncio.to_thread(consumer.poll, 0.5)
            if (
                dirty
                and loop.time() - last_commit > commit_every_s
                and all(lane.idle for lane in engine.lanes.values())
            ):
                with contextlib.suppress(Exception):
                    consumer.commit(asynchronous=False)
                last_commit, dirty = loop.time(), False
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("%s consumer error: %s", topics.STOCK_LEVELS.name, msg.error())
                continue
            try:
                _, level = codec.decode(msg.value() or b"")
            except CodecError as exc:
                log.warning(
                    "%s[%s] offset=%s undecodable level: %s",
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    exc,
                )
                continue
            dirty = True
            yield level
    finally:
        consumer.close()
