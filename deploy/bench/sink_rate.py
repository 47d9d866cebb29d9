"""Sink throughput: pre-produced movements → the real ClickHouse sink → rows/s.

A fresh ClickHouse database (migrated before the clock starts) and a fresh consumer group
that starts at the current end of every output topic, so only the bench's records count.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any

from deploy.bench.config import BenchError
from deploy.bench.kafka import (
    bulk_producer,
    committed_offsets,
    end_offsets,
    flush,
    remaining,
    send,
    set_group_offsets,
)
from deploy.bench.table import Row
from deploy.bench.workload import progress
from schemas.codec import Codec
from streams.kernel.settings import Settings
from streams.kernel.topics import OUTPUT_TOPICS, STOCK_MOVEMENTS
from streams.sink.sink import Sink, SinkConfig
from streams.warehouse.clickhouse import connect
from streams.warehouse.migrations import migrate


def movement(n: int, prefix: str, at: int) -> dict[str, Any]:
    return {
        "movement_id": f"{prefix}-e{n}:0",
        "event_id": f"{prefix}-e{n}",
        "sku": f"{prefix}-{n % 10_000:07d}",
        "location": "default",
        "channel": "web",
        "type": "order_placed",
        "reason": None,
        "delta_on_hand": 0,
        "delta_reserved": 1,
        "delta_unsellable": 0,
        "delta_incoming": 0,
        "on_hand_after": 100,
        "reserved_after": n % 50,
        "unsellable_after": 0,
        "occurred_at": at,
        "applied_at": at,
        "source_ref": None,
    }


def run_sink_rate(settings: Settings, codec: Codec, rows: int, timeout: float) -> Row:
    tag = uuid.uuid4().hex[:8]
    db = f"bench_{tag}"
    settings = dataclasses.replace(settings, clickhouse_database=db)
    client = connect(settings)
    try:
        migrate(client, db)
    finally:
        client.disconnect()
    group = f"bench-sink-{tag}"
    for spec in OUTPUT_TOPICS:
        set_group_offsets(settings, group, spec.name, end_offsets(settings, spec.name))
    p = bulk_producer(settings)
    at = int(time.time() * 1000)
    schema = STOCK_MOVEMENTS.value_schema
    for n in range(rows):
        record = movement(n, f"s{tag}", at)
        send(p, STOCK_MOVEMENTS.name, record["sku"].encode(), codec.encode(schema, record))
    flush(p, "movements")
    end = end_offsets(settings, STOCK_MOVEMENTS.name)
    progress(f"sink: {rows:,} movements produced; sinking into ClickHouse database {db}")
    sink = Sink(
        settings, codec, group_id=group, config=SinkConfig(lag_every=0, progress_every=3600)
    )
    stop = threading.Event()
    thread = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    began = time.monotonic()
    thread.start()
    try:
        left = rows
        while left:
            if time.monotonic() - began > timeout or not thread.is_alive():
                raise BenchError(f"sink wrote {rows - left:,} of {rows:,} rows in {timeout:.0f} s")
            time.sleep(0.1)
            left = remaining(committed_offsets(settings, group, STOCK_MOVEMENTS.name, end), end)
        seconds = time.monotonic() - began
    finally:
        stop.set()
        thread.join(60)
        _drop(settings, db)
    rate = rows / seconds
    progress(f"sink: {rows:,} rows in {seconds:.1f} s = {rate:,.0f} rows/s")
    return Row(
        "sink Kafka→ClickHouse (movements)",
        rate,
        "rows/s",
        "≥ 20,000",
        f"{rows:,} rows committed in {seconds:.1f} s (batches of {SinkConfig.batch_rows:,})",
        {"rows": rows, "seconds": seconds, "verdict": "yes" if rate >= 20_000 else "no"},
    )


def _drop(settings: Settings, db: str) -> None:
    client = connect(settings)
    try:
        client.execute(f"DROP DATABASE IF EXISTS {db}")
    finally:
        client.disconnect()
