"""Where each line of an order ships from (a first, small version of the routing rules).

One location that can serve every line wins (fewest parcels; the one with the most units
of the order's SKUs first); else each line goes to the location with the most units of its
SKU. A pickup order is served by its store only. Plans already tried are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.orders.config import mapping

__all__ = ["Plan", "RoutingConfig", "parse_routing", "plan"]


@dataclass(frozen=True)
class RoutingConfig:
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    lines: dict[str, str]  # line_id -> location
    reason: str
    shipping_cost: int | None = None


def parse_routing(raw: Any, path: str = "orders.routing") -> RoutingConfig:
    if raw is None:
        return RoutingConfig()
    return RoutingConfig(dict(mapping(raw, path, set(raw) if isinstance(raw, dict) else set())))


def plan(
    order: Mapping[str, Any],
    available: Mapping[str, Mapping[str, int]],
    config: RoutingConfig,
    *,
    used_capacity: Mapping[str, int] | None = None,
    excluded: Collection[frozenset[tuple[str, str]]] = (),
    serves: Callable[[str], bool] | None = None,
) -> Plan | None:
    """The best plan not in ``excluded``, None when no location has the units."""
    lines = list(order["lines"])
    if not lines:
        return None
    if order.get("delivery") == "pickup":
        store = order.get("pickup_location")
        ok = store is not None and (serves is None or serves(store))
        return (
            _one(lines, str(store), available, excluded, "pickup at " + str(store)) if ok else None
        )
    names = sorted({loc for line in lines for loc in available.get(line["sku"], {})})
    if serves is not None:
        names = [n for n in names if serves(n)]
    whole = [
        n
        for n in names
        if all(available.get(line["sku"], {}).get(n, 0) >= line["qty"] for line in lines)
    ]
    whole.sort(key=lambda n: -sum(available[line["sku"]].get(n, 0) for line in lines))
    for name in whole:
        found = _one(lines, name, available, excluded, f"single location {name} has every line")
        if found is not None:
            return found
    chosen: dict[str, str] = {}
    for line in lines:
        units = available.get(line["sku"], {})
        best = max(
            (n for n in names if units.get(n, 0) >= line["qty"]),
            key=lambda n: units.get(n, 0),
            default=None,
        )
        if best is None:
            return None
        chosen[line["line_id"]] = best
    if frozenset(chosen.items()) in excluded:
        return None
    where = ", ".join(sorted(set(chosen.values())))
    return Plan(chosen, f"split: no location has every line; per line the most units ({where})")


def _one(
    lines: list[Mapping[str, Any]],
    name: str,
    available: Mapping[str, Mapping[str, int]],
    excluded: Collection[frozenset[tuple[str, str]]],
    reason: str,
) -> Plan | None:
    chosen = {line["line_id"]: name for line in lines}
    if frozenset(chosen.items()) in excluded:
        return None
    return Plan(chosen, reason)
