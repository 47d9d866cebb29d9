"""Expired checkout holds are released by the ledger itself.

The timer does not touch the table: it publishes a ``hold_released`` event (reason
``expired``) for each due hold to the SKU's own partition, so the release is applied in
order with the SKU's other events by the single writer. Its event id is derived from the
event that placed the hold, so a release sent twice (two ticks, a restart) is applied once.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from streams.ledger.events import stock_event
from streams.ledger.state import SkuState
from streams.times import now_ms
from streams.topics import STOCK_EVENTS

log = logging.getLogger("stockflow.holds")

RESEND_AFTER_MS = 10_000


class HoldIndex:
    """When each SKU of this worker next has a hold to expire (a lazy min-heap)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, bytes]] = []
        self._next: dict[bytes, int] = {}

    def track(self, key: bytes, state: SkuState) -> None:
        expiry = state.next_hold_expiry
        if expiry is None:
            self._next.pop(key, None)
        elif self._next.get(key) != expiry:
            self._next[key] = expiry
            heapq.heappush(self._heap, (expiry, key))

    def rebuild(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Index every SKU of the table (after recovery or a rebalance)."""
        self._heap.clear()
        self._next.clear()
        for key, stored in items:
            if stored is not None:
                self.track(key, SkuState.from_bytes(stored))

    def due(self, now: int) -> list[bytes]:
        keys = []
        while self._heap and self._heap[0][0] <= now:
            expiry, key = heapq.heappop(self._heap)
            if self._next.get(key) == expiry:  # else a newer entry superseded this one
                del self._next[key]
                keys.append(key)
        return keys

    async def release_due(self, table: Any, producer: Any, codec: Codec) -> int:
        """Publish a release for every hold past its expiry; returns how many were sent."""
        now = now_ms()
        sent = 0
        for key in self.due(now):
            stored = table.get(key)
            if stored is None:
                continue  # the partition moved to another worker
            state = SkuState.from_bytes(stored)
            expired = [(h, hold) for h, hold in state.holds.items() if hold.expires_at <= now]
            for hold_id, hold in expired:
                event = expiry_event(state.sku, hold_id, hold.event_id, now)
                value = codec.encode(STOCK_EVENTS.value_schema, event)
                await producer.send(STOCK_EVENTS.name, key, value, None, None, None)
            sent += len(expired)
            if expired:  # look again later, in case the release was lost on the way
                self._next[key] = now + RESEND_AFTER_MS
                heapq.heappush(self._heap, (now + RESEND_AFTER_MS, key))
        return sent


def expiry_event(sku: str, hold_id: str, hold_event_id: str, now: int) -> dict[str, Any]:
    # Keyed by the event that placed the hold: a hold placed again under the same id
    # gets a release of its own, not one dropped as a duplicate of the first.
    return stock_event(
        "hold_released",
        sku,
        f"{hold_event_id}:expired",
        now,
        order_id=hold_id,
        source="ledger-timer",
        reason="expired",
    )
