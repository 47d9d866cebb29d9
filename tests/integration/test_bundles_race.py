"""Bundles on the real stack: the last component units raced by bundle orders (the order
book) and single-component orders (the line intake) from three channels; the bundles'
levels on stock.levels.v1 follow their components on every channel."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.codec import CodecError, single_object_codec
from streams.bundles.catalogue import parse_catalogue
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_LEVELS, STOCK_MOVEMENTS
from tests.support.kafka import end_offsets, produce_events, stock_event
from tests.support.orders import (
    StateFollower,
    group_to_end,
    input_specs,
    order_of,
    order_record,
    send_orders,
)
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration]

ORDERS = int(os.environ.get("STOCKFLOW_BUNDLE_ORDERS", "120"))  # bundle + single orders
CHANNELS = ("shop", "market", "store")
WH = "paris-wh"


def config_yaml(path: Path, run: str) -> Path:
    a, b, c = (f"{x}-{run}" for x in "ABC")
    path.write_text(
        f"""default_location: {WH}
locations:
  - name: {WH}
channels:
  - name: shop
  - name: market
    rule: {{buffer: 1}}
  - name: store
bundles:
  - sku: SET-{run}
    version: 1
    components: {{{a}: 1, {b}: 2}}
  - sku: DUO-{run}
    components: {{{b}: 1, {c}: 1}}
    channels:
      market: {{{b}: 1, {c}: 2}}
