"""Changelog bytes a busy SKU's state costs per applied event (pure rules, no Kafka).

The SKU is written after every event, as the ledger does when each batch holds one event
of it: the pages sealed since, its main record, the tombstones of pages dropped (keys and
values counted, a tombstone as its key), amortised over its whole life.
"""

from __future__ import annotations

import random
import time

from deploy.bench.table import Row
from deploy.bench.workload import progress
from schemas.events import stock_event
from streams.ledger import DEFAULT_CONFIG, SkuState, apply
from streams.ledger.stored import is_page_key

EVENTS = 100_000
PER_DAY = 1_000  # the SKU's rate: its 100,000 events take 100 days
TARGET_BYTES = 1024


class _Life:
    """What the ledger wrote for the SKU: bytes, records, and the table it left."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes] = {}
        self.written = 0
        self.records = 0

    def write(self, state: SkuState) -> None:
        key = state.sku.encode()
        for name, value in state.records(self.table.get(key)):
            self.written += len(name) + (len(value) if value is not None else 0)
            self.records += 1
            if value is None:
                del self.table[name]
            else:
                self.table[name] = value


def _life(events: int, per_day: int) -> tuple[SkuState, _Life]:
    """One SKU's events: receipts, sales, orders placed then shipped or cancelled."""
    rng = random.Random(3)
    step = 86_400_000 // per_day
    now = int(time.time() * 1000) - events * step
    state: SkuState | None = None
    life = _Life()
    open_orders: list[str] = []
    for i in range(events):
        now += step
        roll = rng.random()
        if roll < 0.2 or state is None:
            event = stock_event("receipt", "bench-life", f"e{i}", now, qty=5, source="bench")
        elif roll < 0.5:
            open_orders.append(f"o{i}")
            event = stock_event(
                "order_placed", "bench-life", f"e{i}", now, qty=1, order_id=f"o{i}",
                channel="web", source="bench",
            )  # fmt: skip
        elif roll < 0.8 and open_orders:
            kind = "order_shipped" if rng.random() < 0.9 else "order_cancelled"
            event = stock_event(
                kind, "bench-life", f"e{i}", now, order_id=open_orders.pop(0), channel="web",
                source="bench",
            )  # fmt: skip
        else:
            event = stock_event("sale", "bench-life", f"e{i}", now, qty=1, source="bench")
        state, _ = apply(state, event, DEFAULT_CONFIG, now)
        life.write(state)
    assert state is not None
    return state, life


def run_state_size(events: int = EVENTS, per_day: int = PER_DAY) -> Row:
    """Changelog bytes written per event (keys, values, tombstones) by a SKU that has taken
    ``events``, written after each one."""
    started = time.perf_counter()
    state, life = _life(events, per_day)
    per_event = round(life.written / events)
    main = len(state.sku) + len(life.table[state.sku.encode()])
    pages = sum(is_page_key(k) for k in life.table)
    whole = sum(len(k) + len(v) for k, v in life.table.items())
    progress(
        f"state: {events:,} events at {per_day:,}/day -> {per_event:,} bytes written per event "
        f"({life.records:,} records; main record now {main:,} bytes, {pages} pages, whole "
        f"state {whole:,} bytes) in {time.perf_counter() - started:.1f} s"
    )
    return Row(
        f"changelog bytes per event, SKU with {events:,} events",
        per_event,
        "bytes",
        f"≤ {TARGET_BYTES:,}",
        f"written after every event at {per_day:,} events/day: main record ({main:,} bytes "
        f"now), pages sealed, tombstones; {len(state.ids_ring):,} ids in the 7-day window, "
        f"{len(state.orders)} open orders, whole state {whole:,} bytes in {pages + 1} records",
        {"verdict": "yes" if per_event <= TARGET_BYTES else "no"},
    )
