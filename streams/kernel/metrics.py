"""The one dead-letter counter every component serves on its own Prometheus registry.

Name, help and labels live here; each process (ledger worker, sink, connectors) creates the
counter on the registry it serves at ``/metrics`` and hands it to ``dead_letter``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

DEAD_LETTERS_NAME = "stockflow_dead_letters_total"


def dead_letter_counter(registry: CollectorRegistry) -> Counter:
    """``stockflow_dead_letters_total{component, reason}`` on ``registry``."""
    return Counter(
        DEAD_LETTERS_NAME,
        "Records sent to the dead-letter topic, by component and reason.",
        ["component", "reason"],
        registry=registry,
    )
