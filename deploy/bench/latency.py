"""Latency from produce to level emitted, at fixed offered loads, through a real worker.

Each event carries its producer send time (ms) in ``occurred_at``; the ledger copies it into
the level it causes. A consumer of the levels topic takes, per level, the record's Kafka
timestamp (when the worker produced it) minus ``occurred_at`` ("emitted"), and its own
receive time minus ``occurred_at`` ("seen", which adds the consumer's fetch).
"""

from __future__ import annotations

import statistics
import threading
import time

from confluent_kafka import Producer

from deploy.bench.config import BenchConfig
from deploy.bench.kafka import consume_range, end_offsets, send, set_group_offsets
from deploy.bench.table import Row
from deploy.bench.workload import Workload, progress
from deploy.local.children import WorkerProcess
from schemas.codec import Codec
from streams.kernel.kafka_config import producer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_EVENTS, STOCK_LEVELS

SUSTAINED_P99_MS = 1_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class LevelLatencies:
    """Collects latencies of the levels of one SKU prefix, in a thread."""

    def __init__(self, settings: Settings, codec: Codec, prefix: str) -> None:
        self.codec = codec
        self.prefix = prefix
        self.emitted: list[float] = []
        self.seen: list[float] = []
        self.stop = threading.Event()
        start = end_offsets(settings, STOCK_LEVELS.name)
        self.thread = threading.Thread(
            target=consume_range,
            args=(settings, STOCK_LEVELS.name, start, self._take),
            kwargs={"until": self.stop.is_set, "timeout": 3600},
            daemon=True,
        )
        self.thread.start()

    def _take(self, value: bytes | None, timestamp: int) -> None:
        if not value:
            return
        _, level = self.codec.decode(value)
        if level["sku"].startswith(self.prefix):
            self.emitted.append(timestamp - level["occurred_at"])
            self.seen.append(time.time() * 1000 - level["occurred_at"])

    def take(self) -> tuple[list[float], list[float]]:
        emitted, seen = self.emitted, self.seen
        self.emitted, self.seen = [], []
        return emitted, seen

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)


def offer(p: Producer, codec: Codec, workload: Workload, rate: int, seconds: float) -> float:
    """Send ``rate`` events/s for ``seconds``; returns the rate achieved."""
    schema = STOCK_EVENTS.value_schema
    total = int(rate * seconds)
    began = time.monotonic()
    for i in range(total):
        due = began + i / rate
        wait = due - time.monotonic()
        if wait > 0.001:
            time.sleep(wait)
            p.poll(0)
        event = workload.next_event(time.time_ns() // 1_000_000)
        send(p, STOCK_EVENTS.name, event["sku"].encode(), codec.encode(schema, event))
    p.flush(30)
    return total / (time.monotonic() - began)


def run_latency(
    settings: Settings, codec: Codec, config: BenchConfig, worker: WorkerProcess
) -> list[Row]:
    workload = Workload(f"l{worker.app_id[-8:]}", skus=1_000)
    set_group_offsets(
        settings, worker.app_id, STOCK_EVENTS.name, end_offsets(settings, STOCK_EVENTS.name)
    )
    worker.start()
    worker.wait_ready(120)
    levels = LevelLatencies(settings, codec, workload.prefix)
    p = Producer(producer_config(settings, **{"linger.ms": 1}))
    rows = []
    try:
        offer(p, codec, workload, 500, 1.0)  # warm-up: opening counts, connections
        time.sleep(1.0)
        levels.take()
        for rate in config.latency_loads:
            progress(f"latency: offering {rate:,} events/s for {config.latency_seconds:.0f} s")
            achieved = offer(p, codec, workload, rate, config.latency_seconds)
            time.sleep(1.5)  # the last levels of this load
            emitted, seen = levels.take()
            rows.append(_row(rate, achieved, emitted, seen))
            progress(f"latency at {rate:,}/s: {rows[-1].note}")
    finally:
        levels.close()
    return rows


def _row(rate: int, achieved: float, emitted: list[float], seen: list[float]) -> Row:
    name = f"latency produce→level p99 @ {rate:,}/s"
    target = "< 50" if rate == 2_000 else ""
    if not emitted:
        return Row(name, None, "ms", target, "no level emitted: worker not keeping up", {})
    p50, p95, p99 = (percentile(emitted, q) for q in (50, 95, 99))
    sustained = achieved >= 0.95 * rate and p99 < SUSTAINED_P99_MS
    seen_p99 = percentile(seen, 99)
    note = f"p50 {p50:.0f}, p95 {p95:.0f}, p99 {p99:.0f} ms; seen by a consumer p99 {seen_p99:.0f}"
    if not sustained:
        note = f"NOT SUSTAINED (offered {achieved:,.0f}/s); " + note
    verdict = ("yes" if p99 < 50 else "no") if target else ""
    return Row(
        name,
        p99,
        "ms",
        target,
        note,
        {
            "offered": rate,
            "achieved": achieved,
            "levels": len(emitted),
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "seen_p99": seen_p99,
            "mean": statistics.fmean(emitted),
            "sustained": sustained,
            "verdict": verdict,
        },
    )
