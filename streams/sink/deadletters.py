"""The sink's dead-letter producer: a record is not "done" until Kafka has its dead letter."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

from streams.kernel.deadletter import dead_letter
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER
from streams.sink.metrics import SinkMetrics

log = logging.getLogger("stockflow.sink")

COMPONENT = "sink"


class Codec(Protocol):
    def decode(self, data: bytes) -> tuple[str, dict[str, Any]]: ...
    def encode(self, schema: str, record: dict[str, Any]) -> bytes: ...


class DeadLetters:
    def __init__(self, settings: Settings, codec: Codec, metrics: SinkMetrics) -> None:
        self.codec = codec
        self.metrics = metrics
        self.producer = Producer(producer_config(settings))
        self._failed: list[tuple[bytes | None, bytes]] = []

    def send(
        self,
        *,
        reason: str,
        error: str,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes,
        event_id: str | None,
    ) -> None:
        record = dead_letter(
            self.metrics.dead_letters,
            component=COMPONENT,
            reason=reason,
            error=error,
            original=value,
            topic=topic,
            partition=partition,
            offset=offset,
            key=key,
            event_id=event_id,
        )
        payload = self.codec.encode(STOCK_DEADLETTER.value_schema, record)
        self._produce(topic.encode(), payload)

    def _produce(self, key: bytes | None, value: bytes) -> None:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                log.error("dead letter not delivered (will retry): %s", err)
                self._failed.append((key, value))

        produce(self.producer, STOCK_DEADLETTER.name, key, value, on_delivery=delivered)

    def confirm(self, timeout: float) -> bool:
        """True once every dead letter sent so far is acknowledged by Kafka; failed ones are
        produced again, so none is lost."""
        remaining = self.producer.flush(timeout)
        if self._failed:
            failed, self._failed = self._failed, []
            for key, value in failed:
                self._produce(key, value)
            return False
        return remaining == 0

    def close(self, timeout: float) -> bool:
        return self.confirm(timeout)
