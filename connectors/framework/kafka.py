"""Thin Kafka adapters: the event publisher, the dead-letter and alert sinks and the levels
source.

Everything here is I/O glue; the logic it feeds (intake, engine) is tested without Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Gauge

from connectors.framework import metrics, redact
from connectors.framework.engine import OutboundEngine
from connectors.framework.types import PushItem, StockEventDict
from schemas.codec import Codec, CodecError
from schemas.times import now_ms
from streams.kernel import topics
from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.settings import Settings

log = logging.getLogger(__name__)

STOPPED: dict[str, Any] = {}  # sentinel: the source stopped while waiting for the registry

REGISTRY_WAITING = Gauge(
    "stockflow_connector_registry_waiting",
    "1 while the levels source waits for the schema registry (records are not dead-lettered).",
)


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
        try:
            records = [
                (e["sku"].encode(), self._codec.encode(topics.STOCK_EVENTS.value_schema, e))
                for e in events
            ]
        except CodecError as exc:
            if exc.reason != "registry_unavailable":
                raise
            # Not the events' fault: the webhook answers 503 and the channel delivers again.
            raise PublishError(f"{topics.STOCK_EVENTS.name}: {exc}") from None
        await self.produce(topics.STOCK_EVENTS.name, records)

    async def publish_orders(self, orders: Sequence[dict[str, Any]]) -> None:
        """Order records to ``orders.v1`` keyed by order id, acknowledged before returning."""
        try:
            records = [
                (o["order_id"].encode(), self._codec.encode(topics.ORDERS.value_schema, o))
                for o in orders
            ]
        except CodecError as exc:
            if exc.reason != "registry_unavailable":
                raise
            raise PublishError(f"{topics.ORDERS.name}: {exc}") from None
        await self.produce(topics.ORDERS.name, records)

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


class KafkaAudit:
    """The receiver's access audit: each record to ``stockflow.audit.v1``, keyed by who,
    acknowledged before the answer leaves."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, record: dict[str, Any]) -> None:
        value = self._codec.encode(topics.STOCKFLOW_AUDIT.value_schema, record)
        await self._publisher.produce(
            topics.STOCKFLOW_AUDIT.name, [(record["who"].encode(), value)]
        )


