"""Record → row mapping of the ClickHouse sink."""

from __future__ import annotations

from typing import Any

import pytest

from streams.sink.rows import (
    ALERT,
    ALERTS,
    DECISION,
    DECISIONS,
    LEVEL,
    LEVELS,
    MOVEMENT,
    MOVEMENTS,
    RowError,
    to_rows,
)

T0 = 1_795_000_000_123  # 2026-11-18, with milliseconds


def movement(**over: Any) -> dict[str, Any]:
    record = {
        "movement_id": "e1:0",
        "event_id": "e1",
        "sku": "chair",
        "location": "wh1",
        "channel": "web",
        "type": "sale",
        "reason": None,
        "delta_on_hand": -2,
        "delta_reserved": 0,
        "delta_unsellable": 0,
        "delta_incoming": 0,
        "on_hand_after": 98,
        "reserved_after": 0,
        "unsellable_after": 0,
        "occurred_at": T0,
        "applied_at": T0 + 5,
        "source_ref": "order-7",
    }
    record.update(over)
    return record


def named(table_columns: tuple[str, ...], row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip(table_columns, row, strict=True))


def test_a_movement_becomes_one_row_with_seconds_and_exact_milliseconds() -> None:
    """Given a sale movement read at partition 3 offset 42, when mapped, then one
    stock_movements row carries its fields, times in whole seconds plus exact ms, its Kafka
    coordinates, and the apply time as version."""
    table, rows = to_rows(MOVEMENT, movement(), 3, 42)
    assert table is MOVEMENTS
    [row] = rows
    r = named(MOVEMENTS.columns, row)
    assert r["movement_id"] == "e1:0" and r["delta_on_hand"] == -2 and r["on_hand_after"] == 98
    assert r["occurred_at"] == T0 // 1000 and r["occurred_at_ms"] == T0
    assert r["applied_at_ms"] == T0 + 5 and r["ver"] == T0 + 5
    assert (r["kafka_partition"], r["kafka_offset"]) == (3, 42)
    assert r["reason"] is None and r["source_ref"] == "order-7"


def test_a_movement_without_channel_is_stored_with_an_empty_channel() -> None:
    """Given a movement with no channel (a stock count), when mapped, then channel is ''
    (channel is a sort key of the daily sales view, where Nullable is not allowed)."""
    _, [row] = to_rows(MOVEMENT, movement(channel=None, type="stock_count"), 0, 0)
    assert named(MOVEMENTS.columns, row)["channel"] == ""


def test_a_level_becomes_one_row_per_channel_plus_the_default_channel() -> None:
    """Given a level with two named channels of which one changed, when mapped, then every
    channel gets a row (the default quantity as channel '*'), flagged if it changed."""
    level = {
        "sku": "chair",
        "version": 7,
        "channels": {"web": 10, "amazon": 0},
        "changed_channels": ["amazon", "*"],
        "default_quantity": 12,
        "cause_event_id": "e9",
        "occurred_at": T0,
        "at": T0 + 1,
    }
    table, rows = to_rows(LEVEL, level, 1, 5)
    assert table is LEVELS
    got = {
        r["channel"]: (r["quantity"], r["changed"], r["version"])
        for r in (named(LEVELS.columns, row) for row in rows)
    }
    assert got == {"*": (12, 1, 7), "amazon": (0, 1, 7), "web": (10, 0, 7)}


def test_a_decision_and_an_alert_map_to_their_tables() -> None:
    """Given a rejected decision and an out-of-stock alert, when mapped, then each gives one
    row in its table with its enum as text and optional fields as None."""
    decision = {
        "decision_id": "o1",
        "event_id": "o1",
        "sku": "chair",
        "order_id": "A-1",
        "channel": "web",
        "location": None,
        "qty": 3,
        "outcome": "rejected",
        "reason": "insufficient_stock",
        "available_before": 1,
        "occurred_at": T0,
        "at": T0,
    }
    alert = {
        "alert_id": "o1:out_of_stock:web",
        "kind": "out_of_stock",
        "sku": "chair",
        "location": None,
        "channel": "web",
        "value": 0,
        "threshold": 0,
        "message": "chair sells 0 on web",
        "event_id": "o1",
        "at": T0,
    }
    t1, [d] = to_rows(DECISION, decision, 0, 1)
    t2, [a] = to_rows(ALERT, alert, 0, 2)
    assert t1 is DECISIONS and named(DECISIONS.columns, d)["outcome"] == "rejected"
    assert named(DECISIONS.columns, d)["location"] is None
    assert t2 is ALERTS and named(ALERTS.columns, a)["kind"] == "out_of_stock"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (movement(occurred_at=-1), "bad_time"),
        (movement(applied_at=2**62), "bad_time"),
        (movement(delta_on_hand="2"), "bad_field"),
        (movement(sku=""), "bad_field"),
        ({k: v for k, v in movement().items() if k != "location"}, "missing_field"),
    ],
)
def test_a_record_clickhouse_would_refuse_or_wrap_fails_with_a_reason(
    record: dict[str, Any], reason: str
) -> None:
    """Given a movement with a time outside DateTime's range, a non-integer quantity, an
    empty SKU or a missing field, when mapped, then RowError names the dead-letter reason."""
    with pytest.raises(RowError) as caught:
        to_rows(MOVEMENT, record, 0, 0)
    assert caught.value.reason == reason


def test_a_schema_the_sink_does_not_store_is_refused() -> None:
    """Given a StockEvent on an output topic, when mapped, then it is unexpected_schema."""
    with pytest.raises(RowError) as caught:
        to_rows("stockflow.v1.StockEvent", {}, 0, 0)
    assert caught.value.reason == "unexpected_schema"
