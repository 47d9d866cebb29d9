"""A bundle line becomes its component lines; a bundle StockEvent its component events.

- :func:`expand_order`: an Order ``placed`` (``orders.v1``) whose lines name bundles, as the
  order book should take it: each bundle line replaced by one line per component
  (``{line}~{component}``, units times quantity per bundle), carrying the bundle SKU, the
  bundle's line id, the units per bundle and the definition's version, so that the book
  reserves every component of the order all-or-nothing and keeps the bundle as the
  reference of its movements; later events (``shipped``, ``returned``) may still name the
  bundle's line, which the book maps to its components.
- :func:`expand_event`: a StockEvent of a bundle SKU (the connectors' ``orders: lines``
  intake, a till's sale) as the ledger should take it: one event per component, id
  ``{event id}|{component}``, ``source_ref`` ``bundle:{SKU}``. Facts a bundle cannot have
  (a receipt, a count, an adjustment of a SKU that is never stocked) raise
  :class:`BundleEventError`, for a dead letter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from schemas.events import MAX_TEXT
from streams.bundles.catalogue import Catalogue

__all__ = [
    "BUNDLE_NOT_STOCKED",
    "EXPANDED",
    "BundleEventError",
    "bundle_ref",
    "component_event_id",
    "expand_event",
    "expand_order",
]

# StockEvent types that act on a bundle's components; the others are refused for a bundle
EXPANDED = frozenset(
    {"order_placed", "order_cancelled", "order_shipped", "return_received", "sale", "hold"}
) | {"hold_released"}
LINE_SEP = "~"
BUNDLE_NOT_STOCKED = "a bundle is never stocked; count, receive or adjust its components instead"


class BundleEventError(ValueError):
    """A StockEvent a bundle SKU cannot have; ``reason`` is the dead-letter reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def bundle_ref(sku: str) -> str:
    """The ``source_ref`` of a component's event: the bundle it was sold in."""
    return f"bundle:{sku}"[:MAX_TEXT]


def component_event_id(base: str, suffix: str) -> str:
    found = f"{base}|{suffix}"
    if len(found) <= MAX_TEXT:
        return found
    digest = hashlib.sha256(base.encode()).hexdigest()[:32]
    return f"{digest}|{suffix}"[:MAX_TEXT]


def expand_order(record: Mapping[str, Any], catalogue: Catalogue) -> Mapping[str, Any]:
    """``record`` with its bundle lines replaced by component lines (the record itself when
    it is not a ``placed`` or names no bundle)."""
    if not catalogue or record.get("type") != "placed":
        return record
    lines = record.get("lines") or []
    if not any(catalogue.get(str(line.get("sku"))) for line in lines):
        return record
    channel = record.get("channel")
    out: list[dict[str, Any]] = []
    for line in lines:
        bundle = catalogue.get(str(line.get("sku")))
        if bundle is None:
            out.append(dict(line))
            continue
        qty = line.get("qty")
        first = True
        for sku, per in sorted(bundle.for_channel(channel).items()):
            out.append(
                {
                    "line_id": f"{line.get('line_id')}{LINE_SEP}{sku}",
                    "sku": sku,
                    # a bad quantity stays bad: the book refuses the order with its reason
                    "qty": qty * per if isinstance(qty, int) and not isinstance(qty, bool) else qty,
                    # the bundle's price on its first component line, counted per bundle
                    "unit_price": line.get("unit_price") if first else None,
                    "currency": line.get("currency"),
                    "bundle": bundle.sku,
                    "bundle_line": line.get("line_id"),
                    "per_bundle": per,
                    "bundle_version": bundle.version,
                }
            )
            first = False
    return {**record, "lines": out}


def expand_event(event: Mapping[str, Any], catalogue: Catalogue) -> list[dict[str, Any]]:
    """The events the ledger should apply for ``event``: itself when its SKU is no bundle,
    else one per component of the bundle as sold on the event's channel."""
    bundle = catalogue.get(str(event.get("sku"))) if catalogue else None
    if bundle is None:
        return [dict(event)]
    kind = event.get("type")
    if kind not in EXPANDED:
        raise BundleEventError(
            "bundle_not_stocked",
            f"{kind} for {bundle.sku!r}: {BUNDLE_NOT_STOCKED}",
        )
    qty = int(event.get("qty") or 0)
    out = []
    for sku, per in sorted(bundle.for_channel(event.get("channel")).items()):
        out.append(
            {
                **event,
                "event_id": component_event_id(str(event["event_id"]), sku),
                "sku": sku,
                "qty": qty * per,
                "source_ref": bundle_ref(bundle.sku),
            }
        )
    return out
