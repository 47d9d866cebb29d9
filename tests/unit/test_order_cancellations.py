"""Orders cancelled here are cancelled on their channel, once, against both fakes."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from connectors.framework.cancellations import (
    ALREADY,
    CANCELLED,
    FAILED,
    CancelHandler,
    CancelRequest,
    cancel_request,
)
from connectors.shopify.cancel import ShopifyCanceller
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.cancel import WooCanceller
from tests.fakes.harness import (
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)

AT = 1_767_225_600_000
SHOP = "demo.myshopify.com"
SITE = "https://shop.example/"


def _state(
    order_id: str,
    *,
    by: str | None = "ops",
    status: str = "cancelled",
    from_status: str = "allocated",
    event_id: str = "api|cancel|1",
    version: int = 4,
) -> dict[str, Any]:
    channel = order_id.split(":", 1)[0]
    return {
        "order_id": order_id,
        "version": version,
        "channel": channel,
        "status": status,
        "reason": "customer called",
        "transition": {
            "from_status": from_status,
            "to_status": status,
            "event_id": event_id,
            "reason": "customer called",
            "by": by,
            "at": AT,
        },
    }


def test_only_a_cancellation_made_here_asks_the_channel() -> None:
    """Given order states, then an operator's or the order book's cancel of a shopify order
    asks Shopify to cancel it; a cancellation that came from Shopify (by the channel, by its
    connector, or caused by one of its event ids), another status, another channel's order,
    or a state already cancelled before does not."""
    assert cancel_request(_state("shopify:5"), "shopify", SHOP) == CancelRequest(
        "shopify:5", "shopify", "5", 4, "customer called"
    )
    assert cancel_request(_state("shopify:5", by="order-book"), "shopify", SHOP) is not None
    for state in (
        _state("shopify:5", by="shopify"),
        _state("shopify:5", by="connector:shopify"),
        _state("shopify:5", by=None, event_id=f"shopify/{SHOP}/order/5/cancelled"),
        _state("shopify:5", status="released"),
        _state("shopify:5", from_status="cancelled"),
        _state("woocommerce:5"),
    ):
        assert cancel_request(state, "shopify", SHOP) is None, state


def test_shopify_orders_cancelled_here_are_cancelled_once_with_refund_and_restock() -> None:
    """Given an open Shopify order cancelled by an operator here, when its state arrives
    twice and then again to a fresh handler (a restart), then orderCancel was applied once
    (reason OTHER, refund, restock, customer notified, a staff note with the reason), the
    restart's call is answered 'already cancelled' and taken as success."""

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            canceller = ShopifyCanceller(shopify_client(session, fake), shopify_mapping())
            handler = CancelHandler({"shopify": canceller})
            order = fake.place_order([(10, 2)])
            state = _state(f"shopify:{order['id']}")
            assert await handler.handle(state) == CANCELLED
            assert await handler.handle(state) is None  # redelivered: recognised
            assert await CancelHandler({"shopify": canceller}).handle(state) == ALREADY
            [cancel] = fake.cancellations
            assert (cancel["reason"], cancel["refund"], cancel["restock"]) == ("OTHER", True, True)
            assert cancel["notify_customer"] is True
            assert "customer called" in cancel["staff_note"]
            assert fake.orders[order["id"]]["cancelled_at"] is not None

    asyncio.run(run())


def test_a_shopify_order_unknown_to_shopify_is_dead_lettered_not_retried() -> None:
    """Given an order Shopify does not know, when it is cancelled here, then orderCancel's
    NOT_FOUND user error is a failure handed to the failure sink once, with the code."""

    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            failures: list[tuple[str, str]] = []

            async def failed(request: CancelRequest, error: str) -> None:
                failures.append((request.order_id, error))

            canceller = ShopifyCanceller(shopify_client(session, fake), shopify_mapping())
            handler = CancelHandler({"shopify": canceller}, failed=failed)
            assert await handler.handle(_state("shopify:999999")) == FAILED
            assert failures == [("shopify:999999", "RejectedError: orderCancel: ['NOT_FOUND']")]
            assert fake.cancellations == []

    asyncio.run(run())


def test_woocommerce_orders_cancelled_here_turn_cancelled_once_through_throttles() -> None:
    """Given a processing WooCommerce order, a host that answers the next two requests 429
    with Retry-After, when the order is cancelled here and its state arrives twice, then the
    order turns cancelled through one status transition; a restarted handler finds it
    cancelled (already)."""

    async def run() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            canceller = WooCanceller(woo_client(session, fake), woo_mapping())
            handler = CancelHandler({"woocommerce": canceller}, backoff_s=0.01)
            order = fake.place_order([(1, 2)])
            fake.fail_next(2, status=429, retry_after=0.05)
            state = _state(f"woocommerce:{order['id']}")
            assert await handler.handle(state) == CANCELLED
            assert await handler.handle(state) is None
            assert await CancelHandler({"woocommerce": canceller}).handle(state) == ALREADY
            assert fake.status_changes == [
                {"order_id": order["id"], "from": "processing", "to": "cancelled"}
            ]

    asyncio.run(run())


def test_a_completed_woocommerce_order_is_not_cancelled_and_goes_to_the_failure_sink() -> None:
    """Given a WooCommerce order already completed (shipped), when it is cancelled here, then
    the connector does not change its status and the failure sink gets it once."""

    async def run() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            failures: list[str] = []

            async def failed(request: CancelRequest, error: str) -> None:
                failures.append(request.order_id)

            canceller = WooCanceller(woo_client(session, fake), woo_mapping())
            handler = CancelHandler({"woocommerce": canceller}, failed=failed)
            order = fake.place_order([(1, 1)], status="completed")
            assert await handler.handle(_state(f"woocommerce:{order['id']}")) == FAILED
            assert failures == [f"woocommerce:{order['id']}"]
            assert fake.orders[order["id"]]["status"] == "completed"
            assert fake.status_changes == []

    asyncio.run(run())
