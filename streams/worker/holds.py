"""Expired checkout holds are released by the ledger itself.

The timer does not touch the table: it publishes the releases of
:func:`streams.ledger.expiry.expiry_events` to each SKU's own partition, so they are applied
in order with the SKU's other events by the single writer.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Iterable
from typing import Any

from schemas.codec import Codec
from schemas.times import now_ms
from streams.kernel.topics import STOCK_EVENTS
from streams.ledger.expiry import expiry_events
from streams.ledger.state import PageReader, SkuState, StateFormatError
from streams.ledger.stored import is_page_key
from streams.worker.registry import resolve_off_loop

log = logging.getLogger("stockflow.holds")

RESEND_AFTER_MS = 10_000
REBUILD_CHUNK = 2_000  # SKUs indexed between two turns of the event loop


class HoldIndex:
    """When each SKU of this worker next has a hold to expire (a lazy min-heap)."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, bytes]] = []
        self._next: dict[bytes, int] = {}
        self._fresh: set[bytes] | None = None  # while rebuilding: SKUs stored since it began

    def track(self, key: bytes, state: SkuState) -> None:
        if self._fresh is not None:
            self._fresh.add(key)
        self._track(key, state)

    def _track(self, key: bytes, state: SkuState) -> None:
        expiry = state.next_hold_expiry
        if expiry is None:
            self._next.pop(key, None)
        elif self._next.get(key) != expiry:
            self._next[key] = expiry
            heapq.heappush(self._heap, (expiry, key))

    def rebuild(self, items: Iterable[tuple[bytes, bytes | None]], pages: PageReader) -> None:
        """Index every SKU of the table (after recovery or a rebalance); ``pages`` reads a
        state page by key (the table's ``get``): page keys themselves are skipped."""
        self._heap.clear()
        self._next.clear()
        for key, stored in items:
            if is_page_key(key):
                continue
            state = _decoded(key, stored, pages)
            if state is not None:
                self.track(key, state)

    async def rebuild_in_background(
        self,
        items: Iterable[tuple[bytes, bytes | None]],
        pages: PageReader,
        chunk: int = REBUILD_CHUNK,
    ) -> int:
        """:meth:`rebuild`, ``chunk`` SKUs at a time, yielding to the event loop in between.

        A restarted worker serves and applies events while its holds are indexed (decoding a
        million states takes tens of seconds): a hold that expires meanwhile is released when
        its SKU is reached, seconds late, never lost. States stored meanwhile are tracked as
        usual, and the rebuild leaves those SKUs alone (``items`` may be a snapshot older than
        them). Returns how many SKUs it read."""
        self._heap.clear()
        self._next.clear()
        fresh: set[bytes] = set()
        self._fresh = fresh
        read = 0
        try:
            for key, stored in items:
                read += 1
                if key not in fresh and not is_page_key(key):  # fresh: tracked from newer
                    state = _decoded(key, stored, pages)
                    if state is not None:
                        self._track(key, state)
                if read % chunk == 0:
                    await asyncio.sleep(0)
        finally:
            if self._fresh is fresh:
                self._fresh = None
        return read

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
            state = _decoded(key, table.get(key), table.get)
            if state is None:
                continue  # the partition moved to another worker
            expired = expiry_events(state, now)
            if expired:
                await resolve_off_loop(codec)
            for event in expired:
                value = codec.encode(STOCK_EVENTS.value_schema, event)
                await producer.send(STOCK_EVENTS.name, key, value, None, None, None)
            sent += len(expired)
            if expired:  # look again later, in case the release was lost on the way
                self._next[key] = now + RESEND_AFTER_MS
                heapq.heappush(self._heap, (now + RESEND_AFTER_MS, key))
        return sent


def _decoded(key: bytes, stored: bytes | None, pages: PageReader) -> SkuState | None:
    """The stored state, or None when there is none or it does not decode (logged: the
    ledger dead-letters that SKU's events as ``internal_error`` until it is repaired)."""
    if stored is None:
        return None
    try:
        return SkuState.from_bytes(stored, pages)
    except StateFormatError as exc:
        log.error("sku=%s: stored state does not decode, holds not indexed: %s", key, exc)
        return None
