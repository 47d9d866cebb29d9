"""Live carrier rates turned into the routing's rate table (``orders.routing.rates``).

Routing runs in the order book's hot path and stays pure: it never calls a carrier. Instead
``stockflow carriers rate-table`` asks the configured carriers, now, for one parcel per weight
band from each ship-from location to a sample address of each zone, and writes the rows the
routing reads (``{location, zone, up_to_g, cost}``, the best rate for the service level in
minor units). Run it on a schedule (a cron, daily) and reload the configuration: routing then
costs its plans with the carriers' current prices instead of a hand-kept table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from connectors.carriers.base import Carrier
from connectors.carriers.config import CarriersConfig
from connectors.carriers.model import Address, Parcel, Rate
from connectors.carriers.shopping import ServiceLevel, shop

DEFAULT_BOX = Parcel(1000, 300, 200, 100)


@dataclass(frozen=True)
class RateRow:
    location: str
    zone: str
    up_to_g: int
    cost: int
    rate: Rate  # the carrier and service behind the cost

    def as_config(self) -> dict[str, object]:
        return {
            "location": self.location,
            "zone": self.zone,
            "up_to_g": self.up_to_g,
            "cost": self.cost,
        }


@dataclass(frozen=True)
class RateTable:
    rows: tuple[RateRow, ...]
    missing: Mapping[str, str] = field(default_factory=dict)  # "location→zone ≤g" → why


async def rate_table(
    carriers: Sequence[Carrier],
    config: CarriersConfig,
    zones: Mapping[str, Address],
    weights_g: Sequence[int],
    level: ServiceLevel | None = None,
) -> RateTable:
    """One row per ship-from location, zone and weight band that some carrier quoted."""
    box = config.default_parcel or DEFAULT_BOX
    chosen = level or config.level_for("default")
    rows: list[RateRow] = []
    missing: dict[str, str] = {}
    for location, ship_from in sorted(config.ship_from.items()):
        for zone, ship_to in sorted(zones.items()):
            for weight in sorted(set(weights_g)):
                quote = await shop(
                    carriers,
                    ship_from,
                    ship_to,
                    [replace(box, weight_g=weight)],
                    chosen,
                    timeout_s=config.quote_timeout_s,
                    currency=config.currency,
                )
                name = f"{location}→{zone} ≤{weight} g"
                if quote.rates:
                    best = quote.rates[0]
                    rows.append(RateRow(location, zone, weight, best.amount_minor, best))
                else:
                    missing[name] = "; ".join(f"{c}: {why}" for c, why in quote.skipped.items())
    return RateTable(tuple(rows), missing)
