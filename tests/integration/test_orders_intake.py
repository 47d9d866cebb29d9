"""POST /v1/orders on a real worker and Kafka: good orders on orders.v1 keyed by order id,
bad ones dead-lettered without their personal data, the write audited by ids only."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.codec import single_object_codec
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS, STOCK_DEADLETTER, STOCKFLOW_AUDIT, TopicSpec
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"orders-{uuid.uuid4().hex[:8]}", free_port(), local_stack.state_dir / "logs"
    )
    process.start()
    yield process
    process.stop()


def raw_records(
    settings: Settings, spec: TopicSpec, marker: bytes, count: int, timeout: float = 60
) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of the first ``count`` records of ``spec`` whose value holds ``marker``."""
    consumer = Consumer(consumer_config(settings, f"test-reader-{time.time_ns()}"))
    meta = consumer.list_topics(spec.name, timeout=10)
    consumer.assign([TopicPartition(spec.name, p, 0) for p in meta.topics[spec.name].partitions])
    found: list[tuple[bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < count:
            for msg in consumer.consume(num_messages=5000, timeout=0.3):
                value = msg.value()
                if msg.error() is None and value is not None and marker in value:
                    found.append((msg.key(), value))
    finally:
        consumer.close()
    return found


def test_posted_orders_reach_kafka_keyed_by_id_and_bad_ones_are_dead_lettered_clean(
    worker: WorkerProcess, local_stack: Settings
) -> None:
    """Given a real worker, when a batch of a valid two-line order and an order carrying an
    email is posted, then 400 with both results; the valid one is on orders.v1 keyed
    erp-<run>:1001 as a placed Order; the other is on the dead-letter topic as personal_data
    with the email removed; the audit record names both order ids and holds no email."""
    run = f"erp-{uuid.uuid4().hex[:8]}"
    email = f"{run}@example.com"
    lines = [
        {"line_id": "1", "sku": "chair", "qty": 2, "unit_price": 4990, "currency": "EUR"},
        {"line_id": "2", "sku": "desk", "qty": 1},
    ]
    good = {"order_id": "1001", "channel": run, "lines": lines, "ship_to": {"country": "FR"}}
    bad = {**good, "order_id": "1002", "email": email}
    status, answer = worker.post("/v1/orders", [good, bad])
    assert status == 400, answer
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert answer["results"][1]["reasons"] == ["personal_data"]

    codec = single_object_codec()
    [(key, value)] = raw_records(local_stack, ORDERS, run.encode(), 1)
    assert key == f"{run}:1001".encode()
    order = codec.decode_as(ORDERS.value_schema, value)
    assert (order["type"], order["order_id"], len(order["lines"])) == ("placed", f"{run}:1001", 2)

    [(_, value)] = raw_records(local_stack, STOCK_DEADLETTER, f"{run}:1002".encode(), 1)
    dead = codec.decode_as(STOCK_DEADLETTER.value_schema, value)
    assert (dead["reason"], dead["component"]) == ("personal_data", "orders-api")
    assert email.encode() not in value

    [(_, value)] = raw_records(local_stack, STOCKFLOW_AUDIT, f"{run}:1002".encode(), 1)
    audit = codec.decode_as(STOCKFLOW_AUDIT.value_schema, value)
    assert audit["ids"] == [f"{run}:1001", f"{run}:1002"]
    assert (audit["action"], audit["status"]) == ("orders.post", 400)
    assert email.encode() not in value
