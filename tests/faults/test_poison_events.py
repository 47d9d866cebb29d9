"""Poison: extreme and random field values through the real worker, among good events.

``STOCKFLOW_POISON_EVENTS`` sets how many events flow (default 10,000).
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local.children import ChildProcess
from schemas.codec import CodecError, single_object_codec
from schemas.events import EVENT_TYPES, MAX_TIME_MS, MIN_TIME_MS, InvalidEvent
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DEADLETTER, STOCK_EVENTS
from streams.ledger import DEFAULT_CONFIG, SkuState, apply
from tests.integration.sink_support import drop_database, end_offsets, scalar, set_group_offsets
from tests.support.kafka import end_offsets as topic_ends
from tests.support.kafka import group_lag, produce_raw, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.processes import track
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

EVENTS = int(os.environ.get("STOCKFLOW_POISON_EVENTS", "10000"))
GOOD_SKUS = 20
# holds expire on the worker's clock, not the model's: kept out of the random mix
KINDS = sorted(EVENT_TYPES - {"hold", "hold_released"})
CODEC = single_object_codec()


def _text(rng: random.Random, i: int) -> Any:
    return rng.choice(
        [None, "default", "", "  ", "x" * 256, "x" * 257, "é" * 40, "\x00", f"w{i % 3}", "🙂"]
    )


def _int(rng: random.Random) -> int:
    return rng.choice(
        [
            0,
            -1,
            1,
            7,
            10**9,
            10**9 + 1,
            -(10**9),
            -(10**9) - 1,
            2**62,
            2**63 - 1,
            -(2**63),
            rng.randint(-(2**63), 2**63 - 1),
            rng.randint(-50, 50),
        ]
    )


def _time(rng: random.Random, now: int) -> int:
    return rng.choice(
        [
            0,
            -1,
            MIN_TIME_MS - 1,
            MIN_TIME_MS,
            MAX_TIME_MS - 1,
            MAX_TIME_MS,
            2**63 - 1,
            -(2**63),
            now,
            now - rng.randint(0, 10**9),
            now // 1000,  # seconds
            rng.randint(MAX_TIME_MS, 2**53),  # after 2100: past ClickHouse's DateTime too
        ]
    )


def _poison(rng: random.Random, prefix: str, i: int, now: int) -> dict[str, Any]:
    sku = rng.choice(
        [
            *(f"{prefix}-p{k}" for k in range(7)),
            f"{prefix}-é{i % 3}",
            f"{prefix}-" + "y" * 240,
            rng.choice(["", " ", "z" * 257]),
        ]
    )
    event = stock_event(
        rng.choice([f"{prefix}-x{i}"] * 8 + [f"{prefix}-x{i}-" + "é" * 200, "", "q" * 300]),
        rng.choice(KINDS),
        sku,
        _int(rng),
        occurred_at=_time(rng, now),
        source=rng.choice(["poison"] * 8 + ["", "s" * 300]),
    )
    if rng.random() < 0.3:
        event["ingested_at"] = _time(rng, now)
    for name in ("location", "to_location", "channel", "order_id", "reason", "source_ref"):
        if rng.random() < 0.15:
            event[name] = _text(rng, i)
    if rng.random() < 0.3:
        event["as_of"] = _time(rng, now)
    if rng.random() < 0.2:
        event["expires_at"] = _time(rng, now)
    if rng.random() < 0.3:
        event["source_seq"] = _int(rng)
    if rng.random() < 0.3:
        event["disposition"] = rng.choice(["resellable", "damaged", "quarantine", None])
    if rng.random() < 0.2:
        event["order_id"] = f"{prefix}-o{rng.randrange(50)}"
    return event


def _good(rng: random.Random, prefix: str, i: int) -> dict[str, Any]:
    sku = f"{prefix}-g{rng.randrange(GOOD_SKUS)}"
    kind = rng.choice(["receipt", "sale", "adjustment", "order_placed", "return_received"])
    fields: dict[str, Any] = {"location": "default"}
    if kind == "adjustment":
        fields["reason"] = "correction"
    if kind == "order_placed":
        fields = {"channel": "web", "order_id": f"o{i}"}
    qty = rng.choice([-1, 1]) if kind == "adjustment" else rng.randint(1, 5)
    return stock_event(f"{prefix}-g{i}", kind, sku, qty, **fields)


def _garbage(rng: random.Random, valid: bytes) -> bytes:
    return rng.choice(
        [
            b"",
            rng.randbytes(rng.randint(1, 64)),
            valid[: rng.randint(0, len(valid) - 1)],
            valid + b"\x00",
            b"\xc3\x01" + rng.randbytes(8) + valid[10:],
        ]
    )


@pytest.fixture
def pipeline(local_stack: Settings, tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    run = uuid.uuid4().hex[:8]
    worker = WorkerProcess(f"poison-{run}", free_port(), tmp_path)
    database = f"poison_{run}"
    group = f"poison-sink-{run}"
    set_group_offsets(local_stack, group, end_offsets(local_stack))
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
        yield worker, database
        assert sink.alive(), sink.tail()
    finally:
        sink.stop()
        worker.stop()
        drop_database(dataclasses.replace(local_stack, clickhouse_database=database))


def test_poison_events_are_dead_lettered_with_a_reason_and_the_ledger_goes_on(
    local_stack: Settings, pipeline: tuple[WorkerProcess, str]
) -> None:
    """Given a worker and a sink, when EVENTS records flow in (half good events of 20 SKUs;
    half poison: extreme integers, times from 1970 to 2^63, empty, over-long and odd text,
    raw bytes that are no event), then the worker stays alive, every record is applied or
    dead-lettered with a reason (none lost, none twice), each SKU's on_hand is what the pure
    rules give, and the ClickHouse movements of each SKU add up to its on_hand."""
    worker, database = pipeline
    rng = random.Random(int(os.environ.get("STOCKFLOW_POISON_SEED", "10")))
    prefix = f"poi-{uuid.uuid4().hex[:6]}"
    now = int(time.time() * 1000)
    items: list[tuple[bytes | None, bytes]] = []
    model: dict[str, SkuState] = {}
    expect_dead: Counter[bytes] = Counter()
    applied = duplicates = 0
    for i in range(EVENTS):
        event = _good(rng, prefix, i) if rng.random() < 0.5 else _poison(rng, prefix, i, now)
        try:
            value = CODEC.encode(STOCK_EVENTS.value_schema, event)
        except CodecError:
            continue  # no producer can write it: not sent
        key = event["sku"].encode()
        if rng.random() < 0.05:
            value = _garbage(rng, value)
            if not value:
                continue  # an empty value is a tombstone, not an event
            try:
                event = CODEC.decode_as(STOCK_EVENTS.value_schema, value)
            except CodecError:
                expect_dead[value] += 1
                items.append((key, value))
                continue
        items.append((key, value))
        try:
            state, out = apply(model.get(event["sku"]), event, DEFAULT_CONFIG, now)
        except InvalidEvent:
            expect_dead[value] += 1
            continue
        model[event["sku"]] = state
        if out.duplicate:
            duplicates += 1
        else:
            applied += 1
    start = topic_ends(local_stack, STOCK_EVENTS.name)
    produce_raw(local_stack, items)

    def caught_up() -> bool:
        assert worker.alive(), worker.log_tail()  # alive at every look, not only at the end
        return group_lag(local_stack, worker.app_id, STOCK_EVENTS.name, since=start) == 0

    wait_for(caught_up, timeout=300, what="the worker to take every record")

    mine = set(expect_dead)
    dead = read_topic(
        local_stack,
        CODEC,
        STOCK_DEADLETTER,
        lambda r: (
            r["component"] == "ledger"
            and r["topic"] == STOCK_EVENTS.name
            and r["offset"] >= start.get(r["partition"], 0)
            and r["original"] in mine
        ),
        until=lambda found: len(found) >= sum(expect_dead.values()),
        timeout=60,
    )
    got_dead = Counter(r["original"] for r in dead)
    reasons = Counter(r["reason"] for r in dead)
    assert all(r["reason"] for r in dead)
    lost_dead = sum((expect_dead - got_dead).values())
    doubled_dead = sum((got_dead - expect_dead).values())

    def on_hand(sku: str) -> int | None:
        got = worker.stock(urllib.parse.quote(sku, safe=""))
        return None if got is None else sum(loc["on_hand"] for loc in got["locations"].values())

    wrong = {
        sku: (sum(loc.on_hand for loc in s.locations.values()), on_hand(sku))
        for sku, s in model.items()
        if sum(loc.on_hand for loc in s.locations.values()) != on_hand(sku)
    }

    in_database = dataclasses.replace(local_stack, clickhouse_database=database)

    def clickhouse_on_hand() -> dict[str, int]:
        try:
            rows = scalar(
                in_database,
                "SELECT groupArray((s, total)) FROM (SELECT s, sum(d) AS total FROM"
                " (SELECT movement_id, any(sku) AS s, any(delta_on_hand) AS d FROM"
                f" (SELECT * FROM {database}.stock_movements WHERE startsWith(sku, %(p)s))"
                " GROUP BY movement_id) GROUP BY s)",
                {"p": prefix},
            )
        except Exception:
            return {}  # the sink has not created its tables yet
        return {sku: int(d) for sku, d in rows}

    ledger = {
        sku: sum(loc.on_hand for loc in s.locations.values())
        for sku, s in model.items()
        if s.locations
    }
    wait_for(
        lambda: clickhouse_on_hand() == ledger,
        timeout=180,
        what="ClickHouse movements to add up to each SKU's on_hand",
    )
    print(
        f"\n{len(items)} records ({applied} applied, {duplicates} duplicate ids, "
        f"{sum(expect_dead.values())} to dead-letter); dead-lettered by reason: "
        f"{dict(reasons.most_common())}; lost {lost_dead}, doubled {doubled_dead}, "
        f"SKUs off their figure {len(wrong)}"
    )
    assert (lost_dead, doubled_dead) == (0, 0)
    assert wrong == {}
    assert worker.alive(), worker.log_tail()
