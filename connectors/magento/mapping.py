"""Magento SKUs, sources and stockflow locations, from configuration.

Configuration shape::

    {"channel": "magento", "store": "shop.example", "push_source": "default",
     "write": "single", "sources": {"default": "main", "north": "north"},
     "skus": ["chair", "table"], "refunds_restock": false,
     "bulk": {"enabled": true, "poll_s": 1.0, "wait_s": 30.0}}

Magento addresses products by SKU, so a stockflow SKU is the Magento SKU. ``sources`` maps
each MSI ``source_code`` to a stockflow location (shipments deduct from a source: the
``order_shipped`` event names its location). ``write`` says which source items get the
channel's figure:

- ``single`` (the default): the ``push_source``'s source item gets the whole figure.
- ``per_source``: every source of ``sources`` gets its share of the figure, split by its
  location's available units (``connectors.magento.sources``); ``push_source`` must be one
  of them, and no two sources may share a location (their units would count twice).

Magento subtracts its own reservations from the sources, so they are added to the
``push_source``'s quantity in both modes (``connectors.magento.reservations``).

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


WRITES = ("single", "per_source")


@dataclass(frozen=True)
class MagentoMapping:
    store: str
    push_source: str = "default"
    sources: Mapping[str, str] = field(default_factory=dict)
    skus: tuple[str, ...] = ()
    refunds_restock: bool = False
    bulk: BulkOptions = BulkOptions()
    channel: str = "magento"
    write: str = "single"

    def __post_init__(self) -> None:
        if self.write not in WRITES:
            raise ValueError(f"write must be one of {', '.join(WRITES)}, not {self.write!r}")
        if self.write != "per_source":
            return
        if self.push_source not in self.sources:
            raise ValueError(
                f"write: per_source needs push_source {self.push_source!r} among sources "
                "(it also carries Magento's reservations); add it to sources or change "
                "push_source"
            )
        locations = list(self.sources.values())
        shared = sorted({loc for loc in locations if locations.count(loc) > 1})
        if shared:
            raise ValueError(
                f"write: per_source needs one source per location; {', '.join(shared)} "
                "mapped from several sources would be written twice"
            )

    @property
    def per_source(self) -> bool:
        return self.write == "per_source"

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
            write=str(data.get("write", "single")),
        )

    def knows(self, sku: object) -> bool:
        return isinstance(sku, str) and sku in self.skus

    def location(self, source_code: object) -> str | None:
        """The stockflow location of an MSI source (the code itself when not mapped)."""
        if source_code in (None, ""):
            return None
        return self.sources.get(str(source_code), str(source_code))
