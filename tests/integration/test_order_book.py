"""Multi-line orders through a real worker (ledger + order book) on the real broker.

Figures: ``STOCKFLOW_TEST_ORDER_PAIRS`` pairs of orders race for one scarce unit (default 3).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import Codec, single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    ORDERS,
    ORDERS_STATE,
    STOCK_DEADLETTER,
    STOCK_EVENTS,
    STOCK_LEVELS,
)
from tests.support.kafka import (
    end_offsets,
    produce_events,
    produce_raw,
    producer,
    read_topic,
    stock_event,
    wait_for,
)
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

PAIRS = int(os.environ.get("STOCKFLOW_TEST_ORDER_PAIRS", "3"))
CONFIG = """
default_location: main
locations:
  - name: main
orders:
  max_tries: 3
  channels:
    - name: web
      policy: all_or_nothing
"""


@pytest.fixture(scope="module")
def codec() -> Codec:
    return single_object_codec()


@pytest.fixture(scope="module")
def worker(
    local_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    folder = tmp_path_factory.mktemp("orders")
    config = folder / "stockflow.yaml"
    config.write_text(CONFIG)
    process = WorkerProcess(
        f"orders-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(config),
        STOCKFLOW_STORE="memory://",
    )
    process.first_offsets = end_offsets(local_stack, STOCK_EVENTS.name)
    process.start()
    yield process
    process.stop()


def order(order_id: str, lines: list[tuple[str, str, int]]) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "event_id": f"{order_id}/placed",
        "type": "placed",
        "order_id": order_id,
        "channel": "web",
        "lines": [
            {"line_id": lid, "sku": sku, "qty": qty, "unit_price": 1000, "currency": "EUR"}
            for lid, sku, qty in lines
        ],
        "ship_to": {"country": "FR", "postal_code": "75001", "lat": None, "lon": None},
        "delivery": "ship",
        "pickup_location": None,
        "customer_ref": "c-1",
        "customer_type": "b2c",
        "risk": None,
        "location": None,
        "note": None,
        "by": None,
        "source": "test",
        "placed_at": now,
        "occurred_at": now,
        "ingested_at": now,
    }


def place(settings: Settings, codec: Codec, orders: list[dict[str, Any]]) -> None:
    p = producer(settings)
    for record in orders:
        value = codec.encode(ORDERS.value_schema, record)
        p.produce(ORDERS.name, key=record["order_id"].encode(), value=value)
    assert p.flush(60) == 0


def stock_in(
    settings: Settings, codec: Codec, worker: WorkerProcess, units: dict[str, int]
) -> None:
    """Receipts at main, applied by the ledger and published as levels (which the order
    book's view of the levels reads)."""
    produce_events(
        settings,
        codec,
        [
            stock_event(f"{sku}-in", "receipt", sku, qty, location="main")
            for sku, qty in units.items()
        ],
    )
    for sku, qty in units.items():
        wait_for(
            lambda sku=sku, qty=qty: (
                (worker.stock(sku) or {}).get("locations", {}).get("main", {}).get("on_hand") == qty
            ),
            timeout=60,
            what=f"the receipt of {sku}",
        )
    read_topic(
        settings,
        codec,
        STOCK_LEVELS,
        lambda r: r["sku"] in units,
        until=lambda found: {r["sku"] for r in found} >= set(units),
        timeout=30,
    )
    time.sleep(1.0)  # the worker's view follows the same topic


def states(
    settings: Settings, codec: Codec, order_ids: set[str], done: set[str]
) -> dict[str, list[dict[str, Any]]]:
    """Every OrderState of the orders, until each has one whose status is in ``done``."""
    found = read_topic(
        settings,
        codec,
        ORDERS_STATE,
        lambda r: r.get("order_id") in order_ids,
        until=lambda rs: {r["order_id"] for r in rs if r["status"] in done} >= order_ids,
        timeout=90,
    )
    by_order: dict[str, list[dict[str, Any]]] = {}
    for record in found:
        by_order.setdefault(record["order_id"], []).append(record)
    return by_order


def reserved(worker: WorkerProcess, sku: str) -> int:
    return int((worker.stock(sku) or {})["locations"]["main"]["reserved"])


def test_an_order_with_stock_is_allocated_and_reserves_every_line(
    local_stack: Settings, worker: WorkerProcess, codec: Codec
) -> None:
    """Given two SKUs in stock at main
    When a two-line order is placed on orders.v1
    Then the ledger reserves both lines (GET /v1/stock), and orders.state.v1 has the
    order's transitions received, routed, allocated with versions 1, 2, 3."""
    tag = uuid.uuid4().hex[:8]
    x, y = f"ox-{tag}", f"oy-{tag}"
    stock_in(local_stack, codec, worker, {x: 5, y: 5})
    oid = f"web:{tag}"
    began = time.monotonic()
    place(local_stack, codec, [order(oid, [("1", x, 2), ("2", y, 1)])])
    history = states(local_stack, codec, {oid}, {"allocated"})[oid]
    print(f"\n[orders] placed -> allocated in {time.monotonic() - began:.2f} s (indicative)")
    assert [(r["version"], r["status"]) for r in history] == [
        (1, "received"),
        (2, "routed"),
        (3, "allocated"),
    ]
    last = history[-1]
    assert [(ln["sku"], ln["location"], ln["status"]) for ln in last["lines"]] == [
        (x, "main", "reserved"),
        (y, "main", "reserved"),
    ]
    assert last["route_reason"]
    wait_for(lambda: reserved(worker, x) == 2 and reserved(worker, y) == 1, timeout=30,
             what="both lines reserved")  # fmt: skip


def test_a_scarce_line_releases_the_whole_order(
    local_stack: Settings, worker: WorkerProcess, codec: Codec
) -> None:
    """Given one unit of a scarce SKU and plenty of two others
    When pairs of two-line orders race for the scarce unit (each with another SKU)
    Then per pair exactly one order is allocated; the other is an exception whose reason
    names the refusal, and holds nothing: the ledger's reservations are exactly the
    allocated orders' lines (the loser's other line was released, or never reserved)."""
    tag = uuid.uuid4().hex[:8]
    scarce = [f"os-{tag}-{i}" for i in range(PAIRS)]
    x, y = f"ox-{tag}", f"oy-{tag}"
    stock_in(local_stack, codec, worker, {x: 100, y: 100, **dict.fromkeys(scarce, 1)})
    orders = []
    for i, sku in enumerate(scarce):
        orders.append(order(f"web:{tag}-a{i}", [("1", x, 1), ("2", sku, 1)]))
        orders.append(order(f"web:{tag}-b{i}", [("1", y, 1), ("2", sku, 1)]))
    place(local_stack, codec, orders)
    ids = {o["order_id"] for o in orders}
    by_order = states(local_stack, codec, ids, {"allocated", "exception"})
    final = {oid: history[-1] for oid, history in by_order.items()}
    allocated = {oid for oid, s in final.items() if s["status"] == "allocated"}
    losers = {oid for oid, s in final.items() if s["status"] == "exception"}
    compensated = sum(1 for oid in losers if final[oid]["attempts"] >= 1)
    print(
        f"\n[orders] {PAIRS} pairs: {len(allocated)} allocated, {len(losers)} exceptions, "
        f"{compensated} of them after a refused reservation (the others routed on a level "
        "that already showed the unit gone)"
    )
    for i in range(PAIRS):
        pair = {f"web:{tag}-a{i}", f"web:{tag}-b{i}"}
        assert len(pair & allocated) == 1 and len(pair & losers) == 1, final
    for oid in losers:
        assert final[oid]["reason"], final[oid]
        assert "insufficient_stock" in final[oid]["reason"] or "no location" in final[oid]["reason"]
        assert all(ln["status"] in ("released", "refused") for ln in final[oid]["lines"])
    a_won = sum(1 for oid in allocated if "-a" in oid)
    wait_for(
        lambda: reserved(worker, x) == a_won and reserved(worker, y) == PAIRS - a_won,
        timeout=30,
        what="the losers' other lines released",
    )
    assert all(reserved(worker, sku) == 1 for sku in scarce)


def test_a_bad_order_is_dead_lettered_and_the_next_one_goes_through(
    local_stack: Settings, worker: WorkerProcess, codec: Codec
) -> None:
    """Given a worker running the order book
    When an order without lines, and undecodable bytes, reach orders.v1, then a good order
    Then both bad records are dead-lettered by the order book with their reason, and the
    good order is allocated."""
    tag = uuid.uuid4().hex[:8]
    sku = f"od-{tag}"
    stock_in(local_stack, codec, worker, {sku: 3})
    bad = order(f"web:{tag}-bad", [])
    good = order(f"web:{tag}-good", [("1", sku, 1)])
    place(local_stack, codec, [bad])
    produce_raw(local_stack, [(f"web:{tag}-poison".encode(), b"\x00not avro")], ORDERS)
    place(local_stack, codec, [good])
    states(local_stack, codec, {good["order_id"]}, {"allocated"})
    letters = read_topic(
        local_stack,
        codec,
        STOCK_DEADLETTER,
        lambda r: r["component"] == "order-book" and tag.encode() in (r["key"] or b""),
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    assert (
        sorted(r["reason"] for r in letters) == ["invalid_order", "not_avro"] or len(letters) == 2
    )
    assert any(r["reason"] == "invalid_order" for r in letters), letters
