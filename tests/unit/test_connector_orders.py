"""Orders from the channels as Order records (``orders: book``): mapping, no personal data,
one path per channel, and dedupe through the intake."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.intake import Intake
from connectors.framework.orders import minor_units
from connectors.framework.types import Delivery
from connectors.server import create_app
from connectors.shopify.client import ShopifyClient
from connectors.shopify.inbound import ShopifyInbound
from connectors.shopify.orders import order_records as shopify_orders
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.inbound import WooInbound
from connectors.woocommerce.orders import order_records as woo_orders
from schemas.codec import single_object_codec
from streams.kernel import topics
from tests.fakes.harness import (
    receiver,
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)

PERSONAL = (
    b"Jeanne",
    b"Martin",
    b"jeanne.martin@example.org",
    b"Oberkampf",
    b"+33612345678",
    b"Hans",
    b"Becker",
    b"hans.becker@example.org",
    b"Torstrasse",
    b"+4930123456",
    b"Berlin",
    b"Paris",
)


def _encoded(record: dict[str, Any]) -> bytes:
    return single_object_codec().encode(topics.ORDERS.value_schema, record)


def _no_personal_data(records: Sequence[dict[str, Any]]) -> None:
    for record in records:
        raw = _encoded(record)
        leaked = [p for p in PERSONAL if p in raw]
        assert leaked == [], f"{record['type']} carries {leaked}"


def test_a_shopify_order_becomes_one_placed_order_with_prices_and_no_personal_data() -> None:
    """Given a Shopify web order of two lines at 19.99 EUR shipped to Paris 75011 with
    coordinates, a customer and the customer's name, email, phone and street, when mapped,
    then one placed Order keyed shopify:<id> carries both lines with 1999 cents EUR, ship-to
    FR 75011 and the coordinates, customer_ref = the customer id, b2c; and the encoded record
    holds none of the name, email, phone or street."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(10, 2), (20, 1)], price="19.99", customer_id=555)
    [placed] = shopify_orders(order, shopify_mapping())
    assert placed["type"] == "placed"
    assert placed["order_id"] == f"shopify:{order['id']}"
    assert placed["event_id"] == f"shopify/demo.myshopify.com/order/{order['id']}/placed"
    assert [(x["sku"], x["qty"], x["unit_price"], x["currency"]) for x in placed["lines"]] == [
        ("chair", 2, 1999, "EUR"),
        ("table", 1, 1999, "EUR"),
    ]
    assert placed["ship_to"] == {
        "country": "FR",
        "postal_code": "75011",
        "lat": 48.8589,
        "lon": 2.3795,
    }
    assert (placed["customer_ref"], placed["customer_type"]) == ("555", "b2c")
    assert placed["by"] == placed["source"] == "connector:shopify"
    _no_personal_data([placed])
    assert b"Jeanne" in _encoded({**placed, "note": "Jeanne"})  # the check can see a leak


def test_a_shopify_company_order_is_b2b_and_an_address_company_alone_is_not() -> None:
    """Given a Shopify B2B order (placed for a company), when mapped, then it is b2b; a
    consumer's order with a company typed in its billing address stays b2c."""
    fake = FakeShopify()
    seed_shopify(fake)
    [placed] = shopify_orders(fake.place_order([(10, 1)], company_id=90), shopify_mapping())
    assert placed["customer_type"] == "b2b"
    consumer = fake.place_order([(10, 1)])
    consumer["billing_address"]["company"] = "Martin SARL"
    assert shopify_orders(consumer, shopify_mapping())[0]["customer_type"] == "b2c"


