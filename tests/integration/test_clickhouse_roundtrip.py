"""clickhouse-driver against the real ClickHouse server of the local stack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from deploy.local.clickhouse import ClickHouse
from streams.kernel.settings import Settings

pytestmark = pytest.mark.integration


def test_rows_inserted_as_native_blocks_come_back_from_a_replacing_merge_tree(
    local_stack: Settings, unique_name: str
) -> None:
    """Given a ReplacingMergeTree partitioned by month, when rows are inserted twice as params
    (never inline VALUES, which hang on 18.16), then FINAL shows each id once."""
    client = ClickHouse(local_stack).client()
    table = f"default.{unique_name}"
    client.execute(
        f"CREATE TABLE {table} (id String, sku String, qty Int64, at DateTime('UTC'), ver UInt64)"
        " ENGINE = ReplacingMergeTree(ver) PARTITION BY toYYYYMM(at) ORDER BY id"
    )
    try:
        at = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
        rows = [{"id": f"e{i}", "sku": "chair", "qty": i, "at": at, "ver": 1} for i in range(100)]
        client.execute(f"INSERT INTO {table} (id, sku, qty, at, ver) VALUES", rows)
        client.execute(f"INSERT INTO {table} (id, sku, qty, at, ver) VALUES", rows)
        [(raw,)] = client.execute(f"SELECT count() FROM {table}")
        [(final, total)] = client.execute(f"SELECT count(), sum(qty) FROM {table} FINAL")
        [(version,)] = client.execute("SELECT version()")
    finally:
        client.execute(f"DROP TABLE IF EXISTS {table}")
        client.disconnect()
    assert raw == 200
    assert (final, total) == (100, sum(range(100)))
    print(f"ClickHouse server version {version}")
