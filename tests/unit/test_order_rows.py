"""OrderState → rows of the orders, order_lines and order_transitions tables."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.sink.buffer import Buffer, Entry
from streams.sink.order_rows import (
    ORDER_LINES,
    ORDER_STATE,
    ORDER_TRANSITIONS,
    ORDERS,
    order_key,
    table_rows,
)
from streams.sink.rows import MOVEMENTS, Row, RowError, Table
from streams.warehouse.schema import MIGRATIONS
from tests.unit.schema_samples import SAMPLES

T = SAMPLES[ORDER_STATE]["placed_at"]


def state(**over: Any) -> dict[str, Any]:
    record = copy.deepcopy(SAMPLES[ORDER_STATE])
    record["lines"].append(
        {
            "line_id": "2",
            "sku": "desk",
            "qty": 1,
            "location": "paris",
            "lot": "L7",
            "status": "reserved",
            "shipped_qty": 0,
            "unit_price": None,
            "currency": None,
        }
    )
    record["updated_at"] = T + 5_000
    record["transition"]["at"] = T + 4_000
    record.update(over)
    return record


def as_dicts(table: Table, rows: list[Row]) -> list[dict[str, Any]]:
    return [dict(zip(table.columns, row, strict=True)) for row in rows]


def test_an_order_state_becomes_one_order_row_a_row_per_line_and_one_transition() -> None:
    """Given an allocated two-line order state (version 3) read at partition 2, offset 40,
    when mapped,
    then it gives one orders row, two order_lines rows and one order_transitions row, each
    with the order id, the version and the Kafka coordinates, times in s and exact ms."""
    parts = table_rows(ORDER_STATE, state(), 2, 40)
    assert [t for t, _ in parts] == [ORDERS, ORDER_LINES, ORDER_TRANSITIONS]
    [order] = as_dicts(*parts[0])
    assert order == {
        "order_id": "shopify:1001",
        "version": 3,
        "channel": "shopify",
        "status": "allocated",
        "route_reason": "single location: lyon ships every line, 4 km",
        "reason": None,
        "attempts": 1,
        "delivery": "ship",
        "pickup_location": None,
        "country": "FR",
        "customer_type": "b2b",
        "risk": "low",
        "shipping_cost": 690,
        "lines": 2,
        "units": 3,
        "placed_at": T // 1000,
        "placed_at_ms": T,
        "updated_at": (T + 5_000) // 1000,
        "updated_at_ms": T + 5_000,
        "kafka_partition": 2,
        "kafka_offset": 40,
    }
    lines = as_dicts(*parts[1])
    assert [(x["line_id"], x["sku"], x["qty"], x["location"], x["lot"]) for x in lines] == [
        ("1", "chair", 2, "lyon", None),
        ("2", "desk", 1, "paris", "L7"),
    ]
    assert [(x["unit_price"], x["currency"]) for x in lines] == [(4990, "EUR"), (None, None)]
    assert {(x["order_id"], x["version"], x["channel"]) for x in lines} == {
        ("shopify:1001", 3, "shopify")
    }
    [move] = as_dicts(*parts[2])
    assert (move["from_status"], move["to_status"], move["event_id"]) == (
        "routed",
        "allocated",
        "ob|shopify:1001|1|1",
    )
    assert (move["at"], move["at_ms"], move["placed_at_ms"], move["version"]) == (
        (T + 4_000) // 1000,
        T + 4_000,
        T,
        3,
    )


def test_no_postal_code_nor_customer_ref_reaches_a_row() -> None:
    """Given an order state with a postal code and a customer ref,
    when mapped,
    then no row of any order table holds either value (only the country is kept)."""
    record = state(postal_code="69002-SECRET", customer_ref="cust-SECRET")
    for _table, rows in table_rows(ORDER_STATE, record, 0, 0):
        assert not any("SECRET" in str(value) for row in rows for value in row)


def test_a_transition_without_reason_takes_the_reason_of_the_state() -> None:
    """Given an exception state whose reason is on the state only,
    when mapped,
    then the transition row carries that reason."""
    record = state(status="exception", reason="no_stock")
    record["transition"].update(to_status="exception", reason=None)
    [move] = as_dicts(*table_rows(ORDER_STATE, record, 0, 0)[2])
    assert move["reason"] == "no_stock"


def test_an_order_state_is_dead_letter_keyed_by_order_and_version() -> None:
    """Given an order state, when its dead-letter id is asked, then it is order_id@version."""
    assert order_key(state()) == "shopify:1001@3"
    assert order_key({"sku": "chair"}) is None


def bad(path: str, value: Any) -> dict[str, Any]:
    record = state()
    target: Any = record
    *parents, name = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[name]
    else:
        target[name] = value
    return record


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (bad("order_id", ""), "bad_field"),
        (bad("version", 0), "bad_field"),
        (bad("placed_at", -1), "bad_time"),
        (bad("updated_at", KeyError), "missing_field"),
        (bad("lines", []), "bad_field"),
        (bad("lines.0.qty", 0), "bad_field"),
        (bad("lines.1.line_id", "1"), "bad_field"),
        (bad("lines.0.unit_price", -5), "bad_field"),
        (bad("attempts", -1), "bad_field"),
        (bad("shipping_cost", "690"), "bad_field"),
        (bad("transition", None), "bad_field"),
        (bad("transition.at", 2**60), "bad_time"),
        (bad("transition.to_status", "shipped"), "bad_field"),
    ],
)
def test_an_order_state_clickhouse_would_refuse_or_wrap_fails_with_a_reason(
    record: dict[str, Any], reason: str
) -> None:
    """Given an order state with one bad field, when mapped, then RowError says why."""
    with pytest.raises(RowError) as caught:
        table_rows(ORDER_STATE, record, 0, 0)
    assert caught.value.reason == reason


MOVEMENT = "stockflow.v1.StockMovement"


def test_other_records_still_map_to_their_one_table() -> None:
    """Given a movement, when mapped through table_rows, then it is one part: its table."""
    [(table, rows)] = table_rows("stockflow.v1.StockMovement", SAMPLES[MOVEMENT], 0, 1)
    assert table == MOVEMENTS and len(rows) == 1


def test_an_order_entry_counts_and_batches_the_rows_of_all_its_tables_together() -> None:
    """Given an order state entry (1 + 2 + 1 rows) in the sink's buffer,
    when a batch is taken,
    then the buffer counts 4 rows and the batch hands every table its rows, never
    splitting one record's rows across batches."""
    (t1, r1), *more = table_rows(ORDER_STATE, state(), 0, 7)
    entry = Entry(
        "orders.state.v1", 0, 7, t1, tuple(r1), more=tuple((t, tuple(r)) for t, r in more)
    )
    buffer = Buffer(batch_rows=2, max_age=1.0, capacity=10)
    buffer.add(entry)
    assert buffer.rows == 4
    batch = buffer.take()
    assert batch.rows == 4
    by_table = batch.by_table()
    assert {t.name: len(rows) for t, rows in by_table.items()} == {
        "orders": 1,
        "order_lines": 2,
        "order_transitions": 1,
    }
    assert batch.commit_offsets() == {("orders.state.v1", 0): 8}