def test_a_placed_shopify_order_carries_the_highest_risk_shopify_assessed() -> None:
    """Given Shopify orders assessed PENDING + MEDIUM + HIGH, only PENDING, and LOW, when
    their orders/create webhooks reach a book-mode channel with an API client, then the
    placed Orders carry high, no risk, and low; when the API is throttled, the webhook is
    answered 503 (Shopify retries) and the redelivery publishes the order with its risk;
    when the API refuses the app's token, the order is published without a risk."""

    async def scenario() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            client = shopify_client(session, fake)
            inbound = ShopifyInbound(
                shopify_mapping(), ("shopify-secret",), client, orders_mode="book"
            )
            async with receiver(inbound) as rx:
                published: list[dict[str, Any]] = []

                async def orders(records: Sequence[dict[str, Any]]) -> None:
                    published.extend(records)

                rx.intake._publish_orders = orders
                target = rx.url("shopify")
                for risk in (("PENDING", "MEDIUM", "HIGH"), ("PENDING",), ("LOW",)):
                    order = fake.place_order([(10, 1)], risk=risk)
                    await fake.deliver("orders/create", order, target=target)
                assert [o["risk"] for o in published] == ["high", None, "low"]
                fake.fail_next(1, status=503)
                order = fake.place_order([(10, 1)], risk=("MEDIUM",))
                sent = await fake.deliver("orders/create", order, target=target)
                assert sent.statuses == [503, 200]
                assert published[-1]["order_id"] == f"shopify:{order['id']}"
                assert published[-1]["risk"] == "medium"
                # an app whose token Shopify refuses: orders go on, without a risk
                inbound._client = ShopifyClient(session, fake.url, "shpat_revoked")
                order = fake.place_order([(10, 1)], risk=("HIGH",))
                sent = await fake.deliver("orders/create", order, target=target)
                assert sent.statuses == [200]
                assert (published[-1]["order_id"], published[-1]["risk"]) == (
                    f"shopify:{order['id']}",
                    None,
                )

    asyncio.run(scenario())


def test_shopify_fulfilment_cancellation_and_return_are_order_events_in_book_mode() -> None:
    """Given a Shopify channel in book mode, when a fulfilment of 1 chair, a return refund of
    it, a cancel-restock refund and the order's cancellation arrive, then the connector
    publishes shipped (1 chair from paris), returned (1 chair) and cancelled Orders, the
    return stays a return_received StockEvent, and no order_placed/cancelled/shipped
    StockEvent is published."""

    async def scenario() -> None:
        inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",), orders_mode="book")
        async with FakeShopify() as fake, receiver(inbound) as rx:
            seed_shopify(fake)
            published: list[dict[str, Any]] = []

            async def orders(records: Sequence[dict[str, Any]]) -> None:
                published.extend(records)

            rx.intake._publish_orders = orders
            target = rx.url("shopify")
            order = fake.place_order([(10, 2), (20, 1)])
            await fake.deliver("orders/create", order, target=target)
            chair = order["line_items"][0]["id"]
            shipping = fake.fulfil(order["id"], [(chair, 1)])
            await fake.deliver("fulfillments/create", shipping, target=target)
            for payload in (
                fake.refund(order["id"], [(chair, 1)], restock_type="return", location_id=1),
                fake.refund(order["id"], [(chair, 1)], restock_type="cancel", location_id=1),
            ):
                await fake.deliver("refunds/create", payload, target=target)
            await fake.deliver("orders/cancelled", fake.cancel_order(order["id"]), target=target)
            assert [o["type"] for o in published] == ["placed", "shipped", "returned", "cancelled"]
            _, shipped, returned, _ = published
            assert shipped["location"] == "paris"
            assert [(x["sku"], x["qty"]) for x in shipped["lines"]] == [("chair", 1)]
            assert [(x["sku"], x["qty"]) for x in returned["lines"]] == [("chair", 1)]
            assert [e["type"] for e in rx.published.events] == ["return_received"]
            _no_personal_data(published)

    asyncio.run(scenario())


def test_shopify_fulfilment_webhook_is_a_shipped_order_in_book_mode() -> None:
    """Given a Shopify channel in book mode, when a successful fulfilment of 1 of 2 chairs
    from location 2 is delivered, then one shipped Order for that line and quantity at lyon
    is published, with the fulfilment's id in its event id, and no StockEvent."""

    async def scenario() -> None:
        inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",), orders_mode="book")
        async with FakeShopify() as fake, receiver(inbound) as rx:
            seed_shopify(fake)
            published: list[dict[str, Any]] = []

            async def orders(records: Sequence[dict[str, Any]]) -> None:
                published.extend(records)

            rx.intake._publish_orders = orders
            order = fake.place_order([(10, 2)])
            chair = order["line_items"][0]["id"]
            payload = fake.fulfil(order["id"], [(chair, 1)], location_id=2)
            await fake.deliver("fulfillments/create", payload, target=rx.url("shopify"))
            [shipped] = published
            assert shipped["type"] == "shipped" and shipped["location"] == "lyon"
            assert shipped["event_id"].endswith(f"/fulfillment/{payload['id']}/shipped")
            assert [(x["line_id"], x["sku"], x["qty"]) for x in shipped["lines"]] == [
                (str(chair), "chair", 1)
            ]
            assert rx.published.events == []

    asyncio.run(scenario())


