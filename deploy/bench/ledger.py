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

from deploy.bench.config import BenchConfig, BenchError
from deploy.bench.kafka import (
    Offsets,
    committed_offsets,
    edge_timestamps,
    end_offsets,
    remaining,
    set_group_offsets,
)
from deploy.bench.table import Row
from deploy.bench.workload import Workload, produce_workload, progress
from deploy.local.children import WorkerProcess
from schemas.codec import Codec
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, STOCK_LEVELS, STOCK_MOVEMENTS


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


def run_ledger(settings: Settings, data: Input, config: BenchConfig, worker: WorkerProcess) -> Row:
    """Start ``worker`` on ``data`` and measure until it has consumed all of it."""
    topic = STOCK_EVENTS.name
    set_group_offsets(settings, worker.app_id, topic, data.start)
    levels0 = end_offsets(settings, STOCK_LEVELS.name)
    moves0 = end_offsets(settings, STOCK_MOVEMENTS.name)
    worker.start()
    worker.wait_ready(120)
    ready_ms = time.time() * 1000
    began = time.monotonic()
    left = data.events
    next_report = began + 5
    while left:
        if time.monotonic() - began > config.worker_timeout:
            raise BenchError(
                f"worker consumed {data.events - left:,} of {data.events:,} events in "
                f"{config.worker_timeout:.0f} s; log {worker.log_path}"
            )
        if worker.proc is not None and worker.proc.poll() is not None:
            raise BenchError(f"worker died; log {worker.log_path}:\n{worker.tail()}")
        time.sleep(0.25)
        left = remaining(committed_offsets(settings, worker.app_id, topic, data.end), data.end)
        if time.monotonic() >= next_report:
            done = data.events - left
            rate = done / (time.monotonic() - began)
            progress(f"ledger: {done:,}/{data.events:,} committed ({rate:,.0f}/s so far)")
            next_report += 5
    committed_s = time.monotonic() - began
    levels1 = end_offsets(settings, STOCK_LEVELS.name)
    moves1 = end_offsets(settings, STOCK_MOVEMENTS.name)
    _, last_level = edge_timestamps(settings, STOCK_LEVELS.name, levels0, levels1)
    _, last_move = edge_timestamps(settings, STOCK_MOVEMENTS.name, moves0, moves1)
    seconds = max(last_level, last_move) / 1000 - ready_ms / 1000
    rate = data.events / seconds
    levels, moves = remaining(levels0, levels1), remaining(moves0, moves1)
    skus = data.workload.skus
    progress(f"ledger {skus:,} SKUs: {data.events:,} events in {seconds:.1f} s = {rate:,.0f}/s")
    return Row(
        f"ledger, {skus:,} SKUs (1 worker)",
        rate,
        "events/s",
        "≥ 20,000",
        f"{data.events:,} events → {levels:,} levels, {moves:,} movements in {seconds:.1f} s",
        {
            "events": data.events,
            "skus": skus,
            "seconds": seconds,
            "seconds_to_commit": committed_s,
            "levels": levels,
            "movements": moves,
            "event_bytes": data.mean_bytes,
            "verdict": "yes" if rate >= 20_000 else "no",
        },
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
    progress(f"recovered {skus:,} SKUs in {ready:.1f} s (first answer after {answered:.1f} s)")
    return [
        Row(
            f"worker RSS, {skus:,} SKUs in the table",
            rss,
            "MB",
            note=f"after recovery: {rss_after:,.0f} MB",
            extra={"rss_after_recovery_mb": rss_after},
        ),
        Row(
            f"recovery of {skus:,} SKUs (kill -9, restart)",
            answered,
            "s",
            "< 60",
            f"'Worker ready' after {ready:.1f} s; {records:,} changelog records",
            {
                "ready_seconds": ready,
                "changelog_records": records,
                "verdict": "yes" if answered < 60 else "no",
            },
        ),
    ]
