"""Prometheus metrics of the carrier clients (prefix ``stockflow_carrier_``), label
``carrier``, on the default registry of the process that runs them (the shipping service)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "stockflow_carrier_requests_total",
    "HTTP requests sent to a carrier, by outcome "
    "(ok, refused = 4xx, throttled = 429, server_error = 5xx, unreachable = timeout/connection).",
    ["carrier", "outcome"],
)
LATENCY = Histogram(
    "stockflow_carrier_request_seconds",
    "Time from sending a request to a carrier to its whole answer (failed ones included).",
    ["carrier"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
QUOTES_SKIPPED = Counter(
    "stockflow_carrier_quotes_skipped_total",
    "Rate requests of a shopping round a carrier did not answer (failed or too slow).",
    ["carrier"],
)
LABEL_FALLBACKS = Counter(
    "stockflow_carrier_label_fallbacks_total",
    "Label purchases a carrier could not complete, so the next carrier's rate was tried, "
    "by reason (unavailable, refused).",
    ["carrier", "reason"],
)
