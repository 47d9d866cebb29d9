"""Shipments in: Shopify fulfilments and WooCommerce ``completed`` become ``order_shipped``,
once per fact, whether by webhook, redelivery, order payload or poll."""

from __future__ import annotations

import asyncio

import aiohttp

from connectors.framework.polling import Poller
from connectors.shopify.fulfilment import fulfilment_events
from connectors.shopify.inbound import ShopifyInbound, order_events
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from connectors.woocommerce.inbound import order_events as woo_order_events
from tests.fakes.harness import (
    receiver,
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)


def _shipped(events: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(e["sku"], e["qty"], e["location"]) for e in events if e["type"] == "order_shipped"]


def test_a_partial_fulfilment_ships_its_own_quantities_at_its_mapped_location() -> None:
    """Given an order of 3 chairs and 2 tables, when Shopify fulfils 2 chairs from location
    2 (lyon), then the fulfilment gives one order_shipped of 2 chairs at lyon for the order,
    with an id made of the fulfilment and line ids; a second fulfilment of the rest gives
    its own 1 chair and 2 tables."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(10, 3), (20, 2)])
    chair = order["line_items"][0]["id"]
    first = fake.fulfil(order["id"], [(chair, 2)], location_id=2)
    events = fulfilment_events(first, shopify_mapping())
    assert _shipped(events) == [("chair", 2, "lyon")]
    assert events[0]["order_id"] == f"shopify:{order['id']}"
    assert events[0]["event_id"] == (
        f"shopify/demo.myshopify.com/fulfillment/{first['id']}/line/{chair}/shipped"
    )
    assert order["fulfillment_status"] == "partial"
    second = fake.fulfil(order["id"], location_id=1)
    assert _shipped(fulfilment_events(second, shopify_mapping())) == [
        ("chair", 1, "paris"),
        ("table", 2, "paris"),
    ]
    assert order["fulfillment_status"] == "fulfilled"


def test_an_order_payload_carries_the_same_shipped_events_as_the_fulfilment_webhook() -> None:
    """Given an order partially fulfilled then cancelled, when its orders/updated payload is
    normalised, then the shipped events have the fulfilment webhook's ids, and they come
    before the cancellation (which releases only what was not shipped)."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(10, 3)])
    fulfilment = fake.fulfil(order["id"], [(order["line_items"][0]["id"], 1)])
    from_webhook = fulfilment_events(fulfilment, shopify_mapping())
    fake.cancel_order(order["id"], later_s=5)
    events = order_events(order, shopify_mapping())
    assert [e["type"] for e in events] == ["order_shipped", "order_cancelled"]
    assert events[0]["event_id"] == from_webhook[0]["event_id"]


def test_only_a_successful_fulfilment_ships() -> None:
    """Given an open (not yet shipped) fulfilment, when normalised, then nothing ships; when
    fulfillments/update says success, then its lines ship; cancelled ones never do."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(10, 2)])
    opened = fake.fulfil(order["id"], status="open")
    assert fulfilment_events(opened, shopify_mapping()) == []
    done = fake.fulfilment_status(order["id"], opened["id"], "success")
    assert _shipped(fulfilment_events(done, shopify_mapping())) == [("chair", 2, "paris")]
    cancelled = fake.fulfilment_status(order["id"], opened["id"], "cancelled")
    assert fulfilment_events(cancelled, shopify_mapping()) == []


def test_fulfilment_webhooks_redelivered_and_polled_publish_each_shipment_once() -> None:
    """Given an order placed and fulfilled in two parts on the fake, when the fulfillments/
    create webhooks are sent, one redelivered, orders/partially_fulfilled and orders/fulfilled
    sent, and the orders then polled, then the receiver publishes one order_placed and
    exactly two order_shipped (2 + 1 chairs)."""

    async def scenario() -> None:
        mapping = shopify_mapping()
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            inbound = ShopifyInbound(mapping, ("shopify-secret",), shopify_client(session, fake))
            async with receiver(inbound) as rx:
                target = rx.url("shopify")
                order = fake.place_order([(10, 3)])
                line = order["line_items"][0]["id"]
                await fake.deliver("orders/create", order, target=target)
                first = await fake.deliver(
                    "fulfillments/create", fake.fulfil(order["id"], [(line, 2)]), target=target
                )
                await fake.deliver("orders/partially_fulfilled", order, target=target)
                assert await fake.redeliver(first, target=target) == 200
                await fake.deliver("fulfillments/create", fake.fulfil(order["id"]), target=target)
                await fake.deliver("orders/fulfilled", order, target=target)
                await Poller(inbound, rx.intake, checkpoint_ms=0, overlap_s=0).poll_once()
                types = [(e["type"], e["qty"]) for e in rx.published.events]
                assert types == [("order_placed", 3), ("order_shipped", 2), ("order_shipped", 1)]

    asyncio.run(scenario())


def test_woocommerce_completed_ships_and_cancelled_refunded_failed_release() -> None:
    """Given Woo orders, when one is processing or on-hold it is placed only; when completed
    its lines ship (qty 0: the whole reservation); cancelled, refunded and failed release."""
    fake = FakeWooCommerce()
    seed_woo(fake)
    m = woo_mapping()
    order = fake.place_order([(1, 2), (2, 1)])
    for status in ("processing", "on-hold"):
        events = woo_order_events(fake.set_status(order["id"], status), m)
        assert {e["type"] for e in events} == {"order_placed"}
    done = woo_order_events(fake.set_status(order["id"], "completed"), m)
    assert [(e["type"], e["sku"], e["qty"]) for e in done] == [
        ("order_placed", "chair", 2),
        ("order_shipped", "chair", 0),
        ("order_placed", "table", 1),
        ("order_shipped", "table", 0),
    ]
    line = order["line_items"][0]["id"]
    assert (
        done[1]["event_id"]
        == f"woocommerce/https://shop.example//order/{order['id']}/line/{line}/shipped"
    )
    for status in ("cancelled", "refunded", "failed"):
        other = fake.place_order([(1, 1)])
        events = woo_order_events(fake.set_status(other["id"], status), m)
        assert [(e["type"], e["qty"], e["reason"]) for e in events] == [
            ("order_cancelled", 0, status)
        ]


def test_a_woocommerce_order_completed_by_webhook_and_poll_ships_once() -> None:
    """Given a Woo order created by webhook, when it is completed, the order.updated webhook
    arrives twice (two delivery ids) and the orders are polled, then one order_shipped."""

    async def scenario() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            inbound = WooInbound(woo_mapping(), ("woo-secret",), woo_client(session, fake))
            async with receiver(inbound) as rx:
                target = rx.url("woocommerce")
                order = fake.place_order([(1, 2)])
                await fake.deliver("order.created", order, target=target)
                fake.set_status(order["id"], "completed")
                await fake.deliver("order.updated", order, target=target)
                await fake.deliver("order.updated", order, target=target)
                await Poller(inbound, rx.intake, checkpoint_ms=0, overlap_s=0).poll_once()
                types = [e["type"] for e in rx.published.events]
                assert types == ["order_placed", "order_shipped"]

    asyncio.run(scenario())
