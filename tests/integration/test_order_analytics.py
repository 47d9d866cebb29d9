"""Order states on the real stack: orders.state.v1 → the real sink → ClickHouse → the reports."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from schemas.codec import codec_for
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce as send
from streams.kernel.settings import Settings
from streams.kernel.topics import ORDERS_STATE, SINK_TOPICS, STOCK_DEADLETTER
from streams.reports import run_report
from streams.sink.deadletters import Codec
from streams.sink.order_gauges import run_order_gauges
from streams.warehouse.clickhouse import connect
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
)
from tests.support.kafka import group_lag, read_topic, wait_for
from tests.unit.schema_samples import SAMPLES

pytestmark = pytest.mark.integration

S = 1_000
P = 1_795_420_800_000  # 2026-11-23T08:00:00Z: every order below is placed then
SINCE, UNTIL = "2026-11-23T07:00:00Z", "2026-11-24T00:00:00Z"
FILLED_STATUSES = ("reserved", "shipped", "delivered", "returned")


def line(
    line_id: str, qty: int, price: int, currency: str, location: str | None, status: str
) -> dict[str, Any]:
    return {
        "line_id": line_id,
        "sku": f"sku-{line_id}",
        "qty": qty,
        "location": location,
        "lot": None,
        "status": status,
        "shipped_qty": qty if status == "shipped" else 0,
        "unit_price": price,
        "currency": currency,
    }


def history(
    order_id: str,
    steps: list[tuple[str, int, list[dict[str, Any]], str | None, int | None]],
    *,
    placed: int = P,
) -> list[dict[str, Any]]:
    """The order's states, version 1, 2, ...: (status, ms after placed, lines, reason, cost)."""
    states = []
    previous = None
    for version, (status, after, lines, reason, cost) in enumerate(steps, 1):
        record = copy.deepcopy(SAMPLES["stockflow.v1.OrderState"])
        record.update(
            order_id=order_id,
            version=version,
            channel=order_id.split(":")[0],
            status=status,
            lines=lines,
            reason=reason,
            shipping_cost=cost,
            placed_at=placed,
            updated_at=placed + after,
            transition={
                "from_status": previous,
                "to_status": status,
                "event_id": f"{order_id}|{version}",
                "reason": reason,
                "by": None,
                "at": placed + after,
            },
        )
        states.append(record)
        previous = status
    return states


def pending(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**x, "status": "pending", "location": None} for x in lines]


def orders() -> dict[str, list[dict[str, Any]]]:
    """Eight orders; the figures the tests expect are worked out by hand in their docstrings."""
    o1 = [
        line("1", 2, 1000, "EUR", "lyon", "reserved"),
        line("2", 1, 5000, "EUR", "lyon", "reserved"),
    ]
    o2 = [
        line("1", 1, 1000, "EUR", "lyon", "reserved"),
        line("2", 4, 250, "EUR", "paris", "reserved"),
    ]
    o3 = [line("1", 2, 1000, "EUR", None, "refused")]
    o4 = [
        line("1", 3, 2000, "USD", "lyon", "reserved"),
        line("2", 2, 2000, "USD", None, "backordered"),
    ]
    o5 = [line("1", 1, 100, "USD", "paris", "reserved")]
    o6 = [line("1", 1, 1000, "EUR", "lyon", "reserved")]
    o7 = [line("1", 10, 50, "EUR", None, "pending")]
    o8 = [line("1", 1, 1000, "EUR", "lyon", "reserved")]
    shipped = [{**x, "status": "shipped", "shipped_qty": x["qty"]} for x in o2]
    cancelled = [{**x, "status": "cancelled"} for x in o6]
    return {
        "shop:1": history("shop:1", [
            ("received", 0, pending(o1), None, None),
            ("routed", 1 * S, pending(o1), None, 500),
            ("allocated", 3 * S, o1, None, 500),
        ]),
        "shop:2": history("shop:2", [
            ("received", 0, pending(o2), None, None),
            ("routed", 2 * S, pending(o2), None, 900),
            ("allocated", 10 * S, o2, None, 900),
            ("shipped", 100 * S, shipped, None, 900),
        ]),
        "shop:3": history("shop:3", [
            ("received", 0, pending(o3), None, None),
            ("routed", 1 * S, pending(o3), None, 400),
            ("exception", 2 * S, o3, "no_stock", None),
        ]),
        "woo:4": history("woo:4", [
            ("received", 0, pending(o4), None, None),
            ("routed", 5 * S, pending(o4), None, 300),
            ("partially_allocated", 20 * S, o4, None, 300),
        ]),
        "woo:5": history("woo:5", [
            ("received", 0, pending(o5), None, None),
            ("routed", 1 * S, pending(o5), None, 250),
            ("exception", 5 * S, [{**o5[0], "status": "refused", "location": None}],
             "no_stock", None),
            ("allocated", 60 * S, o5, None, 200),
        ]),
        "shop:6": history("shop:6", [
            ("received", 0, pending(o6), None, None),
            ("routed", 1 * S, pending(o6), None, 500),
            ("allocated", 4 * S, o6, None, 500),
            ("cancelled", 50 * S, cancelled, "customer", 500),
        ]),
        "b2b:7": history("b2b:7", [("received", 0, o7, None, None)]),
        "shop:8": history("shop:8", [  # placed two days earlier: outside the period
            ("received", 0, pending(o8), None, None),
            ("allocated", 1 * S, o8, None, 500),
        ], placed=P - 2 * 86_400_000),
    }  # fmt: skip


