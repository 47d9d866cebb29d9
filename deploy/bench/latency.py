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
from streams.worker.order_views import VIEW_READY

SUSTAINED_P99_MS = 1_000  # above it (or offered < 95 % of the rate) a load is "not sustained"
TARGET_P99_MS = 25  # at 2,000 events/s offered
LEVELS_VIEW_READY = f"levels {VIEW_READY}"  # logged once the worker read stock.levels.v1 whole


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class LevelLatencies:
    """Collects latencies of the levels of one SKU prefix, in a thread."""

    def __init__(self, settings: Settings, codec: Codec, prefix: str) -> None:
        self.codec = codec
        self.prefix = prefix
        self.samples: list[tuple[int, float, float]] = []  # (occurred_at, emitted, seen)
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
            at = level["occurred_at"]
            self.samples.append((at, timestamp - at, time.time() * 1000 - at))

    def take(
        self, since_ms: int, quiet: float = 1.5, limit: float = 60
    ) -> tuple[list[float], list[float]]:
        """Latencies of the levels of events sent since ``since_ms``, once some have come and
        none for ``quiet`` seconds (at most ``limit``): a worker that lags shows its lag here
        (one that paused longer than ``quiet`` before its first level of the load too), and
        its late levels never count in the next load."""
        began = time.monotonic()
        count, changed = -1, time.monotonic()
        found, scanned = 0, 0  # samples of this load among the first ``scanned``
        while time.monotonic() - began < limit:
            now = time.monotonic()
            arrived = len(self.samples)  # appended by the consumer's thread: scan only the new
            found += sum(1 for s in self.samples[scanned:arrived] if s[0] >= since_ms)
            scanned = arrived
            if found != count:
                count, changed = found, now
            elif found and now - changed >= quiet:
                break
            time.sleep(0.1)
        taken, self.samples = self.samples, []
        mine = [s for s in taken if s[0] >= since_ms]
        return [s[1] for s in mine], [s[2] for s in mine]

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
    # the steady state: a worker's order book first reads the whole levels topic (millions
    # of records after the million-SKU part), and that start-up competes with the ledger
    caught_up = worker.wait_until(lambda: LEVELS_VIEW_READY in worker.logged(), 600)
    progress(f"latency: the worker's levels view read the topic in {caught_up:.0f} s")
    levels = LevelLatencies(settings, codec, workload.prefix)
    p = Producer(producer_config(settings, **{"linger.ms": 1}))
    rows = []
    try:
        offer(p, codec, workload, 500, 1.0)  # warm-up: opening counts, connections
        levels.take(0)
        for rate in config.latency_loads:
            progress(f"latency: offering {rate:,} events/s for {config.latency_seconds:.0f} s")
            since = time.time_ns() // 1_000_000
            achieved = offer(p, codec, workload, rate, config.latency_seconds)
            emitted, seen = levels.take(since)
            rows.append(_row(rate, achieved, emitted, seen))
            progress(f"latency at {rate:,}/s: {rows[-1].note}")
    finally:
        levels.close()
    return rows


def _row(rate: int, achieved: float, emitted: list[float], seen: list[float]) -> Row:
    name = f"latency produce→level p99 @ {rate:,}/s"
    target = f"≤ {TARGET_P99_MS}" if rate == 2_000 else ""
    if not emitted:
        return Row(
            name,
            None,
            "ms",
            target,
            "NOT SUSTAINED: no level emitted, the worker is not keeping up",
            {"sustained": False, "verdict": "no" if target else ""},
        )
    p50, p95, p99 = (percentile(emitted, q) for q in (50, 95, 99))
    sustained = achieved >= 0.95 * rate and p99 < SUSTAINED_P99_MS
    seen_p99 = percentile(seen, 99)
    note = f"p50 {p50:.0f}, p95 {p95:.0f}, p99 {p99:.0f} ms; seen by a consumer p99 {seen_p99:.0f}"
    if not sustained:
        note = f"NOT SUSTAINED (offered {achieved:,.0f}/s); " + note
    verdict = ("yes" if sustained and p99 <= TARGET_P99_MS else "no") if target else ""
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
