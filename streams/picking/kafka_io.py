"""The wave service's Kafka clients: an acknowledged publisher and whole-topic readers.

* :class:`Publisher`: an idempotent ``acks=all`` producer; :meth:`Publisher.send` returns
  once every record is acknowledged, else raises :class:`PublishError` (nothing assumed
  written: the caller answers 503 and the same confirmation, sent again, gives the same ids).
* :class:`Reader`: ``assign()`` of every partition from its first offset (no group: the
  compacted topics are read whole at start), :meth:`Reader.read` returns what arrived since
  the last call up to the end offsets of the moment, as raw records (decoded by the caller,
  who dead-letters what it cannot read).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.codec import Codec
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec

GROUP_PREFIX = "stockflow-waves-reader-"  # assign() only, never joins
BATCH = 1000


class PublishError(RuntimeError):
    """Kafka did not acknowledge every record of a batch; nothing may be assumed written."""


class Publisher:
    def __init__(self, settings: Settings, codec: Codec) -> None:
        self.producer = Producer(producer_config(settings))
        self.codec = codec
        self.timeout_s = settings.produce_timeout_s

    async def send(self, records: Sequence[tuple[TopicSpec, str, dict[str, Any]]]) -> None:
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
                + "; nothing was changed, send the confirmation again"
            )

    def close(self) -> None:
        self.producer.flush(self.timeout_s)


@dataclass(frozen=True, slots=True)
class Raw:
    value: bytes | None
    key: bytes | None
    partition: int
    offset: int


class Reader:
    """Every partition of ``spec`` from its first offset."""

    def __init__(self, settings: Settings, spec: TopicSpec) -> None:
        self.spec = spec
        self.consumer = Consumer(
            consumer_config(
                settings, f"{GROUP_PREFIX}{uuid.uuid4().hex[:8]}", **{"fetch.wait.max.ms": 100}
            )
        )
        self.position: dict[int, int] = {}
        self._io = threading.Lock()

    def _assign(self) -> None:
        topic = self.consumer.list_topics(self.spec.name, timeout=10).topics[self.spec.name]
        parts = []
        for p in sorted(topic.partitions):
            low, _ = self.consumer.get_watermark_offsets(
                TopicPartition(self.spec.name, p), timeout=10, cached=False
            )
            parts.append(TopicPartition(self.spec.name, p, low))
            self.position[p] = low
        self.consumer.assign(parts)

    def _read(self, timeout_s: float) -> list[Raw]:
        with self._io:
            if not self.position:
                self._assign()
            ends = {
                p: self.consumer.get_watermark_offsets(
                    TopicPartition(self.spec.name, p), timeout=10, cached=False
                )[1]
                for p in self.position
            }
            out: list[Raw] = []
            deadline = time.monotonic() + timeout_s
            while any(self.position[p] < end for p, end in ends.items()):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.spec.name} not read to its end within {timeout_s:.0f} s; "
                        "is Kafka at the bootstrap address?"
                    )
                for msg in self.consumer.consume(BATCH, 0.5):
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(error)
                    partition, offset = msg.partition(), msg.offset()
                    if partition is None or offset is None:
                        continue
                    self.position[partition] = offset + 1
                    out.append(Raw(msg.value(), msg.key(), partition, offset))
            return out

    async def read(self, timeout_s: float = 60) -> list[Raw]:
        """Records since the last read, up to the end offsets of now."""
        return await asyncio.to_thread(self._read, timeout_s)

    def close(self) -> None:
        with self._io:
            self.consumer.close()
