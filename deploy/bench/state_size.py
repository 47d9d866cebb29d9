"""Changelog bytes a SKU's state costs per write, after a long life (pure rules, no Kafka)."""

from __future__ import annotations

import random
import time

from deploy.bench.table import Row
from deploy.bench.workload import progress
from schemas.events import stock_event
from streams.ledger import DEFAULT_CONFIG, SkuState, apply

EVENTS = 100_000
PER_DAY = 1_000  # the SKU's rate: its 100,000 events take 100 days
TARGET_BYTES = 1024


def _life(events: int, per_day: int) -> SkuState:
    """One SKU's events: receipts, sales, orders placed then shipped or cancelled."""
    rng = random.Random(3)
    step = 86_400_000 // per_day
    now = int(time.time() * 1000) - events * step
    state: SkuState | None = None
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
    assert state is not None
    return state


def run_state_size(events: int = EVENTS, per_day: int = PER_DAY) -> Row:
    """Bytes of one changelog record (key and value) of a SKU that has taken ``events``."""
    started = time.perf_counter()
    state = _life(events, per_day)
    size = len(state.sku.encode()) + len(state.to_bytes())
    progress(
        f"state: {events:,} events at {per_day:,}/day -> {size:,} bytes per write "
        f"({len(state.ids_ring):,} ids in the window) in {time.perf_counter() - started:.1f} s"
    )
    return Row(
        f"changelog bytes per event, SKU with {events:,} events",
        size,
        "bytes",
        f"≤ {TARGET_BYTES:,}",
        f"one write per event at {per_day:,} events/day; {len(state.ids_ring):,} ids in the "
        "7-day window, 8 bytes each",
        {"verdict": "yes" if size <= TARGET_BYTES else "no"},
    )
