"""Events in, ClickHouse rows out: the movements add up to the ledger's on_hand."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.local.children import ChildProcess
from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from tests.integration.sink_support import drop_database, end_offsets, scalar, set_group_offsets
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.processes import track
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

SKUS = 20


@pytest.fixture
def pipeline(
    local_stack: Settings, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, ChildProcess, str]]:
    run = uuid.uuid4().hex[:8]
    worker = WorkerProcess(f"conserve-{run}", free_port(), tmp_path)
    database = f"conserve_{run}"
    group = f"conserve-sink-{run}"
    in_database = dataclasses.replace(local_stack, clickhouse_database=database)
    set_group_offsets(local_stack, group, end_offsets(local_stack))  # only this test's records
    sink = ChildProcess(
        "sink",
        ["sink"],
        tmp_path / "sink.log",
        {
            "STOCKFLOW_CLICKHOUSE_DATABASE": database,
            "STOCKFLOW_SINK_GROUP": group,
            "STOCKFLOW_SINK_METRICS_PORT": str(free_port()),
        },
        on_spawn=track,
    )
    worker.start()
    sink.start()
    try:
        yield worker, sink, database
    finally:
        sink.stop()
        worker.stop()
        drop_database(in_database)


def test_clickhouse_movements_add_up_to_the_ledger_after_redeliveries_and_a_sink_restart(
    local_stack: Settings, pipeline: tuple[WorkerProcess, ChildProcess, str]
) -> None:
    """Given a ledger worker and a sink writing to a fresh ClickHouse database,
    when 2,000 mixed events (10 % of them delivered twice) flow through and the sink is
    stopped and started again in the middle,
    then for every SKU the distinct movements' delta_on_hand in ClickHouse sum to the
    ledger's on_hand, and no movement is counted twice by a deduplicating query."""
    worker, sink, database = pipeline
    codec = single_object_codec()
    rng = random.Random(5)
    prefix = f"cons-{uuid.uuid4().hex[:6]}"
    events = [
        stock_event(f"{prefix}-c{s}", "stock_count", f"{prefix}-{s}", 200, location="default")
        for s in range(SKUS)
    ]
    for i in range(2000):
        sku = f"{prefix}-{rng.randrange(SKUS)}"
        kind = rng.choice(["sale", "receipt", "adjustment", "order_placed", "return_received"])
        fields: dict[str, object] = {"location": "default"}
        if kind == "adjustment":
            fields["reason"] = "correction"
        if kind == "order_placed":
            fields = {"channel": "web", "order_id": f"o{i}"}
        qty = rng.choice([-1, 1]) if kind == "adjustment" else rng.randint(1, 3)
        events.append(stock_event(f"{prefix}-e{i}", kind, sku, qty, **fields))
    redelivered = [e for e in events[SKUS:] if rng.random() < 0.1]
    half = len(events) // 2
    produce_events(local_stack, codec, events[:half])
    produce_events(local_stack, codec, redelivered[: len(redelivered) // 2])
    in_database = dataclasses.replace(local_stack, clickhouse_database=database)
    count_rows = f"SELECT count() FROM {database}.stock_movements WHERE startsWith(sku, %(p)s)"
    wait_for(
        lambda: _quiet(lambda: scalar(in_database, count_rows, {"p": prefix})) > 0,
        timeout=60,
        what="the sink's first rows",
    )
    assert sink.alive(), sink.tail()
    sink.stop()  # a restart in the middle: its uncommitted records are read again
    sink.start()
    produce_events(local_stack, codec, events[half:])
    produce_events(local_stack, codec, redelivered[len(redelivered) // 2 :])

    def ledger_on_hand() -> dict[str, int]:
        out = {}
        for s in range(SKUS):
            state = worker.stock(f"{prefix}-{s}") or {"locations": {}}
            out[f"{prefix}-{s}"] = sum(loc["on_hand"] for loc in state["locations"].values())
        return out

    def clickhouse_on_hand() -> dict[str, int]:
        rows = scalar(
            in_database,
            # filter in an inner SELECT *: 18.16 substitutes SELECT aliases into WHERE
            "SELECT groupArray((s, total)) FROM (SELECT s, sum(d) AS total FROM"
            " (SELECT movement_id, any(sku) AS s, any(delta_on_hand) AS d FROM"
            f" (SELECT * FROM {database}.stock_movements WHERE startsWith(sku, %(p)s))"
            " GROUP BY movement_id) GROUP BY s)",
            {"p": prefix},
        )
        return {sku: int(d) for sku, d in rows}

    wait_for(
        lambda: len(clickhouse_on_hand()) == SKUS and clickhouse_on_hand() == ledger_on_hand(),
        timeout=120,
        what="ClickHouse movements to add up to the ledger's on_hand",
    )
    print(f"\n{len(events)} events, {len(redelivered)} delivered twice; conservation holds")


def _quiet(read: Callable[[], int]) -> int:
    """0 while the sink has not created its tables yet."""
    try:
        return read()
    except Exception:
        return 0
