"""The ``orders.routing`` section of the configuration: locations, zones, rates, weights.

Format (every key optional; README "Routing rules" explains each)::

    routing:
      rank: [distance, cost]          # order of the tie-breaks after "fewest parcels"
      currency: EUR                   # currency of the rates (minor units)
      default_weight_g: 0             # weight of a SKU that `weights` does not name
      weights: {MUG-1: 350}           # grams per unit
      locations:
        - name: lyon-wh
          lat: 45.76
          lon: 4.84
          country: FR
          kind: warehouse             # or store
          daily_capacity: 500         # orders a day; absent = no limit
          ship_from_store: true       # a store with false never ships (pickup only)
          pickup: false               # takes pickup orders (default: true for a store)
      zones:                          # first zone that matches the destination wins
        - {name: fr, countries: [FR]}
        - {name: eu, countries: [DE, BE, NL, ES, IT]}
      rates:                          # cost of one parcel up to a weight, minor units
        - {location: lyon-wh, zone: fr, up_to_g: 2000, cost: 490}
        - {location: "*", zone: eu, up_to_g: 30000, cost: 1290}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.orders.errors import OrderConfigError

__all__ = ["RANKS", "Rate", "RoutingConfig", "RoutingLocation", "Zone", "parse_routing"]

RANKS = ("distance", "cost")
ANY_LOCATION = "*"


@dataclass(frozen=True, slots=True)
class RoutingLocation:
    name: str
    lat: float | None = None
    lon: float | None = None
    country: str | None = None
    kind: str = "warehouse"  # warehouse | store
    daily_capacity: int | None = None  # None: no limit
    ship_from_store: bool = True
    pickup: bool = False

    @property
    def point(self) -> tuple[float, float] | None:
        return None if self.lat is None or self.lon is None else (self.lat, self.lon)

    @property
    def ships(self) -> bool:
        """Whether shipped orders may leave from here (a store only with ship_from_store)."""
        return self.kind != "store" or self.ship_from_store


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    countries: frozenset[str]
    postal_prefixes: tuple[str, ...] = ()  # empty: the whole countries

    def matches(self, country: str | None, postal_code: str | None) -> bool:
        if country is None or country.upper() not in self.countries:
            return False
        if not self.postal_prefixes:
            return True
        code = (postal_code or "").replace(" ", "").upper()
        return any(code.startswith(p) for p in self.postal_prefixes)


@dataclass(frozen=True, slots=True)
class Rate:
    up_to_g: int
    cost: int


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    locations: Mapping[str, RoutingLocation] = field(default_factory=dict)
    zones: tuple[Zone, ...] = ()
    # (location or "*", zone) -> rates by increasing weight
    rates: Mapping[tuple[str, str], tuple[Rate, ...]] = field(default_factory=dict)
    weights: Mapping[str, int] = field(default_factory=dict)
    default_weight_g: int = 0
    currency: str = "EUR"
    rank: tuple[str, ...] = RANKS

    def location(self, name: str) -> RoutingLocation:
        """The configured location, or the defaults for one the configuration does not name."""
        loc = self.locations.get(name)
        return loc if loc is not None else RoutingLocation(name=name)

    def weight_g(self, sku: str, qty: int) -> int:
        return self.weights.get(sku, self.default_weight_g) * qty

    def zone(self, country: str | None, postal_code: str | None) -> str | None:
        for zone in self.zones:
            if zone.matches(country, postal_code):
                return zone.name
        return None

    def parcel_cost(self, location: str, zone: str | None, weight_g: int) -> int | None:
        """Cost of one parcel from ``location`` to ``zone``; None when no rate covers it."""
        if zone is None:
            return None
        bands = self.rates.get((location, zone))
        if bands is None:
            bands = self.rates.get((ANY_LOCATION, zone))
        if bands is None:
            return None
        for band in bands:
            if weight_g <= band.up_to_g:
                return band.cost
        return None


DEFAULT_ROUTING = RoutingConfig()

_TOP_KEYS = {"rank", "currency", "default_weight_g", "weights", "locations", "zones", "rates"}
_LOCATION_KEYS = {
    "name",
    "lat",
    "lon",
    "country",
    "kind",
    "daily_capacity",
    "ship_from_store",
    "pickup",
}
_ZONE_KEYS = {"name", "countries", "postal_prefixes"}
_RATE_KEYS = {"location", "zone", "up_to_g", "cost"}
_KINDS = ("warehouse", "store")


def parse_routing(raw: Any, path: str = "orders.routing") -> RoutingConfig:
    """Validate the ``orders.routing`` mapping (``None``: the defaults) into a RoutingConfig."""
    if raw is None:
        return DEFAULT_ROUTING
    _mapping(raw, path, _TOP_KEYS)
    rank = _rank(raw.get("rank", list(RANKS)), f"{path}.rank")
    currency = raw.get("currency", "EUR")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise OrderConfigError(f"{path}.currency", "must be an ISO 4217 code such as EUR")
    default_weight = _int(raw.get("default_weight_g", 0), f"{path}.default_weight_g", 0)
    weights_raw = raw.get("weights", {})
    if not isinstance(weights_raw, Mapping):
        raise OrderConfigError(f"{path}.weights", "must map each SKU to its grams per unit")
    weights = {str(sku): _int(g, f"{path}.weights.{sku}", 0) for sku, g in weights_raw.items()}
    locations = _locations(raw.get("locations", []), f"{path}.locations")
    zones = _zones(raw.get("zones", []), f"{path}.zones")
    rates = _rates(raw.get("rates", []), f"{path}.rates", locations, {z.name for z in zones})
    return RoutingConfig(
        locations=locations,
        zones=zones,
        rates=rates,
        weights=weights,
        default_weight_g=default_weight,
        currency=currency.upper(),
        rank=rank,
    )


def _mapping(raw: Any, path: str, keys: set[str]) -> None:
    if not isinstance(raw, Mapping):
        raise OrderConfigError(path, f"must be a mapping, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in keys)
    if unknown:
        raise OrderConfigError(
            path, f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(keys))}"
        )


def _list(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, list):
        raise OrderConfigError(path, f"must be a list, got {type(raw).__name__}")
    return raw


def _name(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise OrderConfigError(path, "must be a non-empty string")
    return raw


def _int(raw: Any, path: str, minimum: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < minimum:
        raise OrderConfigError(path, f"must be an integer >= {minimum}, got {raw!r}")
    return raw


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise OrderConfigError(path, f"must be true or false, got {raw!r}")
    return raw


def _coord(raw: Any, path: str, limit: float) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise OrderConfigError(path, f"must be a number in degrees, got {raw!r}")
    if not -limit <= raw <= limit:
        raise OrderConfigError(path, f"must be between -{limit:g} and {limit:g}, got {raw!r}")
    return float(raw)


def _country(raw: Any, path: str) -> str:
    if not isinstance(raw, str) or len(raw) != 2 or not raw.isalpha():
        raise OrderConfigError(path, f"must be an ISO 3166-1 alpha-2 code such as FR, got {raw!r}")
    return raw.upper()


def _rank(raw: Any, path: str) -> tuple[str, ...]:
    items = _list(raw, path)
    for item in items:
        if item not in RANKS:
            raise OrderConfigError(path, f"{item!r} is not one of {', '.join(RANKS)}")
    if len(set(items)) != len(items):
        raise OrderConfigError(path, "names a criterion twice")
    return tuple(items)


def _locations(raw: Any, path: str) -> dict[str, RoutingLocation]:
    out: dict[str, RoutingLocation] = {}
    for i, item in enumerate(_list(raw, path)):
        p = f"{path}[{i}]"
        _mapping(item, p, _LOCATION_KEYS)
        name = _name(item.get("name"), f"{p}.name")
        if name in out:
            raise OrderConfigError(f"{p}.name", f"{name!r} is listed twice")
        lat = _coord(item.get("lat"), f"{p}.lat", 90)
        lon = _coord(item.get("lon"), f"{p}.lon", 180)
        if (lat is None) != (lon is None):
            raise OrderConfigError(p, "give both lat and lon, or neither")
        kind = item.get("kind", "warehouse")
        if kind not in _KINDS:
            raise OrderConfigError(f"{p}.kind", f"must be one of {', '.join(_KINDS)}")
        capacity = item.get("daily_capacity")
        out[name] = RoutingLocation(
            name=name,
            lat=lat,
            lon=lon,
            country=None
            if item.get("country") is None
            else _country(item["country"], f"{p}.country"),
            kind=kind,
            daily_capacity=None if capacity is None else _int(capacity, f"{p}.daily_capacity", 0),
            ship_from_store=_bool(item.get("ship_from_store", True), f"{p}.ship_from_store"),
            pickup=_bool(item.get("pickup", kind == "store"), f"{p}.pickup"),
        )
    return out


def _zones(raw: Any, path: str) -> tuple[Zone, ...]:
    out: list[Zone] = []
    for i, item in enumerate(_list(raw, path)):
        p = f"{path}[{i}]"
        _mapping(item, p, _ZONE_KEYS)
        name = _name(item.get("name"), f"{p}.name")
        if any(z.name == name for z in out):
            raise OrderConfigError(f"{p}.name", f"{name!r} is listed twice")
        countries = _list(item.get("countries"), f"{p}.countries")
        if not countries:
            raise OrderConfigError(f"{p}.countries", "name at least one country")
        prefixes = _list(item.get("postal_prefixes", []), f"{p}.postal_prefixes")
        out.append(
            Zone(
                name=name,
                countries=frozenset(
                    _country(c, f"{p}.countries[{j}]") for j, c in enumerate(countries)
                ),
                postal_prefixes=tuple(
                    _name(x, f"{p}.postal_prefixes[{j}]").replace(" ", "").upper()
                    for j, x in enumerate(prefixes)
                ),
            )
        )
    return tuple(out)


def _rates(
    raw: Any, path: str, locations: Mapping[str, RoutingLocation], zones: set[str]
) -> dict[tuple[str, str], tuple[Rate, ...]]:
    bands: dict[tuple[str, str], dict[int, int]] = {}
    for i, item in enumerate(_list(raw, path)):
        p = f"{path}[{i}]"
        _mapping(item, p, _RATE_KEYS)
        location = _name(item.get("location", ANY_LOCATION), f"{p}.location")
        if location != ANY_LOCATION and location not in locations:
            raise OrderConfigError(
                f"{p}.location",
                f"{location!r} is not one of locations[].name (or '*' for every location)",
            )
        zone = _name(item.get("zone"), f"{p}.zone")
        if zone not in zones:
            raise OrderConfigError(f"{p}.zone", f"{zone!r} is not one of zones[].name")
        up_to = _int(item.get("up_to_g"), f"{p}.up_to_g", 1)
        cost = _int(item.get("cost"), f"{p}.cost", 0)
        table = bands.setdefault((location, zone), {})
        if up_to in table:
            raise OrderConfigError(
                p, f"a rate up to {up_to} g from {location} to {zone} is given twice"
            )
        table[up_to] = cost
    return {
        key: tuple(Rate(up_to_g=w, cost=c) for w, c in sorted(table.items()))
        for key, table in bands.items()
    }
