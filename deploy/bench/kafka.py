"""Kafka helpers of the bench: offsets, paced and bulk producers, output counting."""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
import time
from collections.abc import Callable, Iterable

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings

Offsets = dict[int, int]  # partition -> offset, for one topic


@functools.cache
def admin(settings: Settings) -> AdminClient:
    """One admin client per broker for the whole run (each new one logs on destruction)."""
    return AdminClient(admin_config(settings))


def end_offsets(settings: Settings, topic: str, attempts: int = 50) -> Offsets:
    probe = Consumer(consumer_config(settings, f"bench-probe-{time.time_ns()}"))
    try:
        for attempt in range(attempts):
            try:
                meta = probe.list_topics(topic, timeout=10).topics[topic]
                return {
                    p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in meta.partitions
                }
            except KafkaException:
                # a topic created a moment ago answers NOT_LEADER until the client's
                # metadata catches up with the election
                if attempt == attempts - 1:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")
    finally:
        probe.close()


def set_group_offsets(settings: Settings, group: str, topic: str, offsets: Offsets) -> None:
    """Where a new (idle) consumer group starts reading ``topic``."""
    parts = [TopicPartition(topic, p, o) for p, o in offsets.items()]
    admin(settings).alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, parts)])[
        group
    ].result()


def committed_offsets(
    settings: Settings, group: str, topic: str, partitions: Iterable[int]
) -> Offsets:
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    found = admin(settings).list_consumer_group_offsets([request])[group].result()
    return {tp.partition: max(tp.offset, 0) for tp in found.topic_partitions}


def remaining(done: Offsets, end: Offsets) -> int:
    return sum(max(0, end[p] - done.get(p, 0)) for p in end)


def bulk_producer(settings: Settings) -> Producer:
    return Producer(
        producer_config(
            settings,
            **{"linger.ms": 20, "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000},
        )
    )


def send(p: Producer, topic: str, key: bytes | None, value: bytes) -> None:
    produce(p, topic, key, value)


def flush(p: Producer, what: str) -> None:
    left = p.flush(120)
    if left:
        from deploy.bench.config import BenchError

        raise BenchError(f"{left} {what} not acknowledged by Kafka within 120 s; is it up?")


def consume_range(
    settings: Settings,
    topic: str,
    start: Offsets,
    on_message: Callable[[bytes | None, int], None],
    *,
    until: Callable[[], bool],
    timeout: float,
) -> None:
    """Hand (value, record timestamp ms) of ``topic`` from ``start`` on until ``until()``."""
    consumer = Consumer(
        consumer_config(settings, f"bench-reader-{time.time_ns()}", **{"fetch.wait.max.ms": 10})
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])
    deadline = time.monotonic() + timeout
    try:
        while not until():
            if time.monotonic() > deadline:
                return
            for msg in consumer.consume(num_messages=10_000, timeout=0.1):
                if msg.error() is None:
                    on_message(msg.value(), msg.timestamp()[1])
    finally:
        consumer.close()


def edge_timestamps(
    settings: Settings, topic: str, start: Offsets, end: Offsets
) -> tuple[int, int]:
    """(earliest first, latest last) record timestamp in ms of ``topic`` between the offsets."""
    consumer = Consumer(consumer_config(settings, f"bench-edges-{time.time_ns()}"))
    firsts: list[int] = []
    lasts: list[int] = []
    try:
        for offsets, found in ((start, firsts), ({p: o - 1 for p, o in end.items()}, lasts)):
            wanted = {p for p in offsets if end[p] > start.get(p, 0)}
            consumer.assign([TopicPartition(topic, p, offsets[p]) for p in wanted])
            deadline = time.monotonic() + 20
            while wanted and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=len(wanted), timeout=0.5):
                    if msg.error() is None and msg.partition() in wanted:
                        wanted.discard(msg.partition())
                        found.append(msg.timestamp()[1])
            consumer.unassign()
    finally:
        consumer.close()
    if not firsts or not lasts:
        from deploy.bench.config import BenchError

        raise BenchError(f"{topic}: no records between the bench's offsets")
    return min(firsts), max(lasts)


def trim(settings: Settings, topics: list[str]) -> int:
    """Delete the records of ``topics`` up to their current end; returns how many went.

    The bench writes millions of records to the project's shared topics; tests that replay
    or read those topics from offset 0 would crawl through them. Compacted topics refuse
    DeleteRecords and keep their latest record per key.
    """
    client = admin(settings)
    gone = 0
    for topic in topics:
        end = end_offsets(settings, topic)
        futures = client.delete_records([TopicPartition(topic, p, o) for p, o in end.items() if o])
        for tp, future in futures.items():
            try:
                future.result()
                gone += 1
            except Exception as exc:
                print(f"[bench] {tp.topic}[{tp.partition}] not trimmed: {exc}", file=sys.stderr)
    return gone


def delete_app_topics(settings: Settings, app_id: str, *web_ports: int) -> None:
    """Drop a bench worker's changelog and internal topics, and the table stores of its
    processes (one per web port): bench tables are throw-away."""
    for port in web_ports:
        store = dataclasses.replace(settings, app_id=app_id, worker_web_port=port)
        shutil.rmtree(store.worker_datadir, ignore_errors=True)
    client = admin(settings)
    mine = [t for t in client.list_topics(timeout=10).topics if t.startswith(app_id)]
    if mine:
        for future in client.delete_topics(mine, operation_timeout=30).values():
            try:
                future.result()
            except KafkaException as exc:
                print(f"[bench] could not delete a bench topic: {exc}", file=sys.stderr)
