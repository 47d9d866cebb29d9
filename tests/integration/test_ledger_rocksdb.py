"""Faust's RocksDB store serves a key from the current event's partition: every SKU of a
batch flushed by size is still read from its own partition."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS
from tests.support.kafka import group_lag, produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

SKUS = 60
ROUNDS = 3
PER_ROUND = 40  # events per SKU per round: 2,400 a round, more than one batch of 2,000


@pytest.fixture
def worker(local_stack: Settings) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        f"rocks-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_STORE="rocksdb://",
    )
    process.start()
    yield process
    process.stop()


def test_size_triggered_flushes_over_several_partitions_read_every_sku_from_its_own(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given a RocksDB-backed worker and SKUs spread over every partition, when rounds of
    2,400 receipts of one unit arrive as a backlog while the worker is stopped (so batches
    fill to their size limit and flush from inside the agent, under the last event's
    context), then after catch-up every SKU's on_hand is its number of receipts: no SKU was
    read as absent from another partition and reset."""
    codec = single_object_codec()
    prefix = f"rocks-{uuid.uuid4().hex[:6]}"
    skus = [f"{prefix}-{s}" for s in range(SKUS)]
    # the group commits a position first: a restart goes on from it, not from "latest"
    produce_events(local_stack, codec, [stock_event(f"{s}-w", "receipt", s, 1) for s in skus])
    wait_for(
        lambda: group_lag(local_stack, worker.app_id, STOCK_EVENTS.name) == 0,
        timeout=60,
        what="the first receipts",
    )
    for r in range(ROUNDS):
        worker.stop()
        events = [
            stock_event(f"{sku}-{r}-{i}", "receipt", sku, 1, location="default")
            for i in range(PER_ROUND)
            for sku in skus
        ]
        produce_events(local_stack, codec, events)
        worker.start()
        wait_for(
            lambda: group_lag(local_stack, worker.app_id, STOCK_EVENTS.name) == 0,
            timeout=180,
            what="catch-up",
        )
    wrong = {}
    for sku in skus:
        got = worker.stock(sku) or {"locations": {}}
        on_hand = sum(loc["on_hand"] for loc in got["locations"].values())
        if on_hand != 1 + ROUNDS * PER_ROUND:
            wrong[sku] = on_hand
    print(f"\n{SKUS * ROUNDS * PER_ROUND} events over {SKUS} SKUs; SKUs off: {len(wrong)}")
    assert wrong == {}
