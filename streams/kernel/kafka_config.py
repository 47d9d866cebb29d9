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
        **client_config(settings),
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
        **client_config(settings),
        "group.id": group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "group.protocol": "classic",
        **overrides,
    }


def client_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """Where the brokers are and how to reach them: the part every client (producer,
    consumer, AdminClient) shares. Over SASL_SSL the broker's certificate is checked against
    the CA file and its host name (librdkafka's default), and the client logs in with SCRAM.
    The password goes only into librdkafka's config, which it never logs."""
    config: dict[str, Any] = {"bootstrap.servers": settings.bootstrap}
    if settings.kafka_sasl:
        config |= {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": settings.kafka_sasl_mechanism,
            "sasl.username": settings.kafka_user,
            "sasl.password": settings.kafka_password.reveal(),
        }
        if settings.kafka_ca_file:
            config["ssl.ca.location"] = settings.kafka_ca_file
    return config | overrides


def admin_config(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """An AdminClient's config (the same connection settings as every client)."""
    return client_config(settings, **overrides)