def test_a_pos_order_is_a_pickup_and_a_delivered_shipment_a_delivered_order() -> None:
    """Given a Shopify point-of-sale order at location 2 and a web order whose fulfilment
    the carrier later marks delivered, when mapped, then the POS order is a pickup at lyon
    (no ship-to location set for the web one), and the web order's payload gives placed,
    shipped and delivered with the fulfilment's lines."""
    fake = FakeShopify()
    seed_shopify(fake)
    m = shopify_mapping()
    [pos] = shopify_orders(fake.place_order([(10, 1)], location_id=2), m)
    assert (pos["delivery"], pos["pickup_location"]) == ("pickup", "lyon")
    web_order = fake.place_order([(20, 2)])
    fid = fake.fulfil(web_order["id"])["id"]
    fake.shipment_status(web_order["id"], fid, "delivered")
    records = shopify_orders(fake.orders[web_order["id"]], m)
    assert [(o["type"], o["delivery"]) for o in records] == [
        ("placed", "ship"),
        ("shipped", "ship"),
        ("delivered", "ship"),
    ]
    assert records[2]["event_id"].endswith(f"/fulfillment/{fid}/delivered")
    assert [(x["sku"], x["qty"]) for x in records[2]["lines"]] == [("table", 2)]


def test_lines_mode_keeps_per_line_events_and_publishes_no_order() -> None:
    """Given the default (lines) mode, when an order is delivered, then its lines are
    order_placed StockEvents and no Order record is built: one path per channel."""

    async def scenario() -> None:
        inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",))
        async with FakeShopify() as fake, receiver(inbound) as rx:
            seed_shopify(fake)
            order = fake.place_order([(10, 2), (20, 1)])
            await fake.deliver("orders/create", order, target=rx.url("shopify"))
            assert [e["type"] for e in rx.published.events] == ["order_placed"] * 2

    asyncio.run(scenario())


def test_a_woocommerce_order_maps_to_placed_shipped_and_cancelled_orders() -> None:
    """Given a WooCommerce order for a company in Berlin 10115 at 10.00 EUR a unit, when
    mapped while processing, completed, and cancelled (never completed), then it is placed
    (b2b, customer 42, DE 10115, 1000 cents), placed + shipped of every line, and cancelled;
    an order cancelled after it was completed gives no cancellation; no personal data."""
    fake = FakeWooCommerce()
    seed_woo(fake)
    m = woo_mapping()
    order = fake.place_order([(1, 2), (2, 1)], company="Becker GmbH")
    [placed] = woo_orders(order, m)
    assert placed["order_id"] == f"woocommerce:{order['id']}"
    assert [(x["sku"], x["qty"], x["unit_price"], x["currency"]) for x in placed["lines"]] == [
        ("chair", 2, 1000, "EUR"),
        ("table", 1, 1000, "EUR"),
    ]
    assert placed["ship_to"] == {"country": "DE", "postal_code": "10115", "lat": None, "lon": None}
    assert (placed["customer_ref"], placed["customer_type"]) == ("42", "b2b")
    completed = fake.set_status(order["id"], "completed")
    records = woo_orders(completed, m)
    assert [o["type"] for o in records] == ["placed", "shipped"]
    assert [(x["sku"], x["qty"]) for x in records[1]["lines"]] == [("chair", 2), ("table", 1)]
    assert [o["type"] for o in woo_orders(fake.set_status(order["id"], "cancelled"), m)] == []
    other = fake.place_order([(1, 1)], customer_id=0)
    assert woo_orders(other, m)[0]["customer_ref"] is None
    assert woo_orders(other, m)[0]["customer_type"] == "b2c"
    assert [o["type"] for o in woo_orders(fake.set_status(other["id"], "cancelled"), m)] == [
        "cancelled"
    ]
    _no_personal_data([*records, placed])


