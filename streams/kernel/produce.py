"""Produce one record, waiting while librdkafka's local queue is full."""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, Message, Producer

DeliveryCallback = Callable[[KafkaError | None, Message], None]


def produce(
    producer: Producer,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    *,
    on_delivery: DeliveryCallback | None = None,
    poll_s: float = 0.05,
) -> None:
    """Queue one record. While the local queue is full (``BufferError``), serve delivery
    callbacks for up to ``poll_s`` so acknowledged records leave the queue, then try again.
    Returns once queued, not once acknowledged: ``flush`` (or delivery callbacks) say that."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            return
        except BufferError:
            producer.poll(poll_s)
