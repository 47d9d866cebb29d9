"""Faust's producer, idempotent.

faust-streaming 0.15.3 makes its aiokafka producer idempotent only inside a transaction
(``faust.transport.drivers.aiokafka.Producer._settings_extra``: ``enable_idempotence`` only
when ``app.in_transaction``), and the ledger runs ``at_least_once`` without transactions.
Without idempotence a produce request whose answer is lost (a broker killed, a leader
moved) is sent again and the partition may keep the records twice. The ledger's outputs,
its table's changelog records, the hold-expiry events and the HTTP intake's events all go
through this one producer, so it always asks for ``enable_idempotence`` and ``acks=all``:
the broker drops a repeated batch by producer id and sequence number.

With idempotence aiokafka never expires a batch it can still retry: while the cluster is
down, or has fewer in-sync replicas than ``min.insync.replicas``, the ledger's sends wait
and go on once the cluster is back; a record the broker refuses (too large, not
authorised) still fails at once and stops the worker (:mod:`streams.worker.changelog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers.aiokafka import Producer
from faust.types import ConsumerT, ProducerT

from streams.worker.consumer import SeekSafeConsumer

FAUST_VERSION = "0.15.3"
IDEMPOTENT = {"acks": "all", "enable_idempotence": True}


class IdempotentProducer(Producer):
    """Faust's aiokafka producer with idempotence on, in and outside transactions."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), **IDEMPOTENT}


class LedgerApp(faust.App):
    """A Faust app whose producer is idempotent, and whose consumer never commits past an
    event dropped around a seek (:mod:`streams.worker.consumer`)."""

    def _new_producer(self) -> ProducerT:
        return IdempotentProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> ConsumerT:
        # as faust.App._new_consumer and Transport.create_consumer, with the consumer class
        return SeekSafeConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.transport.loop,
        )


def producer_settings(app: faust.App) -> dict[str, Any]:
    """The keyword arguments the app's producer gives ``AIOKafkaProducer``."""
    producer = app.producer
    assert isinstance(producer, Producer)
    return {
        **producer._settings_default(),
        **producer._settings_auth(),
        **producer._settings_extra(),
    }
