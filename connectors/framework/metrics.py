"""Prometheus metrics of the connectors (prefix ``stockflow_connector_``), label ``channel``,
on the default registry that ``connectors.server`` serves at ``/metrics``; plus the
dead-letter counter every component shares (``streams.kernel.metrics``)."""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

from streams.kernel.metrics import dead_letter_counter

DEAD_LETTERS = dead_letter_counter(REGISTRY)

WEBHOOKS = Counter(
    "stockflow_connector_webhooks_total",
    "Webhook deliveries received, by outcome "
    "(accepted, duplicate, stale, bad_signature, ping, invalid, publish_failed).",
    ["channel", "outcome"],
)
ORDERS_PUBLISHED = Counter(
    "stockflow_connector_orders_published_total",
    "Order records (orders.v1) handed to the publisher, by type.",
    ["channel", "type"],
)
CANCELS = Counter(
    "stockflow_connector_order_cancels_total",
    "Orders cancelled here that the connector cancelled on their channel, by outcome"
    " (cancelled, already = the channel had it cancelled, failed = dead-lettered).",
    ["channel", "outcome"],
)
EVENTS_PUBLISHED = Counter(
    "stockflow_connector_events_published_total",
    "Normalised stock events handed to the publisher, by type.",
    ["channel", "type"],
)
EVENTS_DEDUPLICATED = Counter(
    "stockflow_connector_events_deduplicated_total",
    "Events dropped because their event_id was already published (webhook + poll overlap).",
    ["channel"],
)
POLLED_ORDERS = Counter(
    "stockflow_connector_polled_orders_total",
    "Orders read by the polling backup.",
    ["channel"],
)
PUSHES = Counter(
    "stockflow_connector_pushes_total",
    "Quantity pushes by result (ok, retry, refused, dead_lettered, superseded).",
    ["channel", "result"],
)
RETRIES = Counter(
    "stockflow_connector_push_retries_total",
    "Pushes scheduled again after a throttle, 5xx, network error or lost compare-and-set.",
    ["channel"],
)
THROTTLES = Counter(
    "stockflow_connector_throttles_total",
    "Throttle signals received from a channel (429, Retry-After, THROTTLED in the body).",
    ["channel"],
)
CAS_CONFLICTS = Counter(
    "stockflow_connector_cas_conflicts_total",
    "Compare-and-set writes refused because the channel's quantity had changed.",
    ["channel"],
)
ECHOES = Counter(
    "stockflow_connector_echoes_total",
    "Channel stock notifications recognised as the echo of our own write.",
    ["channel"],
)
DRIFT = Counter(
    "stockflow_connector_drift_total",
    "Channel quantities differing from ours, by source (webhook, reconciliation, refused).",
    ["channel", "source"],
)
DIRTY = Gauge(
    "stockflow_connector_dirty_skus",
    "SKUs whose last push failed for good; pushed again as soon as the channel answers.",
    ["channel"],
)
ALERTS = Counter(
    "stockflow_connector_alerts_total",
    "Alerts the connectors wrote to stock.alerts.v1, by kind.",
    ["channel", "kind"],
)
SYNC_LAG = Histogram(
    "stockflow_connector_sync_lag_seconds",
    "Source event time to channel acknowledgement of the resulting quantity.",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
