"""Batches for the ledger agent, flushed by size or by a short timer.

Faust's ``Stream.take_events`` can stall for good: its buffer processor and its consumer
share one "buffer being consumed" future through a variable that either side may reset,
so a batch can wait on a future nobody resolves (seen here on replays of a few thousand
events). This loop keeps Faust's stream and acknowledgements but owns the batching: the
agent only appends events, and every flush runs under one lock, in arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from time import monotonic
from typing import Any

Flush = Callable[[Sequence[Any]], Awaitable[None]]
Ack = Callable[[Any], Awaitable[Any]]


class EventBatcher:
    """Collects events; ``flush`` hands them to ``process`` and then acknowledges them."""

    def __init__(self, process: Flush, *, max_events: int, max_delay: float) -> None:
        self.process = process
        self.max_events = max_events
        self.max_delay = max_delay
        self._events: list[Any] = []
        self._lock = asyncio.Lock()
        self._ack: Ack | None = None
        self._since = 0.0  # monotonic time the oldest waiting event arrived

    async def add(self, event: Any, ack: Ack) -> None:
        self._ack = ack
        if not self._events:
            self._since = monotonic()
        self._events.append(event)
        if len(self._events) >= self.max_events:
            await self.flush()  # also the back-pressure: the stream waits for the flush

    async def flush(self) -> None:
        async with self._lock:
            if not self._events:
                return
            events, self._events = self._events, []
            await self.process(events)
            ack = self._ack
            if ack is not None:
                for event in events:
                    await ack(event)

    async def run_timer(self) -> None:
        """Flush what waits longer than ``max_delay``, forever (a background task). Events
        that arrived while a batch was being flushed are flushed as soon as the oldest of
        them has waited ``max_delay``, not a full ``max_delay`` after that flush."""
        while True:
            wait = self.max_delay
            if self._events:
                wait = self._since + self.max_delay - monotonic()
                if wait <= 0:
                    await self.flush()
                    continue
            await asyncio.sleep(wait)
