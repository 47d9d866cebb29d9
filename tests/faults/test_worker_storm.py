"""kill -9 storm on three ledger workers of one group under load: every SKU as the pure rules
compute it, nothing lost, nothing applied twice, and how long partitions stood ownerless."""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from deploy.local import children
from schemas.codec import single_object_codec
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_DECISIONS, STOCK_EVENTS, STOCK_MOVEMENTS
from streams.ledger.config import DEFAULT_CONFIG
from streams.ledger.rules import apply
from streams.ledger.state import SkuState
from tests.faults.test_worker_crash import _stream
from tests.support.group import OwnershipSampler, ownerless_episodes, read_from
from tests.support.kafka import end_offsets, rewind_group
from tests.support.ports import free_port
from tests.support.stores import table_stores
from tests.support.storm import caught_up, movement_or_decision_checks, stock_mismatches
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration, pytest.mark.faults]

KILLS = int(os.environ.get("STOCKFLOW_STORM_KILLS", "3"))
EVENTS = int(os.environ.get("STOCKFLOW_STORM_EVENTS", "20000"))
RATE = int(os.environ.get("STOCKFLOW_STORM_RATE", "1000"))  # events/s offered
SEED = int(os.environ.get("STOCKFLOW_STORM_SEED", "12"))
STORES = table_stores()
WORKERS = 3
# the whole run: producing, the kills, catching up and the checks, with room on shared cores
RUN_LIMIT_S = max(600, EVENTS // 100 + KILLS * 30 + 300)


def _events(prefix: str) -> list[dict[str, Any]]:
    """EVENTS mixed events for 100 SKUs: rounds of 20,000, each with fresh event and order
    ids, cut at EVENTS."""
    events: list[dict[str, Any]] = []
    round_ = 0
    while len(events) < EVENTS:
        for e in _stream(prefix, random.Random(SEED * 100 + round_)):
            if round_:
                e = {**e, "event_id": f"{e['event_id']}-r{round_}"}
                if e.get("order_id"):
                    e["order_id"] = f"{e['order_id']}-r{round_}"
            events.append(e)
        round_ += 1
    return events[:EVENTS]


def _fold(
    events: list[dict[str, Any]],
) -> tuple[dict[str, SkuState], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The pure rules folded over the events in order: every SKU's state, and the movements
    and decisions they emit, by id."""
    states: dict[str, SkuState] = {}
    movements: dict[str, dict[str, Any]] = {}
    decisions: dict[str, dict[str, Any]] = {}
    for event in events:
        state, emitted = apply(
            states.get(event["sku"]), event, DEFAULT_CONFIG, event["ingested_at"]
        )
        states[event["sku"]] = state
        for m in emitted.movements:
            movements[m["movement_id"]] = m
        if emitted.decision is not None:
            decisions[emitted.decision["decision_id"]] = emitted.decision
    return states, movements, decisions


@pytest.fixture(params=STORES)
def workers(local_stack: Settings, request: pytest.FixtureRequest) -> Iterator[list[WorkerProcess]]:
    """Three workers of one application (one consumer group), each with its own web port and
    data folder, on the given table store; the group starts at the input topic's end."""
    app_id = f"storm-{uuid.uuid4().hex[:8]}"
    rewind_group(
        local_stack, app_id, STOCK_EVENTS.name, end_offsets(local_stack, STOCK_EVENTS.name)
    )
    logs = local_stack.state_dir / "logs"
    group = [
        WorkerProcess(app_id, free_port(), logs, STOCKFLOW_STORE=str(request.param))
        for _ in range(WORKERS)
    ]
    yield group
    for worker in group:
        worker.stop()


@pytest.mark.timeout(RUN_LIMIT_S)
def test_a_kill_storm_on_three_workers_loses_nothing_and_applies_nothing_twice(
    local_stack: Settings, workers: list[WorkerProcess]
) -> None:
    """Given three workers of one group and a stream of mixed events for 100 SKUs offered at
    a steady rate,
    when a random worker is killed with SIGKILL at random moments while the events flow, and
    restarted at once each time,
    then the group catches up, every SKU equals the state the pure rules compute from the
    input, every movement and decision the rules emit is on the output topics (none lost),
    each with the content the rules give it (none applied twice), and none other."""
    settings = local_stack
    codec = single_object_codec()
    prefix = f"storm-{uuid.uuid4().hex[:6]}"
    events = _events(prefix)
    expected, want_movements, want_decisions = _fold(events)
    out_start = {
        spec.name: end_offsets(settings, spec.name) for spec in (STOCK_MOVEMENTS, STOCK_DECISIONS)
    }
    app_id = workers[0].app_id

    for worker in workers:
        children.WorkerProcess.start(worker)
    for worker in workers:
        worker.wait_ready(180)
    partitions = len(end_offsets(settings, STOCK_EVENTS.name))
    sampler = OwnershipSampler(settings, app_id, STOCK_EVENTS.name)
    sampler.start()

    sku_partition: dict[str, int] = {}
    produced = threading.Event()
    failures: list[str] = []

    def produce_all() -> None:
        p = Producer(producer_config(settings))

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
            else:
                sku_partition[msg.key().decode()] = msg.partition()

        step = max(1, RATE // 10)
        began = time.monotonic()
        for i in range(0, len(events), step):
            for event in events[i : i + step]:
                value = codec.encode(STOCK_EVENTS.value_schema, event)
                produce(p, STOCK_EVENTS.name, event["sku"].encode(), value, on_delivery=delivered)
            p.poll(0)
            time.sleep(max(0.0, began + (i + step) / RATE - time.monotonic()))
        if p.flush(120) != 0:
            failures.append("events not acknowledged by Kafka")
        produced.set()

    producer = threading.Thread(target=produce_all, name="storm-producer")
    rng = random.Random(SEED)
    duration = len(events) / RATE
    kill_at = sorted(rng.uniform(min(2.0, duration), duration) for _ in range(KILLS))
    kills: list[float] = []  # monotonic
    kill_walls: list[float] = []  # wall clock, ms
    victims: list[int] = []
    began = time.monotonic()
    producer.start()
    for at in kill_at:
        time.sleep(max(0.0, began + at - time.monotonic()))
        victim = rng.randrange(WORKERS)
        kills.append(time.monotonic())
        kill_walls.append(time.time() * 1000)
        workers[victim].kill()
        victims.append(victim)
        children.WorkerProcess.start(workers[victim])  # restarted at once; not waited for
    producer.join()
    assert not failures, failures[:3]
    storm_s = time.monotonic() - began

    caught_up(settings, workers, app_id, limit_s=RUN_LIMIT_S)
    settle_s = time.monotonic() - began - storm_s
    sampler.stop()

    mismatches = stock_mismatches(workers, expected)
    checks = movement_or_decision_checks(
        read_from(
            settings,
            codec,
            STOCK_MOVEMENTS,
            out_start[STOCK_MOVEMENTS.name],
            lambda r: r["sku"].startswith(f"{prefix}-"),
        ),
        read_from(
            settings,
            codec,
            STOCK_DECISIONS,
            out_start[STOCK_DECISIONS.name],
            lambda r: r["sku"].startswith(f"{prefix}-"),
        ),
        want_movements,
        want_decisions,
    )

    # ownerless, as the coordinator saw it: no live member held the partition
    episodes = ownerless_episodes(sampler.samples, partitions, kills)
    spans = [s for per in episodes.values() for s in per]
    # stood still, as the outputs show it: per partition, the gap between the last record
    # applied before each kill and the first one applied after it (applied_at, worker clock)
    applied: dict[int, list[int]] = defaultdict(list)
    for record in checks.first_seen:
        applied[sku_partition[record["sku"]]].append(record.get("applied_at") or record["at"])
    gaps = []
    for at in kill_walls:
        for times in applied.values():
            times.sort()
            before = [t for t in times if t <= at]
            after = [t for t in times if t > at]
            if before and after:
                gaps.append((after[0] - before[-1]) / 1000)
    print(
        f"\n[storm] {workers[0].env['STOCKFLOW_STORE']} "
        f"{WORKERS} workers, {partitions} partitions: {len(events):,} events at {RATE}/s, "
        f"{len(kills)} kills (workers {victims}), storm {storm_s:.1f} s, caught up "
        f"{settle_s:.1f} s after; lost {checks.lost}, applied twice {checks.doubled}, "
        f"wrong {checks.wrong}, unexpected {checks.unexpected}, output records "
        f"{checks.records:,} for {checks.unique:,} ids ({checks.repeats:,} repeated as sent "
        f"again by a replay); SKUs off {len(mismatches)}\n"
        f"[storm] ownerless (coordinator, {len(sampler.samples)} samples every 0.1 s, "
        f"{sampler.errors} failed): {len(spans)} episodes, max "
        f"{max(spans, default=0):.1f} s, mean {statistics.fmean(spans) if spans else 0:.1f} s, "
        f"per partition total max {max((sum(v) for v in episodes.values()), default=0):.1f} s\n"
        f"[storm] stood still across a kill (outputs): {len(gaps)} partition-kills, max "
        f"{max(gaps, default=0):.1f} s, mean {statistics.fmean(gaps) if gaps else 0:.1f} s"
    )
    assert mismatches == [], (mismatches[:5], checks.examples)
    assert checks.lost == 0, checks.examples
    assert checks.doubled == 0, checks.examples
    assert checks.wrong == 0, checks.examples
    assert checks.unexpected == 0, checks.examples
    assert len(kills) == KILLS
