"""Prometheus metrics of the ClickHouse sink, on a registry of their own (one per sink).

Names start with ``stockflow_sink_``, except the dead-letter counter every component shares
(``stockflow_dead_letters_total{component="sink", reason}``, from ``streams.kernel.metrics``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.kernel.metrics import dead_letter_counter


class SinkMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter(
            "stockflow_sink_records_consumed_total",
            "Records read from Kafka, by topic.",
            ["topic"],
            registry=r,
        )
        self.rows = Counter(
            "stockflow_sink_rows_inserted_total",
            "Rows ClickHouse acknowledged, by table (replays included: tables dedupe by id).",
            ["table"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "stockflow_sink_batch_duration_seconds",
            "Time to insert one batch into ClickHouse and commit its offsets.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.batch_rows = Histogram(
            "stockflow_sink_batch_rows",
            "Rows per batch inserted.",
            buckets=(1, 10, 100, 1000, 2500, 5000, 10_000, 25_000, 50_000),
            registry=r,
        )
        self.failures = Counter(
            "stockflow_sink_insert_failures_total",
            "Failed inserts, by kind: unavailable (retried) or refused (rows dead-lettered).",
            ["kind"],
            registry=r,
        )
        self.retries = Counter(
            "stockflow_sink_insert_retries_total",
            "Batches scheduled again after ClickHouse was unavailable.",
            registry=r,
        )
        self.buffered = Gauge(
            "stockflow_sink_buffered_rows",
            "Rows consumed but not yet acknowledged by ClickHouse.",
            registry=r,
        )
        self.paused = Gauge(
            "stockflow_sink_consumer_paused",
            "1 while the consumer is paused because the buffer is full.",
            registry=r,
        )
        self.outage = Gauge(
            "stockflow_sink_paused",
            "1 while the sink waits for a server that cannot take or serve data now, by cause"
            " (clickhouse_read_only, clickhouse_disk_full, clickhouse_auth, clickhouse_restarting,"
            " clickhouse_overloaded, clickhouse_unreachable, clickhouse_server_error,"
            " registry_unavailable): it retries with backoff and dead-letters nothing meanwhile.",
            ["cause"],
            registry=r,
        )
        self.outages = Counter(
            "stockflow_sink_outages_total",
            "Outages the sink waited through (one per outage, not per retry), by cause.",
            ["cause"],
            registry=r,
        )
        self.lag = Gauge(
            "stockflow_sink_consumer_lag_messages",
            "Messages of each topic not yet committed by the sink (high watermark - committed).",
            ["topic"],
            registry=r,
        )
        self.dead_letters = dead_letter_counter(r)
        self.commits = Counter(
            "stockflow_sink_commits_total",
            "Offset commits after a ClickHouse acknowledgement, by result (ok, failed).",
            ["result"],
            registry=r,
        )
