"""The ledger's sends through Faust's producer, per batch instead of per record.

The one place that reaches into Faust's producer (the table writes are
:mod:`streams.worker.changelog`'s). It replaces, for the ledger's batch step, what
``app.producer.send(topic, key, value, ...)`` does per record in faust-streaming 0.15.3
(``faust.transport.drivers.aiokafka.Producer.send``): a sensor call, a coroutine chain,
aiokafka's ``AIOKafkaProducer.send`` with its metadata wait, a pure-Python murmur2
of the key and one future per record, then one future more per record to gather. Measured
on the ledger, that was about a quarter of the worker's time per event.

Here a whole batch of records is grouped by topic partition, each group is appended to an
aiokafka ``BatchBuilder`` (``create_batch()``; public aiokafka API) that is closed and
submitted with ``send_batch()``, so it goes out at once (no linger), and one future per
topic partition is awaited. Partitions are those Faust's producer picks:

- a record given a partition (a changelog record: its event's partition) keeps it;
- a keyed record goes where aiokafka's ``DefaultPartitioner`` (Java-compatible murmur2 of
  the key, positive, modulo the topic's partition count) sends it, so a compacted topic
  such as ``stock.levels.v1`` keeps each key in one partition whichever path wrote it.
  Each key's hash is remembered (a bounded cache), so a SKU is hashed once, not per record.

``Producer._ensure_producer`` (the started ``AIOKafkaProducer``) is Faust-private;
``tests/unit/test_fastpath.py`` pins the Faust version and the source of the methods this
module relies on or replaces: a Faust upgrade must re-read them before it passes.

Faust's consumer is left as it is: a consumer that handed each fetched batch to the streams
at once (instead of Faust's ``wait_first`` per message) was measured 60 % faster here, but
a worker restarted onto rewound offsets could then stall for good (its fetcher started
before the seek to the committed offsets), so it was taken out.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from aiokafka.partitioner import murmur2

FAUST_VERSION = "0.15.3"
HASH_CACHE_MAX = 200_000  # keys whose murmur2 is remembered (about 20 MB at its largest)

# (topic, partition or None for "by key", key, value); value None is a tombstone
Record = tuple[str, int | None, bytes | None, bytes | None]
# per record batch written: (its topic partition, a TopicPartition, offset of its last record)
Acked = list[tuple[Any, int]]


class RecordTooLargeError(ValueError):
    """A record larger than the producer's batch size (``producer_max_batch_size``)."""


def key_partition(key_hash: int, partitions: int) -> int:
    """aiokafka's ``DefaultPartitioner`` for a key (the Java client's ``toPositive``)."""
    return (key_hash & 0x7FFFFFFF) % partitions


class BatchSender:
    """``await sender.send(records)``: every record acknowledged by Kafka, or an exception."""

    def __init__(self, producer: Callable[[], Any]) -> None:
        self._faust_producer = producer  # the app's producer, looked up for each batch
        self._hashes: dict[bytes, int] = {}

    def _hash(self, key: bytes) -> int:
        found = self._hashes.get(key)
        if found is None:
            if len(self._hashes) >= HASH_CACHE_MAX:
                self._hashes.clear()
            found = self._hashes[key] = murmur2(key)
        return found

    async def send(self, records: Sequence[Record]) -> Acked:
        if not records:
            return []
        producer = self._faust_producer()._ensure_producer()  # aiokafka AIOKafkaProducer
        cluster = producer.client.cluster
        counts: dict[str, int] = {}
        groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        hash_of = self._hash
        for topic, partition, key, value in records:
            if partition is None:
                count = counts.get(topic)
                if count is None:
                    await producer.client._wait_on_metadata(topic)
                    count = counts[topic] = len(cluster.partitions_for_topic(topic))
                if key is None:
                    partition = random.randrange(count)
                else:
                    partition = key_partition(hash_of(key), count)
            group = groups.get((topic, partition))
            if group is None:
                group = groups[(topic, partition)] = []
            group.append((key, value))
        now_ms = int(time.time() * 1000)
        pending: list[tuple[int, Any]] = []
        for (topic, partition), items in groups.items():
            builder = producer.create_batch()
            count = 0
            for key, value in items:
                if builder.append(timestamp=now_ms, key=key, value=value) is None:
                    if count == 0:
                        raise RecordTooLargeError(
                            f"{topic}[{partition}]: a record of {len(value or b'')} bytes does "
                            "not fit a producer batch; raise producer_max_batch_size"
                        )
                    pending.append(await _submit(producer, builder, topic, partition, count))
                    builder, count = producer.create_batch(), 0
                    if builder.append(timestamp=now_ms, key=key, value=value) is None:
                        raise RecordTooLargeError(
                            f"{topic}[{partition}]: a record of {len(value or b'')} bytes "
                            "does not fit a producer batch; raise producer_max_batch_size"
                        )
                count += 1
            pending.append(await _submit(producer, builder, topic, partition, count))
        metas = await asyncio.gather(*(future for _, future in pending))
        # aiokafka's TopicPartition: what a Faust store's set_persisted_offset takes
        return [
            (meta.topic_partition, meta.offset + n - 1)
            for (n, _), meta in zip(pending, metas, strict=True)
        ]


async def _submit(
    producer: Any, builder: Any, topic: str, partition: int, count: int
) -> tuple[int, Any]:
    builder.close()  # a closed batch is sent at once, without lingering
    return count, await producer.send_batch(builder, topic, partition=partition)
