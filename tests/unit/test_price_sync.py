"""Price propagation against the in-process Shopify and WooCommerce fakes: each channel's
rules applied, the floor, coalescing, a throttle, a partial batch failure, price drift."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
from prometheus_client import REGISTRY

from connectors.framework.engine import LanePolicy
from connectors.framework.price_sync import PriceChannel, PriceSync
from connectors.framework.pricing import BelowFloor, PriceRule, Rates
from connectors.framework.types import PushItem
from connectors.price_writers import writer_for
from connectors.shopify.mapping import ShopifyItem, ShopifyMapping
from connectors.shopify.prices import ShopifyPrices
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.prices import WooPrices
from schemas.prices import price_change
from tests.fakes.harness import SKUS, seed_woo, shopify_client, woo_client, woo_mapping

FAST = LanePolicy(coalesce_s=0.02, backoff_base_s=0.05, backoff_cap_s=0.2, max_attempts=5)
RATES = Rates(base="EUR", date="2026-11-30", rates={"USD": Decimal("1.10")})
SHOPIFY_RULE = PriceRule(currency="USD", markup_pct=Decimal(10), rounding="0.99")
WOO_RULE = PriceRule(rounding="whole", floor_margin_pct=Decimal(25))


def shop_mapping() -> ShopifyMapping:
    return ShopifyMapping(
        shop="demo.myshopify.com",
        push_location_id=1,
        items=tuple(
            ShopifyItem(sku, 100 + n, 10 * n, product_id=min(n, 4)) for n, sku in enumerate(SKUS, 1)
        ),
        channel="shopify",
    )


@dataclass
class Alerts:
    floors: list[tuple[str, BelowFloor]] = field(default_factory=list)
    drifts: list[tuple[str, str, int, int]] = field(default_factory=list)
    dead: list[tuple[PushItem, str]] = field(default_factory=list)

    async def floor(self, channel: str, why: BelowFloor) -> None:
        self.floors.append((channel, why))

    async def drift(self, lane: str, sku: str, ours: int, theirs: int, source: str) -> None:
        self.drifts.append((lane, sku, ours, theirs))

    async def dead_letter(self, item: PushItem, error: str) -> None:
        self.dead.append((item, error))


@dataclass
class Rig:
    shop: FakeShopify
    woo: FakeWooCommerce
    sync: PriceSync
    alerts: Alerts


@asynccontextmanager
async def rig(shop_rule: PriceRule = SHOPIFY_RULE) -> AsyncIterator[Rig]:
    async with (
        FakeShopify(seed=1) as shop,
        FakeWooCommerce(seed=2) as woo,
        aiohttp.ClientSession() as session,
    ):
        for n, sku in enumerate(SKUS, 1):
            shop.add_item(100 + n, 10 * n, sku, 1, 5, product_id=min(n, 4))  # desk+sofa: one
        seed_woo(woo)
        shop_writer = writer_for("shopify", shopify_client(session, shop), shop_mapping())
        woo_writer = writer_for("woocommerce", woo_client(session, woo), woo_mapping())
        assert isinstance(shop_writer, ShopifyPrices) and isinstance(woo_writer, WooPrices)
        shop_writer.currency = "USD"
        alerts = Alerts()
        sync = PriceSync(
            [
                PriceChannel("shopify", shop_rule, shop_writer, frozenset(SKUS), FAST),
                PriceChannel("woocommerce", WOO_RULE, woo_writer, frozenset(SKUS), FAST),
            ],
            RATES,
            floor_alert=alerts.floor,
            drift_alert=alerts.drift,
            dead_letter=alerts.dead_letter,
            seed=3,
        )
        sync.start()
        try:
            yield Rig(shop, woo, sync, alerts)
        finally:
            await sync.stop()


def change(sku: str, amount: int, version: int, cost: int | None = None) -> dict[str, object]:
    return price_change(sku, amount, "EUR", version=version, source="test", cost_minor=cost)


def synchronous(test: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    @functools.wraps(test)
    def run() -> None:
        asyncio.run(test())

    return run


def retried(lane: str) -> float:
    return (
        REGISTRY.get_sample_value("stockflow_connector_push_retries_total", {"channel": lane})
        or 0.0
    )


def woo_price(woo: FakeWooCommerce, sku: str) -> str:
    return next(str(p["regular_price"]) for p in woo.products.values() if p["sku"] == sku)


@synchronous
async def test_a_price_change_reaches_both_shops_with_each_channels_rules() -> None:
    """Given Shopify in USD +10 % .99 and WooCommerce in EUR whole, when chair is set to
    19.99 EUR, then Shopify shows 23.99 USD and WooCommerce 20.00."""
    async with rig() as r:
        assert await r.sync.take(change("chair", 1999, 1)) == 2
        await r.sync.engine.drained()
        assert r.shop.prices[10] == "23.99"  # 19.99 x 1.10 = 21.99, +10 % = 24.19 → 23.99
        assert woo_price(r.woo, "chair") == "20.00"


@synchronous
async def test_a_price_below_the_floor_is_blocked_with_an_alert() -> None:
    """Given WooCommerce's floor of cost + 25 %, when table is priced 11.00 with a cost of
    10.00, then WooCommerce keeps its price and an alert names the floor, while Shopify
    (no floor) gets it."""
    async with rig() as r:
        await r.sync.take(change("table", 1500, 1, cost=1000))
        await r.sync.engine.drained()
        assert woo_price(r.woo, "table") == "15.00"
        await r.sync.take(change("table", 1100, 2, cost=1000))
        await r.sync.engine.drained()
        assert woo_price(r.woo, "table") == "15.00"
        assert [(c, w.sku, w.price_minor, w.floor_minor) for c, w in r.alerts.floors] == [
            ("woocommerce", "table", 1100, 1250)
        ]
        assert r.shop.prices[20] == "12.99"  # 11.00 x 1.10 x 1.10 = 13.31 → 12.99


@synchronous
async def test_quick_changes_coalesce_and_a_throttle_only_delays() -> None:
    """Given Shopify throttling the next request, when lamp changes three times at once,
    then only the newest price is written, once, after the throttle."""
    async with rig() as r:
        r.shop.fail_next(1, status=429, retry_after=0.1)
        for version, amount in ((1, 1000), (2, 1100), (3, 1200)):
            await r.sync.take(change("lamp", amount, version))
        await r.sync.engine.drained()
        assert r.shop.price_writes == [(30, "14.99")]  # 12.00 x 1.1 x 1.1 = 14.52 → 14.99
        assert r.alerts.dead == []


@synchronous
async def test_a_partial_batch_failure_refuses_only_the_bad_items() -> None:
    """Given a Shopify product whose desk variant the shop no longer has (the mutation is all
    or nothing), and a WooCommerce product that refuses its update, when desk and sofa (same
    Shopify product) are priced together, then sofa is written on both and only desk is
    refused (no retry storm)."""
    bad = PriceRule(currency="USD", rounding="none")
    async with rig(bad) as r:
        del r.shop.products[40]  # desk's variant vanished on Shopify's side
        r.woo.item_error(4, "woocommerce_rest_invalid_product", "Invalid product.", 400)
        retries = retried("shopify:prices")
        await r.sync.take(change("desk", 1000, 1))
        await r.sync.take(change("sofa", 2000, 1))  # coalesced: one mutation for both
        await r.sync.engine.drained()
        assert retried("shopify:prices") == retries  # sofa sent again at once, not retried
        assert r.shop.prices[50] == "22.00"
        assert r.shop.prices[40] == "0.00"
        assert woo_price(r.woo, "sofa") == "20.00"
        assert woo_price(r.woo, "desk") == ""
        assert r.sync.engine.lanes["shopify:prices"].acked.keys() == {"sofa"}


@synchronous
async def test_price_drift_is_alerted_and_our_price_pushed_again() -> None:
    """Given chair priced on both shops, when a merchant edits it on WooCommerce and the
    prices are reconciled, then a drift alert is raised and WooCommerce shows ours again."""
    async with rig() as r:
        await r.sync.take(change("chair", 1999, 1))
        await r.sync.engine.drained()
        r.woo.set_price(1, "5.00")
        drifting = await r.sync.reconcile()
        await r.sync.engine.drained()
        assert drifting == {"shopify": 0, "woocommerce": 1}
        assert r.alerts.drifts == [("woocommerce:prices", "chair", 2000, 500)]
        assert woo_price(r.woo, "chair") == "20.00"


@synchronous
async def test_a_scheduled_price_is_pushed_when_due() -> None:
    """Given a price valid from the future, when taken, then nothing moves until it is due,
    then it is pushed."""
    async with rig() as r:
        future = price_change(
            "sofa", 3000, "EUR", version=1, source="test", valid_from=10_000, at=0
        )
        assert await r.sync.take(future, now=5_000) == 0
        await asyncio.sleep(0.05)
        assert woo_price(r.woo, "sofa") == ""
        assert await r.sync.tick(now=10_000) == 2
        await r.sync.engine.drained()
        assert woo_price(r.woo, "sofa") == "30.00"
