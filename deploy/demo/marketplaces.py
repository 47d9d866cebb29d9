"""Amazon and a Mirakl-run marketplace in the demo's rush: their buyers take the last chairs at
the same moment as the shops' and the till's.

Amazon sells what its listing shows (which lags: writes are applied asynchronously) and asks
no acceptance: an order the ledger cannot serve is refused by the ledger and flagged for the
seller. The Mirakl operator holds each order until the seller answers: it is accepted only
when the ledger reserved it, refused otherwise (OR21), and the refused units go back on the
operator's offer."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from connectors.amazon.limits import RATES
from connectors.testing.amazon import FakeAmazon
from connectors.testing.mirakl import FakeMirakl

AMAZON = "amazon"
MIRAKL = "mirakl-leroymerlin"
MIRAKL_OPERATOR = "leroymerlin"
MIRAKL_KEY = "demo-mirakl-key"
# Amazon's documented rates, but polling: a demo's day cannot wait a minute per poll (the fake
# announces its rates in x-amzn-RateLimit-Limit and the connector follows them).
DEMO_RATES = {**RATES, "getOrders": (10.0, 20.0), "getOrderItems": (20.0, 30.0)}
RUSH_ORDERS = 15  # per marketplace


class Marketplaces:
    """The two marketplaces' fakes, on ports chosen before the configurations."""

    def __init__(self, amazon_port: int, mirakl_port: int) -> None:
        self.amazon = FakeAmazon(port=amazon_port, apply_delay_s=0.2, rates=DEMO_RATES)
        self.mirakl = FakeMirakl(
            port=mirakl_port,
            operator=MIRAKL_OPERATOR,
            api_key=MIRAKL_KEY,
            or11_interval_s=0.5,
            import_delay_s=0.2,
        )

    def add(self, sku: str) -> None:
        self.amazon.add_listing(sku, 0)
        self.mirakl.add_offer(sku, 0, price="129.00")

    def connector_channels(self, sku: str) -> list[dict[str, Any]]:
        """The two channels of the connectors' configuration (both polled, no webhooks)."""
        a, m = self.amazon, self.mirakl
        return [
            {
                "name": AMAZON,
                "kind": "amazon",
                "base_url": a.url,
                "credentials": {
                    "client_id": a.client_id,
                    "client_secret": a.client_secret,
                    "refresh_token": a.refresh_token,
                },
                "mapping": {
                    "seller_id": a.seller_id,
                    "marketplace_id": a.marketplace_id,
                    "skus": [sku],
                    "fba_location": "amazon-fba",
                    "token_url": f"{a.url}/auth/o2/token",
                    "confirm": {"poll_s": 0.1, "wait_s": 5},
                },
                "sync": {"coalesce_ms": 50},
                "poll_interval_s": 0.5,
                "poll_lookback_s": 60,
            },
            {
                "name": MIRAKL,
                "kind": "mirakl",
                "base_url": m.url,
                "credentials": {"api_key": MIRAKL_KEY},
                "mapping": {
                    "operator": MIRAKL_OPERATOR,
                    "shop": str(m.shop_id),
                    "write": "of24",
                    "import": {"poll_s": 0.1, "wait_s": 5},
                    "offers": [{"sku": sku, "price": "129.00"}],
                },
                "limits": {"or11_interval_s": 0.5, "throttle_pause_s": 0.5},
                "sync": {"coalesce_ms": 50},
                "poll_interval_s": 0.5,
                "poll_lookback_s": 60,
            },
        ]


class MarketplaceRush:
    """Orders on both marketplaces during the rush, and what became of them."""

    def __init__(self, shops: Marketplaces, sku: str, rng: random.Random) -> None:
        self.shops = shops
        self.sku = sku
        self.rng = rng
        self.placed: Counter[str] = Counter()  # orders the marketplace took, per channel
        self.units: Counter[str] = Counter()
        self.not_offered = 0  # Amazon orders its listing could not take (it showed fewer)
        self.mirakl_orders: list[str] = []

    async def amazon(self, placed: dict[str, int]) -> None:
        for _ in range(RUSH_ORDERS):
            qty = self.rng.randint(1, 2)
            try:
                self.shops.amazon.place_order([(self.sku, qty)])
                self.placed[AMAZON] += 1
                self.units[AMAZON] += qty
                placed[AMAZON] = placed.get(AMAZON, 0) + 1
            except ValueError:  # Amazon sells no more than its listing shows
                self.not_offered += 1
            await asyncio.sleep(self.rng.uniform(0.05, 0.15))

    async def mirakl(self, placed: dict[str, int]) -> None:
        for _ in range(RUSH_ORDERS):
            qty = self.rng.randint(1, 2)
            order = self.shops.mirakl.place_order([(self.sku, qty)])
            self.mirakl_orders.append(order["order_id"])
            self.placed[MIRAKL] += 1
            self.units[MIRAKL] += qty
            placed[MIRAKL] = placed.get(MIRAKL, 0) + 1
            await asyncio.sleep(self.rng.uniform(0.05, 0.15))

    def answered(self) -> tuple[int, int, int]:
        """Mirakl orders (accepted, refused, still waiting)."""
        states = Counter(self.shops.mirakl.orders[oid]["order_state"] for oid in self.mirakl_orders)
        waiting = states.get("WAITING_ACCEPTANCE", 0)
        refused = states.get("REFUSED", 0)
        return len(self.mirakl_orders) - waiting - refused, refused, waiting

    def lines(self, accepted_units: Counter[str], refused: Counter[str]) -> list[str]:
        """What each marketplace did in the rush; ``accepted_units``/``refused``: the
        ledger's decisions per channel (units reserved, lines refused)."""
        ok, no, _ = self.answered()
        return [
            f"Amazon: {self.placed[AMAZON]} orders placed on its listing ({self.units[AMAZON]}"
            f" units; {self.not_offered} more found the listing short), {accepted_units[AMAZON]}"
            f" units reserved, {refused[AMAZON]} refused by the ledger (flagged for the seller:"
            " Amazon had sold on a listing not yet lowered)",
            f"Mirakl ({MIRAKL_OPERATOR}): {self.placed[MIRAKL]} orders awaiting acceptance, "
            f"{ok} accepted (OR21, {accepted_units[MIRAKL]} units reserved), {no} refused with"
            " nothing kept reserved",
        ]
