"""Produce stock events and read output topics of the real broker, for tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.codec import Codec, CodecError
from schemas.events import stock_event as build_event
from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, TopicSpec


def stock_event(event_id: str, kind: str, sku: str, qty: int = 0, **fields: Any) -> dict[str, Any]:
    """A complete StockEvent record, occurring now unless ``occurred_at`` is given."""
    occurred_at = fields.pop("occurred_at", int(time.time() * 1000))
    fields.setdefault("source", "test")
    return build_event(kind, sku, event_id, occurred_at, qty=qty, **fields)


def producer(settings: Settings) -> Producer:
    return Producer(producer_config(settings))


def produce_events(
    settings: Settings, codec: Codec, events: Iterable[dict[str, Any]], p: Producer | None = None
) -> int:
    p = p or producer(settings)
    n = 0
    for event in events:
        value = codec.encode(STOCK_EVENTS.value_schema, event)
        produce(p, STOCK_EVENTS.name, event["sku"].encode(), value)
        n += 1
    assert p.flush(60) == 0
    return n


def produce_raw(
    settings: Settings,
    items: Iterable[tuple[bytes | None, bytes]],
    spec: TopicSpec = STOCK_EVENTS,
) -> None:
    """Bytes as they are (poison records too) to ``spec``'s topic, acknowledged on return."""
    p = producer(settings)
    for key, value in items:
        produce(p, spec.name, key, value)
    assert p.flush(60) == 0


def read_topic(
    settings: Settings,
    codec: Codec,
    spec: TopicSpec,
    keep: Callable[[dict[str, Any]], bool],
    *,
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60,
) -> list[dict[str, Any]]:
    """Records of ``spec`` (from the beginning) that ``keep`` selects, until ``until`` holds."""
    consumer = Consumer(consumer_config(settings, f"test-reader-{time.time_ns()}"))
    meta = consumer.list_topics(spec.name, timeout=10)
    parts = [TopicPartition(spec.name, p, 0) for p in meta.topics[spec.name].partitions]
    consumer.assign(parts)
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=5000, timeout=0.3):
                if msg.error() is not None or msg.value() is None:
                    continue
                try:
                    _, record = codec.decode(msg.value())
                except CodecError:
                    continue  # poison records of other tests; this reader only counts
                if keep(record):
                    found.append(record)
            if until(found):
                return found
    finally:
        consumer.close()
    return found


def wait_for(check: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def group_lag(
    settings: Settings, group: str, topic: str, since: dict[int, int] | None = None
) -> int:
    """Messages of ``topic`` the consumer ``group`` has not committed yet. A partition the
    group has never committed counts from ``since`` (the offsets before a worker that starts
    at the topic's end was started; a partition that got no record since has nothing to
    commit), else from 0."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config(settings))
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in parts])
    committed = admin.list_consumer_group_offsets([request])[group].result()
    probe = Consumer(consumer_config(settings, f"lag-probe-{time.time_ns()}"))
    try:
        lag = 0
        for tp in committed.topic_partitions:
            _, high = probe.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
            first = (since or {}).get(tp.partition, 0)
            lag += high - (tp.offset if tp.offset >= 0 else first)
        return lag
    finally:
        probe.close()


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The high watermark of every partition of ``topic``."""
    probe = Consumer(consumer_config(settings, f"offsets-probe-{time.time_ns()}"))
    try:
        parts = probe.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
        }
    finally:
        probe.close()


def rewind_group(
    settings: Settings, group: str, topic: str, to: dict[int, int] | None = None
) -> None:
    """Set ``group``'s committed offsets of ``topic`` back to ``to`` (default: the start of
    every partition). The group must be idle."""
    from confluent_kafka import ConsumerGroupTopicPartitions
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(admin_config(settings))
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    starts = to or {}
    request = ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p, starts.get(p, 0)) for p in parts]
    )
    admin.alter_consumer_group_offsets([request])[group].result()
