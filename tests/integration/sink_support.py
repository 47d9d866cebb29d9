"""Helpers for the sink's integration and fault tests: a sink in a thread, records to the
real output topics, a consumer group that starts at the topics' current end."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import admin_config, consumer_config, producer_config
from streams.kernel.produce import produce as send
from streams.kernel.settings import Settings
from streams.kernel.topics import SINK_TOPICS, TopicSpec
from streams.sink.deadletters import Codec
from streams.sink.sink import Sink, SinkConfig
from streams.warehouse.clickhouse import connect

Offsets = dict[tuple[str, int], int]


def sink_settings(settings: Settings, name: str) -> Settings:
    ensure_topics(settings)
    return dataclasses.replace(settings, clickhouse_database=name)


def end_offsets(settings: Settings, specs: Iterable[TopicSpec] = SINK_TOPICS) -> Offsets:
    """The end of every partition of ``specs`` (by default every topic the sink reads)."""
    probe = Consumer(consumer_config(settings, f"probe-{time.time_ns()}"))
    try:
        offsets: Offsets = {}
        for spec in specs:
            meta = probe.list_topics(spec.name, timeout=10).topics[spec.name]
            for p in meta.partitions:
                _, high = probe.get_watermark_offsets(TopicPartition(spec.name, p), timeout=10)
                offsets[(spec.name, p)] = high
        return offsets
    finally:
        probe.close()


def set_group_offsets(settings: Settings, group: str, offsets: Offsets) -> None:
    """Commit ``offsets`` for an idle group: where a new sink of that group starts reading."""
    admin = AdminClient(admin_config(settings))
    by_topic: dict[str, list[TopicPartition]] = {}
    for (topic, p), o in offsets.items():
        by_topic.setdefault(topic, []).append(TopicPartition(topic, p, o))
    for parts in by_topic.values():
        request = ConsumerGroupTopicPartitions(group, parts)
        admin.alter_consumer_group_offsets([request])[group].result()


def produce(
    settings: Settings,
    codec: Codec,
    items: Iterable[tuple[TopicSpec, dict[str, Any]]],
    raw: Iterable[tuple[TopicSpec, bytes, bytes]] = (),
) -> int:
    p = Producer(producer_config(settings, **{"linger.ms": 20}))
    n = 0
    for spec, record in items:
        send(p, spec.name, record["sku"].encode(), codec.encode(spec.value_schema, record))
        n += 1
    for spec, key, value in raw:
        send(p, spec.name, key, value)
        n += 1
    assert p.flush(60) == 0
    return n


@contextmanager
def running_sink(
    settings: Settings, codec: Codec, group: str, config: SinkConfig | None = None
) -> Iterator[Sink]:
    """A real sink (real Kafka, real ClickHouse) in a thread; stopped like SIGTERM on exit."""
    sink = Sink(
        settings, codec, group_id=group, config=config or SinkConfig(max_age=0.3, backoff_max=2.0)
    )
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(sink.run(stop)), daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive(), "sink did not stop within 60 s"
    assert result == [0], f"sink exit code {result}"


def scalar(settings: Settings, query: str, params: dict[str, Any] | None = None) -> Any:
    client = connect(settings)
    try:
        [(value,)] = client.execute(query, params or {})
        return value
    finally:
        client.disconnect()


def wait_rows(
    settings: Settings,
    table: str,
    where: str,
    params: dict[str, Any],
    at_least: int,
    timeout: float = 60,
) -> int:
    db = settings.clickhouse_database
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        try:
            n = scalar(settings, f"SELECT count() FROM {db}.{table} WHERE {where}", params)
        except Exception:
            n = 0
        if n >= at_least:
            return n
        time.sleep(0.2)
    raise AssertionError(f"{table}: {n} rows after {timeout} s, expected {at_least}")


def drop_database(settings: Settings) -> None:
    client = connect(settings)
    try:
        client.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
    finally:
        client.disconnect()


def movement(
    mid: str,
    sku: str,
    kind: str,
    delta: int,
    after: int,
    at: int,
    channel: str | None = "web",
    location: str = "wh1",
) -> dict[str, Any]:
    return {
        "movement_id": mid,
        "event_id": mid.split(":")[0],
        "sku": sku,
        "location": location,
        "channel": channel,
        "type": kind,
        "reason": None,
        "delta_on_hand": delta,
        "delta_reserved": 0,
        "delta_unsellable": 0,
        "delta_incoming": 0,
        "on_hand_after": after,
        "reserved_after": 0,
        "unsellable_after": 0,
        "occurred_at": at,
        "applied_at": at,
        "source_ref": None,
    }


def level(sku: str, version: int, channels: dict[str, int], at: int) -> dict[str, Any]:
    return {
        "sku": sku,
        "version": version,
        "channels": channels,
        "changed_channels": sorted(channels),
        "default_quantity": max(channels.values()),
        "cause_event_id": f"{sku}-v{version}",
        "occurred_at": at,
        "at": at,
    }
