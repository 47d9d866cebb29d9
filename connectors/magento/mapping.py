"""Magento SKUs, sources and stockflow locations, from configuration.

Configuration shape::

    {"channel": "magento", "store": "shop.example", "push_source": "default",
     "sources": {"default": "main", "north": "north"},
     "skus": ["chair", "table"], "refunds_restock": false,
     "bulk": {"enabled": true, "poll_s": 1.0, "wait_s": 30.0}}

Magento addresses products by SKU, so a stockflow SKU is the Magento SKU. ``push_source`` is
the source whose source item receives the channel's figure (Magento subtracts its own
reservations from it); ``sources`` maps each MSI ``source_code`` to a stockflow location
(shipments deduct from a source: the ``order_shipped`` event names its location).

``refunds_restock: true`` counts every refunded unit of a shipped line as back in stock; by
default only the order items a credit memo lists in ``return_to_stock_items`` come back.
``bulk.enabled`` writes through the asynchronous bulk API, whose operation status is polled
every ``poll_s`` for at most ``wait_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BulkOptions:
    enabled: bool = False
    poll_s: float = 1.0
    wait_s: float = 30.0


@dataclass(frozen=True)
class MagentoMapping:
    store: str
    push_source: str = "default"
    sources: Mapping[str, str] = field(default_factory=dict)
    skus: tuple[str, ...] = ()
    refunds_restock: bool = False
    bulk: BulkOptions = BulkOptions()
    channel: str = "magento"

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> MagentoMapping:
        bulk = data.get("bulk") or {}
        if not isinstance(bulk, Mapping):
            raise TypeError("bulk must be a mapping {enabled, poll_s, wait_s}")
        unknown = set(bulk) - {"enabled", "poll_s", "wait_s"}
        if unknown:
            raise ValueError(f"unknown bulk keys {sorted(unknown)}; use enabled, poll_s, wait_s")
        options = BulkOptions(
            enabled=bool(bulk.get("enabled", False)),
            poll_s=float(bulk.get("poll_s", 1.0)),
            wait_s=float(bulk.get("wait_s", 30.0)),
        )
        if options.poll_s <= 0 or options.wait_s <= 0:
            raise ValueError("bulk.poll_s and bulk.wait_s must be positive")
        return cls(
            store=str(data["store"]),
            push_source=str(data.get("push_source", "default")),
            sources={str(k): str(v) for k, v in (data.get("sources") or {}).items()},
            skus=tuple(str(s) for s in data.get("skus", [])),
            refunds_restock=bool(data.get("refunds_restock", False)),
            bulk=options,
            channel=str(data.get("channel", "magento")),
        )

    def knows(self, sku: object) -> bool:
        return isinstance(sku, str) and sku in self.skus

    def location(self, source_code: object) -> str | None:
        """The stockflow location of an MSI source (the code itself when not mapped)."""
        if source_code in (None, ""):
            return None
        return self.sources.get(str(source_code), str(source_code))
