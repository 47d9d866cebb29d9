"""The ledger's batch step waits for the schema registry instead of dead-lettering."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from schemas.codec import CodecError, single_object_codec
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from streams.ledger import LedgerConfig, SkuState
from streams.worker.agent import LedgerStep
from tests.support.kafka import stock_event


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class RegistryDownCodec:
    """Single-object Avro behind a registry that does not answer the first ``failures``
    reads, as the registry codec does for a schema id it has not cached."""

    def __init__(self, failures: int) -> None:
        self.inner = single_object_codec()
        self.failures = failures

    def decode_as(self, schema: str, data: bytes) -> dict[str, Any]:
        if self.failures > 0:
            self.failures -= 1
            raise CodecError("registry_unavailable", "schema registry at http://r unreachable")
        return self.inner.decode_as(schema, data)

    def encode(self, schema: str, record: dict[str, Any]) -> bytes:
        return self.inner.encode(schema, record)


def test_a_batch_waits_for_the_registry_and_is_applied_once_with_no_dead_letter() -> None:
    """Given a batch of 3 receipts and a registry that does not answer the first 2 reads,
    when the ledger step runs it, then it waits and applies the whole batch once: on_hand 3,
    no dead letter sent, one state written."""
    inner = single_object_codec()
    items = []
    for i in range(3):
        event = stock_event(f"reg-{i}", "receipt", "chair", 1, location="main")
        value = inner.encode(STOCK_EVENTS.value_schema, event)
        items.append((Message(STOCK_EVENTS.name, 0, i, b"chair", value), None))
    table: dict[bytes, bytes] = {}
    sent: list[str] = []

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        sent.append(topic)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    step = LedgerStep(RegistryDownCodec(failures=2), LedgerConfig(), table, send)  # type: ignore[arg-type]
    result = asyncio.run(step.run(items))
    assert result.applied == 3 and result.dead_letters == 0
    assert STOCK_DEADLETTER.name not in sent
    assert len(table) == 1
    assert SkuState.from_bytes(table[b"chair"]).locations["main"].on_hand == 3
