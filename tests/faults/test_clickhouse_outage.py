"""ClickHouse stopped while movements stream in: the sink waits, buffers, catches up; no row is
lost and none is counted twice.

The outage lasts ``STOCKFLOW_OUTAGE_SECONDS`` (default 12 s; the issue's 60 s on demand).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from deploy.local.clickhouse import ClickHouse
from schemas.codec import codec_for
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_MOVEMENTS
from streams.sink.sink import SinkConfig
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    movement,
    produce,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
    wait_rows,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]

OUTAGE_SECONDS = float(os.environ.get("STOCKFLOW_OUTAGE_SECONDS", "12"))
DAY0 = 1_794_960_000_000


@pytest.fixture
def clickhouse(local_stack: Settings) -> Iterator[ClickHouse]:
    """The stack's ClickHouse, started again after the test whatever happened."""
    server = ClickHouse(local_stack)
    try:
        yield server
    finally:
        server.start()


def test_a_clickhouse_outage_loses_no_row_and_counts_none_twice(
    local_stack: Settings, unique_name: str, clickhouse: ClickHouse
) -> None:
    """Given a sink storing a steady stream of movements, when ClickHouse is stopped for the
    outage and started again while the stream goes on, then every movement is in ClickHouse,
    the deduplicated count equals the number produced, their deltas add up exactly, and the
    sink retried while it waited and ends with its consumer running again (its small buffer
    makes it pause the consumer during the outage rather than grow)."""
    settings = sink_settings(local_stack, unique_name)
    codec = codec_for(settings)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings))
    sku = f"outage-{unique_name}"
    per_second, seconds = 500, int(OUTAGE_SECONDS) + 10
    total = per_second * seconds
    produced = threading.Event()

    def stream() -> None:
        for s in range(seconds):
            batch = [
                (
                    STOCK_MOVEMENTS,
                    movement(
                        f"{sku}-{s}-{i}:0", f"{sku}-{i % 10}", "sale", -1, 0, DAY0 + s * 1000 + i
                    ),
                )
                for i in range(per_second)
            ]
            produce(settings, codec, batch)
            time.sleep(1)
        produced.set()

    config = SinkConfig(max_age=0.5, capacity=2_000, batch_rows=1_000, backoff_max=2.0)
    try:
        with running_sink(settings, codec, group, config) as sink:
            producer = threading.Thread(target=stream, daemon=True)
            producer.start()
            # the stream's first rows: schema made, sink flowing (nothing else may be writing)
            wait_rows(settings, "stock_movements", "startsWith(sku, %(p)s)", {"p": sku}, 1)
            time.sleep(2)
            assert clickhouse.stop(), "ClickHouse did not stop"
            down_at = time.monotonic()
            time.sleep(OUTAGE_SECONDS)
            clickhouse.start()
            up_at = time.monotonic()
            assert produced.wait(seconds + 60), "producer did not finish"
            wait_rows(
                settings,
                "stock_movements",
                "startsWith(sku, %(p)s)",
                {"p": sku},
                total,
                timeout=120,
            )
            caught_up = time.monotonic()
            sample = sink.metrics.registry.get_sample_value
            retries = sample("stockflow_sink_insert_retries_total") or 0
            paused = sample("stockflow_sink_consumer_paused")
    finally:
        clickhouse.start()
    db = settings.clickhouse_database
    mine = {"p": sku}  # other tests may write to the same topics meanwhile
    distinct = scalar(
        settings,
        f"SELECT uniqExact(movement_id) FROM {db}.stock_movements WHERE startsWith(sku, %(p)s)",
        mine,
    )
    deltas = scalar(
        settings,
        f"SELECT sum(d) FROM (SELECT movement_id, any(delta_on_hand) AS d"
        f" FROM {db}.stock_movements WHERE startsWith(sku, %(p)s)"
        " GROUP BY movement_id)",
        mine,
    )
    raw = scalar(
        settings, f"SELECT count() FROM {db}.stock_movements WHERE startsWith(sku, %(p)s)", mine
    )
    drop_database(settings)
    print(
        f"\n[outage] {OUTAGE_SECONDS:.0f} s down: {total} movements, {raw} rows stored"
        f" ({raw - total} replayed duplicates), {retries:.0f} retries, caught up"
        f" {caught_up - up_at:.1f} s after restart (down for {up_at - down_at:.1f} s)"
    )
    assert distinct == total
    assert deltas == -total
    assert retries > 0
    assert paused == 0
