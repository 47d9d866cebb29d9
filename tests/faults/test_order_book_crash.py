"""kill -9 of the workers (the ledger and the order agent run in the same process) while
multi-line orders are being reserved: once things settle every order is fully reserved or
fully released, nothing lost, nothing doubled."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local import children
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
    pytest.mark.faults,
]

ORDERS = int(os.environ.get("STOCKFLOW_BOOK_CRASH_ORDERS", "2000"))
SKUS = int(os.environ.get("STOCKFLOW_BOOK_CRASH_SKUS", "40"))
RATE = float(os.environ.get("STOCKFLOW_BOOK_CRASH_RATE", "100"))  # orders/s in all
WORKERS = int(os.environ.get("STOCKFLOW_BOOK_CRASH_WORKERS", "3"))
KILLS = int(os.environ.get("STOCKFLOW_BOOK_CRASH_KILLS", "3"))
SETTLE_S = max(300, ORDERS // 5)


@pytest.fixture
def group(local_stack: Settings, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """WORKERS workers of one group with the three locations, the group committed at the
    end of every topic it reads."""
    app_id = f"book-crash-{uuid.uuid4().hex[:8]}"
    group_to_end(local_stack, app_id, input_specs())
    config = ledger_yaml(tmp_path / "ledger.yaml")
    logs = local_stack.state_dir / "logs"
    workers = [
        WorkerProcess(app_id, free_port(), logs, STOCKFLOW_CONFIG=str(config))
        for _ in range(WORKERS)
    ]
    for worker in workers:
        children.WorkerProcess.start(worker)
    for worker in workers:
        worker.wait_ready(180)
    yield workers
    for worker in workers:
        worker.stop()


def _stock(workers: list[WorkerProcess]) -> Callable[[str], dict[str, Any] | None]:
    """GET /v1/stock/{sku} from the first live worker that answers (it routes to the owner)."""

    def stock(sku: str) -> dict[str, Any] | None:
        for worker in workers:
            if worker.alive():
                got = worker.stock(sku)
                if got is not None:
                    return got
        return None

    return stock


@pytest.mark.timeout(SETTLE_S + 600)
def test_killed_workers_leave_every_order_fully_reserved_or_fully_released(
    local_stack: Settings, group: list[WorkerProcess]
) -> None:
    """Given WORKERS workers of one group and SKUS SKUs counted at three locations for
    about half of the demand,
    when three channels send ORDERS multi-line orders and a worker is killed with SIGKILL
    KILLS times while they are being reserved (twice two workers at once when there are
    three), each restarted a moment later,
    then once things settle every order is allocated with the ledger holding exactly its
    lines, or in exception with the ledger holding nothing for it; per SKU and location
    the ledger's reserved units equal the sum over allocated orders; no order is lost
    (without a state) or doubled (held twice)."""
    settings, codec = local_stack, single_object_codec()
    sc = scenario(uuid.uuid4().hex[:8], ORDERS, SKUS, seed=31)
    movements_from = end_offsets(settings, STOCK_MOVEMENTS.name)
    rng = random.Random(5)
    stock = _stock(group)
    kills: list[str] = []
    sent = threading.Event()

    with StateFollower(settings, codec, sc.run) as follower:
        count_stock(settings, codec, sc)
        wait_counted(stock, sc)
        time.sleep(2.0)
        began = time.monotonic()
        window = ORDERS / RATE

        def killer() -> None:
            for k in range(KILLS):
                sent.wait(window * (k + 1) / (KILLS + 1) - (time.monotonic() - began))
                if sent.is_set():
                    return
                many = 2 if WORKERS >= 3 and k % 2 == 0 else 1
                victims = rng.sample(group, many)
                for victim in victims:
                    victim.kill()
                kills.append(
                    f"kill -9 {'+'.join(str(v.web_port) for v in victims)} at "
                    f"{time.monotonic() - began:.1f} s ({len(follower.last)} orders with a state)"
                )
                time.sleep(rng.uniform(1.0, 3.0))
                for victim in victims:
                    children.WorkerProcess.start(victim)

        thread = threading.Thread(target=killer, name="killer")
        thread.start()
        try:
            sent_s = race(settings, codec, sc, RATE, CHANNELS)
        finally:
            sent.set()
            thread.join()
        for worker in group:
            worker.wait_ready(180)
        settle_s = quiesce(settings, group[0].app_id, follower, sc.order_ids, timeout=SETTLE_S)
        check = settled_check(settings, codec, sc, follower, movements_from, stock)
        print(
            f"\n[book-crash] {ORDERS:,} orders ({sum(len(o['lines']) for o in sc.orders):,} "
            f"lines) over {SKUS} SKUs, {WORKERS} workers; {len(kills)} kills: "
            f"{'; '.join(kills)}; sent in {sent_s:.1f} s, settled {settle_s:.1f} s later; "
            f"{follower.records:,} state records ({follower.regressions} older versions "
            f"replayed)\n[book-crash] " + check.figures()
        )
    assert len(kills) == KILLS, kills
    assert not check.breaches(), fmt_breaches(check)
    assert check.statuses["allocated"] and check.statuses["exception"], check.statuses
