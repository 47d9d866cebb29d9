"""Property tests of routing (hypothesis): random stock, locations, orders, refusals.

Invariants of :func:`streams.orders.routing.plan`:

* it never plans more units of a SKU at a location than ``available`` says, summed over the
  lines of that SKU, and plans every line exactly once;
* it returns a single-location plan whenever a usable location ships every line and that
  plan was not refused;
* it never uses a location at its daily capacity, a store without ship-from-store for a
  shipped order, or a location the channel does not serve; over a day of orders counted as
  the caller counts them, no location takes more orders than its capacity;
* a pickup is planned at the pickup store only, every line there;
* a plan in ``excluded`` is never returned, and retrying after each refusal ends;
* the same inputs give the same plan, whatever the order of the mappings.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.orders import geo
from streams.orders.routing import Plan, RoutingConfig, parse_routing, plan, plan_key

LOCATIONS = [f"loc{i}" for i in range(6)]
SKUS = ["mug", "tee", "cap", "pen"]
PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def configs(draw: st.DrawFn) -> RoutingConfig:
    locations = []
    for name in LOCATIONS:
        kind = draw(st.sampled_from(["warehouse", "store"]))
        item: dict[str, Any] = {"name": name, "kind": kind}
        if draw(st.booleans()):
            item["lat"] = draw(st.floats(36, 58))
            item["lon"] = draw(st.floats(-8, 20))
        if draw(st.booleans()):
            item["daily_capacity"] = draw(st.integers(0, 4))
        if kind == "store":
            item["ship_from_store"] = draw(st.booleans())
            item["pickup"] = draw(st.booleans())
        locations.append(item)
    rates = [
        {"location": name, "zone": "eu", "up_to_g": 2000, "cost": draw(st.integers(0, 2000))}
        for name in LOCATIONS
        if draw(st.booleans())
    ]
    return parse_routing(
        {
            "rank": draw(st.sampled_from([["distance", "cost"], ["cost", "distance"], []])),
            "locations": locations,
            "zones": [{"name": "eu", "countries": ["FR", "DE", "IT"]}],
            "rates": rates,
            "weights": {"mug": 350, "tee": 200},
            "default_weight_g": 100,
        }
    )


@st.composite
def orders(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 5))
    lines = [
        {"line_id": f"l{i}", "sku": draw(st.sampled_from(SKUS)), "qty": draw(st.integers(1, 4))}
        for i in range(n)
    ]
    pickup = draw(st.integers(0, 4)) == 0
    ship_to = draw(
        st.sampled_from(
            [
                {"country": "FR", "postal_code": "69003"},
                {"country": "DE", "postal_code": "10115"},
                {"country": "IT", "postal_code": None, "lat": 45.46, "lon": 9.19},
                {"country": "XX", "postal_code": "1"},
            ]
        )
    )
    return {
        "lines": lines,
        "ship_to": None if pickup else ship_to,
        "delivery": "pickup" if pickup else "ship",
        "pickup_location": draw(st.sampled_from(LOCATIONS)) if pickup else None,
    }


stock = st.dictionaries(
    st.sampled_from(SKUS),
    st.dictionaries(st.sampled_from(LOCATIONS), st.integers(0, 9), max_size=len(LOCATIONS)),
)
capacity_use = st.dictionaries(st.sampled_from(LOCATIONS), st.integers(0, 5))
served = st.none() | st.frozensets(st.sampled_from(LOCATIONS), min_size=1)


def _refusals(order: dict[str, Any], draw: st.DrawFn) -> list[frozenset[tuple[str, str]]]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        out.append(
            frozenset((x["line_id"], draw(st.sampled_from(LOCATIONS))) for x in order["lines"])
        )
    return out


def _usable(name: str, order: dict[str, Any], config: RoutingConfig, use: Any, srv: Any) -> bool:
    loc = config.location(name)
    if srv is not None and name not in srv:
        return False
    if loc.daily_capacity is not None and use.get(name, 0) >= loc.daily_capacity:
        return False
    if order["delivery"] == "pickup":
        return name == order["pickup_location"] and loc.pickup
    return loc.ships


def _check_plan(
    result: Plan,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    config: RoutingConfig,
    use: Any,
    srv: Any,
) -> None:
    assert sorted(result.lines) == sorted(x["line_id"] for x in order["lines"])
    taken: Counter[tuple[str, str]] = Counter()
    for line in order["lines"]:
        taken[(line["sku"], result.lines[line["line_id"]])] += line["qty"]
    for (sku, loc), qty in taken.items():
        assert qty <= available.get(sku, {}).get(loc, 0), (sku, loc, qty)
    for loc in set(result.lines.values()):
        assert _usable(loc, order, config, use, srv), loc
    assert result.reason


@PROFILE
@given(
    config=configs(), order=orders(), available=stock, use=capacity_use, srv=served, data=st.data()
)
def test_a_plan_never_takes_more_than_available_and_uses_only_usable_locations(
    config: RoutingConfig,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    use: dict[str, int],
    srv: frozenset[str] | None,
    data: st.DataObject,
) -> None:
    """Given random locations (capacity, stores, coordinates), stock, refusals and a channel
    When an order is routed
    Then every line is planned once, never beyond the units of a SKU at a location summed over
    its lines, only at locations served, below capacity and allowed to ship (or the pickup
    store), and never as a refused plan."""
    excluded = _refusals(order, data.draw)
    serves = None if srv is None else srv.__contains__
    result = plan(order, available, config, used_capacity=use, excluded=excluded, serves=serves)
    if result is None:
        return
    _check_plan(result, order, available, config, use, srv)
    assert result.key not in excluded


@PROFILE
@given(config=configs(), order=orders(), available=stock, use=capacity_use, data=st.data())
def test_a_single_location_plan_is_chosen_whenever_one_exists(
    config: RoutingConfig,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    use: dict[str, int],
    data: st.DataObject,
) -> None:
    """Given random stock and refusals
    When a usable location holds every line of the order and that plan was not refused
    Then the plan ships everything from one location; and a pickup that has none has no plan."""
    excluded = _refusals(order, data.draw)
    need: Counter[str] = Counter()
    for line in order["lines"]:
        need[line["sku"]] += line["qty"]
    singles = [
        name
        for name in LOCATIONS
        if _usable(name, order, config, use, None)
        and all(available.get(sku, {}).get(name, 0) >= q for sku, q in need.items())
        and plan_key({x["line_id"]: name for x in order["lines"]}) not in excluded
    ]
    result = plan(order, available, config, used_capacity=use, excluded=excluded)
    if singles:
        assert result is not None
        assert len(set(result.lines.values())) == 1
        assert result.reason.startswith(("single location", "pickup at store"))
    elif order["delivery"] == "pickup":
        assert result is None
    if result is not None and order["delivery"] == "pickup":
        assert set(result.lines.values()) == {order["pickup_location"]}


@PROFILE
@given(config=configs(), orders_=st.lists(orders(), min_size=1, max_size=25), available=stock)
def test_over_a_day_no_location_takes_more_orders_than_its_capacity(
    config: RoutingConfig, orders_: list[dict[str, Any]], available: dict[str, dict[str, int]]
) -> None:
    """Given a day of orders routed one after the other, the caller counting each location's
    orders as the order agent does
    When every order is routed with that count
    Then no location with a daily capacity is given more orders than it."""
    used: Counter[str] = Counter()
    for order in orders_:
        result = plan(order, available, config, used_capacity=used)
        if result is not None:
            for loc in set(result.lines.values()):
                used[loc] += 1
    for name, count in used.items():
        cap = config.location(name).daily_capacity
        assert cap is None or count <= cap, (name, count, cap)


@PROFILE
@given(config=configs(), order=orders(), available=stock, use=capacity_use)
def test_retrying_after_each_refusal_gives_new_plans_until_none_is_left(
    config: RoutingConfig,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    use: dict[str, int],
) -> None:
    """Given an order whose every plan the ledger refuses
    When it is routed again after each refusal, with the refused plans excluded
    Then each plan is new and valid, and the retries end with no plan."""
    refused: list[frozenset[tuple[str, str]]] = []
    for _ in range(len(LOCATIONS) ** 2 + 1):
        result = plan(order, available, config, used_capacity=use, excluded=refused)
        if result is None:
            return
        _check_plan(result, order, available, config, use, None)
        assert result.key not in refused
        refused.append(result.key)
    raise AssertionError(f"still planning after {len(refused)} refusals")


@PROFILE
@given(config=configs(), order=orders(), available=stock, use=capacity_use, data=st.data())
def test_the_same_inputs_give_the_same_plan_whatever_the_order_of_the_mappings(
    config: RoutingConfig,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    use: dict[str, int],
    data: st.DataObject,
) -> None:
    """Given an order, stock and capacity
    When it is routed twice, the second time with the stock and capacity mappings built in
    another order
    Then both plans are equal: lines, reason and cost."""
    excluded = _refusals(order, data.draw)
    first = plan(order, available, config, used_capacity=use, excluded=excluded)
    shuffled = {
        sku: dict(reversed(list(per.items()))) for sku, per in reversed(list(available.items()))
    }
    again = plan(
        order,
        shuffled,
        config,
        used_capacity=dict(reversed(list(use.items()))),
        excluded=list(reversed(excluded)),
    )
    assert first == again


def _single_rank(
    name: str, order: dict[str, Any], config: RoutingConfig
) -> tuple[float | str, ...]:
    dest = geo.destination(order["ship_to"])
    point = config.location(name).point
    km = geo.distance_km(point, dest) if dest and point else float("inf")
    to = order["ship_to"] or {}
    grams = sum(config.weight_g(x["sku"], x["qty"]) for x in order["lines"])
    cost = config.parcel_cost(name, config.zone(to.get("country"), to.get("postal_code")), grams)
    values = {"distance": km, "cost": float("inf") if cost is None else cost}
    return (*(values[r] for r in config.rank), name)


@PROFILE
@given(config=configs(), order=orders(), available=stock, use=capacity_use, data=st.data())
def test_the_single_location_chosen_is_the_first_by_the_configured_rank(
    config: RoutingConfig,
    order: dict[str, Any],
    available: dict[str, dict[str, int]],
    use: dict[str, int],
    data: st.DataObject,
) -> None:
    """Given several usable locations that ship every line of a shipped order
    When it is routed
    Then the chosen one is the first by the configured rank (distance to the ship-to, cost
    of its parcel from the rate table, in the configured order), then by name."""
    if order["delivery"] == "pickup":
        return
    excluded = _refusals(order, data.draw)
    need: Counter[str] = Counter()
    for line in order["lines"]:
        need[line["sku"]] += line["qty"]
    singles = [
        name
        for name in LOCATIONS
        if _usable(name, order, config, use, None)
        and all(available.get(sku, {}).get(name, 0) >= q for sku, q in need.items())
        and plan_key({x["line_id"]: name for x in order["lines"]}) not in excluded
    ]
    result = plan(order, available, config, used_capacity=use, excluded=excluded)
    if singles:
        best = min(singles, key=lambda n: _single_rank(n, order, config))
        assert result is not None and set(result.lines.values()) == {best}
