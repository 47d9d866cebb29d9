"""Routing examples: distance and cost ordering, splits, capacity, stores, pickups, the
postal-code centroids of each country, and the ``orders.routing`` configuration's errors."""

from __future__ import annotations

from typing import Any

import pytest

from streams.orders import geo
from streams.orders.errors import OrderConfigError
from streams.orders.routing import RoutingConfig, parse_routing, plan, plan_key

LYON = {"name": "lyon-wh", "lat": 45.76, "lon": 4.84, "country": "FR"}
PARIS = {"name": "paris-wh", "lat": 48.86, "lon": 2.35, "country": "FR"}
LILLE = {"name": "lille-store", "lat": 50.63, "lon": 3.06, "country": "FR", "kind": "store"}
ZONES = [{"name": "fr", "countries": ["FR"]}, {"name": "eu", "countries": ["DE", "BE"]}]


def config(**extra: Any) -> RoutingConfig:
    raw: dict[str, Any] = {"locations": [LYON, PARIS, LILLE], "zones": ZONES}
    raw.update(extra)
    return parse_routing(raw)


def order(*lines: tuple[str, int], postal: str = "69003", country: str = "FR") -> dict[str, Any]:
    return {
        "order_id": "web:1",
        "lines": [
            {"line_id": str(i), "sku": sku, "qty": qty} for i, (sku, qty) in enumerate(lines, 1)
        ],
        "ship_to": {"country": country, "postal_code": postal},
        "delivery": "ship",
    }


EVERYWHERE = {"mug": {"lyon-wh": 5, "paris-wh": 5}, "tee": {"lyon-wh": 5, "paris-wh": 5}}


def test_the_closest_location_that_ships_every_line_is_chosen() -> None:
    """Given two warehouses holding every line, Lyon and Paris
    When an order to Lyon (69003) and one to Paris (75011) are routed
    Then each ships from the warehouse of its city, and the reason says it was the closest."""
    cfg = config()
    to_lyon = plan(order(("mug", 1), ("tee", 2)), EVERYWHERE, cfg)
    to_paris = plan(order(("mug", 1), ("tee", 2), postal="75011"), EVERYWHERE, cfg)
    assert to_lyon is not None and set(to_lyon.lines.values()) == {"lyon-wh"}
    assert to_paris is not None and set(to_paris.lines.values()) == {"paris-wh"}
    assert to_lyon.reason.startswith("single location lyon-wh: closest of 2 that ship every line")
    assert " km)" in to_lyon.reason


def test_coordinates_of_the_ship_to_win_over_its_postal_code() -> None:
    """Given an order whose postal code is in Lyon but whose coordinates are in Paris
    When it is routed
    Then the coordinates decide: Paris ships it."""
    o = order(("mug", 1))
    o["ship_to"] |= {"lat": 48.85, "lon": 2.30}
    result = plan(o, EVERYWHERE, config())
    assert result is not None and set(result.lines.values()) == {"paris-wh"}


RATES = [
    {"location": "lyon-wh", "zone": "fr", "up_to_g": 1000, "cost": 990},
    {"location": "lyon-wh", "zone": "fr", "up_to_g": 5000, "cost": 1490},
    {"location": "*", "zone": "fr", "up_to_g": 1000, "cost": 590},
    {"location": "*", "zone": "fr", "up_to_g": 5000, "cost": 890},
]


def test_distance_decides_before_cost_by_default_and_cost_first_when_configured() -> None:
    """Given Lyon closer to the customer but dearer than Paris (rate table)
    When the order is routed with the default rank, then with rank [cost, distance]
    Then Lyon ships it first (closest, 9.90 EUR), Paris second (cheapest, 5.90 EUR)."""
    o = order(("mug", 1))
    by_distance = plan(o, EVERYWHERE, config(rates=RATES, weights={"mug": 400}))
    by_cost = plan(
        o, EVERYWHERE, config(rates=RATES, weights={"mug": 400}, rank=["cost", "distance"])
    )
    assert by_distance is not None and by_cost is not None
    assert set(by_distance.lines.values()) == {"lyon-wh"} and by_distance.shipping_cost == 990
    assert "closest" in by_distance.reason and "cost 9.90 EUR" in by_distance.reason
    assert set(by_cost.lines.values()) == {"paris-wh"} and by_cost.shipping_cost == 590
    assert by_cost.reason.startswith("single location paris-wh: cheapest of 2")


