"""The stock event mix of the bench, keyed by SKU like every producer of the project.

The first event of each SKU is its opening ``stock_count`` (a catalogue loaded by counts);
after that every event picks a SKU uniformly at random, with this mix:
orders 65 %, cancels of an open order 15 %, counts 10 %, receipts 10 %.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Iterator
from typing import Any

from deploy.bench.kafka import bulk_producer, flush, send
from schemas.codec import Codec
from schemas.events import stock_event
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS

CHANNELS = ("web", "amazon", "store")
MIX_KINDS = ("order_placed", "order_cancelled", "stock_count", "receipt")
MIX_WEIGHTS = (65, 15, 10, 10)


class Workload:
    """Events over ``skus`` SKUs named ``{prefix}-{n}``; deterministic for a given seed."""

    def __init__(self, prefix: str, skus: int, seed: int = 7) -> None:
        self.prefix = prefix
        self.skus = skus
        self.rng = random.Random(seed)
        self.counted = 0  # SKUs that had their opening count
        self.open_orders: dict[int, list[str]] = {}
        self.serial = 0
        self._kinds = self.rng.choices(MIX_KINDS, MIX_WEIGHTS, k=4096)

    def sku(self, n: int) -> str:
        return f"{self.prefix}-{n:07d}"

    def next_event(self, occurred_at: int) -> dict[str, Any]:
        self.serial += 1
        eid = f"{self.prefix}-e{self.serial}"
        if self.counted < self.skus:
            n = self.counted
            self.counted += 1
            return self._count(n, eid, occurred_at)
        n = self.rng.randrange(self.skus)
        kind = self._kinds[self.serial % len(self._kinds)]
        if kind == "order_cancelled":
            orders = self.open_orders.get(n)
            if orders:
                return stock_event(
                    kind, self.sku(n), eid, occurred_at, order_id=orders.pop(), source="bench"
                )
            kind = "order_placed"
        if kind == "order_placed":
            order = f"o{self.serial}"
            self.open_orders.setdefault(n, []).append(order)
            return stock_event(
                kind,
                self.sku(n),
                eid,
                occurred_at,
                qty=self.rng.randint(1, 3),
                order_id=order,
                channel=self.rng.choice(CHANNELS),
                source="bench",
            )
        if kind == "stock_count":
            return self._count(n, eid, occurred_at)
        return stock_event(
            kind, self.sku(n), eid, occurred_at, qty=self.rng.randint(10, 100), source="bench"
        )

    def _count(self, n: int, eid: str, occurred_at: int) -> dict[str, Any]:
        return stock_event(
            "stock_count",
            self.sku(n),
            eid,
            occurred_at,
            qty=self.rng.randint(50, 500),
            source="bench",
            source_seq=self.serial,
        )

    def events(self, count: int) -> Iterator[dict[str, Any]]:
        now = int(time.time() * 1000)
        for _ in range(count):
            yield self.next_event(now)


def produce_workload(
    settings: Settings, codec: Codec, workload: Workload, count: int, label: str
) -> int:
    """Encode and produce ``count`` events to the stock events topic; returns total bytes."""
    p = bulk_producer(settings)
    encode = codec.encode
    schema = STOCK_EVENTS.value_schema
    size = 0
    began = time.monotonic()
    for i, event in enumerate(workload.events(count), 1):
        value = encode(schema, event)
        size += len(value)
        send(p, STOCK_EVENTS.name, event["sku"].encode(), value)
        if i % 100_000 == 0:
            p.poll(0)
            progress(f"{label}: produced {i:,}/{count:,} events")
    flush(p, "stock events")
    progress(f"{label}: produced {count:,} events in {time.monotonic() - began:.1f} s")
    return size


def progress(line: str) -> None:
    print(f"[bench] {line}", file=sys.stderr, flush=True)
