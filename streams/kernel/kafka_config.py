"""Client settings shared by every confluent-kafka producer and consumer of the project."""

from __future__ import annotations

from typing import Any

from streams.kernel.settings import Settings

IDEMPOTENT: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}


def producer_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """An idempotent, acks=all producer that places keys like the Java client does.

    librdkafka's default partitioner (CRC32) would put a SKU on another partition than
    aiokafka and Faust (murmur2) do; one SKU on two partitions would break the single-writer
    rule, so every producer uses murmur2.

    Idempotence and ``acks=all`` cannot be overridden: a producer retrying a request whose
    answer was lost (a broker killed, a leader moved) would otherwise write its records
    twice, and a write acknowledged by one replica can be lost with that broker.
    """
    pinned = sorted(IDEMPOTENT.keys() & overrides.keys())
    if pinned:
        raise ValueError(f"producer setting(s) {', '.join(pinned)} cannot be overridden")
    return {
        "bootstrap.servers": settings.bootstrap,
        **IDEMPOTENT,
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
