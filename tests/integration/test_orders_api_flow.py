"""The orders HTTP API on a real worker: placed, read, held for approval, approved, the
exception queue, an operator's cancellation — through the order book and the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import Codec, single_object_codec
from streams.kernel.settings import Settings
from tests.integration.test_order_book import reserved, stock_in
from tests.support.kafka import wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

CONFIG = """
default_location: main
locations:
  - name: main
orders:
  approvals:
    channels:
      - name: web
        total_above: 50000
"""


@pytest.fixture(scope="module")
def codec() -> Codec:
    return single_object_codec()


@pytest.fixture(scope="module")
def worker(
    local_stack: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    config = tmp_path_factory.mktemp("orders-api") / "stockflow.yaml"
    config.write_text(CONFIG)
    process = WorkerProcess(
        f"orders-api-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(config),
        STOCKFLOW_STORE="memory://",
    )
    process.start()
    yield process
    process.stop()


def _order(order_id: str, lines: list[tuple[str, str, int]], price: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "channel": "web",
        "lines": [
            {"line_id": lid, "sku": sku, "qty": qty, "unit_price": price, "currency": "EUR"}
            for lid, sku, qty in lines
        ],
        "ship_to": {"country": "FR", "postal_code": "69002"},
        "customer_ref": "c-42",
    }


def _status(worker: WorkerProcess, order_id: str) -> str | None:
    code, body = worker.get(f"/v1/orders/{order_id}")
    return body.get("status") if code == 200 else None


def test_an_order_is_placed_read_held_for_approval_approved_and_listed(
    local_stack: Settings, worker: WorkerProcess, codec: Codec
) -> None:
    """Given two SKUs in stock and an approval rule for orders above 500.00 EUR on web
    When a small two-line order and a large one are posted to /v1/orders
    Then the small one reads allocated with its lines' location, route reason and history;
    the large one waits in pending_approval with its stock held, is listed by
    GET /v1/orders?status=pending_approval, and after POST .../approve it is released;
    an approve of the released order is refused with 409."""
    tag = uuid.uuid4().hex[:8]
    x, y = f"ax-{tag}", f"ay-{tag}"
    stock_in(local_stack, codec, worker, {x: 10, y: 10})
    small, large = f"s{tag}", f"l{tag}"
    code, answer = worker.post(
        "/v1/orders",
        [_order(small, [("1", x, 1), ("2", y, 1)], 1000), _order(large, [("1", x, 3)], 20000)],
    )
    assert code == 202, answer
    wait_for(lambda: _status(worker, f"web:{small}") == "allocated", timeout=60,
             what="the small order allocated")  # fmt: skip
    _, got = worker.get(f"/v1/orders/web:{small}")
    assert [(ln["sku"], ln["location"], ln["status"]) for ln in got["lines"]] == [
        (x, "main", "reserved"),
        (y, "main", "reserved"),
    ]
    assert got["route_reason"]
    assert [h["to_status"] for h in got["history"]] == ["received", "routed", "allocated"]

    wait_for(lambda: _status(worker, f"web:{large}") == "pending_approval", timeout=60,
             what="the large order held for approval")  # fmt: skip
    assert reserved(worker, x) == 4  # 1 + 3: the held order keeps its stock
    code, listed = worker.get("/v1/orders?status=pending_approval&channel=web")
    assert code == 200
    assert f"web:{large}" in [o["order_id"] for o in listed["orders"]]
    assert f"web:{small}" not in [o["order_id"] for o in listed["orders"]]

    code, _ = worker.post(f"/v1/orders/web:{large}/approve", {"note": "known customer"})
    assert code == 202
    wait_for(lambda: _status(worker, f"web:{large}") == "released", timeout=60,
             what="the approved order released")  # fmt: skip
    code, _ = worker.post(f"/v1/orders/web:{large}/approve", {})
    assert code == 409


def test_an_order_nobody_can_serve_waits_in_the_exception_queue_and_is_cancelled(
    local_stack: Settings, worker: WorkerProcess, codec: Codec
) -> None:
    """Given one unit of a SKU
    When an order of 2 is posted
    Then it is listed by GET /v1/orders?status=exception with its reason;
    when an operator cancels it, then it reads cancelled and the SKU holds nothing."""
    tag = uuid.uuid4().hex[:8]
    sku = f"ex-{tag}"
    stock_in(local_stack, codec, worker, {sku: 1})
    code, answer = worker.post("/v1/orders", _order(f"e{tag}", [("1", sku, 2)], 1000))
    assert code == 202, answer
    oid = f"web:e{tag}"
    wait_for(lambda: _status(worker, oid) == "exception", timeout=60, what="the exception")
    _, queue = worker.get("/v1/orders?status=exception")
    [mine] = [o for o in queue["orders"] if o["order_id"] == oid]
    assert mine["reason"]
    code, _ = worker.post(f"/v1/orders/{oid}/cancel", {"note": "customer called"})
    assert code == 202
    wait_for(lambda: _status(worker, oid) == "cancelled", timeout=60, what="the cancellation")
    assert reserved(worker, sku) == 0
