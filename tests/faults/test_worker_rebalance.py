"""Rebalances while the worker is behind: nothing lost, nothing applied twice."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS
from tests.faults.test_worker_crash import _expected, _stream, movements_add_up
from tests.support.kafka import group_lag, produce_events, wait_for
from tests.support.ports import free_port
from tests.support.stores import table_stores
from tests.support.worker import WorkerProcess, state_mismatches

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# rounds of 20,000 events: a backlog far larger than the worker's stream buffers (8,192
# events), so that its drain waits on full buffers when the rebalances come
BACKLOG_ROUNDS = int(os.environ.get("STOCKFLOW_REBALANCE_BACKLOG_ROUNDS", "3"))


@pytest.fixture(params=table_stores())
def store(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workers(local_stack: Settings, store: str) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    """Two workers of one application (one consumer group) on the given table store."""
    app_id = f"rebalance-{uuid.uuid4().hex[:8]}"
    logs = local_stack.state_dir / "logs"
    first = WorkerProcess(app_id, free_port(), logs, STOCKFLOW_STORE=store)
    second = WorkerProcess(app_id, free_port(), logs, STOCKFLOW_STORE=store)
    yield first, second
    second.stop()
    first.stop()


def test_rebalances_under_back_pressure_lose_nothing_and_apply_nothing_twice(
    local_stack: Settings, workers: tuple[WorkerProcess, WorkerProcess]
) -> None:
    """Given a worker with a backlog of mixed events for 100 SKUs far larger than its stream
    buffers (its consumer waits on full buffers),
    when a second worker of the same application joins (a rebalance), works a while, and
    leaves (another rebalance) while the backlog is still being worked off,
    then the first worker catches up, every SKU equals the state the pure rules compute
    from the input, and the movements (deduplicated by id) add up to each on_hand."""
    first, second = workers
    codec = single_object_codec()
    prefix = f"rebal-{uuid.uuid4().hex[:6]}"
    events: list[dict[str, Any]] = []
    for round_ in range(BACKLOG_ROUNDS):  # each round: fresh event and order ids
        for e in _stream(prefix, random.Random(23 + round_)):
            if round_:
                e = {**e, "event_id": f"{e['event_id']}-r{round_}"}
                if e.get("order_id"):
                    e["order_id"] = f"{e['order_id']}-r{round_}"
            events.append(e)
    expected = _expected(events)

    first.start()
    began = time.monotonic()
    for start in range(0, len(events), 5000):
        produce_events(local_stack, codec, events[start : start + 5000])
    wait_for(
        lambda: (first.stock(f"{prefix}-0") or {}).get("version", 0) > 0,
        timeout=60,
        what="first SKU",
    )
    behind_at_join = group_lag(local_stack, first.app_id, STOCK_EVENTS.name)
    second.start()  # the group rebalances while the first worker is behind
    time.sleep(2.0)
    behind_at_leave = group_lag(local_stack, first.app_id, STOCK_EVENTS.name)
    second.stop()  # and again: every partition back to the first worker
    wait_for(
        lambda: group_lag(local_stack, first.app_id, STOCK_EVENTS.name) == 0,
        timeout=300,
        what="catch-up",
    )
    print(
        f"\n{len(events):,} events; behind by {behind_at_join:,} when the second worker "
        f"joined, {behind_at_leave:,} when it left; caught up after "
        f"{time.monotonic() - began:.1f} s"
    )
    assert behind_at_join > 0, "the backlog was worked off before the rebalance"

    def mismatches() -> list[tuple[str, str, Any, Any]]:
        found = []
        for sku, state in expected.items():
            found += state_mismatches(sku, state, first.stock(sku))
        return found

    # the first worker answers from what it recovered from the changelog (the second worker's
    # writes) once it has: until then it serves its partitions' older states
    try:
        wait_for(lambda: not mismatches(), timeout=120, what="every SKU as the rules compute it")
    except AssertionError:
        assert mismatches() == []

    movements, unique = movements_add_up(local_stack, prefix, expected)
    print(f"{movements:,} movement records, {unique:,} unique")
