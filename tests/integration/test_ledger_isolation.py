"""One SKU whose stored state is corrupt never stops the ledger: its events are dead-lettered."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.codec import single_object_codec
from streams.kernel.kafka_config import consumer_config, producer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER
from streams.worker.app import TABLE_NAME
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"isolate-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


def _changelog_partition(settings: Settings, topic: str, key: bytes) -> int:
    consumer = Consumer(consumer_config(settings, f"test-reader-{time.time_ns()}"))
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error() is None and msg.key() == key:
                    return int(msg.partition())
        raise AssertionError(f"no changelog record of {key!r} in {topic}")
    finally:
        consumer.close()


def test_a_sku_whose_stored_state_does_not_decode_is_dead_lettered_and_others_go_on(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a worker whose changelog holds bytes that are no state for SKU bad (written
    while it was stopped, read back by its recovery), when events of bad and of good arrive,
    then the worker stays up, bad's event is dead-lettered as internal_error with the
    decoding error named, and good's events are applied."""
    codec = single_object_codec()
    run = uuid.uuid4().hex[:8]
    bad, good = f"iso-bad-{run}", f"iso-good-{run}"
    produce_events(local_stack, codec, [stock_event(f"{bad}-1", "receipt", bad, 3)])
    wait_for(lambda: worker.stock(bad) is not None, timeout=60, what="bad's first state")
    changelog = f"{worker.app_id}-{TABLE_NAME}-changelog"
    partition = _changelog_partition(local_stack, changelog, bad.encode())
    worker.stop()
    producer = Producer(producer_config(local_stack))
    producer.produce(changelog, b"\x00garbage, not a state", bad.encode(), partition=partition)
    assert producer.flush(30) == 0
    worker.start()

    produce_events(
        local_stack,
        codec,
        [
            stock_event(f"{bad}-2", "receipt", bad, 1),
            stock_event(f"{good}-1", "receipt", good, 2),
            stock_event(f"{good}-2", "receipt", good, 5),
        ],
    )
    wait_for(
        lambda: (
            (worker.stock(good) or {}).get("locations", {}).get("default", {}).get("on_hand") == 7
        ),
        timeout=60,
        what="good's events",
    )
    [dead] = read_topic(
        local_stack,
        codec,
        STOCK_DEADLETTER,
        lambda r: r["event_id"] == f"{bad}-2",
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert dead["reason"] == "internal_error"
    assert "StateFormatError" in dead["error"]
    assert worker.alive(), worker.log_tail()
