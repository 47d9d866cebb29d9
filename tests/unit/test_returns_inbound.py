"""Returns in: the disposition the channel gives reaches ``return_received``."""

from __future__ import annotations

import asyncio

import aiohttp

from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from tests.fakes.harness import receiver, seed_woo, woo_client, woo_mapping


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
