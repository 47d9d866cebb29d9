"""Kafka clients of the asyncio services outside Faust (purchasing, waves, shipping): a
publisher that waits for Kafka's acknowledgement, and topic readers driven from asyncio (each
blocking call in a thread).

* :class:`Publisher`: one idempotent, ``acks=all`` confluent-kafka producer
  (``streams.kernel.kafka_config``); :meth:`Publisher.send` returns once every record of the
  batch is acknowledged, or raises :class:`PublishError` (nothing is then assumed written).
* :class:`TopicReader`: ``assign()`` of every partition from the beginning (no group: the
  compacted proposals topic is read whole at every start), :meth:`TopicReader.catch_up`
  reads to the end offsets of the moment it was called, :meth:`TopicReader.poll` follows.
* :class:`GroupReader`: a consumer group (the receipts follower), offsets committed by
  :meth:`GroupReader.commit` once what was read has been acted on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import Codec, CodecError
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec

log = logging.getLogger("stockflow.purchasing")

T = TypeVar("T")

READER_GROUP_PREFIX = "stockflow-purchasing-reader-"  # assign() only, never joins
BATCH = 500
POLL_S = 0.5


class PublishError(RuntimeError):
    """Kafka did not acknowledge every record of a batch; nothing may be assumed written."""


class Publisher:
    def __init__(
        self,
        settings: Settings,
        codec: Codec,
        timeout_s: float | None = None,
        retry_hint: str = "the change was not made, try again",
    ) -> None:
        self.producer = Producer(producer_config(settings))
        self.codec = codec
        self.timeout_s = settings.produce_timeout_s if timeout_s is None else timeout_s
        self.retry_hint = retry_hint  # what the caller's client should do on PublishError

    async def send(self, records: Sequence[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
        """Encode, produce and wait for the acknowledgement of every ``(topic, key, record)``
        in order; PublishError if one is refused or not acknowledged in time."""
        if records:
            await asyncio.to_thread(self._send, records)

    def _send(self, records: Sequence[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
        failures: list[str] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(str(err))

        for spec, key, record in records:
            value = self.codec.encode(spec.value_schema, record)
            produce(self.producer, spec.name, key.encode(), value, on_delivery=delivered)
        left = self.producer.flush(self.timeout_s)
        if left or failures:
            raise PublishError(
                f"{left} record(s) not acknowledged within {self.timeout_s:.0f} s"
                + (f"; refused: {'; '.join(failures[:3])}" if failures else "")
                + f"; {self.retry_hint}"
            )

    def close(self) -> None:
        self.producer.flush(self.timeout_s)


def _decode(codec: Codec, spec: TopicSpec, msg: Message) -> dict[str, Any] | None:
    value = msg.value()
    if value is None:
        return None
    try:
        return codec.decode_as(spec.value_schema, value)
    except CodecError as exc:
        log.warning(
            "%s[%s] offset=%s: unreadable record skipped (%s)",
            spec.name,
            msg.partition(),
            msg.offset(),
            exc,
        )
        return None


class _OneCallAtATime:
    """A consumer's blocking calls run in threads, one at a time: closing waits for the
    poll under way (a consumer must not be closed while another thread uses it)."""

    def __init__(self) -> None:
        self._io = threading.Lock()

    def _locked(self, call: Callable[..., T], *args: Any) -> T:
        with self._io:
            return call(*args)

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._locked, call, *args)


class TopicReader(_OneCallAtATime):
    """Every partition of ``spec`` from its first offset, read from asyncio."""

    def __init__(self, settings: Settings, spec: TopicSpec, codec: Codec) -> None:
        super().__init__()
        self.spec = spec
        self.codec = codec
        self.consumer = Consumer(
            consumer_config(
                settings,
                f"{READER_GROUP_PREFIX}{uuid.uuid4().hex[:8]}",
                **{"fetch.wait.max.ms": 100},
            )
        )
        self.position: dict[int, int] = {}

    def _assign(self) -> list[TopicPartition]:
        topic = self.consumer.list_topics(self.spec.name, timeout=10).topics[self.spec.name]
        parts = []
        for p in sorted(topic.partitions):
            low, _ = self.consumer.get_watermark_offsets(
                TopicPartition(self.spec.name, p), timeout=10, cached=False
            )
            parts.append(TopicPartition(self.spec.name, p, low))
            self.position[p] = low
        self.consumer.assign(parts)
        return parts

    def _ends(self) -> dict[int, int]:
        return {
            p: int(
                self.consumer.get_watermark_offsets(
                    TopicPartition(self.spec.name, p), timeout=10, cached=False
                )[1]
            )
            for p in self.position
        }

    def _catch_up(self, timeout_s: float) -> list[dict[str, Any]]:
        if not self.position:
            self._assign()
        ends = self._ends()
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout_s
        while any(self.position[p] < end for p, end in ends.items()):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.spec.name} not read to its end within {timeout_s:.0f} s "
                    f"(at {self.position}, end {ends}); is Kafka at the bootstrap address?"
                )
            records.extend(self._poll(POLL_S))
        return records

    def _poll(self, timeout_s: float) -> list[dict[str, Any]]:
        out = []
        for msg in self.consumer.consume(BATCH, timeout_s):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            partition, offset = msg.partition(), msg.offset()
            if partition is not None and offset is not None:
                self.position[partition] = offset + 1
            record = _decode(self.codec, self.spec, msg)
            if record is not None:
                out.append(record)
        return out

    async def catch_up(self, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Every record up to the end offsets of now, oldest first per partition."""
        return await self._run(self._catch_up, timeout_s)

    async def poll(self, timeout_s: float = POLL_S) -> list[dict[str, Any]]:
        return await self._run(self._poll, timeout_s)

    async def close(self) -> None:
        await self._run(self.consumer.close)


