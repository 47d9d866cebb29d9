"""The ledger's batch step waits for the schema registry instead of dead-lettering."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from schemas.codec import CodecError, RegistryCodec, single_object_codec
from schemas.registry import RegistryClient
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

    def needs_registry(self, values: Any) -> bool:
        return False


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


@contextmanager
def hanging_registry() -> Iterator[str]:
    """A registry URL whose server accepts connections and never answers (a frozen process)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_hanging_registry_does_not_block_the_event_loop() -> None:
    """Given a batch whose schema id the codec has not cached and a registry that accepts
    connections but never answers, when the ledger step runs it, then the event loop keeps
    running other tasks meanwhile (group heartbeats, web answers): the registry is asked
    from a thread, not from the loop."""
    event = stock_event("hang-1", "receipt", "chair", 1, location="main")
    body = single_object_codec().encode(STOCK_EVENTS.value_schema, event)[10:]
    value = b"\x00" + (7).to_bytes(4, "big") + body  # Confluent framing, id unknown

    async def send(topic: str, key: bytes | None, value: bytes) -> Any:
        raise AssertionError("nothing may be sent while the registry hangs")

    async def scenario(url: str) -> int:
        codec = RegistryCodec(RegistryClient(url, timeout=3.0))
        step = LedgerStep(codec, LedgerConfig(), {}, send)  # type: ignore[arg-type]
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.02)
                ticks += 1

        tick_task = asyncio.create_task(ticker())
        run = asyncio.create_task(
            step.run([(Message(STOCK_EVENTS.name, 0, 0, b"chair", value), None)])
        )
        await asyncio.sleep(1.0)
        assert not run.done(), "the step did not wait for the registry"
        run.cancel()
        tick_task.cancel()
        return ticks

    with hanging_registry() as url:
        ticks = asyncio.run(scenario(url))
    assert ticks >= 10, f"the event loop ran {ticks} ticks of 20 ms in 1 s: it was blocked"
