"""Orders shipped here are confirmed on their channel, once, with carrier and tracking,
against the Shopify and WooCommerce fakes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from connectors.framework.shipments import (
    ALREADY,
    FAILED,
    SHIPPED,
    ShipmentHandler,
    ShipNotice,
    ship_notice,
)
from connectors.shopify.ship import ShopifyShipper
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.ship import WooShipper
from tests.fakes.harness import (
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)

AT = 1_767_225_600_000


def _shipment(
    order_id: str, lines: list[tuple[Any, str, int]], status: str = "shipped"
) -> dict[str, Any]:
    return {
        "shipment_id": f"ship|w1|{order_id}",
        "version": 2,
        "order_id": order_id,
        "channel": order_id.split(":", 1)[0],
        "location": "paris",
        "wave_id": "w1",
        "lines": [{"line_id": str(lid), "sku": sku, "qty": qty} for lid, sku, qty in lines],
        "carrier": "dhl",
        "service": "N",
        "tracking_number": "JD014600006281230704",
        "status": status,
        "updated_at": AT,
    }


def test_only_the_shipped_version_of_a_channels_order_asks_the_channel() -> None:
    """Given shipment versions, then the `shipped` one of a shopify order asks Shopify to
    confirm it (in Shopify's ids: a line routed again after a short pick, 7/r1, is Shopify's
    line 7); created, in_transit, delivered or another channel's do not."""
    notice = ship_notice(_shipment("shopify:5", [(7, "chair", 2)]), "shopify")
    assert notice is not None and notice.channel_order_id == "5"
    assert notice.lines[0].line_id == "7" and notice.tracking_number.startswith("JD")
    for status in ("created", "in_transit", "delivered", "exception"):
        assert ship_notice(_shipment("shopify:5", [], status), "shopify") is None
    assert ship_notice(_shipment("woocommerce:5", []), "shopify") is None
    rerouted = ship_notice(_shipment("shopify:5", [(7, "a", 1), ("7/r1", "a", 1)]), "shopify")
    assert rerouted is not None and [(x.line_id, x.qty) for x in rerouted.lines] == [("7", 2)]


def test_a_shopify_order_shipped_here_is_fulfilled_once_with_its_tracking() -> None:
    """Given a Shopify order of two lines of which one unit of the second was not found at
    picking, when its shipment arrives twice and then to a fresh handler (a restart), then
    Shopify got one fulfilment of the shipped units with DHL's tracking number (the customer
    told), the order is partially fulfilled, and the restart's call finds nothing left to
    fulfil for those units (already)."""

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            shipper = ShopifyShipper(shopify_client(session, fake), shopify_mapping())
            order = fake.place_order([(10, 2), (20, 3)])
            first, second = order["line_items"]
            shipment = _shipment(
                f"shopify:{order['id']}",
                [(first["id"], first["sku"], 2), (second["id"], second["sku"], 2)],
            )
            handler = ShipmentHandler({"shopify": shipper})
            assert await handler.handle(shipment) == SHIPPED
            assert await handler.handle(shipment) is None
            assert await ShipmentHandler({"shopify": shipper}).handle(shipment) == ALREADY
            stored = fake.orders[order["id"]]
            [fulfilment] = stored["fulfillments"]
            assert fulfilment["tracking_company"] == "DHL Express"
            assert fulfilment["tracking_number"] == "JD014600006281230704"
            assert fulfilment["notify_customer"] is True
            assert [li["quantity"] for li in fulfilment["line_items"]] == [2, 2]
            assert stored["fulfillment_status"] == "partial"

    asyncio.run(run())


def test_a_shopify_order_unknown_to_shopify_goes_to_the_failure_sink() -> None:
    """Given a shipment of an order Shopify does not know, when handled, then it is a
    failure handed to the failure sink once (not retried)."""

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            failures: list[str] = []

            async def failed(notice: ShipNotice, error: str) -> None:
                failures.append(f"{notice.order_id} {error}")

            shipper = ShopifyShipper(shopify_client(session, fake), shopify_mapping())
            handler = ShipmentHandler({"shopify": shipper}, failed=failed)
            assert await handler.handle(_shipment("shopify:999999", [(1, "a", 1)])) == FAILED
            assert failures == ["shopify:999999 RejectedError: order not found on Shopify"]

    asyncio.run(run())


def test_a_woocommerce_order_shipped_here_gets_its_note_and_turns_completed_once() -> None:
    """Given a processing WooCommerce order and a host answering the next two requests 429,
    when its shipment arrives twice, then the order has a private note naming the carrier and
    tracking number and turned completed through one transition; a restart finds it
    completed (already); a cancelled order is refused to the failure sink."""

    async def run() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            failures: list[str] = []

            async def failed(notice: ShipNotice, error: str) -> None:
                failures.append(notice.order_id)

            shipper = WooShipper(woo_client(session, fake), woo_mapping())
            handler = ShipmentHandler({"woocommerce": shipper}, failed=failed, backoff_s=0.01)
            order = fake.place_order([(1, 2)])
            fake.fail_next(2, status=429, retry_after=0.05)
            shipment = _shipment(f"woocommerce:{order['id']}", [(1, "chair", 2)])
            assert await handler.handle(shipment) == SHIPPED
            assert await handler.handle(shipment) is None
            assert await ShipmentHandler({"woocommerce": shipper}).handle(shipment) == ALREADY
            assert fake.status_changes == [
                {"order_id": order["id"], "from": "processing", "to": "completed"}
            ]
            [note] = fake.notes[order["id"]]
            assert "dhl" in note["note"] and "JD014600006281230704" in note["note"]
            assert note["customer_note"] is False
            gone = fake.place_order([(1, 1)], status="cancelled")
            assert await handler.handle(_shipment(f"woocommerce:{gone['id']}", [])) == FAILED
            assert failures == [f"woocommerce:{gone['id']}"]

    asyncio.run(run())
