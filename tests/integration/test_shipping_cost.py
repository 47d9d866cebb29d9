"""Shipments on the real stack: fulfilment.shipments.v1 → the real sink → ClickHouse's
``shipments`` → ``stockflow report shipping-cost``."""

from __future__ import annotations

import copy
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from schemas.codec import codec_for
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce as send
from streams.kernel.settings import Settings
from streams.kernel.topics import FULFILMENT_SHIPMENTS, SINK_TOPICS
from streams.reports import run_report
from streams.sink.deadletters import Codec
from streams.warehouse.clickhouse import connect
from tests.integration.sink_support import (
    drop_database,
    end_offsets,
    running_sink,
    scalar,
    set_group_offsets,
    sink_settings,
)
from tests.support.kafka import group_lag, wait_for
from tests.unit.schema_samples import SAMPLES

pytestmark = pytest.mark.integration

P = 1_795_420_800_000  # 2026-11-23T08:00:00Z: the labels below are bought then
DAY = 86_400_000
SINCE, UNTIL = "2026-11-23T00:00:00Z", "2026-11-24T00:00:00Z"
SINCE_MS, UNTIL_MS = P - 8 * 3_600_000, P + 16 * 3_600_000
STATUSES = ("created", "shipped", "delivered")


def shipment(
    wave: str,
    order_id: str,
    carrier: str,
    parcels: int,
    cost: int,
    currency: str,
    units: list[int],
    *,
    versions: int = 3,
    bought: int = P,
    passed_over: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The shipment's records, version 1 (created), 2 (shipped), 3 (delivered): the topic is
    shared, so none is left open for a shipping service that catches it up later."""
    out = []
    for version in range(1, versions + 1):
        record = copy.deepcopy(SAMPLES["stockflow.v1.Shipment"])
        record.update(
            shipment_id=f"ship|{wave}|{order_id}",
            version=version,
            order_id=order_id,
            channel=order_id.split(":")[0],
            wave_id=wave,
            lines=[{"line_id": str(i), "sku": f"sku-{i}", "qty": q} for i, q in enumerate(units)],
            parcels=parcels,
            carrier=carrier,
            tracking_number=f"{carrier}-{wave}-{order_id}",
            cost_minor=cost,
            currency=currency,
            status=STATUSES[version - 1],
            created_at=bought,
            updated_at=bought + version * 60_000,
            passed_over=list(passed_over),
        )
        out.append(record)
    return out


def shipments(tag: str) -> dict[str, list[dict[str, Any]]]:
    """Six shipments of five orders in the period (shopify:2 in two waves, by two carriers,
    the second dhl's after chronopost gave nothing; woo:4 by ups after chronopost and dhl;
    api:5 in USD), one bought two days before it; order ids ``<channel>:<tag>-<n>``."""
    every = [
        shipment("w1", f"shopify:{tag}-1", "dhl", 2, 1290, "EUR", [2, 1]),
        shipment("w1", f"shopify:{tag}-2", "chronopost", 1, 890, "EUR", [1], versions=2),
        shipment("w2", f"shopify:{tag}-2", "dhl", 1, 1100, "EUR", [2], passed_over=("chronopost",)),
        shipment("w1", f"woo:{tag}-3", "chronopost", 1, 750, "EUR", [1]),
        shipment(
            "w1", f"woo:{tag}-4", "ups", 3, 2400, "EUR", [5, 1], passed_over=("chronopost", "dhl")
        ),
        shipment("w1", f"api:{tag}-5", "ups", 1, 1500, "USD", [1]),
        shipment("w0", f"shopify:{tag}-9", "dhl", 1, 990, "EUR", [1], bought=P - 2 * DAY),
    ]
    return {versions[0]["shipment_id"]: versions for versions in every}


def expected(records: dict[str, list[dict[str, Any]]]) -> dict[tuple[str, str, str], Any]:
    """The report's figures worked out from the records: each shipment's last version,
    bought in the period, summed per (channel, carrier, currency) and the * totals."""
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    orders: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for versions in records.values():
        s = max(versions, key=lambda r: r["version"])
        if not SINCE_MS <= s["created_at"] < UNTIL_MS:
            continue
        units = sum(ln["qty"] for ln in s["lines"])
        ch, carrier, cur = s["channel"], s["carrier"], s["currency"]
        for key in ((ch, carrier, cur), (ch, "*", cur), ("*", carrier, cur)):
            for i, v in enumerate(
                (1, s["parcels"], units, s["cost_minor"], s["passed_over"] != [])
            ):
                sums[key][i] += v
            orders[key].add(s["order_id"])
    return {
        k: (n, parcels, len(orders[k]), units, cost, round(cost / len(orders[k]), 2),
            round(cost / parcels, 2), fallbacks)
        for k, (n, parcels, units, cost, fallbacks) in sums.items()
    }  # fmt: skip


def produce_shipments(settings: Settings, codec: Codec, records: list[dict[str, Any]]) -> None:
    producer = Producer(producer_config(settings, **{"linger.ms": 20}))
    for record in records:
        value = codec.encode(FULFILMENT_SHIPMENTS.value_schema, record)
        send(producer, FULFILMENT_SHIPMENTS.name, record["shipment_id"].encode(), value)
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


def report(settings: Settings, **options: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    args = {"since": SINCE, "until": UNTIL, **options}
    assert run_report(settings, "shipping-cost", "json", args, out=out) == 0
    records: list[dict[str, Any]] = json.loads(out.getvalue())
    return records


def figures(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {
        (r["channel"], r["carrier"], r["currency"]): (
            r["shipments"], r["parcels"], r["orders"], r["units"], r["cost"],
            r["cost_per_order"], r["cost_per_parcel"], r["fallbacks"],
        )
        for r in rows
    }  # fmt: skip


def test_shipments_replayed_land_once_and_the_shipping_cost_report_equals_the_records(
    env: tuple[Settings, Codec, str], unique_name: str
) -> None:
    """Given seven shipments (20 versions) on fulfilment.shipments.v1 - six of five orders
    bought in the period (shopify:2 in two waves by chronopost and dhl, api:5 in USD), one
    two days earlier - produced, then the whole topic's records replayed in a second batch
    with an older version of shopify:1 after its newest,
    when the real sink stores them,
    then the shipping-cost report, run before any merge, gives per channel, carrier and
    currency the figures worked out from the records' last versions (e.g. shopify dhl EUR:
    2 shipments, 3 parcels, 2 orders, 2390, 1195 per order, 1 fallback; shopify * EUR: 3
    shipments of 2 orders, 3280; * ups USD: 1500, no fallback), --channel woo only woo's
    rows, --order shopify:2 its two shipments at their last status (shipped, delivered) with
    the carrier passed over, and after a merge ``shipments`` holds each shipment once at its
    last version."""
    settings, codec, group = env
    records = shipments(unique_name)
    every = [r for versions in records.values() for r in versions]
    db = settings.clickhouse_database
    with running_sink(settings, codec, group):
        produce_shipments(settings, codec, every)
        wait_for(
            lambda: group_lag(settings, group, FULFILMENT_SHIPMENTS.name) == 0,
            timeout=60,
            what="the sink to commit the shipments",
        )
        # A replay in a later batch, so the copies sit in parts of their own.
        produce_shipments(settings, codec, [*every, records[f"ship|w1|shopify:{unique_name}-1"][0]])
        wait_for(
            lambda: group_lag(settings, group, FULFILMENT_SHIPMENTS.name) == 0,
            timeout=60,
            what="the sink to commit the replay",
        )
    raw = scalar(settings, f"SELECT count() FROM {db}.shipments")
    print(f"\n[shipping-cost] {2 * len(every) + 1} records produced, {raw} rows before merge")
    assert raw == 2 * len(every) + 1

    want = expected(records)
    got = figures(report(settings))
    assert got == want
    assert got[("shopify", "dhl", "EUR")] == (2, 3, 2, 5, 2390, 1195.0, 796.67, 1)
    assert got[("shopify", "*", "EUR")] == (3, 4, 2, 6, 3280, 1640.0, 820.0, 1)
    assert got[("*", "ups", "USD")] == (1, 1, 1, 1, 1500, 1500.0, 1500.0, 0)
    assert not any(k[0] == "shopify" and v[4] == 990 for k, v in got.items())

    woo = figures(report(settings, channel="woo"))
    assert woo == {k: v for k, v in want.items() if k[0] == "woo"} | {
        ("*", "chronopost", "EUR"): (1, 1, 1, 1, 750, 750.0, 750.0, 0),
        ("*", "ups", "EUR"): (1, 3, 1, 6, 2400, 2400.0, 800.0, 1),
    }

    one = report(settings, order=f"shopify:{unique_name}-2")
    picked = [
        (r["shipment_id"], r["carrier"], r["cost"], r["currency"], r["status"], r["passed_over"])
        for r in one
    ]
    assert picked == [
        (f"ship|w1|shopify:{unique_name}-2", "chronopost", 890, "EUR", "shipped", ""),
        (f"ship|w2|shopify:{unique_name}-2", "dhl", 1100, "EUR", "delivered", "chronopost"),
    ]

    client = connect(settings)
    try:
        client.execute(f"OPTIMIZE TABLE {db}.shipments FINAL")
    finally:
        client.disconnect()
    rows = scalar(settings, f"SELECT groupArray((shipment_id, version)) FROM {db}.shipments")
    assert sorted(rows) == sorted((sid, len(v)) for sid, v in records.items())