def test_cost_follows_the_weight_band_and_is_unknown_beyond_the_last_band() -> None:
    """Given SKU weights and bands up to 1 kg and 5 kg
    When 2 x 400 g, then 3 x 400 g, then 20 x 400 g ship from Paris
    Then they cost the first band, the second band, and no rate covers the last (None)."""
    cfg = config(rates=RATES, weights={"mug": 400})
    stock = {"mug": {"paris-wh": 50}}
    costs = [plan(order(("mug", n)), stock, cfg) for n in (2, 3, 20)]
    assert [p.shipping_cost if p else "none" for p in costs] == [590, 890, None]
    assert costs[2] is not None and "no rate" in costs[2].reason


def test_a_destination_in_no_zone_has_no_cost_but_still_a_plan() -> None:
    """Given zones for FR, DE and BE only
    When an order to Spain is routed
    Then it is planned with an unknown cost."""
    result = plan(order(("mug", 1), country="ES", postal="28001"), EVERYWHERE, config(rates=RATES))
    assert result is not None and result.shipping_cost is None


def test_one_location_is_preferred_to_a_closer_split() -> None:
    """Given Lyon holding the mug only and Paris holding both lines, the customer in Lyon
    When the order is routed
    Then Paris ships everything: one parcel beats distance."""
    stock = {"mug": {"lyon-wh": 5, "paris-wh": 5}, "tee": {"paris-wh": 5}}
    result = plan(order(("mug", 1), ("tee", 1)), stock, config())
    assert result is not None and set(result.lines.values()) == {"paris-wh"}
    assert "the only one that ships every line" in result.reason


def test_a_split_uses_the_fewest_locations_each_line_from_one() -> None:
    """Given no location holding every line: Lyon the mug and tee, Paris the tee and cap,
    the store nothing useful
    When a three-line order is routed
    Then it ships in two parcels, each line whole from one location, and the reason lists them."""
    stock = {
        "mug": {"lyon-wh": 5},
        "tee": {"lyon-wh": 5, "paris-wh": 5},
        "cap": {"paris-wh": 5},
    }
    result = plan(order(("mug", 1), ("tee", 1), ("cap", 1)), stock, config())
    assert result is not None
    assert result.lines["1"] == "lyon-wh" and result.lines["3"] == "paris-wh"
    assert len(set(result.lines.values())) == 2
    assert result.reason.startswith("split into 2 parcels")


def test_a_line_that_no_location_can_ship_whole_gives_no_plan() -> None:
    """Given 3 mugs in Lyon and 3 in Paris
    When an order for 4 mugs is routed
    Then there is no plan: a line is never cut between locations."""
    assert plan(order(("mug", 4)), {"mug": {"lyon-wh": 3, "paris-wh": 3}}, config()) is None


def test_a_location_at_its_daily_capacity_is_skipped_and_named_in_the_reason() -> None:
    """Given Lyon closest but with a daily capacity of 2, already used twice today
    When the order is routed
    Then Paris ships it, and the reason says Lyon was skipped for capacity."""
    cfg = parse_routing({"locations": [LYON | {"daily_capacity": 2}, PARIS]})
    result = plan(order(("mug", 1)), EVERYWHERE, cfg, used_capacity={"lyon-wh": 2})
    assert result is not None and set(result.lines.values()) == {"paris-wh"}
    assert "lyon-wh (daily capacity 2 reached)" in result.reason
    below = plan(order(("mug", 1)), EVERYWHERE, cfg, used_capacity={"lyon-wh": 1})
    assert below is not None and set(below.lines.values()) == {"lyon-wh"}


def test_a_store_ships_only_when_ship_from_store_allows_it() -> None:
    """Given the only stock in the Lille store
    When an order is routed with ship_from_store left as default, then set to false
    Then the store ships it, then there is no plan."""
    stock = {"mug": {"lille-store": 5}}
    assert plan(order(("mug", 1)), stock, config()) is not None
    closed = parse_routing({"locations": [LILLE | {"ship_from_store": False}]})
    assert plan(order(("mug", 1)), stock, closed) is None


