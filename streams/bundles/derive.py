"""A bundle's sellable quantity, derived from its components' levels.

On each channel: the minimum over the channel's components of ⌊component's quantity on
that channel ÷ units per bundle⌋ (a component's channel missing from its level: its
``default_quantity``; a component with no level yet: 0). The result is a ``StockLevel``
record for the bundle SKU, published on ``stock.levels.v1`` like any SKU's, so the
connectors push it without knowing it is a bundle.

The record is a function of the component levels alone: its ``version`` is the sum of the
components' versions (each only increases, so the sum does too whenever one changes) plus
the definition's version shifted above them, its
``occurred_at`` and ``at`` are the newest of theirs. Two workers reading the same component
versions write the same record; one reading older versions writes an older version, which
the connectors' outbound engine drops after a newer one. ``changed_channels`` and
``locations`` are left empty: every served channel is pushed with each record (a bundle is
never routed as such, its lines are expanded into components first).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streams.bundles.catalogue import Bundle

__all__ = ["VERSION_SHIFT", "bundle_level", "figures", "sellable"]

# the definition's version in the high bits: a new definition (a component removed lowers
# the sum) still gives a newer version than every record of the previous one
VERSION_SHIFT = 40


def _qty(level: Mapping[str, Any] | None, channel: str | None) -> int:
    if level is None:
        return 0
    if channel is not None:
        found = (level.get("channels") or {}).get(channel)
        if found is not None:
            return max(0, int(found))
    return max(0, int(level.get("default_quantity") or 0))


def sellable(
    components: Mapping[str, int], levels: Mapping[str, Mapping[str, Any]], channel: str | None
) -> int:
    """Bundles ``components`` make on ``channel`` (None: the default quantity)."""
    return min(
        (_qty(levels.get(sku), channel) // per for sku, per in components.items()), default=0
    )


def figures(bundle: Bundle, levels: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, int], int]:
    """(quantity per channel, default quantity) of ``bundle``: every channel a component's
    level names, and every channel with its own composition."""
    channels: set[str] = set(bundle.channels)
    for sku in bundle.every_component():
        channels |= set((levels.get(sku) or {}).get("channels") or {})
    per_channel = {ch: sellable(bundle.for_channel(ch), levels, ch) for ch in sorted(channels)}
    return per_channel, sellable(bundle.components, levels, None)


def bundle_level(bundle: Bundle, levels: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """The bundle's StockLevel record from its components' latest levels (None until one of
    its components has a level)."""
    known = [levels[sku] for sku in sorted(bundle.every_component()) if sku in levels]
    if not known:
        return None
    per_channel, default = figures(bundle, levels)
    newest = max(known, key=lambda lv: (int(lv["occurred_at"]), str(lv["sku"])))
    return {
        "sku": bundle.sku,
        "version": (bundle.version << VERSION_SHIFT) + sum(int(lv["version"]) for lv in known),
        "channels": per_channel,
        "changed_channels": [],
        "default_quantity": default,
        "locations": {},
        "cause_event_id": str(newest["cause_event_id"]),
        "occurred_at": int(newest["occurred_at"]),
        "at": max(int(lv["at"]) for lv in known),
    }
