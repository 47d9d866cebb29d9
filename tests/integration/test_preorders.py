"""Pre-orders on the real stack: a real worker with a pre-order allowance, a purchase order
and orders over HTTP, the decisions, levels, movements and alerts read back from Kafka."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS, STOCK_DECISIONS, STOCK_LEVELS, STOCK_MOVEMENTS
from tests.integration.test_order_book import order, place, states
from tests.support.kafka import read_topic
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

SKU_PREFIX = "pre"


def _config(sku: str) -> dict[str, Any]:
    return {
        "default_location": "wh",
        "locations": [{"name": "wh"}],
        "channels": [{"name": "web"}, {"name": "market"}],
        "preorders": [
            {"sku": sku, "channel": "web", "cap": 5},
            {"sku": sku, "channel": "market", "cap": 3},
            {"sku": f"{sku}-book", "channel": "web", "cap": 4},
        ],
        "orders": {"channels": [{"name": "web", "policy": "all_or_nothing"}]},
    }


@pytest.fixture(scope="module")
def sku() -> str:
    return f"{SKU_PREFIX}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def worker(
    local_stack: Settings, sku: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    path = tmp_path_factory.mktemp("preorders") / "ledger.yaml"
    path.write_text(json.dumps(_config(sku)), encoding="utf-8")  # JSON is YAML
    process = WorkerProcess(
        f"preorders-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(path),
    )
    process.start()
    yield process
    process.stop()


def _post(worker: WorkerProcess, events: list[dict[str, Any]]) -> dict[str, Any]:
    request = urllib.request.Request(
        worker.url + "/v1/events",
        data=json.dumps(events).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {worker.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            body: dict[str, Any] = json.loads(answer.read())
    except urllib.error.HTTPError as err:
        body = json.loads(err.read())
    return body


def _days(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def test_preorders_are_sold_against_the_purchase_order_and_served_first_on_receipt(
    local_stack: Settings, worker: WorkerProcess, sku: str
) -> None:
    """Given a worker where the SKU may be pre-sold 5 on web and 3 on market, no stock, and
    a purchase order PO-1 of 6 units expected in 20 days posted to /v1/events,
    When web orders 2 (w1), market 3 (m1), web 4 (w2: beyond web's cap), then 4 units of
    PO-1 are received and 2 cancelled,
    Then w1 and m1 are backordered pre-orders promised for PO-1's day and w2 is refused,
    the level shows what each channel may still pre-sell, the receipt's units go to w1
    (2) and m1 (2) as pre-order allocations, and the cancellation raises one
    preorder_at_risk alert naming m1 (its last unit is no longer on its way)."""
    expected = datetime.now(UTC).date() + timedelta(days=20)
    base = {"sku": sku, "location": "wh"}
    po = {**base, "source_ref": "PO-1"}
    answer = _post(
        worker,
        [
            {**po, "event_id": f"{sku}-po", "type": "purchase_ordered", "qty": 6,
             "expected_on": expected.isoformat()},
            {**base, "event_id": f"{sku}-bad", "type": "sale", "qty": 1,
             "expected_on": expected.isoformat()},
        ],
    )  # fmt: skip
    assert answer["accepted"] == 1 and answer["rejected"] == 1, answer  # the bad one is said
    order = {"sku": sku, "type": "order_placed"}
    _post(
        worker,
        [
            {**order, "event_id": f"{sku}-w1", "order_id": "w1", "channel": "web", "qty": 2},
            {**order, "event_id": f"{sku}-m1", "order_id": "m1", "channel": "market", "qty": 3},
            {**order, "event_id": f"{sku}-w2", "order_id": "w2", "channel": "web", "qty": 4},
        ],
    )
    codec = single_object_codec()
    mine = {f"{sku}-w1", f"{sku}-m1", f"{sku}-w2"}
    decisions = read_topic(
        local_stack,
        codec,
        STOCK_DECISIONS,
        lambda d: d["event_id"] in mine,
        until=lambda found: len(found) >= 3,
    )
    decided = {
        d["order_id"]: (d["outcome"], d["reason"], d["preorder"], d["promised_on"])
        for d in decisions
    }
    assert decided == {
        "w1": ("backordered", "preorder", True, _days(expected)),
        "m1": ("backordered", "preorder", True, _days(expected)),
        "w2": ("rejected", "insufficient_stock", False, None),
    }
    levels = read_topic(
        local_stack,
        codec,
        STOCK_LEVELS,
        lambda lv: lv["sku"] == sku,
        until=lambda found: any(lv["cause_event_id"] == f"{sku}-m1" for lv in found),
        timeout=30,
    )
    shown = {lv["cause_event_id"]: lv["preorders"] for lv in levels}
    assert shown[f"{sku}-po"] == {"web": 5, "market": 3}
    assert shown[f"{sku}-m1"] == {"web": 1, "market": 0}  # 6 incoming - 5 pre-sold
    _post(
        worker,
        [
            {**po, "event_id": f"{sku}-r1", "type": "receipt", "qty": 4},
            {**po, "event_id": f"{sku}-c1", "type": "purchase_cancelled", "qty": 2},
        ],
    )
    allocated = read_topic(
        local_stack,
        codec,
        STOCK_MOVEMENTS,
        lambda m: m["event_id"] == f"{sku}-r1" and m["type"] == "backorder_allocated",
        until=lambda found: sum(m["delta_reserved"] for m in found) >= 4,
    )
    assert sorted((m["reason"], m["delta_reserved"]) for m in allocated) == [
        ("preorder", 2),
        ("preorder", 2),
    ]
    alerts = read_topic(
        local_stack,
        codec,
        STOCK_ALERTS,
        lambda a: a["sku"] == sku and a["kind"] == "preorder_at_risk",
        until=lambda found: len(found) >= 1,
    )
    [alert] = alerts
    assert alert["event_id"] == f"{sku}-c1" and alert["value"] == 1
    assert "m1" in alert["message"] and "w1" not in alert["message"]
    stock = worker.stock(sku) or {}
    assert stock["locations"]["wh"]["reserved"] == 4
    assert stock["preorders"] == {
        "room": {"web": 0, "market": 0},
        "waiting": [
            {"order_id": "m1", "channel": "market", "qty": 1, "promised_on": expected.isoformat()}
        ],
    }


def test_an_order_book_order_beyond_the_stock_waits_as_a_preorder(
    local_stack: Settings, worker: WorkerProcess, sku: str
) -> None:
    """Given a SKU no location holds, 5 units on a purchase order and web allowed to
    pre-sell 4 of it (the order book runs in the worker),
    When a web order of 2 comes through orders.v1,
    Then the order book asks the ledger though no location has the units, the ledger takes
    the line as a pre-order, and the order waits backordered; the ledger lists it waiting."""
    book_sku = f"{sku}-book"
    expected = datetime.now(UTC).date() + timedelta(days=9)
    _post(
        worker,
        [
            {"sku": book_sku, "location": "wh", "source_ref": "PO-9", "event_id": f"{book_sku}-po",
             "type": "purchase_ordered", "qty": 5, "expected_on": expected.isoformat()},
        ],
    )  # fmt: skip
    codec = single_object_codec()
    read_topic(
        local_stack,
        codec,
        STOCK_LEVELS,
        lambda lv: lv["sku"] == book_sku and lv["preorders"].get("web") == 4,
        until=lambda found: bool(found),
        timeout=30,
    )
    time.sleep(1.0)  # the order book's view of the levels follows the same topic
    order_id = f"web:{book_sku}"
    place(local_stack, codec, [order(order_id, [("1", book_sku, 2)])])
    found = states(local_stack, codec, {order_id}, {"backordered", "exception"})
    last = found[order_id][-1]
    assert last["status"] == "backordered", last
    waiting = (worker.stock(book_sku) or {})["preorders"]["waiting"]
    assert waiting == [
        {"order_id": order_id, "channel": "web", "qty": 2, "promised_on": expected.isoformat()}
    ]
