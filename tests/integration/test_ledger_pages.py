"""A busy SKU's state in pages (main record, sealed pages, tombstones) through the real
worker and Kafka, recovered after a restart from the changelog, on both stores."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.stores import table_stores
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration


def _wait(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


SKUS = 4
EVENTS = 300  # per SKU: ~9 pages of ids and ~19 of journal sealed, most dropped again
WINDOW = 50  # applied_ids_limit: older ids are forgotten and their pages deleted


@pytest.mark.parametrize("store", table_stores())
def test_a_busy_sku_recovers_its_paged_state_and_still_knows_its_window(
    local_stack: Settings, tmp_path: Path, store: str
) -> None:
    """Given a worker (memory or RocksDB store) with an id window of 50 and a journal of
    20, and SKUs that each took 300 receipts of one unit (pages sealed and dropped),
    When the worker restarts (its table recovered from the changelog: records, pages and
    tombstones) and every SKU's 40 newest events and 10 oldest are sent again,
    Then the 40 newest are recognised by id as applied already, the 10 oldest (forgotten)
    are applied, and every SKU's on_hand is 310."""
    config = tmp_path / "ledger.yaml"
    config.write_text(f"applied_ids_limit: {WINDOW}\njournal_limit: 20\n")
    worker = WorkerProcess(
        f"pages-{uuid.uuid4().hex[:8]}",
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_STORE=store,
        STOCKFLOW_CONFIG=str(config),
    )
    codec = single_object_codec()
    prefix = f"pages-{uuid.uuid4().hex[:6]}"
    skus = [f"{prefix}-{s}" for s in range(SKUS)]
    events = {
        sku: [stock_event(f"{sku}-{i}", "receipt", sku, 1) for i in range(EVENTS)] for sku in skus
    }

    def on_hand(sku: str, location: str = "default") -> int | None:
        got = worker.stock(sku) or {"locations": {}}
        return got["locations"].get(location, {}).get("on_hand")

    def reach(counts: list[int | None], location: str = "default") -> None:
        wait_for(
            lambda: [on_hand(sku, location) for sku in skus] == counts,
            timeout=120,
            what=f"{location} at {counts}",
        )

    worker.start()
    try:
        # a new worker starts at the topic's end once it has looked it up: knock until it
        # applies something, so that nothing below is skipped
        for knock in range(60):
            produce_events(
                local_stack, codec, [stock_event(f"{prefix}-w{knock}", "receipt", prefix, 1)]
            )
            if _wait(lambda: worker.stock(prefix) is not None, 2):
                break
        for i in range(0, EVENTS, 25):  # several batches per SKU: pages sealed along the way
            produce_events(local_stack, codec, [e for sku in skus for e in events[sku][i : i + 25]])
            reach([i + 25] * SKUS)
        worker.stop()
        worker.start()
        again = [e for sku in skus for e in events[sku][-40:] + events[sku][:10]]
        marks = [stock_event(f"{sku}-mark", "receipt", sku, 1, location="mark") for sku in skus]
        produce_events(local_stack, codec, again + marks)
        reach([1] * SKUS, "mark")  # applied after what was sent again: per-SKU order
        got = [on_hand(sku) for sku in skus]
        print(f"\n{store}: {SKUS} SKUs x {EVENTS} events, then 50 each sent again: {got}")
        assert got == [EVENTS + 10] * SKUS
    finally:
        worker.stop()
