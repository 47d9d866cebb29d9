"""WooCommerce in: ping, signatures, normalisation, dedupe without stable delivery ids, polling."""

from __future__ import annotations

import asyncio

import aiohttp

from connectors.framework.polling import Poller
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound, order_events
from tests.fakes.harness import receiver, seed_woo, woo_client, woo_mapping

SECRETS = ("woo-secret",)


def test_the_unsigned_ping_sent_when_a_webhook_is_saved_gets_200_and_no_event() -> None:
    """Given the receiver, when WooCommerce pings with its form body and no signature, then
    the answer is 200 and nothing is published."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, receiver(WooInbound(woo_mapping(), SECRETS)) as rx:
            assert await fake.ping(target=rx.url("woocommerce")) == 200
            assert rx.published.events == []

    asyncio.run(scenario())


def test_an_order_is_placed_per_line_and_a_cancelled_order_releases_every_line() -> None:
    """Given an order of two lines in processing, when normalised, then there is one
    order_placed per line; once cancelled, one order_cancelled with qty 0 per line."""
    fake = FakeWooCommerce()
    seed_woo(fake)
    order = fake.place_order([(1, 2), (2, 1)])
    placed = order_events(order, woo_mapping())
    assert [(e["type"], e["sku"], e["qty"], e["location"]) for e in placed] == [
        ("order_placed", "chair", 2, None),
        ("order_placed", "table", 1, None),
    ]
    cancelled = order_events(fake.set_status(order["id"], "cancelled"), woo_mapping())
    assert [(e["type"], e["qty"]) for e in cancelled] == [("order_cancelled", 0)] * 2


def test_bad_signatures_get_401_and_redeliveries_with_new_delivery_ids_publish_once() -> None:
    """Given a signed order.created, when it is sent twice (a new delivery id each time), once
    with a wrong secret and once tampered, then the event is published once and the bad ones
    get 401."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, receiver(WooInbound(woo_mapping(), SECRETS)) as rx:
            seed_woo(fake)
            target = rx.url("woocommerce")
            order = fake.place_order([(1, 3)])
            first = await fake.deliver("order.created", order, target=target)
            again = await fake.deliver("order.created", order, target=target)
            wrong = await fake.deliver("order.created", order, target=target, secret="nope")
            assert (
                first.headers["X-WC-Webhook-Delivery-ID"]
                != again.headers["X-WC-Webhook-Delivery-ID"]
            )
            assert (first.statuses, again.statuses, wrong.statuses) == ([200], [200], [401])
            assert (
                await fake.post(
                    target, first.body.replace(b'"quantity":3', b'"quantity":1'), first.headers
                )
                == 401
            )
            assert [(e["sku"], e["qty"]) for e in rx.published.events] == [("chair", 3)]

    asyncio.run(scenario())


def test_a_stale_order_updated_after_a_newer_one_changes_nothing() -> None:
    """Given an order delivered as cancelled, when its older processing state arrives late,
    then nothing more is published."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, receiver(WooInbound(woo_mapping(), SECRETS)) as rx:
            seed_woo(fake)
            order = fake.place_order([(1, 1)])
            old = dict(order)
            await fake.deliver(
                "order.updated",
                fake.set_status(order["id"], "cancelled"),
                target=rx.url("woocommerce"),
            )
            await fake.deliver("order.updated", old, target=rx.url("woocommerce"))
            assert [e["type"] for e in rx.published.events] == ["order_cancelled"]

    asyncio.run(scenario())


def test_refunds_are_fetched_and_release_or_return_stock_by_order_status() -> None:
    """Given a processing order refunded one unit and a completed order refunded two units
    with refunds_restock on, when their order.updated arrive, then the first releases one
    reserved unit and the second is a resellable return of two."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            inbound = WooInbound(
                woo_mapping(refunds_restock=True), SECRETS, woo_client(session, fake)
            )
            async with receiver(inbound) as rx:
                open_order = fake.place_order([(1, 3)])
                done = fake.place_order([(2, 2)], status="completed")
                fake.refund(open_order["id"], [(open_order["line_items"][0]["id"], 1)])
                fake.refund(done["id"], [(done["line_items"][0]["id"], 2)])
                for order in (open_order, done):
                    await fake.deliver("order.updated", order, target=rx.url("woocommerce"))
                refunds = [e for e in rx.published.events if e["reason"] == "refund"]
                assert [(e["type"], e["sku"], e["qty"], e["disposition"]) for e in refunds] == [
                    ("order_cancelled", "chair", 1, None),
                    ("return_received", "table", 2, "resellable"),
                ]

    asyncio.run(scenario())


def test_polling_picks_up_orders_whose_webhook_never_came_and_repeats_nothing() -> None:
    """Given one order delivered by webhook and two never delivered (Woo does not retry),
    when the poller runs twice, then all three are published once."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            inbound = WooInbound(woo_mapping(), SECRETS, woo_client(session, fake))
            async with receiver(inbound) as rx:
                first = fake.place_order([(1, 1)])
                await fake.deliver("order.created", first, target=rx.url("woocommerce"))
                fake.place_order([(2, 2)])
                fake.place_order([(3, 3)])
                poller = Poller(inbound, rx.intake, checkpoint_ms=0, overlap_s=2)
                assert await poller.poll_once() == 3
                await poller.poll_once()
                assert sorted(e["sku"] for e in rx.published.events) == ["chair", "lamp", "table"]

    asyncio.run(scenario())