class KafkaDeadLetters:
    """The engine's dead-letter sink: a DeadLetter record whose original bytes are the push
    item as JSON (the level version, SKU, channel and quantity that could not be pushed)."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, item: PushItem, error: str) -> None:
        record = dead_letter(
            metrics.DEAD_LETTERS,
            component=f"connector:{item.channel}",
            reason="push_failed",
            error=redact.scrub(error),
            original=orjson.dumps(item),
            key=item.sku.encode(),
        )
        value = self._codec.encode(topics.STOCK_DEADLETTER.value_schema, record)
        await self._publisher.produce(topics.STOCK_DEADLETTER.name, [(item.sku.encode(), value)])


class KafkaDriftAlerts:
    """Drift as ``stock.alerts.v1`` records of kind ``drift`` (the connectors write only this
    kind; see the topic registry): the channel showed ``theirs`` where the ledger's figure,
    last acknowledged by the channel, is ``ours``. ``value`` is the difference (theirs - ours)
    and ``threshold`` our figure. A failure to publish is logged, never raised: the quantity
    is pushed again whatever becomes of the alert."""

    def __init__(self, publisher: KafkaPublisher, codec: Codec) -> None:
        self._publisher = publisher
        self._codec = codec

    async def __call__(self, channel: str, sku: str, ours: int, theirs: int, source: str) -> None:
        log.warning(
            "drift channel=%s sku=%s ours=%d theirs=%d source=%s: pushing ours again",
            channel,
            sku,
            ours,
            theirs,
            source,
        )
        at = now_ms()
        record = {
            "alert_id": f"drift:{channel}:{sku}:{source}:{at}",
            "kind": "drift",
            "sku": sku,
            "location": None,
            "channel": channel,
            "value": theirs - ours,
            "threshold": ours,
            "message": f"{channel} shows {theirs} for {sku} where the ledger's figure is {ours} "
            f"(found by {source}); {ours} is pushed again",
            "event_id": None,
            "at": at,
        }
        try:
            value = self._codec.encode(topics.STOCK_ALERTS.value_schema, record)
            await self._publisher.produce(topics.STOCK_ALERTS.name, [(sku.encode(), value)])
        except Exception as exc:  # the correction goes ahead without the alert
            log.warning("drift alert channel=%s sku=%s not published: %s", channel, sku, exc)
            return
        metrics.ALERTS.labels(channel, "drift").inc()


class RecordDecoder:
    """Decodes what a connectors consumer reads. While the schema registry does not answer it
    waits and tries again (backoff up to 30 s): a record is never dead-lettered because the
    registry is unwell. A record that can never be decoded is dead-lettered and skipped
    (``None``); ``STOPPED`` when the consumer stops during a registry wait."""

    def __init__(self, codec: Codec, dead_letters: KafkaPublisher | None, what: str) -> None:
        self._codec = codec
        self._dead_letters = dead_letters
        self._what = what
        self.stopping = False

    async def decode(self, msg: Message) -> dict[str, Any] | None:
        raw = msg.value() or b""
        try:
            _, record = await self._decode_waiting(raw, msg)
        except CodecError as exc:
            letter = dead_letter(
                metrics.DEAD_LETTERS,
                component="connectors",
                reason=exc.reason,
                error=str(exc),
                original=raw,
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
            return None
        return record

    async def _decode_waiting(self, raw: bytes, msg: Message) -> tuple[str, dict[str, Any]]:
        delay, since = 0.5, 0.0
        while True:
            try:
                decoded = self._codec.decode(raw)
            except CodecError as exc:
                if exc.reason != "registry_unavailable":
                    raise
                if self.stopping:
                    return "", STOPPED
                if not since:
                    since = asyncio.get_running_loop().time()
                    REGISTRY_WAITING.set(1)
                    log.warning(
                        "%s[%s] offset=%s: schema registry unavailable (%s); waiting, retried"
                        " with backoff, nothing dead-lettered",
                        msg.topic(),
                        msg.partition(),
                        msg.offset(),
                        exc,
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            if since:
                REGISTRY_WAITING.set(0)
                log.info(
                    "schema registry back after %.1f s; %s flow again",
                    asyncio.get_running_loop().time() - since,
                    self._what,
                )
            return decoded


class LevelsSource:
    """Decoded ``stock.levels.v1`` records for the engine, never older than what was pushed.

    Ordering across a restart: offsets are committed only while every lane is idle, so after
    a crash the levels since the last commit are read again, and among them may be versions
    older than one already pushed. So, after each partition assignment, the source reads up
    to the high watermark it saw at assignment (the *catch-up*) keeping only the newest level
    per SKU, and hands those out only then. Anything pushed before the restart came from an
    offset below that watermark, so the newest level of its SKU up to the watermark is at
    least as new; everything after the watermark is newer still (one SKU, one partition,
    versions only increase). Nothing is committed before the catch-up is handed out.

    A group with no committed offset starts at ``offset_reset`` (``earliest``: the compacted
    topic gives the current quantity of every SKU; ``latest``: only new changes). With
    ``rebuild`` (the group's saved lane state is gone), the first assignment reads from the
    start of the compacted topic whatever was committed, so every SKU's current quantity is
    pushed and acknowledged again, and reconciliation covers every SKU once more.
    """

    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        engine: OutboundEngine,
        *,
        group_id: str,
        offset_reset: str = "earliest",
        commit_every_s: float = 5.0,
        dead_letters: KafkaPublisher | None = None,
        rebuild: bool = False,
    ) -> None:
        # Static membership: a restarted process (even after kill -9) takes its partitions
        # back at once instead of waiting out the dead member's session. One connectors
        # process per group; a second one with the same group fences the first.
        self._consumer = Consumer(
            consumer_config(settings, group_id, **{"group.instance.id": f"{group_id}-1"})
        )
        self._codec = codec
        self._engine = engine
        self._reset = offset_reset
        self._decoder = RecordDecoder(codec, dead_letters, "levels")
        self._rebuild = rebuild
        self._commit_every = commit_every_s
        self._dead_letters = dead_letters
        self._targets: dict[int, int] = {}  # partition -> high watermark at assignment
        self.positions: dict[int, int] = {}  # partition -> next offset to read
        self._buffer: dict[str, dict[str, Any]] = {}
        self.caught_up = False
        self.assigned = False
        self.consumed = 0
        self._dirty = False
        self._stopping = False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=10)
        for tp, done in zip(partitions, committed, strict=True):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if done.offset >= 0:
                tp.offset = low if self._rebuild else done.offset
            else:
                tp.offset = high if self._reset == "latest" else low
            self._targets[tp.partition] = high
            self.positions[tp.partition] = tp.offset
        self._rebuild = False  # once: later assignments resume from the commits
        consumer.assign(partitions)  # start exactly where decided above
        self.caught_up = False
        self.assigned = True
        log.info(
            "%s assigned: %s",
            topics.STOCK_LEVELS.name,
            " ".join(
                f"[{tp.partition}] from={tp.offset} catch_up_to={self._targets[tp.partition]}"
                for tp in partitions
            ),
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._targets.pop(tp.partition, None)
            self.positions.pop(tp.partition, None)

    def stop(self) -> None:
        """Ask the iteration to end after the current poll (at most 0.5 s)."""
        self._stopping = True
        self._decoder.stopping = True

    def commit_if_idle(self) -> bool:
        """Commit what was read, if everything handed out has been pushed or given up on."""
        if not (self._dirty and self.caught_up):
            return False
        if not all(lane.idle for lane in self._engine.lanes.values()):
            return False
        for lane in self._engine.lanes.values():
            lane.save()  # the acknowledged quantities first: reconciliation after a restart
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            log.warning("%s commit failed (retried later): %s", topics.STOCK_LEVELS.name, exc)
            return False
        self._dirty = False
        return True

    def close(self) -> None:
        self._consumer.close()

    async def levels(self) -> AsyncIterator[dict[str, Any]]:
        self._consumer.subscribe(
            [topics.STOCK_LEVELS.name], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        loop = asyncio.get_running_loop()
        last_commit = loop.time()
        while not self._stopping:
            msg = await asyncio.to_thread(self._consumer.poll, 0.5)
            if loop.time() - last_commit > self._commit_every and self.commit_if_idle():
                last_commit = loop.time()
            if msg is None or msg.error() is not None:
                if msg is not None:
                    log.warning("%s consumer error: %s", topics.STOCK_LEVELS.name, msg.error())
                if self.assigned and not self.caught_up and self._reached_targets(True):
                    for newest in self._end_catch_up():
                        yield newest
                continue
            level = await self._decode(msg)
            if level is STOPPED:  # stopping during a registry outage: not read, not committed
                break
            partition = msg.partition() or 0
            self.positions[partition] = (msg.offset() or 0) + 1
            self.consumed += 1
            self._dirty = True
            if level is None:
                continue
            if self.caught_up:
                yield level
                continue
            kept = self._buffer.get(level["sku"])
            if kept is None or int(level["version"]) > int(kept["version"]):
                self._buffer[level["sku"]] = level
            if self._reached_targets(False):
                for newest in self._end_catch_up():
                    yield newest

    def _reached_targets(self, ask_broker: bool) -> bool:
        """True once every assigned partition was read up to its catch-up watermark. When
        idle, ask the client for its positions too: they move past records we never see
        (transaction markers), which message offsets alone would not show."""
        if ask_broker:
            for tp in self._consumer.position(self._consumer.assignment()):
                if tp.offset >= 0:
                    self.positions[tp.partition] = max(
                        self.positions.get(tp.partition, 0), tp.offset
                    )
        return all(self.positions.get(p, 0) >= t for p, t in self._targets.items())

    def _end_catch_up(self) -> list[dict[str, Any]]:
        newest = list(self._buffer.values())
        self._buffer.clear()
        self.caught_up = True
        log.info(
            "%s caught up: newest level of %d SKUs handed out; positions %s",
            topics.STOCK_LEVELS.name,
            len(newest),
            self.positions,
        )
        return newest

    async def _decode(self, msg: Message) -> dict[str, Any] | None:
        return await self._decoder.decode(msg)