def test_a_pickup_is_planned_at_its_store_only_with_every_line_there() -> None:
    """Given a pickup order at the Lille store
    When the store holds every line, then lacks one while Paris has it
    Then the first is planned entirely at the store, the second has no plan."""
    o = order(("mug", 1), ("tee", 1)) | {"delivery": "pickup", "pickup_location": "lille-store"}
    o["ship_to"] = None
    full = {"mug": {"lille-store": 1}, "tee": {"lille-store": 1, "paris-wh": 9}}
    short = {"mug": {"lille-store": 1}, "tee": {"paris-wh": 9}}
    result = plan(o, full, config())
    assert result is not None and set(result.lines.values()) == {"lille-store"}
    assert result.reason == "pickup at store lille-store: every line in stock there"
    assert plan(o, short, config()) is None
    no_pickup = parse_routing({"locations": [LILLE | {"pickup": False}]})
    assert plan(o, full, no_pickup) is None


def test_the_channel_locations_filter_the_plan() -> None:
    """Given a channel served by Paris only
    When an order to Lyon is routed
    Then Paris ships it."""
    result = plan(order(("mug", 1)), EVERYWHERE, config(), serves={"paris-wh"}.__contains__)
    assert result is not None and set(result.lines.values()) == {"paris-wh"}


def test_after_a_refusal_the_next_best_plan_is_returned() -> None:
    """Given Lyon then Paris as the best plans, and the ledger refusing Lyon's
    When the order is routed again with Lyon's plan excluded, then both excluded
    Then Paris ships it and the reason counts the refusal; then there is no plan."""
    o = order(("mug", 1), ("tee", 1))
    first = plan(o, EVERYWHERE, config())
    assert first is not None
    second = plan(o, EVERYWHERE, config(), excluded=[first.key])
    assert second is not None and set(second.lines.values()) == {"paris-wh"}
    assert "after 1 refused plan" in second.reason
    assert plan(o, EVERYWHERE, config(), excluded=[first.key, second.key]) is None
    assert first.key == plan_key({"1": "lyon-wh", "2": "lyon-wh"})


def test_without_configuration_any_location_with_stock_ships() -> None:
    """Given no routing configuration at all
    When an order is routed
    Then a location holding every line ships it, distance and cost unknown."""
    result = plan(order(("mug", 1)), {"mug": {"somewhere": 1}}, parse_routing(None))
    assert result is not None and result.lines == {"1": "somewhere"}
    assert "distance unknown" in result.reason and result.shipping_cost is None


# Known points: (country, postal code, lat, lon of the city, km the table may be off)
CITIES = [
    ("FR", "75011", 48.857, 2.352, 15),  # Paris, département 75
    ("FR", "69003", 45.764, 4.836, 30),  # Lyon, département 69
    ("DE", "80331", 48.137, 11.575, 30),  # Munich, PLZ region 80
    ("DE", "10115", 52.520, 13.405, 15),  # Berlin, PLZ region 10
    ("BE", "1000", 50.847, 4.357, 40),  # Brussels, province-level prefix 1
    ("BE", "2000", 51.219, 4.402, 40),  # Antwerp, prefix 20
    ("NL", "1012 AB", 52.373, 4.893, 15),  # Amsterdam, prefix 10
    ("ES", "28001", 40.417, -3.704, 20),  # Madrid, province 28
    ("IT", "20121", 45.464, 9.190, 15),  # Milan, prefix 201
    ("IT", "00184", 41.893, 12.483, 30),  # Rome, prefix 001
    ("GB", "SW1A 1AA", 51.501, -0.142, 10),  # London, outward code SW1A
    ("GB", "EH1 1YZ", 55.953, -3.188, 10),  # Edinburgh, outward code EH1
    ("US", "10001", 40.750, -73.997, 15),  # New York, ZIP prefix 100
    ("US", "94105-1804", 37.790, -122.390, 15),  # San Francisco, ZIP prefix 941
]