def test_migration_versions_are_unique() -> None:
    """Given the ClickHouse migrations, when their versions are listed, then none repeats
    (a repeated version would be skipped on a database that applied the other)."""
    versions = [m.version for m in MIGRATIONS]
    assert len(versions) == len(set(versions))


def test_the_order_gauges_show_each_figure_and_nan_where_no_order_gives_a_ratio() -> None:
    """Given the figures of two shop orders (one split, 8 of 10 units filled) and none
    allocated yet, when published as gauges,
    then Prometheus gets the ratios per channel and for every channel ('*'), revenue and cost
    per order per currency, and NaN - a series, not a gap - for the missing latencies."""
    from prometheus_client import CollectorRegistry, generate_latest

    from streams.sink.order_gauges import OrderGauges
    from streams.warehouse import order_figures as f

    registry = CollectorRegistry()
    OrderGauges(registry).publish(
        f.Figures(
            fill=[f.Fill("shop", 5, 4, 10, 8)],
            splits=[f.Split("shop", 2, 1)],
            latency=[f.Latency("*", 0, None, None)],
            exceptions=[f.Exceptions("no_stock", 2, 2, 1)],
            channels=[f.ChannelMoney("shop", "EUR", 4, 2, 9000, 1400, 285.0)],
        )
    )

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("stockflow_orders_window_orders") == 4
    assert value("stockflow_orders_placed", channel="shop") == 4
    assert value("stockflow_orders_fill_ratio", channel="shop", basis="units") == 0.8
    assert value("stockflow_orders_fill_ratio", channel="*", basis="lines") == 0.8
    assert value("stockflow_orders_split_shipment_ratio", channel="*") == 0.5
    assert value("stockflow_orders_exceptions", reason="no_stock") == 2
    assert value("stockflow_orders_exceptions_open", reason="no_stock") == 1
    assert value("stockflow_orders_revenue", channel="shop", currency="EUR") == 9000
    assert value("stockflow_orders_cost_per_order", channel="shop", currency="EUR") == 842.5
    p95 = value("stockflow_orders_placed_to_allocated_seconds", channel="*", level="p95")
    assert p95 is not None and p95 != p95  # NaN
    if shutil.which("promtool"):
        text = generate_latest(registry)
        checked = subprocess.run(
            ["promtool", "check", "metrics"], input=text, capture_output=True, check=False
        )
        assert checked.returncode == 0, checked.stderr.decode()


def test_channel_fees_are_read_from_orders_channels_and_a_bad_one_names_its_key(
    tmp_path: Path,
) -> None:
    """Given the configuration's orders.channels with fees, when read for the reports, then
    each named channel gets its percent and fixed fee, no orders section means no fees, and
    a negative fee_percent is refused with its key path."""
    from streams.orders.errors import OrderConfigError
    from streams.orders.setup import channel_fees

    path = tmp_path / "stockflow.yaml"
    path.write_text(
        "orders:\n  channels:\n"
        "    - {name: shop, policy: ship_available, fee_percent: 2.5, fee_fixed: 30}\n"
        "    - {name: woo}\n"
    )
    assert channel_fees(path) == {"shop": (2.5, 30), "woo": (0.0, 0)}
    assert channel_fees(None) == {}
    path.write_text(
        "orders:\n  channels:\n    - {name: shop}\n    - {name: woo, fee_percent: -1}\n"
    )
    with pytest.raises(OrderConfigError, match=r"orders\.channels\[1\]\.fee_percent"):
        channel_fees(path)
