"""Multi-line orders from three channels racing for scarce stock at three locations, on the
real stack: no order half-reserved, no oversell, every refused order in the exception queue
with its reason."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_MOVEMENTS
from tests.support.kafka import end_offsets
from tests.support.orders import (
    CHANNELS,
    StateFollower,
    count_stock,
    fmt_breaches,
    group_to_end,
    input_specs,
    ledger_yaml,
    quiesce,
    race,
    scenario,
    settled_check,
    wait_counted,
)
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [
    pytest.mark.integration,
]

ORDERS = int(os.environ.get("STOCKFLOW_BOOK_ORDERS", "1000"))
SKUS = int(os.environ.get("STOCKFLOW_BOOK_SKUS", "20"))
RATE = float(os.environ.get("STOCKFLOW_BOOK_RATE", "1000"))  # orders/s, the channels together
SETTLE_S = max(180, ORDERS // 10)


@pytest.fixture
def book_worker(local_stack: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    """One worker (the ledger and the order agent) with the three locations, whose group
    starts at the end of every topic it reads."""
    app_id = f"book-{uuid.uuid4().hex[:8]}"
    group_to_end(local_stack, app_id, input_specs())
    config = ledger_yaml(tmp_path / "ledger.yaml")
    worker = WorkerProcess(
        app_id, free_port(), local_stack.state_dir / "logs", STOCKFLOW_CONFIG=str(config)
    )
    worker.start()
    yield worker
    worker.stop()


@pytest.mark.timeout(SETTLE_S + 300)
def test_orders_racing_for_scarce_stock_are_all_or_nothing_and_never_oversell(
    local_stack: Settings, book_worker: WorkerProcess
) -> None:
    """Given SKUS SKUs counted at three locations for about half of the demand,
    when three channels send ORDERS orders of one to four lines at once,
    then once things settle every order is allocated (every line reserved, the ledger
    holding exactly those lines) or in exception with its reason (the ledger holding
    nothing for it), per SKU and location the ledger's reserved units are the sum over the
    allocated orders' lines and never more than was counted, and stock ran short (both
    outcomes occur)."""
    settings, codec = local_stack, single_object_codec()
    sc = scenario(uuid.uuid4().hex[:8], ORDERS, SKUS)
    movements_from = end_offsets(settings, STOCK_MOVEMENTS.name)
    with StateFollower(settings, codec, sc.run) as follower:
        count_stock(settings, codec, sc)
        wait_counted(book_worker.stock, sc)
        time.sleep(2.0)  # the order agent's view of the levels follows the ledger's
        sent_s = race(settings, codec, sc, RATE, CHANNELS)
        settle_s = quiesce(settings, book_worker.app_id, follower, sc.order_ids, timeout=SETTLE_S)
        check = settled_check(settings, codec, sc, follower, movements_from, book_worker.stock)
        print(
            f"\n[book] {ORDERS:,} orders ({sum(len(o['lines']) for o in sc.orders):,} lines) "
            f"over {SKUS} SKUs from {len(CHANNELS)} channels, sent in {sent_s:.1f} s, settled "
            f"{settle_s:.1f} s later; {follower.records:,} state records\n[book] " + check.figures()
        )
    assert not check.breaches(), fmt_breaches(check)
    assert check.statuses["allocated"] and check.statuses["exception"], check.statuses
    exception_queue(book_worker, follower.snapshot())


def exception_queue(worker: WorkerProcess, states: dict[str, dict[str, Any]]) -> None:
    """Every order in exception is listed by GET /v1/orders?status=exception (per channel,
    at most 1,000 a page), with its reason, where the worker serves that route."""
    for channel in CHANNELS:
        want = {
            oid
            for oid, s in states.items()
            if s["status"] == "exception" and s["channel"] == channel
        }
        status, body = worker.get(f"/v1/orders?status=exception&channel={channel}&limit=1000")
        if status == 404 and body == {"error": "Not Found"}:
            print(
                "[book] GET /v1/orders not served by this worker: exception queue checked on"
                " orders.state.v1 only"
            )
            return
        assert status == 200, (status, body)
        assert body.get("complete", True), body.get("missing")
        got = {o["order_id"]: o for o in body["orders"]}
        ours = {oid: o for oid, o in got.items() if oid in states}
        if len(want) < 1000:
            assert want <= set(ours), f"{channel}: {len(want - set(ours))} exceptions not listed"
        assert all(o["status"] == "exception" and o.get("reason") for o in ours.values())
        print(f"[book] GET /v1/orders?status=exception&channel={channel}: {len(ours)} listed")
