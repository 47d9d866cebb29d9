"""The raw limit: a confluent-kafka loop that copies stock events to another topic.

Same partitions, acks=all, idempotent, murmur2 (the project's producer settings), one
output per input; the figure is inputs/s from the first message consumed to the last output
acknowledged.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition

from deploy.bench.config import BenchError
from deploy.bench.kafka import Offsets, flush, send
from deploy.bench.table import Row
from deploy.bench.topics import RAW_OUT
from deploy.bench.workload import progress
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS


def raw_loop(settings: Settings, start: Offsets, count: int, timeout: float) -> Row:
    ensure_topics(settings, (RAW_OUT,))
    consumer = Consumer(consumer_config(settings, f"bench-raw-{time.time_ns()}"))
    consumer.assign([TopicPartition(STOCK_EVENTS.name, p, o) for p, o in start.items()])
    producer = Producer(producer_config(settings))
    seen = 0
    began: float | None = None
    deadline = time.monotonic() + timeout
    next_report = 100_000
    try:
        while seen < count:
            if time.monotonic() > deadline:
                raise BenchError(f"raw loop read {seen:,} of {count:,} events in {timeout:.0f} s")
            for msg in consumer.consume(num_messages=10_000, timeout=0.5):
                if msg.error() is not None:
                    continue
                if began is None:
                    began = time.monotonic()
                send(producer, RAW_OUT.name, msg.key(), msg.value() or b"")
                seen += 1
            producer.poll(0)
            if seen >= next_report:
                progress(f"raw loop: {seen:,}/{count:,}")
                next_report += 100_000
        flush(producer, "raw loop outputs")
        assert began is not None
        elapsed = time.monotonic() - began
    finally:
        consumer.close()
    rate = seen / elapsed
    progress(f"raw loop: {seen:,} events in {elapsed:.1f} s = {rate:,.0f}/s")
    return Row(
        "raw loop (confluent-kafka consume→produce)",
        rate,
        "events/s",
        note=f"{seen:,} events in {elapsed:.1f} s",
        extra={"events": seen, "seconds": elapsed},
    )
