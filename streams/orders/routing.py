"""Routing: where each line of an order ships from, and why. Pure: no Kafka, no Faust.

:func:`plan` decides from the order, the units available per SKU and location (the levels
the order agent keeps) and the routing configuration (:mod:`streams.orders.routing_config`):

1. **Pickup** orders: only at the pickup store, every line there, or no plan.
2. Locations that may take the order: holding stock of one of its SKUs, served by the
   channel (``serves``), below their daily capacity (``used_capacity``), and for a store,
   allowed to ship (``ship_from_store``).
3. **One location** that ships every line (fewest parcels) whenever one exists; among
   several, the configured ``rank`` decides (default: distance to the ship-to, then shipping
   cost from the rate table), then the name.
4. Otherwise a **split**: each line from one location, as few locations as possible. Greedy:
   starting from each usable location in turn, add the location that ships the most of the
   remaining lines; of these candidate splits the one with the fewest parcels, then the
   shortest total distance / lowest cost (``rank``), wins. Greedy is not always the
   minimum, but it is fast (a 5-line order over 20 locations: see the README).
5. Plans in ``excluded`` (already tried and refused by the ledger) are never returned: the
   next-best one is.

A plan never takes more units of a SKU from a location than ``available`` says there, summed
over the lines of that SKU. ``Plan.reason`` says in words which rule decided.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from streams.orders import geo
from streams.orders.errors import OrderConfigError
from streams.orders.routing_config import (
    DEFAULT_ROUTING,
    RoutingConfig,
    RoutingLocation,
    parse_routing,
)

__all__ = [
    "DEFAULT_ROUTING",
    "OrderConfigError",
    "Plan",
    "RoutingConfig",
    "RoutingLocation",
    "parse_routing",
    "plan",
    "plan_key",
]

_NO_USE: Mapping[str, int] = MappingProxyType({})
_WORDS = {"distance": "closest", "cost": "cheapest", "name": "first by name"}
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Plan:
    """Where each line ships from (line_id -> location), why, and the shipping cost."""

    lines: dict[str, str]
    reason: str
    shipping_cost: int | None = None  # minor units of the routing currency; None: no rate

    @property
    def key(self) -> frozenset[tuple[str, str]]:
        """The plan as ``excluded`` names it."""
        return plan_key(self.lines)


def plan_key(lines: Mapping[str, str]) -> frozenset[tuple[str, str]]:
    return frozenset(lines.items())


@dataclass(slots=True)
class _Line:
    line_id: str
    sku: str
    qty: int


@dataclass(slots=True)
class _Site:
    name: str
    km: float | None


def plan(
    order: Mapping[str, Any],
    available: Mapping[str, Mapping[str, int]],
    config: RoutingConfig,
    *,
    used_capacity: Mapping[str, int] = _NO_USE,
    excluded: Collection[frozenset[tuple[str, str]]] = (),
    serves: Callable[[str], bool] | None = None,
) -> Plan | None:
    """The best plan for ``order`` that is not in ``excluded``, or None when there is none."""
    lines = [_Line(str(x["line_id"]), str(x["sku"]), int(x["qty"])) for x in order["lines"]]
    if not lines:
        return None
    need: dict[str, int] = {}
    for line in lines:
        need[line.sku] = need.get(line.sku, 0) + line.qty
    available = {sku: available.get(sku) or {} for sku in need}
    refused = set(excluded)
    after = _after(len(refused))
    if (order.get("delivery") or "ship") == "pickup":
        return _pickup(order, lines, need, available, config, used_capacity, refused, serves, after)

    ship_to = order.get("ship_to") or {}
    dest = geo.destination(ship_to)
    zone = config.zone(ship_to.get("country"), ship_to.get("postal_code"))
    sites: list[_Site] = []
    skipped: list[str] = []
    for name in sorted({loc for sku in need for loc, n in available.get(sku, {}).items() if n > 0}):
        why = _unusable(config.location(name), used_capacity, serves)
        if why is not None:
            skipped.append(f"{name} {why}")
            continue
        point = config.location(name).point
        km = None if dest is None or point is None else geo.distance_km(point, dest)
        sites.append(_Site(name, km))
    note = (
        f"; skipped {', '.join(skipped[:3])}{' ...' if len(skipped) > 3 else ''}" if skipped else ""
    )

    def cost_of(assign: Mapping[str, str]) -> int | None:
        weight: dict[str, int] = {}
        for line in lines:
            loc = assign[line.line_id]
            weight[loc] = weight.get(loc, 0) + config.weight_g(line.sku, line.qty)
        total = 0
        for loc, grams in weight.items():
            cost = config.parcel_cost(loc, zone, grams)
            if cost is None:
                return None
            total += cost
        return total

    whole = [s for s in sites if all(available[sku].get(s.name, 0) >= q for sku, q in need.items())]
    if whole:
        ranked = sorted(
            ((s, cost_of({x.line_id: s.name for x in lines})) for s in whole),
            key=lambda sc: (*_metrics(config, sc[0].km, sc[1]), sc[0].name),
        )
        for i, (site, cost) in enumerate(ranked):
            assign = {line.line_id: site.name for line in lines}
            if plan_key(assign) in refused:
                continue
            rest = [
                sc
                for sc in ranked[i + 1 :]
                if plan_key({x.line_id: sc[0].name for x in lines}) not in refused
            ]
            word = _decided(config, (site.km, cost), [(r.km, c) for r, c in rest[:1]])
            of = (
                f"{word} of {len(rest) + 1} that ship every line"
                if rest
                else "the only one left that ships every line"
                if len(ranked) > 1
                else "the only one that ships every line"
            )
            reason = (
                f"single location {site.name}: {of} ({_km(site.km)}), "
                f"cost {_money(cost, config.currency)}{after}{note}"
            )
            return Plan(lines=assign, reason=reason, shipping_cost=cost)
    return _split(lines, need, available, sites, config, cost_of, refused, after, note)


def _pickup(
    order: Mapping[str, Any],
    lines: list[_Line],
    need: Mapping[str, int],
    available: Mapping[str, Mapping[str, int]],
    config: RoutingConfig,
    used_capacity: Mapping[str, int],
    refused: set[frozenset[tuple[str, str]]],
    serves: Callable[[str], bool] | None,
    after: str,
) -> Plan | None:
    store = order.get("pickup_location")
    if not store:
        return None
    loc = config.location(store)
    if store in config.locations and not loc.pickup:
        return None
    if serves is not None and not serves(store):
        return None
    if loc.daily_capacity is not None and used_capacity.get(store, 0) >= loc.daily_capacity:
        return None
    if any(available.get(sku, {}).get(store, 0) < q for sku, q in need.items()):
        return None
    assign = {line.line_id: store for line in lines}
    if plan_key(assign) in refused:
        return None
    return Plan(
        lines=assign,
        reason=f"pickup at store {store}: every line in stock there{after}",
        shipping_cost=0,
    )


def _split(
    lines: list[_Line],
    need: Mapping[str, int],
    available: Mapping[str, Mapping[str, int]],
    sites: list[_Site],
    config: RoutingConfig,
    cost_of: Callable[[Mapping[str, str]], int | None],
    refused: set[frozenset[tuple[str, str]]],
    after: str,
    note: str,
) -> Plan | None:
    for line in lines:  # a line no usable location can ship alone: no plan at all
        if not any(available[line.sku].get(s.name, 0) >= line.qty for s in sites):
            return None
    # only locations that can ship one line whole; their rank (distance) computed once
    sites = [s for s in sites if any(available[x.sku].get(s.name, 0) >= x.qty for x in lines)]
    by_name = {s.name: s for s in sites}
    ranks = [(s.name, (*_metrics(config, s.km, None), s.name)) for s in sites]
    # lines by increasing quantity: a location short of a SKU ships as many lines as it can
    order_lines = sorted(lines, key=lambda x: (x.qty, x.line_id))
    candidates: dict[frozenset[tuple[str, str]], tuple[Any, ...]] = {}
    memo: dict[tuple[str, tuple[str, ...]], list[_Line]] = {}  # the starts share their steps
    for first in sites:
        assign = _greedy(first.name, order_lines, available, ranks, memo)
        if assign is None:
            continue
        key = plan_key(assign)
        if key in candidates or key in refused:
            continue
        used = sorted(set(assign.values()))
        kms = [by_name[n].km for n in used]
        km = None if any(k is None for k in kms) else sum(k for k in kms if k is not None)
        cost = cost_of(assign)
        candidates[key] = (
            len(used),
            *_metrics(config, km, cost),
            sorted(assign.items()),
            assign,
            km,
            cost,
        )
    if not candidates:
        return None
    best = min(candidates.values(), key=lambda c: c[:-3])
    assign, km, cost = best[-3], best[-2], best[-1]
    parts = "; ".join(
        f"{loc} ships {_lines_word(sorted(lid for lid in assign if assign[lid] == loc))}"
        for loc in sorted(set(assign.values()))
    )
    reason = (
        f"split into {len(set(assign.values()))} parcels, no single location ships every line: "
        f"{parts} ({_km(km)} in all), cost {_money(cost, config.currency)}{after}{note}"
    )
    return Plan(lines=dict(assign), reason=reason, shipping_cost=cost)


def _greedy(
    first: str,
    lines: list[_Line],
    available: Mapping[str, Mapping[str, int]],
    ranks: list[tuple[str, tuple[Any, ...]]],
    memo: dict[tuple[str, tuple[str, ...]], list[_Line]],
) -> dict[str, str] | None:
    """Lines -> location, starting at ``first``, then the location shipping most lines left."""
    assign: dict[str, str] = {}
    left = list(lines)
    chosen: set[str] = set()
    pick: str | None = first
    while left:
        ids = tuple(line.line_id for line in left)
        if pick is None:
            best: tuple[Any, ...] | None = None
            for name, rank in ranks:
                if name in chosen:
                    continue
                took = memo.get((name, ids))
                if took is None:
                    took = memo[(name, ids)] = _take(name, left, available)
                if not took:
                    continue
                score = (-len(took), rank)
                if best is None or score < best:
                    best, pick = score, name
            if pick is None:
                return None
        took = memo.get((pick, ids))
        if took is None:
            took = memo[(pick, ids)] = _take(pick, left, available)
        if not took:
            return None
        chosen.add(pick)
        for line in took:
            assign[line.line_id] = pick
        taken = {line.line_id for line in took}
        left = [line for line in left if line.line_id not in taken]
        pick = None
    return assign


def _take(
    location: str, lines: list[_Line], available: Mapping[str, Mapping[str, int]]
) -> list[_Line]:
    """The lines ``location`` can ship whole, within its units of each SKU."""
    stock: dict[str, int] = {}
    took: list[_Line] = []
    for line in lines:
        have = stock.get(line.sku)
        if have is None:
            have = available.get(line.sku, {}).get(location, 0)
        if have >= line.qty:
            took.append(line)
            have -= line.qty
        stock[line.sku] = have
    return took


def _unusable(
    loc: RoutingLocation, used_capacity: Mapping[str, int], serves: Callable[[str], bool] | None
) -> str | None:
    if serves is not None and not serves(loc.name):
        return "(not a location of this channel)"
    if not loc.ships:
        return "(store without ship-from-store)"
    if loc.daily_capacity is not None and used_capacity.get(loc.name, 0) >= loc.daily_capacity:
        return f"(daily capacity {loc.daily_capacity} reached)"
    return None


def _metrics(config: RoutingConfig, km: float | None, cost: int | None) -> tuple[float, ...]:
    values = {"distance": _INF if km is None else km, "cost": _INF if cost is None else cost}
    return tuple(values[r] for r in config.rank)


def _decided(
    config: RoutingConfig,
    chosen: tuple[float | None, int | None],
    runner_up: list[tuple[float | None, int | None]],
) -> str:
    """The word for the criterion that put the chosen plan before the runner-up."""
    if not runner_up:
        return _WORDS[config.rank[0]] if config.rank else _WORDS["name"]
    mine = _metrics(config, *chosen)
    theirs = _metrics(config, *runner_up[0])
    for criterion, a, b in zip(config.rank, mine, theirs, strict=True):
        if a != b:
            return _WORDS[criterion]
    return _WORDS["name"]


def _lines_word(ids: list[str]) -> str:
    return f"line{'s' if len(ids) > 1 else ''} {', '.join(ids)}"


def _after(refused: int) -> str:
    if not refused:
        return ""
    return f", after {refused} refused plan{'s' if refused > 1 else ''}"


def _km(km: float | None) -> str:
    if km is None:
        return "distance unknown"
    return f"{km:.0f} km"


def _money(cost: int | None, currency: str) -> str:
    if cost is None:
        return "unknown (no rate)"
    return f"{cost // 100}.{cost % 100:02d} {currency}"