"""
    )
    return path


@pytest.fixture
def run() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def bundle_worker(local_stack: Settings, tmp_path: Path, run: str) -> Iterator[WorkerProcess]:
    app_id = f"bundles-{run}"
    group_to_end(local_stack, app_id, input_specs())
    worker = WorkerProcess(
        app_id,
        free_port(),
        local_stack.state_dir / "logs",
        STOCKFLOW_CONFIG=str(config_yaml(tmp_path / "ledger.yaml", run)),
    )
    worker.start()
    yield worker
    worker.stop()


def read_levels(
    settings: Settings, start: dict[int, int], skus: set[str]
) -> list[tuple[int, dict[str, Any]]]:
    """(Kafka timestamp, level) of ``skus`` on stock.levels.v1 since ``start``, to the ends."""
    codec = single_object_codec()
    consumer = Consumer(consumer_config(settings, f"bundle-levels-{time.time_ns()}"))
    ends = end_offsets(settings, STOCK_LEVELS.name)
    todo = {p for p in start if ends[p] > start[p]}
    consumer.assign([TopicPartition(STOCK_LEVELS.name, p, start[p]) for p in todo])
    found: list[tuple[int, dict[str, Any]]] = []
    try:
        while todo:
            for msg in consumer.consume(5000, 1.0):
                if msg.error() is not None:
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    todo.discard(msg.partition())
                if msg.key() is None or msg.key().decode() not in skus or msg.value() is None:
                    continue
                try:
                    found.append(
                        (
                            msg.timestamp()[1],
                            codec.decode_as(STOCK_LEVELS.value_schema, msg.value()),
                        )
                    )
                except CodecError:
                    continue
    finally:
        consumer.close()
    return found


def read_movements(
    settings: Settings, start: dict[int, int], skus: set[str]
) -> list[dict[str, Any]]:
    codec = single_object_codec()
    consumer = Consumer(consumer_config(settings, f"bundle-moves-{time.time_ns()}"))
    ends = end_offsets(settings, STOCK_MOVEMENTS.name)
    todo = {p for p in start if ends[p] > start[p]}
    consumer.assign([TopicPartition(STOCK_MOVEMENTS.name, p, start[p]) for p in todo])
    found: list[dict[str, Any]] = []
    try:
        while todo:
            for msg in consumer.consume(5000, 1.0):
                if msg.error() is not None:
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    todo.discard(msg.partition())
                if msg.key() is None or msg.key().decode() not in skus or msg.value() is None:
                    continue
                found.append(codec.decode_as(STOCK_MOVEMENTS.value_schema, msg.value()))
    finally:
        consumer.close()
    return found


@pytest.mark.timeout(300)
def test_bundles_and_their_components_racing_never_sell_more_than_the_components_allow(
    local_stack: Settings, bundle_worker: WorkerProcess, run: str, tmp_path: Path
) -> None:
    """Given components A, B, C counted for about half of the demand, a set (A + 2 B) and a
    duo (B + C; B + 2 C on market), and three channels
    When bundle orders (through the order book) and single-component orders (line by line,
    as the connectors' line intake sends them) from the three channels race for the units
    Then every bundle order holds all its components (allocated) or none (exception), the
    reservations name the bundle, no component is reserved beyond its units, the ledger's
    reserved units are exactly what the orders hold, both outcomes occur, and each bundle's
    last level on every channel is what its components' last levels make."""
    settings, codec = local_stack, single_object_codec()
    catalogue = parse_catalogue(
        __import__("yaml").safe_load(config_yaml(tmp_path / "c.yaml", run).read_text())["bundles"]
    )
    a, b, c = (f"{x}-{run}" for x in "ABC")
    components, bundles = {a, b, c}, {f"SET-{run}", f"DUO-{run}"}
    scale = max(1, ORDERS // 120)  # about half of the demand, whatever the count
    counted = {a: 45 * scale, b: 90 * scale, c: 45 * scale}
    levels_from = end_offsets(settings, STOCK_LEVELS.name)
    moves_from = end_offsets(settings, STOCK_MOVEMENTS.name)
    rng = random.Random(run)
    bundle_orders: list[dict[str, Any]] = []
    singles: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for i in range(ORDERS):
        channel = CHANNELS[i % 3]
        if i % 2 == 0:
            sku = f"SET-{run}" if rng.random() < 0.6 else f"DUO-{run}"
            lines = [("1", sku, rng.randint(1, 2))]
            if rng.random() < 0.3:
                lines.append(("2", c, 1))  # a bundle and a plain line in one order
            bundle_orders.append(order_record(f"{run}-b{i}", channel, lines))
        else:
            sku = rng.choice(sorted(components))
            singles[channel].append(
                stock_event(
                    f"{run}-s{i}",
                    "order_placed",
                    sku,
                    1,  # single orders alone never exhaust a component: both outcomes occur
                    location=WH,
                    channel=channel,
                    order_id=f"{run}-s{i}",
                )
            )
    with StateFollower(settings, codec, run) as follower:
        produce_events(
            settings,
            codec,
            [
                stock_event(f"{run}-count-{s}", "stock_count", s, n, location=WH)
                for s, n in counted.items()
            ],
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            ((bundle_worker.stock(s) or {}).get("locations", {}).get(WH, {}).get("on_hand") == n)
            for s, n in counted.items()
        ):
            time.sleep(0.3)
        time.sleep(1.0)  # the order book's routing view follows the levels
        began = time.monotonic()
        threads = [
            threading.Thread(
                target=send_orders,
                args=(settings, codec, [o for o in bundle_orders if o["channel"] == ch]),
            )
            for ch in CHANNELS
        ] + [
            threading.Thread(target=produce_events, args=(settings, codec, singles[ch]))
            for ch in CHANNELS
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_s = time.monotonic() - began
        ids = {o["order_id"] for o in bundle_orders}
        follower.wait(ids, frozenset({"allocated", "exception"}), timeout=120, what="bundle orders")
        states = follower.snapshot()

    # every single order decided: the ledger's reserved units stop moving
    def reserved() -> dict[str, int]:
        return {s: (bundle_worker.stock(s) or {})["locations"][WH]["reserved"] for s in components}

    settled_at = time.monotonic() + 60
    last: dict[str, int] = {}
    while time.monotonic() < settled_at:
        now = reserved()
        if now == last:
            break
        last = now
        time.sleep(1.0)
    moves = read_movements(settings, moves_from, components)
    held: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    refs: dict[str, set[str | None]] = defaultdict(set)
    seen: set[str] = set()
    for m in moves:
        oid = order_of(m["event_id"]) or m["event_id"]  # a single order: its one event
        if m["delta_reserved"] and m["movement_id"] not in seen:  # once, if read twice
            seen.add(m["movement_id"])
            held[oid][m["sku"]] += m["delta_reserved"]
            if m["delta_reserved"] > 0:
                refs[oid].add(m.get("source_ref"))
    outcomes = defaultdict(int)
    for order in bundle_orders:
        oid = order["order_id"]
        state = states[oid]
        holds = {s: n for s, n in held.get(oid, {}).items() if n}
        outcomes[state["status"]] += 1
        if state["status"] == "exception":
            assert holds == {}, (oid, holds)
            continue
        want: dict[str, int] = defaultdict(int)
        for line in order["lines"]:
            bundle = catalogue.get(line["sku"])
            parts = bundle.for_channel(order["channel"]) if bundle else {line["sku"]: 1}
            for sku, per in parts.items():
                want[sku] += per * line["qty"]
        assert holds == dict(want), (oid, holds, dict(want))
        assert any(r and r.startswith("bundle:") for r in refs[oid]), refs[oid]
        sold = {line["sku"] for line in order["lines"] if catalogue.get(line["sku"])}
        assert {ln["bundle"] for ln in state["lines"] if ln["bundle"]} == sold, state["lines"]
    final = reserved()
    stock_now = {s: bundle_worker.stock(s)["locations"][WH] for s in components}  # type: ignore[index]
    for sku in components:
        total = sum(per.get(sku, 0) for per in held.values())
        assert final[sku] == total, (sku, final[sku], total)
        assert final[sku] <= stock_now[sku]["on_hand"] == counted[sku], (sku, stock_now[sku])
    single_units = sum(n for oid, per in held.items() if "-s" in oid for n in per.values())
    reasons = {str(states[o["order_id"]].get("reason"))[:80] for o in bundle_orders}
    assert outcomes["allocated"] and outcomes["exception"], (dict(outcomes), reasons)
    assert single_units > 0

    # the bundles' levels follow the components' on every channel
    deadline = time.monotonic() + 30
    while True:
        records = read_levels(settings, levels_from, components | bundles)
        newest: dict[str, dict[str, Any]] = {}
        for _, lv in records:
            if lv["sku"] not in newest or lv["version"] > newest[lv["sku"]]["version"]:
                newest[lv["sku"]] = lv
        comp_levels = {s: newest[s] for s in components if s in newest}
        wrong = []
        for sku in bundles:
            bundle = catalogue.get(sku)
            assert bundle is not None
            # what the components' last levels make, per channel, counted here
            want = {
                ch: min(
                    comp_levels[c]["channels"][ch] // per
                    for c, per in bundle.for_channel(ch).items()
                )
                for ch in CHANNELS
            }
            got = newest.get(sku)
            if got is None or {ch: got["channels"].get(ch) for ch in CHANNELS} != want:
                wrong.append((sku, got and got["channels"], want))
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not wrong, wrong
    assert set(newest[f"SET-{run}"]["channels"]) >= set(CHANNELS)
    # a bundle record's delay: since the newest component level written before it
    comp_ts = sorted(ts for ts, lv in records if lv["sku"] in components)
    lags = sorted(
        ts - max((c for c in comp_ts if c <= ts), default=ts)
        for ts, lv in records
        if lv["sku"] in bundles
    )
    print(
        f"\n[bundles] {len(bundle_orders)} bundle orders + "
        f"{sum(map(len, singles.values()))} single orders from {len(CHANNELS)} channels sent "
        f"in {sent_s:.1f} s; bundle orders "
        f"{dict(outcomes)}; reserved {final} of {counted}; {len(lags)} bundle levels written, "
        f"newest component level -> bundle level p50 {lags[len(lags) // 2]} ms, max {lags[-1]} ms; "
        f"last: " + ", ".join(f"{s.split('-')[0]} {newest[s]['channels']}" for s in sorted(bundles))
    )
