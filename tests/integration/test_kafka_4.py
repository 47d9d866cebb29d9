"""What Kafka 4 changes for the project, checked on the local stack's broker."""

from __future__ import annotations

import asyncio
import time

import aiokafka
import pytest
from confluent_kafka import Consumer, ConsumerGroupType
from confluent_kafka.admin import AdminClient, NewTopic

from deploy.local.kafka import Kafka
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings

pytestmark = pytest.mark.integration


def test_the_local_stack_defaults_to_kafka_4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no STOCKFLOW_KAFKA_VERSION, when settings load, then the broker is a 4.x release."""
    monkeypatch.delenv("STOCKFLOW_KAFKA_VERSION", raising=False)
    assert Settings().kafka_version.split(".")[0] == "4"


def test_the_broker_writes_its_log(local_stack: Settings) -> None:
    """Given the stack's broker, then its log is written: on 4.x log4j2 with slf4j 1.7 bound
    by log4j-slf4j-impl (log4j-slf4j2-impl would leave slf4j 1.7 on its silent NOP logger)."""
    if local_stack.bootstrap_servers:
        pytest.skip("STOCKFLOW_BOOTSTRAP_SERVERS points at a broker the stack did not start")
    log = Kafka(local_stack).process.log_file.read_text(errors="replace")
    assert "Kafka Server started" in log
    assert "no-operation (NOP) logger" not in log


def test_both_clients_join_groups_with_the_classic_protocol(
    bootstrap: str, local_stack: Settings, unique_name: str
) -> None:
    """Given a topic, when a confluent-kafka consumer with the project's settings and an
    aiokafka consumer (the client Faust's assignor rides on) each join a group,
    then the broker describes both groups as classic: neither client asks for KIP-848's
    consumer protocol, which has no client-side assignors."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(unique_name, num_partitions=2, replication_factor=1)])[
        unique_name
    ].result()
    ck_group, aio_group = f"{unique_name}-ck", f"{unique_name}-aio"

    consumer = Consumer(consumer_config(local_stack, ck_group))
    consumer.subscribe([unique_name])
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
        assert consumer.assignment(), "confluent-kafka consumer got no partitions"
        ck_type = _group_type(admin, ck_group)
    finally:
        consumer.close()

    async def aiokafka_group_type() -> ConsumerGroupType:
        aio = aiokafka.AIOKafkaConsumer(
            unique_name, bootstrap_servers=bootstrap, group_id=aio_group
        )
        await aio.start()
        try:
            deadline = time.monotonic() + 30
            while not aio.assignment() and time.monotonic() < deadline:
                await aio.getmany(timeout_ms=200)
            assert aio.assignment(), "aiokafka consumer got no partitions"
            return await asyncio.to_thread(_group_type, admin, aio_group)
        finally:
            await aio.stop()

    aio_type = asyncio.run(aiokafka_group_type())
    assert (ck_type, aio_type) == (ConsumerGroupType.CLASSIC, ConsumerGroupType.CLASSIC)


def _group_type(admin: AdminClient, group: str) -> ConsumerGroupType:
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return ConsumerGroupType(description.type)
