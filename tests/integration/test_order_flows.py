"""Approval and pickup, end to end on the real stack: orders in on orders.v1 (or the
worker's API where it serves orders), the order agent and the ledger in one worker, each
transition read back from orders.state.v1 and the stock from the ledger's answers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.orders import (
    StateFollower,
    group_to_end,
    input_specs,
    ledger_yaml,
    order_record,
    send_orders,
)
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [
    pytest.mark.integration,
]

PRICE = 49_900  # minor units: 499.00 EUR a unit
APPROVALS = """orders:
  approvals:
    channels:
      - name: b2b-portal
        total_above: 100000
      - name: b2b-fast
        total_above: 100000
        expire_after_seconds: 3
        on_expiry: release
"""


@pytest.fixture(scope="module")
def flows(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One worker with the three locations and approval rules for two channels, its group
    at the end of what it reads, and a follower of the order states."""
    app_id = f"flows-{uuid.uuid4().hex[:8]}"
    group_to_end(local_stack, app_id, input_specs())
    config = ledger_yaml(tmp_path_factory.mktemp("flows") / "ledger.yaml", APPROVALS)
    worker = WorkerProcess(
        app_id, free_port(), local_stack.state_dir / "logs", STOCKFLOW_CONFIG=str(config)
    )
    worker.start()
    with StateFollower(local_stack, single_object_codec(), "flow-") as follower:
        yield worker, follower
    worker.stop()


def _count(settings: Settings, sku: str, per: dict[str, int], worker: WorkerProcess) -> None:
    codec = single_object_codec()
    produce_events(
        settings,
        codec,
        [
            stock_event(f"{sku}-count-{loc}", "stock_count", sku, units, location=loc)
            for loc, units in per.items()
        ],
    )

    def counted() -> bool:
        got = (worker.stock(sku) or {}).get("locations", {})
        return all(got.get(loc, {}).get("on_hand") == units for loc, units in per.items())

    wait_for(counted, timeout=60, what=f"{sku} counted")
    time.sleep(1.5)  # the order agent's view of the levels follows the ledger's


def _place(settings: Settings, worker: WorkerProcess, record: dict[str, Any]) -> str:
    """Place an order through POST /v1/orders where the worker serves it, else straight to
    orders.v1; returns which path it took."""
    body = {  # the API takes the channel's own id and names the order channel:id itself
        "order_id": record["order_id"].removeprefix(record["channel"] + ":"),
        "channel": record["channel"],
        "lines": [
            {k: ln[k] for k in ("line_id", "sku", "qty", "unit_price", "currency")}
            for ln in record["lines"]
        ],
        "ship_to": record["ship_to"] or {"country": "FR", "postal_code": "75011"},
        "delivery": record["delivery"],
        "pickup_location": record["pickup_location"],
        "customer_ref": record["customer_ref"],
        "customer_type": record["customer_type"],
    }
    body = {k: v for k, v in body.items() if v is not None}
    status, answer = worker.post("/v1/orders", body)
    if status == 202:
        return "api"
    assert status in (404, 405), (status, answer)  # the route is not in this build
    send_orders(settings, single_object_codec(), [record])
    return "orders.v1"


def _act(settings: Settings, worker: WorkerProcess, order_id: str, action: str) -> str:
    """An operator's action (approve, reject) through POST /v1/orders/{id}/{action} where
    the worker serves it, else as the Order event it becomes, straight to orders.v1."""
    status, answer = worker.post(f"/v1/orders/{order_id}/{action}", {"note": "checked"})
    if status in (200, 202):
        return "api"
    route_absent = status == 405 or (status == 404 and answer == {"error": "Not Found"})
    assert route_absent, (status, answer)
    kind = {"approve": "approved", "reject": "rejected"}[action]
    record = order_record(
        order_id,
        order_id.split(":")[0],
        [],
        kind=kind,
        event_id=f"{order_id}:{kind}",
        by="operator",
        note="checked",
    )
    send_orders(settings, single_object_codec(), [record])
    return "orders.v1"


def _store_event(settings: Settings, order_id: str, kind: str) -> None:
    """The store's event (ready_for_pickup, picked_up) for the order, on orders.v1."""
    record = order_record(
        order_id, order_id.split(":")[0], [], kind=kind, by="lille-store", source="store"
    )
    send_orders(settings, single_object_codec(), [record])


def _status(follower: StateFollower, order_id: str, status: str, timeout: float = 60) -> Any:
    wait_for(
        lambda: follower.snapshot().get(order_id, {}).get("status") == status,
        timeout=timeout,
        what=f"{order_id} {status} (now {follower.snapshot().get(order_id, {}).get('status')})",
    )
    return follower.snapshot()[order_id]


def _reserved(worker: WorkerProcess, sku: str) -> dict[str, int]:
    got = (worker.stock(sku) or {}).get("locations", {})
    return {loc: v["reserved"] for loc, v in got.items()}


def _on_hand(worker: WorkerProcess, sku: str) -> dict[str, int]:
    got = (worker.stock(sku) or {}).get("locations", {})
    return {loc: v["on_hand"] for loc, v in got.items()}