def test_a_woocommerce_refund_of_a_completed_order_is_a_returned_order_and_a_return() -> None:
    """Given a WooCommerce channel in book mode and a completed order of 2 tables, when a
    refund restocking 2 tables arrives, then a returned Order names the order's line and 2
    units, the return_received StockEvent stays, and no per-line order event is published."""

    async def scenario() -> None:
        async with (
            FakeWooCommerce() as fake,
            aiohttp.ClientSession() as session,
        ):
            seed_woo(fake)
            inbound = WooInbound(
                woo_mapping(), ("woo-secret",), woo_client(session, fake), orders_mode="book"
            )
            async with receiver(inbound) as rx:
                published: list[dict[str, Any]] = []

                async def orders(records: Sequence[dict[str, Any]]) -> None:
                    published.extend(records)

                rx.intake._publish_orders = orders
                done = fake.place_order([(2, 2)], status="completed")
                line = done["line_items"][0]["id"]
                fake.refund(done["id"], [(line, 2)])
                await fake.deliver("order.updated", done, target=rx.url("woocommerce"))
                assert [o["type"] for o in published] == ["placed", "shipped", "returned"]
                assert [(x["line_id"], x["sku"], x["qty"]) for x in published[2]["lines"]] == [
                    (str(line), "table", 2)
                ]
                assert [e["type"] for e in rx.published.events] == ["return_received"]

    asyncio.run(scenario())


def test_the_intake_publishes_each_order_record_once() -> None:
    """Given a delivery with a placed Order, when it arrives twice under different delivery
    keys, then the Order is published once (its event id is remembered after success)."""

    async def scenario() -> None:
        published: list[dict[str, Any]] = []

        async def orders(records: Sequence[dict[str, Any]]) -> None:
            published.extend(records)

        async def events(records: Sequence[dict[str, Any]]) -> None:
            raise AssertionError("no StockEvent expected")

        fake = FakeShopify()
        seed_shopify(fake)
        records = shopify_orders(fake.place_order([(10, 1)]), shopify_mapping())
        intake = Intake(events, publish_orders=orders)
        for key in ("a", "b"):
            await intake.accept(
                Delivery("shopify", "orders/create", orders=records, delivery_keys=(key,))
            )
        assert len(published) == 1

    asyncio.run(scenario())


def test_minor_units_follow_the_currency_exponent() -> None:
    """Given prices in EUR, JPY and KWD, then 19.99 EUR is 1999, 1500 JPY is 1500 and
    1.250 KWD is 1250; a missing price is None."""
    assert minor_units("19.99", "EUR") == 1999
    assert minor_units(10.0, "eur") == 1000
    assert minor_units("1500", "JPY") == 1500
    assert minor_units("1.250", "KWD") == 1250
    assert minor_units(None, "EUR") is None


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "channels": [
            {
                "name": "shopify",
                "kind": "shopify",
                "base_url": "https://demo.myshopify.com",
                "credentials": {"token": "t", "webhook_secrets": ["s"]},
                "mapping": {"shop": "demo.myshopify.com", "push_location_id": 1, "items": []},
                **extra,
            }
        ]
    }


def test_the_orders_setting_defaults_to_lines_and_refuses_anything_but_lines_or_book() -> None:
    """Given channel configurations, then orders defaults to lines, book is taken, and any
    other value is refused naming the key path."""
    assert parse_connectors_config(_config()).channels[0].orders == "lines"
    assert parse_connectors_config(_config(orders="book")).channels[0].orders == "book"
    with pytest.raises(ConnectorConfigError, match=r"channels\[0\]\.orders"):
        parse_connectors_config(_config(orders="both"))


def test_the_audit_record_of_a_book_mode_webhook_names_its_order_records() -> None:
    """Given a Shopify channel in book mode behind the receiver with an audit sink, when an
    order webhook of two lines is accepted, then its audit record counts one item and lists
    the placed Order's event id and both SKUs."""

    async def scenario() -> None:
        audited: list[dict[str, Any]] = []

        async def audit(record: dict[str, Any]) -> None:
            audited.append(record)

        async def orders(records: Sequence[dict[str, Any]]) -> None:
            return None

        async def events(records: Sequence[dict[str, Any]]) -> None:
            return None

        inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",), orders_mode="book")
        app = create_app(Intake(events, publish_orders=orders), inbound, audit=audit)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with FakeShopify() as fake:
                seed_shopify(fake)
                order = fake.place_order([(10, 2), (20, 1)])
                target = f"http://127.0.0.1:{port}/webhooks/shopify"
                sent = await fake.deliver("orders/create", order, target=target)
                assert sent.statuses == [200]
        finally:
            await runner.cleanup()
        [record] = audited
        assert record["items"] == 1
        assert record["ids"] == [f"shopify/demo.myshopify.com/order/{order['id']}/placed"]
        assert record["skus"] == ["chair", "table"]

    asyncio.run(scenario())
