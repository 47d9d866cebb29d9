"""The wave service's whole-topic readers (its publisher is ``streams.kernel.kafka_io``'s:
on PublishError nothing is assumed written, the API answers 503 and the same confirmation,
sent again, gives the same ids).

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
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import TopicSpec

GROUP_PREFIX = "stockflow-waves-reader-"  # assign() only, never joins
BATCH = 1000


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
