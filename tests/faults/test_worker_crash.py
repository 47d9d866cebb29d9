"""kill -9 of the ledger worker in the middle of a stream: nothing lost, nothing applied twice."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, STOCK_MOVEMENTS
from streams.ledger.config import DEFAULT_CONFIG
from streams.ledger.rules import apply
from streams.ledger.state import SkuState
from tests.support.kafka import group_lag, produce_events, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.stores import table_stores
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS = 20_000
SKUS = 100


def _stream(prefix: str, rng: random.Random) -> list[dict[str, Any]]:
    """A day of mixed stock events for SKUS SKUs: counts, orders, cancels, shipments, sales,
    receipts, adjustments and returns, in per-SKU order."""
    events: list[dict[str, Any]] = []
    open_orders: dict[str, list[str]] = defaultdict(list)
    t0 = int(time.time() * 1000) - 3_600_000
    for s in range(SKUS):
        sku = f"{prefix}-{s}"
        events.append(
            stock_event(f"{sku}-count", "stock_count", sku, 500, location="default", occurred_at=t0)
        )
    for i in range(EVENTS - SKUS):
        sku = f"{prefix}-{rng.randrange(SKUS)}"
        at = t0 + 1 + i
        roll = rng.random()
        eid = f"{prefix}-e{i}"
        if roll < 0.45:
            order = f"o{i}"
            open_orders[sku].append(order)
            events.append(
                stock_event(
                    eid,
                    "order_placed",
                    sku,
                    rng.randint(1, 3),
                    channel="web",
                    order_id=order,
                    occurred_at=at,
                )
            )
        elif roll < 0.55 and open_orders[sku]:
            order = open_orders[sku].pop(rng.randrange(len(open_orders[sku])))
            events.append(
                stock_event(
                    eid, "order_cancelled", sku, 0, channel="web", order_id=order, occurred_at=at
                )
            )
        elif roll < 0.70 and open_orders[sku]:
            order = open_orders[sku].pop(0)
            events.append(
                stock_event(
                    eid, "order_shipped", sku, 0, channel="web", order_id=order, occurred_at=at
                )
            )
        elif roll < 0.80:
            events.append(
                stock_event(eid, "sale", sku, 1, location="default", channel="till", occurred_at=at)
            )
        elif roll < 0.90:
            events.append(
                stock_event(
                    eid, "receipt", sku, rng.randint(1, 10), location="default", occurred_at=at
                )
            )
        elif roll < 0.95:
            events.append(
                stock_event(
                    eid,
                    "adjustment",
                    sku,
                    rng.choice([-2, -1, 1, 2]),
                    location="default",
                    reason="correction",
                    occurred_at=at,
                )
            )
        else:
            events.append(
                stock_event(
                    eid,
                    "return_received",
                    sku,
                    1,
                    location="default",
                    disposition=rng.choice(["resellable", "damaged"]),
                    occurred_at=at,
                )
            )
    return events


def _expected(events: list[dict[str, Any]]) -> dict[str, SkuState]:
    states: dict[str, SkuState] = {}
    for event in events:
        state, _ = apply(states.get(event["sku"]), event, DEFAULT_CONFIG, event["ingested_at"])
        states[event["sku"]] = state
    return states


@pytest.fixture(params=table_stores())
def worker(local_stack: Settings, request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    """A worker on each table store: Faust's in-memory store, and RocksDB."""
    process = WorkerProcess(
        f"crash-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_STORE=request.param,
    )
    process.start()
    yield process
    process.stop()


def test_a_worker_killed_mid_stream_recovers_its_table_and_applies_every_event_once(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a worker consuming a stream of 20,000 mixed events for 100 SKUs,
    when it is killed with SIGKILL in the middle and restarted,
    then its table is recovered from the changelog, every SKU equals the state the pure rules
    compute from the input, and the movements (deduplicated by id) add up to each on_hand."""
    codec = single_object_codec()
    prefix = f"crash-{uuid.uuid4().hex[:6]}"
    events = _stream(prefix, random.Random(11))
    expected = _expected(events)

    def produce() -> None:
        for start in range(0, len(events), 1000):
            produce_events(local_stack, codec, events[start : start + 1000])
            time.sleep(0.2)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_for(
        lambda: (worker.stock(f"{prefix}-0") or {}).get("version", 0) > 0,
        timeout=60,
        what="first SKU",
    )
    time.sleep(2.0)  # well inside the stream: thousands applied, thousands to come
    worker.kill()
    producer.join()
    worker.start()
    wait_for(
        lambda: group_lag(local_stack, worker.app_id, STOCK_EVENTS.name) == 0,
        timeout=300,
        what="catch-up",
    )

    mismatches = []
    for sku, state in expected.items():
        got = worker.stock(sku)
        assert got is not None, sku
        for name, loc in state.locations.items():
            want = (loc.on_hand, loc.reserved, loc.unsellable)
            have = tuple(got["locations"][name][k] for k in ("on_hand", "reserved", "unsellable"))
            if want != have:
                mismatches.append((sku, name, want, have))
    assert mismatches == []

    movements, unique = movements_add_up(local_stack, prefix, expected)
    print(f"\n{movements} movement records, {unique} unique after the crash")


def movements_add_up(
    settings: Settings, prefix: str, expected: dict[str, SkuState]
) -> tuple[int, int]:
    """Assert that the movements of the SKUs ``prefix-*``, deduplicated by id, add up to the
    on_hand the pure rules compute; returns (movement records read, unique movements)."""
    prefix_dash = f"{prefix}-"
    movements = read_topic(
        settings,
        single_object_codec(),
        STOCK_MOVEMENTS,
        lambda r: r["sku"].startswith(prefix_dash),
        until=lambda _: False,
        timeout=15,
    )
    unique = {m["movement_id"]: m for m in movements}
    on_hand: dict[str, int] = defaultdict(int)
    for m in unique.values():
        on_hand[m["sku"]] += m["delta_on_hand"]
    assert on_hand == {
        sku: sum(loc.on_hand for loc in s.locations.values()) for sku, s in expected.items()
    }
    return len(movements), len(unique)
