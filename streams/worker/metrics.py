"""Prometheus metrics of the ledger worker (served on the worker's web port at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.kernel.metrics import dead_letter_counter

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS = Counter(
    "stockflow_ledger_events_total",
    "Stock events handled by the ledger, by event type and outcome "
    "(applied, duplicate, invalid, failed).",
    ["type", "outcome"],
    registry=REGISTRY,
)
DECISIONS = Counter(
    "stockflow_ledger_decisions_total",
    "Order line and hold decisions, by outcome (accepted, rejected, backordered).",
    ["outcome"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "stockflow_ledger_alerts_total",
    "Alerts raised by the ledger, by kind.",
    ["kind"],
    registry=REGISTRY,
)
DEAD_LETTERS = dead_letter_counter(REGISTRY)
LEVELS = Counter(
    "stockflow_ledger_levels_emitted_total",
    "Stock level records emitted (one per SKU change of a channel quantity).",
    registry=REGISTRY,
)
MOVEMENTS = Counter(
    "stockflow_ledger_movements_emitted_total",
    "Movement records emitted.",
    registry=REGISTRY,
)
HOLDS_EXPIRED = Counter(
    "stockflow_ledger_holds_expired_total",
    "Checkout holds released by the ledger's timer because they expired.",
    registry=REGISTRY,
)
LATENCY = Histogram(
    "stockflow_ledger_processing_latency_seconds",
    "From the event occurring at its source to its level being emitted by the ledger.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
BATCH = Histogram(
    "stockflow_ledger_batch_events",
    "Events per batch handled by the ledger agent.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
    registry=REGISTRY,
)
SKUS = Gauge(
    "stockflow_ledger_skus",
    "Keys held in this worker's table partitions: one per SKU, plus the sealed state "
    "pages of SKUs with long id windows or journals.",
    registry=REGISTRY,
)
API_REJECTED = Counter(
    "stockflow_api_items_rejected_total",
    "Items the HTTP intake refused with a 4xx and never published, by route.",
    ["route"],
    registry=REGISTRY,
)
PAUSES = Counter(
    "stockflow_ledger_pauses_total",
    "Batches the ledger paused and retried because a server was unavailable, by cause.",
    ["cause"],
    registry=REGISTRY,
)
ORDER_TRANSITIONS = Counter(
    "stockflow_order_transitions_total",
    "OrderState records the order book published (one per transition of an order).",
    registry=REGISTRY,
)
