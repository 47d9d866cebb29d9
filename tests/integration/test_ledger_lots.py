"""Lots and expiry on the real stack: a real worker, receipts of lots over HTTP, an order
allocated from the earliest-expiring lot, the movement and the decision in Kafka naming it."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DECISIONS, STOCK_MOVEMENTS
from tests.support.kafka import read_topic, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

CONFIG = {
    "locations": [{"name": "wh"}],
    "channels": [{"name": "web"}, {"name": "b2b", "min_shelf_life_days": 20}],
}


@pytest.fixture(scope="module")
def worker(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("lots") / "ledger.yaml"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")  # JSON is YAML
    process = WorkerProcess(
        f"lots-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(path),
    )
    process.start()
    yield process
    process.stop()


def _post(worker: WorkerProcess, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        worker.url + "/v1/events",
        data=json.dumps(events).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {worker.token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert answer.status == 202 and body["rejected"] == 0, body


def _in(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def test_an_order_takes_the_earliest_expiring_lot_and_kafka_says_which(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a worker, and receipts at wh of lot LATE (5 units, expiring in 60 days) then
    lot SOON (5 units, in 10 days), posted to /v1/events,
    When a web order of 3 and a b2b order of 2 (b2b needs 20 days of shelf life) are posted,
    Then the web order's movement on stock.movements.v1 and its decision name SOON, the b2b
    order's name LATE, and the stock view lists both lots with their reservations."""
    sku = f"lots-{uuid.uuid4().hex[:10]}"
    base = {"sku": sku, "location": "wh"}
    _post(
        worker,
        [
            {**base, "event_id": f"{sku}-r1", "type": "receipt", "qty": 5, "lot": "LATE",
             "expires_on": _in(60)},
            {**base, "event_id": f"{sku}-r2", "type": "receipt", "qty": 5, "lot": "SOON",
             "expires_on": _in(10)},
        ],
    )  # fmt: skip
    order = {"sku": sku, "type": "order_placed"}
    _post(
        worker,
        [
            {**order, "event_id": f"{sku}-o1", "order_id": "web:1", "channel": "web", "qty": 3},
            {**order, "event_id": f"{sku}-o2", "order_id": "b2b:1", "channel": "b2b", "qty": 2},
        ],
    )
    codec = single_object_codec()
    ids = {f"{sku}-o1", f"{sku}-o2"}
    movements = read_topic(
        local_stack,
        codec,
        STOCK_MOVEMENTS,
        lambda m: m["event_id"] in ids,
        until=lambda found: len(found) >= 2,
    )
    decisions = read_topic(
        local_stack,
        codec,
        STOCK_DECISIONS,
        lambda d: d["event_id"] in ids,
        until=lambda found: len(found) >= 2,
    )
    moved = {(m["event_id"], m["lot"], m["delta_reserved"]) for m in movements}
    assert moved == {(f"{sku}-o1", "SOON", 3), (f"{sku}-o2", "LATE", 2)}
    decided = {(d["event_id"], d["outcome"], d["lot"]) for d in decisions}
    assert decided == {(f"{sku}-o1", "accepted", "SOON"), (f"{sku}-o2", "accepted", "LATE")}
    seen: dict[str, Any] = {}

    def settled() -> bool:
        stock = worker.stock(sku) or {}
        seen.update(stock.get("locations", {}).get("wh", {}))
        return seen.get("reserved") == 5

    wait_for(settled, timeout=30, what=f"{sku}: 5 reserved at wh")
    assert seen["lots"] == {
        "SOON": {"on_hand": 5, "reserved": 3, "expires_on": _in(10)},
        "LATE": {"on_hand": 5, "reserved": 2, "expires_on": _in(60)},
    }