def produce_states(settings: Settings, codec: Codec, records: list[dict[str, Any]]) -> None:
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    for record in records:
        value = codec.encode(ORDERS_STATE.value_schema, record)
        send(producer, ORDERS_STATE.name, record["order_id"].encode(), value)
    assert producer.flush(60) == 0


@pytest.fixture
def env(local_stack: Settings, unique_name: str) -> Iterator[tuple[Settings, Codec, str]]:
    """Its own ClickHouse database and consumer group, the group starting at the topics' end."""
    settings = sink_settings(local_stack, unique_name)
    group = f"sink-{unique_name}"
    set_group_offsets(settings, group, end_offsets(settings, SINK_TOPICS))
    try:
        yield settings, codec_for(settings), group
    finally:
        drop_database(settings)


def report(settings: Settings, name: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    args = {"since": SINCE, "until": UNTIL}
    assert run_report(settings, name, "json", args, out=out) == 0
    records: list[dict[str, Any]] = json.loads(out.getvalue())
    return records


def quantile(values: list[float], level: float) -> float:
    """quantileExact's rule: the value at rank floor(level x n) of the sorted values."""
    ordered = sorted(values)
    return ordered[min(int(level * len(ordered)), len(ordered) - 1)]


def test_order_states_with_copies_land_once_and_the_reports_match_hand_computed_figures(
    env: tuple[Settings, Codec, str], unique_name: str, tmp_path: Path
) -> None:
    """Given eight orders' states (24 versions) on orders.state.v1, produced, then produced
    again in a second run with a third copy of some and an older version after a newer one,
    plus one state whose version is 0, and fees in the configuration (shop 2.5 % + 30,
    woo 50 per order),
    when the real sink stores them,
    then orders, order_lines and order_transitions hold each (order, version[, line]) once
    after a merge, the bad state is dead-lettered with reason bad_field, and the order
    reports - run before any merge - give the figures worked out by hand:
    fill shop 4/5 lines 8/10 units, woo 2/3 and 4/6 (cancelled and in-flight orders left
    out); split shop 1 of 2, woo 0 of 2; placed->allocated shop [3, 4, 10] s, woo [20, 60] s;
    no_stock: 2 exceptions, 2 orders, 1 still open; shop EUR: 4 orders, 2 sold, revenue
    9000, shipping 1400, fees 285, cost/order 842.5; woo USD: 2 orders, revenue 6100,
    shipping 500, fees 100, cost/order 300; b2b EUR: 1 order, none sold."""
    settings, codec, group = env
    config = tmp_path / "stockflow.yaml"
    config.write_text(
        "orders:\n  channels:\n"
        "    - {name: shop, policy: all_or_nothing, fee_percent: 2.5, fee_fixed: 30}\n"
        "    - {name: woo, fee_fixed: 50}\n"
    )
    settings = dataclasses.replace(settings, config_path=str(config))
    states = orders()
    every = [s for versions in states.values() for s in versions]
    bad = copy.deepcopy(states["shop:1"][0])
    bad.update(order_id=f"shop:bad-{unique_name}", version=0)
    db = settings.clickhouse_database
    with running_sink(settings, codec, group):
        produce_states(settings, codec, every)
        produce_states(settings, codec, [bad])
        wait_for(
            lambda: group_lag(settings, group, ORDERS_STATE.name) == 0,
            timeout=60,
            what="the sink to commit the order states",
        )
        # Copies in a later batch, so they sit in parts of their own: three copies of shop:2,
        # an older version of woo:5 after its newest one.
        again = states["shop:2"] * 2 + [states["woo:5"][3], states["woo:5"][1]]
        produce_states(settings, codec, again)
        wait_for(
            lambda: group_lag(settings, group, ORDERS_STATE.name) == 0,
            timeout=60,
            what="the sink to commit the copies",
        )
        raw = scalar(settings, f"SELECT count() FROM {db}.order_transitions")

    versions = {(s["order_id"], s["version"]) for s in every}
    assert len(versions) == 24
    print(
        f"\n[orders] {len(every) + len(again)} states produced, {raw} transition rows before merge"
    )

    fill = {r["channel"]: r for r in report(settings, "orders-fill")}
    assert {
        c: (r["lines"], r["lines_filled"], r["units"], r["units_filled"]) for c, r in fill.items()
    } == {
        "shop": (5, 4, 10, 8),
        "woo": (3, 2, 6, 4),
    }
    assert (fill["shop"]["line_fill_pct"], fill["woo"]["unit_fill_pct"]) == (80.0, 66.67)

    split = {
        r["channel"]: (r["orders"], r["split_orders"], r["split_pct"])
        for r in report(settings, "orders-split")
    }
    assert split == {"shop": (2, 1, 50.0), "woo": (2, 0, 0.0)}

    times = {"shop": [3.0, 4.0, 10.0], "woo": [20.0, 60.0]}
    times["*"] = times["shop"] + times["woo"]
    latency = {r["channel"]: r for r in report(settings, "orders-latency")}
    for channel, values in times.items():
        row = latency[channel]
        assert row["orders"] == len(values)
        assert (row["p50_seconds"], row["p95_seconds"]) == (
            quantile(values, 0.5),
            quantile(values, 0.95),
        ), channel

    assert report(settings, "orders-exceptions") == [
        {"reason": "no_stock", "exceptions": 2, "orders": 2, "still_open": 1}
    ]

    money = {(r["channel"], r["currency"]): r for r in report(settings, "orders-channels")}
    assert set(money) == {("shop", "EUR"), ("woo", "USD"), ("b2b", "EUR")}
    shop, woo, b2b = money[("shop", "EUR")], money[("woo", "USD")], money[("b2b", "EUR")]
    revenue = 2 * 1000 + 5000 + 1000 + 4 * 250
    assert (shop["orders"], shop["sold_orders"], shop["revenue"], shop["shipping_cost"]) == (
        4, 2, revenue, 500 + 900,
    )  # fmt: skip
    assert (shop["fees"], shop["cost_per_order"]) == (285.0, (1400 + 285) / 2)
    assert (woo["orders"], woo["sold_orders"], woo["revenue"], woo["shipping_cost"]) == (
        2, 2, 3 * 2000 + 100, 300 + 200,
    )  # fmt: skip
    assert (woo["fees"], woo["cost_per_order"]) == (100.0, 300.0)
    assert (b2b["orders"], b2b["sold_orders"], b2b["revenue"], b2b["cost_per_order"]) == (
        1, 0, 0, None,
    )  # fmt: skip

    # The dashboard's gauges: same formulas, refreshed by the sink's thread (a window long
    # enough to reach these orders; woo has no order outside the report's period).
    registry, stop = CollectorRegistry(), threading.Event()
    thread = run_order_gauges(settings, registry, stop, every=0.2, window=30 * 86_400)
    try:
        wait_for(
            lambda: registry.get_sample_value("stockflow_orders_window_orders") == len(states),
            timeout=30,
            what="the order gauges",
        )
    finally:
        stop.set()
        thread.join(timeout=10)
    gauge = registry.get_sample_value
    assert gauge("stockflow_orders_fill_ratio", {"channel": "woo", "basis": "units"}) == 4 / 6
    assert gauge("stockflow_orders_cost_per_order", {"channel": "woo", "currency": "USD"}) == 300
    assert gauge("stockflow_orders_exceptions_open", {"reason": "no_stock"}) == 1

    dead = read_topic(
        settings,
        codec,
        STOCK_DEADLETTER,
        lambda r: r["component"] == "sink" and r["event_id"] == f"shop:bad-{unique_name}@0",
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert [(d["reason"], d["topic"]) for d in dead] == [("bad_field", ORDERS_STATE.name)]

    client = connect(settings)
    try:
        for table in ("orders", "order_lines", "order_transitions"):
            client.execute(f"OPTIMIZE TABLE {db}.{table} FINAL")
    finally:
        client.disconnect()
    assert scalar(settings, f"SELECT count() FROM {db}.orders") == len(states)
    last = scalar(settings, f"SELECT groupArray((order_id, version)) FROM {db}.orders")
    assert sorted(last) == sorted((o, len(v)) for o, v in states.items())
    pairs = scalar(settings, f"SELECT groupArray((order_id, version)) FROM {db}.order_transitions")
    assert sorted(pairs) == sorted(versions)
    lines = scalar(
        settings, f"SELECT groupArray((order_id, version, line_id)) FROM {db}.order_lines"
    )
    expected = [(s["order_id"], s["version"], x["line_id"]) for s in every for x in s["lines"]]
    assert sorted(lines) == sorted(expected)
