"""The pre-order figure reaches the channels: the level names the channel when only its
pre-order figure changed, the push item carries it, WooCommerce shows it as backorders."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from connectors.framework.engine import LanePolicy, OutboundEngine, items_from_level
from connectors.shopify.mapping import ShopifyItem, ShopifyMapping
from connectors.shopify.outbound import ShopifyPusher
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.outbound import PREORDER_META, WooPusher
from schemas.events import stock_event
from streams.ledger import apply, parse_config
from tests.fakes.harness import (
    SKUS,
    seed_shopify,
    seed_woo,
    shopify_client,
    woo_client,
    woo_mapping,
)

FAST = LanePolicy(coalesce_s=0.02, backoff_base_s=0.05, backoff_cap_s=0.2, max_attempts=20)
T = 1_795_000_000_000


def level(
    version: int, qty: int, preorder: int | None, channel: str = "woocommerce"
) -> dict[str, Any]:
    return {
        "sku": SKUS[0],
        "version": version,
        "channels": {channel: qty},
        "changed_channels": [channel],
        "default_quantity": qty,
        "locations": {"wh": qty},
        "preorders": {} if preorder is None else {channel: preorder},
        "cause_event_id": f"e{version}",
        "occurred_at": int(time.time() * 1000),
        "at": 0,
    }


def test_a_purchase_order_alone_changes_the_preorder_figure_and_names_the_channel() -> None:
    """Given a SKU with an allowance of 4 on woocommerce and none on amazon, when only a
    purchase order of 10 arrives (no channel quantity changes), then a level is emitted
    whose changed_channels is woocommerce alone, with preorders {woocommerce: 4}, and the
    connectors' push item for it carries preorder 4 (amazon's none)."""
    config = parse_config(
        {
            "channels": [{"name": "woocommerce"}, {"name": "amazon"}],
            "preorders": [{"sku": "desk", "channel": "woocommerce", "cap": 4}],
        }
    )
    state, _ = apply(None, stock_event("receipt", "desk", "e1", T, qty=1), config, T)
    event = stock_event(
        "purchase_ordered", "desk", "e2", T + 1, qty=10, source_ref="PO-1", expected_on=20_800
    )
    _, out = apply(state, event, config, T + 1)
    assert out.level is not None
    assert out.level["changed_channels"] == ["woocommerce"]
    assert out.level["preorders"] == {"woocommerce": 4}
    [item] = items_from_level(out.level, ["woocommerce", "amazon"])
    assert (item.channel, item.quantity, item.preorder) == ("woocommerce", 1, 4)
    [other] = items_from_level({**out.level, "changed_channels": ["amazon"]}, ["amazon"])
    assert other.preorder is None


def test_woocommerce_allows_backorders_while_units_may_be_pre_sold() -> None:
    """Given a WooCommerce product, when a level says 0 in stock with 3 units to pre-sell,
    then the product is written with backorders notify, stock 0, stock_status onbackorder
    and the allowance in its meta; when the allowance is used up (0), backorders go back to
    no and it is out of stock; a level without pre-orders leaves backorders alone."""

    async def scenario() -> None:
        async with FakeWooCommerce(seed=2) as woo, aiohttp.ClientSession() as session:
            seed_woo(woo)
            pusher = WooPusher(woo_client(session, woo), woo_mapping())
            async with OutboundEngine([pusher], policies={"woocommerce": FAST}) as engine:
                product = woo.products[1]
                engine.offer(level(1, 0, 3))
                await engine.drained()
                assert (product["stock_quantity"], product["backorders"]) == (0, "notify")
                assert product["stock_status"] == "onbackorder"
                assert product["meta_data"][0]["key"] == PREORDER_META
                assert product["meta_data"][0]["value"] == "3"
                engine.offer(level(2, 0, 0))
                await engine.drained()
                assert (product["backorders"], product["stock_status"]) == ("no", "outofstock")
                assert product["meta_data"][0]["value"] == "0"
                product["backorders"] = "yes"  # set by the merchant for another reason
                engine.offer(level(3, 5, None))
                await engine.drained()
                assert (product["stock_quantity"], product["backorders"]) == (5, "yes")

    asyncio.run(scenario())


def test_shopify_sells_on_at_zero_while_units_may_be_pre_sold() -> None:
    """Given a Shopify variant (mapped with its product), when a level says 0 with 2 units
    to pre-sell, then the quantity is written and the variant's inventoryPolicy becomes
    CONTINUE; when the allowance is used up it goes back to DENY; a level with the same
    figure again does not call productVariantsBulkUpdate a second time."""

    async def scenario() -> None:
        async with FakeShopify(seed=1) as shop, aiohttp.ClientSession() as session:
            seed_shopify(shop)
            mapping = ShopifyMapping(
                shop="demo.myshopify.com",
                push_location_id=1,
                items=(ShopifyItem(SKUS[0], 101, 10, product_id=1),),
                locations={1: "paris"},
            )
            pusher = ShopifyPusher(shopify_client(session, shop), mapping)
            async with OutboundEngine([pusher], policies={"shopify": FAST}) as engine:
                engine.offer(level(1, 0, 2, "shopify"))
                await engine.drained()
                assert shop.stock[(101, 1)] == 0
                assert shop.policies == {10: "CONTINUE"}
                engine.offer(level(2, 0, 0, "shopify"))
                await engine.drained()
                assert shop.policies == {10: "DENY"}
                engine.offer(level(3, 1, 0, "shopify"))
                await engine.drained()
                assert shop.stock[(101, 1)] == 1
                assert shop.policy_writes == [(10, "CONTINUE"), (10, "DENY")]

    asyncio.run(scenario())
