"""Client settings shared by every confluent-kafka producer and consumer of the project."""

from __future__ import annotations

from typing import Any

from streams.kernel.settings import Settings


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, acks=all producer that places keys like the Java client does.

    librdkafka's default partitioner (CRC32) would put a SKU on another partition than
    aiokafka and Faust (murmur2) do; one SKU on two partitions would break the single-writer
    rule, so every producer uses murmur2.
    """
    return {
        "bootstrap.servers": settings.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "compression.type": "lz4",
        **overrides,
    }


def consumer_config(settings: Settings, group_id: str, **overrides: Any) -> dict[str, Any]:
    """A consumer that commits only when told to: offsets follow acknowledged work.

    The classic group protocol is named, not left to librdkafka's default: the connectors'
    levels source assigns start offsets with ``assign()`` in its rebalance callback, which
    KIP-848's ``consumer`` protocol refuses.
    """
    return {
        "bootstrap.servers": settings.bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "group.protocol": "classic",
        **overrides,
    }
