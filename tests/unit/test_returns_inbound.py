"""Returns in: the disposition the channel gives reaches ``return_received``."""

from __future__ import annotations

import asyncio

import aiohttp

from connectors.shopify.inbound import ShopifyInbound
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from tests.fakes.harness import (
    receiver,
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)


def test_woocommerce_returns_count_only_the_units_woocommerce_restocked() -> None:
    """Given a completed order of 3 chairs refunded twice (1 unit restocked, then 2 units
    without restock) and a processing order of 2 tables refunded with restock then marked
    refunded, when their order.updated arrive (refunds listed newest first, as Woo does),
    then the first gives one resellable return of 1 and nothing for the 2 not restocked;
    the second releases its units and returns nothing (they never left)."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            inbound = WooInbound(woo_mapping(), ("woo-secret",), woo_client(session, fake))
            async with receiver(inbound) as rx:
                target = rx.url("woocommerce")
                done = fake.place_order([(1, 3)], status="completed")
                line = done["line_items"][0]["id"]
                fake.refund(done["id"], [(line, 1)], restock=True)
                fake.refund(done["id"], [(line, 2)], restock=False)
                await fake.deliver("order.updated", done, target=target)
                open_order = fake.place_order([(2, 2)])
                await fake.deliver("order.created", open_order, target=target)
                fake.refund(open_order["id"], [(open_order["line_items"][0]["id"], 2)])
                fake.set_status(open_order["id"], "refunded")
                await fake.deliver("order.updated", open_order, target=target)
                got = [
                    (e["type"], e["sku"], e["qty"], e["disposition"])
                    for e in rx.published.events
                    if e["type"] in ("return_received", "order_cancelled")
                ]
                assert got == [
                    ("return_received", "chair", 1, "resellable"),
                    ("order_cancelled", "table", 0, None),
                    ("order_cancelled", "table", 2, None),
                ]

    asyncio.run(scenario())


def test_shopify_return_dispositions_become_returns_with_their_disposition_once() -> None:
    """Given an order of 4 chairs and 1 table, returned, when Shopify disposes 1 chair
    restocked at location 2, 1 chair processing required, 1 chair not restocked, 1 chair
    missing and the table restocked, and the webhook is redelivered, then the receiver
    publishes resellable 1 chair at lyon, quarantine 1, damaged 1, resellable 1 table,
    nothing for the missing unit, each once, for the order."""

    async def scenario() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            inbound = ShopifyInbound(
                shopify_mapping(), ("shopify-secret",), shopify_client(session, fake)
            )
            async with receiver(inbound) as rx:
                target = rx.url("shopify")
                order = fake.place_order([(10, 4), (20, 1)])
                chair, table = (li["id"] for li in order["line_items"])
                rfo = fake.create_return(order["id"], [chair, table])
                back = {line: rline for rline, line in fake.returns[rfo]["lines"].items()}
                payload = fake.dispose(
                    rfo,
                    [
                        (back[chair], 1, "restocked", 2),
                        (back[chair], 1, "processing_required", 1),
                        (back[chair], 1, "not_restocked", 1),
                        (back[chair], 1, "missing", None),
                        (back[table], 1, "restocked", 1),
                    ],
                )
                sent = await fake.deliver(
                    "reverse_fulfillment_orders/dispose", payload, target=target
                )
                assert sent.statuses == [200]
                assert await fake.redeliver(sent, target=target) == 200
                got = [
                    (e["type"], e["sku"], e["qty"], e["disposition"], e["location"], e["order_id"])
                    for e in rx.published.events
                ]
                oid = f"shopify:{order['id']}"
                assert got == [
                    ("return_received", "chair", 1, "resellable", "lyon", oid),
                    ("return_received", "chair", 1, "quarantine", "paris", oid),
                    ("return_received", "chair", 1, "damaged", "paris", oid),
                    ("return_received", "table", 1, "resellable", "paris", oid),
                ]

    asyncio.run(scenario())
