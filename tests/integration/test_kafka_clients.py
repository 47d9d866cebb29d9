"""Both Python Kafka clients of the project against the real local broker."""

from __future__ import annotations

import asyncio
from importlib.metadata import version

import aiokafka
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.integration


def test_aiokafka_is_pinned_to_a_version_that_speaks_to_kafka_4() -> None:
    """Given the installed packages, when faust imports aiokafka, then it is 0.13 or later.

    Below 0.13 faust builds CreateTopics v1, which Kafka 4 removed.
    """
    major, minor = (int(part) for part in version("aiokafka").split(".")[:2])
    assert (major, minor) >= (0, 13)
    assert aiokafka.__version__ == version("aiokafka")


def test_confluent_kafka_produces_and_consumes_through_the_real_broker(
    bootstrap: str, unique_name: str
) -> None:
    """Given a fresh topic, when 500 keyed records are produced, then all come back in order."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    from confluent_kafka.admin import NewTopic as CkNewTopic

    admin.create_topics([CkNewTopic(unique_name, num_partitions=1, replication_factor=1)])[
        unique_name
    ].result()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(500):
        producer.produce(unique_name, key=b"sku-1", value=str(i).encode())
    assert producer.flush(15) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_name,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([unique_name])
    seen: list[int] = []
    try:
        for _ in range(60):
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                assert msg.error() is None
                seen.append(int(msg.value()))
            if len(seen) >= 500:
                break
    finally:
        consumer.close()
    assert seen == list(range(500))


def test_aiokafka_creates_topics_and_round_trips_records(bootstrap: str, unique_name: str) -> None:
    """Given the real broker, when aiokafka (faust's transport) creates a topic and produces,
    then its consumer reads every record back: the path Faust takes to declare its topics."""

    async def scenario() -> list[bytes]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(unique_name, 3, 1)])
            # a new topic's partitions reach the metadata a moment after CreateTopics answers
            for _ in range(50):
                described = await admin.describe_topics([unique_name])
                if len(described[0]["partitions"]) == 3:
                    break
                await asyncio.sleep(0.2)
        finally:
            await admin.close()
        assert len(described[0]["partitions"]) == 3

        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(100):
                await producer.send(unique_name, key=f"sku-{i % 7}".encode(), value=b"%d" % i)
            await producer.flush()
        finally:
            await producer.stop()

        consumer = aiokafka.AIOKafkaConsumer(
            unique_name,
            bootstrap_servers=bootstrap,
            group_id=unique_name,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        got: list[bytes] = []
        try:
            while len(got) < 100:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
                for records in batch.values():
                    got.extend(r.value for r in records if r.value is not None)
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(scenario())
    assert sorted(int(v) for v in got) == list(range(100))
