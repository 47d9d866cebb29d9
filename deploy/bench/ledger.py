"""Ledger throughput through a real worker subprocess, its memory and its recovery time.

Input is pre-produced; a fresh consumer group (the worker's app id) is pointed at the first
bench offset, then the worker starts. Throughput is events over the time from "Worker
ready" to the last output record's timestamp (levels and movements), once the group has
committed every input offset.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from deploy.bench.bare import DONE
from deploy.bench.config import BenchConfig, BenchError
from deploy.bench.kafka import (
    Offsets,
    committed_offsets,
    delete_app_topics,
    edge_timestamps,
    end_offsets,
    remaining,
    set_group_offsets,
)
from deploy.bench.table import Row
from deploy.bench.workload import Workload, produce_workload, progress
from deploy.local.children import WORKER_READY, ChildProcess, WorkerProcess
from schemas.codec import Codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, STOCK_LEVELS, STOCK_MOVEMENTS

RSS_TARGET_MB = 600
RECOVERY_TARGET_S = 20


@dataclass
class Input:
    """A pre-produced run of stock events: offsets before and after, SKU naming."""

    workload: Workload
    events: int
    start: Offsets
    end: Offsets
    mean_bytes: float


def prepare(settings: Settings, codec: Codec, skus: int, events: int) -> Input:
    workload = Workload(f"b{uuid.uuid4().hex[:8]}", skus)
    start = end_offsets(settings, STOCK_EVENTS.name)
    size = produce_workload(settings, codec, workload, events, f"ledger {skus:,} SKUs")
    end = end_offsets(settings, STOCK_EVENTS.name)
    found = remaining(start, end)
    if found != events:  # other producers share the topic: the worker reads theirs too
        progress(f"note: {found - events:,} records of other producers in the input range")
    return Input(workload, found, start, end, size / events)


def run_ledger(
    settings: Settings, data: Input, config: BenchConfig, *workers: WorkerProcess
) -> Row:
    """Start ``workers`` (one consumer group) on ``data``; measure until all of it is consumed.

    The clock starts when the first of them is ready (whichever it is: the other may still
    be starting while it works): with two workers, the group's join and any rebalance while
    they start count against them."""
    topic = STOCK_EVENTS.name
    group = workers[0].app_id
    set_group_offsets(settings, group, topic, data.start)
    levels0 = end_offsets(settings, STOCK_LEVELS.name)
    moves0 = end_offsets(settings, STOCK_MOVEMENTS.name)
    for worker in workers:
        worker.start()
    workers[0].wait_until(lambda: any(WORKER_READY in w.logged() for w in workers), 120)
    ready_ms = time.time() * 1000
    began = time.monotonic()
    for worker in workers:
        worker.wait_ready(120)
    _wait_consumed(settings, group, data, config, workers, began, "ledger")
    committed_s = time.monotonic() - began
    levels1 = end_offsets(settings, STOCK_LEVELS.name)
    moves1 = end_offsets(settings, STOCK_MOVEMENTS.name)
    first_level, last_level = edge_timestamps(settings, STOCK_LEVELS.name, levels0, levels1)
    first_move, last_move = edge_timestamps(settings, STOCK_MOVEMENTS.name, moves0, moves1)
    # a worker's first outputs can precede the ready line seen here (logs are polled)
    start_ms = min(ready_ms, first_level, first_move)
    seconds = (max(last_level, last_move) - start_ms) / 1000
    rate = data.events / seconds
    levels, moves = remaining(levels0, levels1), remaining(moves0, moves1)
    skus = data.workload.skus
    count = "1 worker" if len(workers) == 1 else f"{len(workers)} workers, one group"
    progress(
        f"ledger {skus:,} SKUs, {count}: {data.events:,} events in {seconds:.1f} s = {rate:,.0f}/s"
    )
    target = 20_000 if skus <= 10_000 else 15_000
    return Row(
        f"ledger, {skus:,} SKUs ({count})",
        rate,
        "events/s",
        f"≥ {target:,}" if len(workers) == 1 else "",
        f"{data.events:,} events → {levels:,} levels, {moves:,} movements in {seconds:.1f} s",
        {
            "events": data.events,
            "skus": skus,
            "workers": len(workers),
            "seconds": seconds,
            "seconds_to_commit": committed_s,
            "levels": levels,
            "movements": moves,
            "event_bytes": data.mean_bytes,
            "verdict": ("yes" if rate >= target else "no") if len(workers) == 1 else "",
        },
    )


def _wait_consumed(
    settings: Settings,
    group: str,
    data: Input,
    config: BenchConfig,
    procs: tuple[ChildProcess, ...],
    began: float,
    label: str,
) -> None:
    """Until ``group`` has committed every input offset of ``data``; BenchError on a death
    or a timeout."""
    left = data.events
    next_report = began + 5
    while left:
        if time.monotonic() - began > config.worker_timeout:
            raise BenchError(
                f"{label} consumed {data.events - left:,} of {data.events:,} events in "
                f"{config.worker_timeout:.0f} s; log {procs[0].log_path}"
            )
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"{proc.name} died; log {proc.log_path}:\n{proc.tail()}")
        time.sleep(0.25)
        left = remaining(committed_offsets(settings, group, STOCK_EVENTS.name, data.end), data.end)
        if time.monotonic() >= next_report:
            done = data.events - left
            rate = done / (time.monotonic() - began)
            progress(f"{label}: {done:,}/{data.events:,} committed ({rate:,.0f}/s so far)")
            next_report += 5


def run_bare(settings: Settings, data: Input, config: BenchConfig, log_dir: Path) -> Row:
    """The bare Faust agent (:mod:`deploy.bench.bare`) on ``data``, in its own process."""
    app_id = f"bench-bare-{uuid.uuid4().hex[:8]}"
    set_group_offsets(settings, app_id, STOCK_EVENTS.name, data.start)
    proc = ChildProcess(
        f"bare Faust agent {app_id}",
        [],
        log_dir / f"bench-{app_id}.log",
        {"STOCKFLOW_APP_ID": app_id, "STOCKFLOW_BENCH_EXPECT": str(data.events)},
        module="deploy.bench.bare",
    )
    proc.start()
    try:
        proc.wait_until(lambda: WORKER_READY in proc.logged(), 120)
        ready = time.time()
        began = time.monotonic()
        _wait_consumed(settings, app_id, data, config, (proc,), began, "bare Faust agent")
        done = proc.wait_until(lambda: DONE.search(proc.logged()) is not None, 30)
        found = DONE.search(proc.logged())
        assert found is not None, done
        seconds = float(found.group(2)) - ready
    finally:
        proc.stop()
        delete_app_topics(settings, app_id)
    rate = data.events / seconds
    progress(f"bare Faust agent: {data.events:,} events in {seconds:.1f} s = {rate:,.0f}/s")
    return Row(
        "bare Faust agent (iterate and acknowledge)",
        rate,
        "events/s",
        note=f"{data.events:,} events in {seconds:.1f} s, own process, same broker and topic",
        extra={"events": data.events, "seconds": seconds},
    )


def memory_and_recovery(settings: Settings, data: Input, worker: WorkerProcess) -> list[Row]:
    """RSS of ``worker`` (its table holds every SKU of ``data``), then kill -9 and recover."""
    skus = data.workload.skus
    rss = worker.rss_mb()
    progress(f"worker RSS with {skus:,} SKUs: {rss:,.0f} MB; kill -9 and restart")
    worker.kill()
    changelog = f"{worker.app_id}-sku-state-changelog"
    records = sum(end_offsets(settings, changelog).values())
    began = time.monotonic()
    worker.start()
    ready = worker.wait_ready(600)
    probe = f"/v1/stock/{data.workload.sku(skus - 1)}"
    while True:
        status, body = worker.get(probe)
        if status == 200 and body:
            break
        if time.monotonic() - began > 600:
            raise BenchError(f"no answer for {probe} within 600 s after restart (HTTP {status})")
        time.sleep(0.05)
    answered = time.monotonic() - began
    rss_after = worker.rss_mb()
    store = worker.env.get("STOCKFLOW_STORE", settings.store)
    progress(f"recovered {skus:,} SKUs in {ready:.1f} s (first answer after {answered:.1f} s)")
    return [
        Row(
            f"worker RSS, {skus:,} SKUs in the table",
            rss,
            "MB",
            f"≤ {RSS_TARGET_MB:,}",
            f"after recovery: {rss_after:,.0f} MB",
            {
                "rss_after_recovery_mb": rss_after,
                "verdict": "yes" if max(rss, rss_after) <= RSS_TARGET_MB else "no",
            },
        ),
        Row(
            f"recovery of {skus:,} SKUs (kill -9, restart)",
            answered,
            "s",
            f"≤ {RECOVERY_TARGET_S}",
            f"'Worker ready' after {ready:.1f} s; {records:,} changelog records; {store}",
            {
                "ready_seconds": ready,
                "changelog_records": records,
                "store": store,
                "verdict": "yes" if answered <= RECOVERY_TARGET_S else "no",
            },
        ),
    ]
