"""The order book's timer and partition revocations (streams.worker.orders.OrderBook).

A timer round can outlast a rebalance on a loaded machine. A step taken after the worker's
partitions were revoked would write an order from a local store that may be stale, and
move that store's changelog offset past records it never read: the next time the
partition comes back, recovery skips them and those orders are gone from the table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import faust

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.orders.book import LineState, OrderBookState
from streams.orders.setup import OrderConfig
from streams.worker.orders import OrderBook

NOW = 1_700_000_000_000


@contextlib.contextmanager
def _as_current(event: Any) -> Iterator[None]:
    yield  # the memory store is not partitioned


def _routed(order_id: str) -> bytes:
    line = LineState("1", "sku-1", 1, status="pending", location="a")
    state = OrderBookState(order_id, "web", [line], NOW, status="routed", version=2)
    state.attempt, state.routed_at = 1, NOW  # long past resend_after_seconds
    return state.to_bytes()


class _Writer:
    """Records the keys written; the first write lets a revocation start meanwhile."""

    def __init__(self, book: OrderBook) -> None:
        self.book = book
        self.keys: list[bytes] = []
        self.revocation: asyncio.Task[None] | None = None

    async def write(self, items: Sequence[tuple[bytes, bytes | None, Any]]) -> None:
        self.keys += [key for key, _, _ in items]
        if self.revocation is None:  # a rebalance begins while this step is under way
            self.revocation = asyncio.ensure_future(self.book.revoked())
            await asyncio.sleep(0)


class _Sender:
    async def send(self, records: Sequence[Any]) -> None:
        return None


def test_a_timer_round_stops_when_the_partitions_are_revoked(tmp_path: Path) -> None:
    """Given an order book owning two routed orders whose reservations are due again
    When its partitions are revoked while the timer round writes the first one
    Then the revocation waits for that step, and the round ends there: the second order
    is left to the partition's next owner."""

    async def scenario() -> None:
        app = faust.App(f"order-timer-{id(object())}", store="memory://")
        settings = Settings(state_dir=tmp_path)
        book = OrderBook(app, settings, OrderConfig(), single_object_codec(), {}, _as_current)
        writer = _Writer(book)
        book.writer = writer  # type: ignore[assignment]
        book.sender.send = _Sender().send  # type: ignore[method-assign,assignment]
        keys = [b"web:1", b"web:2"]
        for key in keys:
            book.table.data[key] = _routed(key.decode())
            book.watched[key] = "routed"
        book._owned = lambda: set(range(settings.partitions))  # type: ignore[method-assign]
        await book.tick()
        assert writer.revocation is not None
        await writer.revocation
        assert len(writer.keys) == 1, writer.keys
        assert book.epoch == 1

    asyncio.run(scenario())
