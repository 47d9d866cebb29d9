"""`stockflow bench`: figures for the raw Kafka loop, the ledger, latency, the sink, recovery.

Every measurement runs against the configured local broker and ClickHouse, on the project's
own topics (consumer groups and ClickHouse databases are fresh per run, and each run uses its
own SKU prefix, so the figures never depend on what earlier runs or tests left behind).
"""

from deploy.bench.runner import run_bench

__all__ = ["run_bench"]
