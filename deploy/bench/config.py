"""Sizes of one bench run: ``quick`` (a smoke run under a minute) or ``full``."""

from __future__ import annotations

from dataclasses import dataclass


class BenchError(RuntimeError):
    """The bench cannot run or a measurement failed; the message says why and what to do."""


@dataclass(frozen=True)
class BenchConfig:
    ledger_runs: tuple[tuple[int, int], ...]  # (SKUs, events) per ledger throughput run
    latency_loads: tuple[int, ...]  # offered events/s
    latency_seconds: float  # duration of each offered load
    sink_rows: int  # movements pre-produced for the sink
    worker_timeout: float  # seconds a worker may take to consume a run's input
    sale_orders: int  # orders placed on the fake Shopify, at ``sale_rate`` per second
    sale_skus: int  # SKUs the orders spread over (each listed on both fake shops)
    sale_rate: int = 100

    @property
    def memory_run(self) -> tuple[int, int]:
        """The ledger run whose table is measured (RSS) and recovered: the largest."""
        return max(self.ledger_runs)


QUICK = BenchConfig(
    ledger_runs=((1_000, 6_000), (5_000, 8_000)),
    latency_loads=(500, 2_000, 10_000),
    latency_seconds=2.0,
    sink_rows=20_000,
    worker_timeout=60,
    sale_orders=200,
    sale_skus=100,
)

FULL = BenchConfig(
    ledger_runs=((10_000, 300_000), (1_000_000, 1_050_000)),
    latency_loads=(500, 2_000, 10_000),
    latency_seconds=15.0,
    sink_rows=500_000,
    worker_timeout=600,
    sale_orders=3_000,
    sale_skus=500,
)