@pytest.mark.parametrize(("country", "code", "lat", "lon", "km"), CITIES)
def test_a_postal_code_is_placed_near_its_city(
    country: str, code: str, lat: float, lon: float, km: float
) -> None:
    """Given a postal code of a known city in each country the table covers
    When its centroid is looked up
    Then it is within the precision of its prefix from the city."""
    found = geo.centroid(country, code)
    assert found is not None
    assert geo.distance_km(found, (lat, lon)) <= km


def test_an_unknown_country_or_code_has_no_centroid() -> None:
    """Given a country the table lacks, a malformed code and an empty one
    When they are looked up
    Then none is placed."""
    assert geo.centroid("XX", "12345") is None
    assert geo.centroid("GB", "123") is None
    assert geo.centroid("FR", "") is None
    assert geo.destination(None) is None


def test_distance_is_the_great_circle_distance() -> None:
    """Given Paris and Lyon
    When their distance is computed
    Then it is the known 392 km, within a kilometre."""
    assert abs(geo.distance_km((48.8566, 2.3522), (45.7640, 4.8357)) - 392) < 1


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        ({"colour": 1}, "orders.routing"),
        ({"locations": [{"name": "a", "lat": 91, "lon": 0}]}, "orders.routing.locations[0].lat"),
        ({"locations": [{"name": "a", "lat": 1}]}, "orders.routing.locations[0]"),
        ({"locations": [{"name": "a"}, {"name": "a"}]}, "orders.routing.locations[1].name"),
        ({"locations": [{"name": "a", "kind": "shop"}]}, "orders.routing.locations[0].kind"),
        (
            {"locations": [{"name": "a", "daily_capacity": -1}]},
            "orders.routing.locations[0].daily_capacity",
        ),
        (
            {"zones": [{"name": "z", "countries": ["France"]}]},
            "orders.routing.zones[0].countries[0]",
        ),
        ({"rates": [{"zone": "nowhere", "up_to_g": 1, "cost": 1}]}, "orders.routing.rates[0].zone"),
        (
            {"zones": ZONES, "rates": [{"location": "x", "zone": "fr", "up_to_g": 1, "cost": 1}]},
            "orders.routing.rates[0].location",
        ),
        ({"rank": ["speed"]}, "orders.routing.rank"),
        ({"weights": {"mug": -5}}, "orders.routing.weights.mug"),
        ({"currency": "euro"}, "orders.routing.currency"),
    ],
)
def test_a_wrong_routing_configuration_names_the_key_path(raw: Any, path: str) -> None:
    """Given a routing section with one mistake
    When it is parsed
    Then OrderConfigError names the key path of the mistake."""
    with pytest.raises(OrderConfigError) as err:
        parse_routing(raw)
    assert err.value.path == path


def test_a_full_routing_configuration_is_parsed() -> None:
    """Given every key of the routing section
    When it is parsed
    Then the locations, zones, rates and weights are as written, and stores take pickups by
    default."""
    cfg = config(rates=RATES, weights={"mug": 400}, default_weight_g=250, currency="eur")
    assert cfg.location("lille-store").pickup and not cfg.location("lyon-wh").pickup
    assert cfg.location("unknown").ships and cfg.location("unknown").point is None
    assert cfg.zone("fr", "75011") == "fr" and cfg.zone("ES", "1") is None
    assert cfg.parcel_cost("lyon-wh", "fr", 1000) == 990
    assert cfg.parcel_cost("paris-wh", "fr", 1001) == 890
    assert cfg.weight_g("tee", 2) == 500 and cfg.currency == "EUR"


def test_locations_that_tie_on_every_criterion_are_taken_by_name() -> None:
    """Given two warehouses at the same place with the same rates, listed b before a
    When an order is routed, with the stock mapping in either order
    Then the first by name ships it, and the reason says the name decided."""
    cfg = parse_routing(
        {"locations": [LYON | {"name": "b-wh"}, LYON | {"name": "a-wh"}], "zones": ZONES}
    )
    for stock in ({"mug": {"b-wh": 1, "a-wh": 1}}, {"mug": {"a-wh": 1, "b-wh": 1}}):
        result = plan(order(("mug", 1)), stock, cfg)
        assert result is not None and result.lines == {"1": "a-wh"}
        assert "first by name of 2" in result.reason