def test_a_pickup_reserves_at_its_store_only_and_leaves_the_stock_when_collected(
    local_stack: Settings, flows: Any
) -> None:
    """Given 10 units at paris-wh and 3 at the lille-store,
    when a click-and-collect order for 2 at lille-store is placed, made ready and picked up,
    then it is allocated at lille-store only (paris-wh holds nothing though it has more),
    goes ready_for_pickup then picked_up, and the 2 units leave lille-store's on hand with
    nothing left reserved; and a second pickup of 5 at lille-store (1 left there) ends in
    exception, reserving nothing at paris-wh."""
    worker, follower = flows
    settings = local_stack
    run = uuid.uuid4().hex[:6]
    sku = f"flow-pick-{run}"
    _count(settings, sku, {"paris-wh": 10, "lille-store": 3}, worker)
    first = f"store:flow-{run}-1"
    record = order_record(
        first, "store", [("1", sku, 2)], delivery="pickup", pickup_location="lille-store"
    )
    path = _place(settings, worker, record)
    state = _status(follower, first, "allocated")
    assert [(ln["location"], ln["status"]) for ln in state["lines"]] == [
        ("lille-store", "reserved")
    ]
    wait_for(
        lambda: _reserved(worker, sku) == {"paris-wh": 0, "lille-store": 2},
        timeout=30,
        what="2 reserved at lille-store only",
    )
    _store_event(settings, first, "ready_for_pickup")
    _status(follower, first, "ready_for_pickup")
    _store_event(settings, first, "picked_up")
    state = _status(follower, first, "picked_up")
    wait_for(
        lambda: (
            _on_hand(worker, sku) == {"paris-wh": 10, "lille-store": 1}
            and _reserved(worker, sku) == {"paris-wh": 0, "lille-store": 0}
        ),
        timeout=30,
        what="the collected units gone from lille-store",
    )
    second = f"store:flow-{run}-2"
    record = order_record(
        second, "store", [("1", sku, 5)], delivery="pickup", pickup_location="lille-store"
    )
    _place(settings, worker, record)
    refused = _status(follower, second, "exception")
    steps = [to for _, to in follower.history[first]]
    print(
        f"\n[pickup] placed through {path}; {first}: {' -> '.join(steps)}; {second}: "
        f"exception ({refused['reason']}); stock {worker.stock(sku)}"
    )
    assert steps[-2:] == ["ready_for_pickup", "picked_up"], steps
    assert refused["reason"], refused
    assert _reserved(worker, sku) == {"paris-wh": 0, "lille-store": 0}


def test_an_order_over_the_approval_threshold_waits_holding_its_stock_until_a_person_decides(
    local_stack: Settings, flows: Any
) -> None:
    """Given 10 units and the b2b-portal channel's rule "total above 1,000.00 waits",
    when three orders come: 3 units (1,497.00), 2 units (998.00) and 4 units (1,996.00),
    then the first and the third wait in pending_approval holding their stock (9 reserved),
    the second is allocated at once; an operator approves the first (released, still held)
    and rejects the third (rejected, its 4 units released: 5 reserved in the end)."""
    worker, follower = flows
    settings = local_stack
    run = uuid.uuid4().hex[:6]
    sku = f"flow-appr-{run}"
    _count(settings, sku, {"paris-wh": 10}, worker)
    ids = [f"b2b-portal:flow-{run}-{k}" for k in (1, 2, 3)]
    paths = set()
    for oid, qty in zip(ids, (3, 2, 4), strict=True):
        record = order_record(
            oid, "b2b-portal", [("1", sku, qty)], customer_ref=f"acme-{run}", customer_type="b2b"
        )
        record["lines"][0]["unit_price"] = PRICE
        paths.add(_place(settings, worker, record))
    waiting = _status(follower, ids[0], "pending_approval")
    _status(follower, ids[1], "allocated")
    _status(follower, ids[2], "pending_approval")
    wait_for(
        lambda: _reserved(worker, sku).get("paris-wh") == 9,
        timeout=30,
        what="9 units held for the three orders",
    )
    acted = {_act(settings, worker, ids[0], "approve"), _act(settings, worker, ids[2], "reject")}
    approved = _status(follower, ids[0], "released")
    rejected = _status(follower, ids[2], "rejected")
    wait_for(
        lambda: _reserved(worker, sku).get("paris-wh") == 5,
        timeout=30,
        what="the rejected order's 4 units released",
    )
    print(
        f"\n[approval] orders through {paths}, actions through {acted}; {ids[0]}: "
        f"{' -> '.join(to for _, to in follower.history[ids[0]])} (waited: "
        f"{waiting['reason']}); {ids[2]}: rejected; reserved {_reserved(worker, sku)}"
    )
    assert waiting["reason"], waiting
    assert all(ln["status"] == "reserved" for ln in approved["lines"]), approved["lines"]
    assert all(ln["status"] != "reserved" for ln in rejected["lines"]), rejected["lines"]
    assert approved["transition"]["by"], approved["transition"]


def test_an_approval_nobody_answers_expires_and_releases_its_stock(
    local_stack: Settings, flows: Any
) -> None:
    """Given 10 units and the b2b-fast channel's rule (over 1,000.00 waits, expires after
    3 s, then released), when an order of 3 units (1,497.00) waits and nobody answers,
    then it leaves pending_approval on its own and its 3 units are released."""
    worker, follower = flows
    settings = local_stack
    run = uuid.uuid4().hex[:6]
    sku = f"flow-exp-{run}"
    _count(settings, sku, {"paris-wh": 10}, worker)
    oid = f"b2b-fast:flow-{run}"
    record = order_record(oid, "b2b-fast", [("1", sku, 3)], customer_ref=f"c-{run}")
    record["lines"][0]["unit_price"] = PRICE
    _place(settings, worker, record)
    _status(follower, oid, "pending_approval")
    wait_for(
        lambda: follower.snapshot()[oid]["status"] != "pending_approval",
        timeout=90,
        what="the approval to expire",
    )
    after = follower.snapshot()[oid]
    wait_for(
        lambda: _reserved(worker, sku).get("paris-wh") == 0,
        timeout=30,
        what="the expired order's units released",
    )
    print(f"\n[approval] unanswered: {after['status']} ({after['reason']})")
    assert after["status"] in ("rejected", "cancelled"), after["status"]
