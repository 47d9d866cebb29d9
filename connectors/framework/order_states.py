"""``orders.state.v1`` → :class:`CancelHandler`: orders cancelled here reach their channel.

Read as a consumer group (``<consumer_group>-orders``), like the decisions: poll one
record, decode it, let the handler act (the channel answered, or the failure was
dead-lettered), and only then count its offset as done; offsets are committed every few
seconds and at the end, so a crash re-reads at most those seconds of states, which the
handler and the channels recognise (idempotent). An undecodable record is dead-lettered.

A group with no committed offset starts at the *end* of the topic: a first start must not
cancel on the channels every order ever cancelled here. The position taken is committed at
once, so nothing after it is skipped later.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.framework import metrics
from connectors.framework.cancellations import CancelHandler, CancelRequest
from connectors.framework.kafka import STOPPED, KafkaPublisher, RecordDecoder
from schemas.codec import Codec
from schemas.times import now_ms
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)


class CancelFailures:
    """A cancellation the channel did not take: a dead letter (order id, channel, state
    version; no personal data) and a ``drift`` alert saying to cancel it by hand."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, request: CancelRequest, error: str) -> None:
        key = request.order_id.encode()
        letter = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{request.channel}",
            reason="cancel_failed",
            error=error,
            original=orjson.dumps(
                {
                    "order_id": request.order_id,
                    "channel": request.channel,
                    "version": request.version,
                    "status": "cancelled",
                }
            ),
            topic=topics.ORDERS_STATE.name,
            key=key,
        )
        alert = {
            "alert_id": f"cancel:{request.order_id}:{request.version}",
            "kind": "drift",
            "sku": "",
            "location": None,
            "channel": request.channel,
            "value": 0,
            "threshold": 0,
            "message": f"order {request.order_id} was cancelled here but {request.channel} did "
            f"not cancel it ({error.split(':', 1)[0]}); cancel it on the channel by hand",
            "event_id": None,
            "at": now_ms(),
        }
        try:
            await self._publisher.produce(
                topics.STOCK_DEADLETTER.name,
                [(key, self._codec.encode(topics.STOCK_DEADLETTER.value_schema, letter))],
            )
            await self._publisher.produce(
                topics.STOCK_ALERTS.name,
                [(key, self._codec.encode(topics.STOCK_ALERTS.value_schema, alert))],
            )
        except Exception as exc:  # the failure is logged and counted whatever happens here
            log.warning("order cancel %s: dead letter not published: %s", request.order_id, exc)
            return
        metrics.ALERTS.labels(request.channel, "drift").inc()


class OrderStatesSource:
    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        handler: CancelHandler,
        *,
        group_id: str,
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
    ) -> None:
        self._consumer = Consumer(consumer_config(settings, group_id))
        self._decoder = RecordDecoder(codec, dead_letters, "order states")
        self._handler = handler
        self._commit_every = commit_every_s
        self._stopping = False
        self._dirty = False
        self.assigned = False
        self.consumed = 0

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=10)
        fresh = []
        for tp, done in zip(partitions, committed, strict=True):
            if done.offset >= 0:
                tp.offset = done.offset
            else:
                _, tp.offset = consumer.get_watermark_offsets(tp, timeout=10)
                fresh.append(TopicPartition(tp.topic, tp.partition, tp.offset))
        consumer.assign(partitions)
        if fresh:
            consumer.commit(offsets=fresh, asynchronous=False)
        self.assigned = True
        log.info(
            "%s assigned: %s",
            topics.ORDERS_STATE.name,
            " ".join(f"[{tp.partition}] from={tp.offset}" for tp in partitions),
        )

    def stop(self) -> None:
        self._stopping = True
        self._decoder.stopping = True

    def commit(self) -> None:
        if not self._dirty:
            return
        try:
            self._consumer.commit(asynchronous=False)
            self._dirty = False
        except KafkaException as exc:
            log.warning("%s commit failed (retried later): %s", topics.ORDERS_STATE.name, exc)

    def close(self) -> None:
        self.commit()
        self._consumer.close()

    async def run(self) -> None:
        self._consumer.subscribe([topics.ORDERS_STATE.name], on_assign=self._on_assign)
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while not self._stopping:
            msg = await asyncio.to_thread(self._consumer.poll, 0.5)
            if loop.time() - last_commit > self._commit_every:
                self.commit()
                last_commit = loop.time()
            if msg is None:
                continue
            if msg.error() is not None:
                log.warning("%s consumer error: %s", topics.ORDERS_STATE.name, msg.error())
                continue
            self.consumed += 1
            state = await self._decoder.decode(msg)
            if state is STOPPED:  # stopping during a registry outage: not read
                break
            if state is not None:
                await self._handler.handle(state)
            self._dirty = True