class GroupReader(_OneCallAtATime):
    """A consumer group member of ``spec`` (its offsets are the group's, committed on
    :meth:`commit`). A partition the group has no committed offset for starts at its end
    (``reset`` latest) or its beginning (earliest), decided at assignment and committed at
    once (:meth:`bookmark`): from then on the group's offsets say exactly what was read,
    and nothing hangs on the consumer's lazy offset reset."""

    def __init__(
        self, settings: Settings, spec: TopicSpec, codec: Codec, group: str, reset: str
    ) -> None:
        super().__init__()
        self.spec = spec
        self.codec = codec
        self.assigned = asyncio.Event()  # partitions assigned and their starts committed
        self._loop = asyncio.get_running_loop()
        self._unmarked: list[TopicPartition] = []
        self.consumer = Consumer(
            consumer_config(
                settings, group, **{"auto.offset.reset": reset, "fetch.wait.max.ms": 100}
            )
        )

        def on_assign(consumer: Consumer, parts: list[TopicPartition]) -> None:
            if not parts:
                return
            start = []
            for tp in consumer.committed(parts, timeout=10):
                if tp.offset < 0:
                    low, high = consumer.get_watermark_offsets(
                        TopicPartition(tp.topic, tp.partition), timeout=10, cached=False
                    )
                    tp.offset = high if reset == "latest" else low
                    self._unmarked.append(TopicPartition(tp.topic, tp.partition, tp.offset))
                start.append(tp)
            consumer.assign(start)
            if not self._unmarked:
                self._loop.call_soon_threadsafe(self.assigned.set)

        def on_revoke(consumer: Consumer, parts: list[TopicPartition]) -> None:
            self._loop.call_soon_threadsafe(self.assigned.clear)

        self.consumer.subscribe([spec.name], on_assign=on_assign, on_revoke=on_revoke)

    def _bookmark(self) -> None:
        marks, self._unmarked = self._unmarked, []
        if marks:
            self.consumer.commit(offsets=marks, asynchronous=False)
            self._loop.call_soon_threadsafe(self.assigned.set)

    async def bookmark(self) -> None:
        """Commit the start offsets chosen for partitions the group had none for."""
        if self._unmarked:
            await self._run(self._bookmark)

    def _poll(self, timeout_s: float) -> list[tuple[dict[str, Any], int, int]]:
        out = []
        for msg in self.consumer.consume(BATCH, timeout_s):
            error = msg.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: %s", self.spec.name, error)
                continue
            record = _decode(self.codec, self.spec, msg)
            partition, offset = msg.partition(), msg.offset()
            if record is not None and partition is not None and offset is not None:
                out.append((record, partition, offset))
        return out

    async def poll(self, timeout_s: float = POLL_S) -> list[tuple[dict[str, Any], int, int]]:
        """(record, partition, offset) of each readable record since the last poll."""
        return await self._run(self._poll, timeout_s)

    def _commit(self, partition: int | None, offset: int | None) -> None:
        try:
            if partition is None or offset is None:
                self.consumer.commit(asynchronous=False)
            else:
                where = [TopicPartition(self.spec.name, partition, offset + 1)]
                self.consumer.commit(offsets=where, asynchronous=False)
        except KafkaException as exc:  # nothing consumed since the last commit
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    async def commit(self, partition: int | None = None, offset: int | None = None) -> None:
        """Commit the group's position: past ``offset`` of ``partition``, or past every
        record polled so far."""
        await self._run(self._commit, partition, offset)

    async def close(self) -> None:
        await self._run(self.consumer.close)
