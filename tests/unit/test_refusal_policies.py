"""A refusal reaches the channel: each policy against both fakes, once per decision."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from connectors.config import ConnectorConfigError, parse_connectors_config
from connectors.framework.exceptions_view import exceptions_routes
from connectors.framework.refusals import ExceptionsView, RefusalHandler, refusal_from
from connectors.shopify.refusals import ShopifyRefusals
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.refusals import WooRefusals
from tests.fakes.harness import (
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)

AT = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _decision(
    channel: str, account: str, order_id: int, line_id: int, *, outcome: str = "rejected"
) -> dict[str, Any]:
    event_id = f"{channel}/{account}/order/{order_id}/line/{line_id}/placed"
    return {
        "decision_id": event_id,
        "event_id": event_id,
        "sku": "chair",
        "order_id": f"{channel}:{order_id}",
        "channel": channel,
        "location": None,
        "qty": 3,
        "outcome": outcome,
        "reason": "insufficient_stock",
        "available_before": 1,
        "occurred_at": AT,
        "at": AT,
    }


Scenario = Callable[[RefusalHandler, Any, ExceptionsView], Awaitable[None]]


def _shopify(policy: str, scenario: Scenario) -> None:
    async def run() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            actions = ShopifyRefusals(shopify_client(session, fake), shopify_mapping())
            view = ExceptionsView()
            handler = RefusalHandler({"shopify": actions}, {"shopify": policy}, view)
            await scenario(handler, fake, view)

    asyncio.run(run())


def _woo(policy: str, scenario: Scenario) -> None:
    async def run() -> None:
        async with FakeWooCommerce() as fake, aiohttp.ClientSession() as session:
            seed_woo(fake)
            actions = WooRefusals(woo_client(session, fake), woo_mapping())
            view = ExceptionsView()
            handler = RefusalHandler({"woocommerce": actions}, {"woocommerce": policy}, view)
            await scenario(handler, fake, view)

    asyncio.run(run())


def _shopify_refused(fake: FakeShopify) -> dict[str, Any]:
    order = fake.place_order([(10, 3)])
    return _decision("shopify", "demo.myshopify.com", order["id"], order["line_items"][0]["id"])


def _woo_refused(fake: FakeWooCommerce) -> dict[str, Any]:
    order = fake.place_order([(1, 3)])
    return _decision(
        "woocommerce", "https://shop.example/", order["id"], order["line_items"][0]["id"]
    )


def test_shopify_cancel_policy_cancels_the_order_without_restock_once() -> None:
    """Given policy cancel and a rejected Shopify line, when the decision arrives twice and a
    fresh handler (a restart) gets it again, then orderCancel was applied once, with reason
    INVENTORY, restock off and a staff note naming the line; nothing listed as exception."""

    async def scenario(handler: RefusalHandler, fake: FakeShopify, view: ExceptionsView) -> None:
        decision = _shopify_refused(fake)
        order_id = int(decision["order_id"].split(":")[1])
        assert await handler.handle(decision) is not None
        assert await handler.handle(decision) is None  # redelivered: recognised
        restarted = RefusalHandler(handler.actions, handler.policies, view)
        await restarted.handle(decision)  # the channel says already cancelled: done
        assert fake.orders[order_id]["cancelled_at"] is not None
        [cancel] = fake.cancellations
        assert (cancel["reason"], cancel["restock"]) == ("INVENTORY", False)
        assert "[stockflow line" in cancel["staff_note"]
        assert "insufficient_stock" in cancel["staff_note"]
        assert view.rows() == []

    _shopify("cancel", scenario)


def test_shopify_backorder_and_flag_policies_tag_the_order_and_flag_lists_it() -> None:
    """Given a rejected Shopify line, when the policy is backorder, then the order is tagged
    stockflow-backordered and not cancelled; when flag, tagged stockflow-exception once
    (redelivered twice) and listed once in the exceptions view, without personal data."""

    async def backorder(handler: RefusalHandler, fake: FakeShopify, view: ExceptionsView) -> None:
        decision = _shopify_refused(fake)
        order_id = int(decision["order_id"].split(":")[1])
        await handler.handle(decision)
        assert fake.tags(order_id) == ["stockflow-backordered"]
        assert fake.orders[order_id]["cancelled_at"] is None
        assert view.rows() == []

    async def flag(handler: RefusalHandler, fake: FakeShopify, view: ExceptionsView) -> None:
        decision = _shopify_refused(fake)
        order_id = int(decision["order_id"].split(":")[1])
        for _ in range(2):
            await handler.handle(decision)
            await RefusalHandler(handler.actions, handler.policies, view).handle(decision)
        assert fake.tags(order_id) == ["stockflow-exception"]
        assert fake.orders[order_id]["cancelled_at"] is None
        [row] = view.rows()
        assert row == {
            "channel": "shopify",
            "order_id": str(order_id),
            "line_id": decision["event_id"].split("/")[-2],
            "sku": "chair",
            "qty": 3,
            "reason": "insufficient_stock",
            "action": "flag",
            "at": "2026-01-01T00:00:00Z",
        }

    _shopify("backorder", backorder)
    _shopify("flag", flag)


def test_woocommerce_cancel_policy_cancels_the_order_with_one_private_note() -> None:
    """Given policy cancel and a rejected Woo line, when the decision is handled, redelivered
    and handled again after a restart, then the order is cancelled and carries one private
    note naming the line and the reason."""

    async def scenario(
        handler: RefusalHandler, fake: FakeWooCommerce, view: ExceptionsView
    ) -> None:
        decision = _woo_refused(fake)
        oid = int(decision["order_id"].split(":")[1])
        await handler.handle(decision)
        await handler.handle(decision)
        await RefusalHandler(handler.actions, handler.policies, view).handle(decision)
        assert fake.orders[oid]["status"] == "cancelled"
        [note] = fake.notes[oid]
        assert note["customer_note"] is False
        assert "insufficient_stock" in note["note"] and "cancelled" in note["note"]
        assert view.rows() == []

    _woo("cancel", scenario)


def test_woocommerce_backorder_and_flag_policies_note_and_mark_the_order() -> None:
    """Given a rejected Woo line, when the policy is backorder, then the order stays
    processing with one note and its backordered meta; when flag, one note, the exception
    meta, and the line is listed once in the exceptions view."""

    async def backorder(
        handler: RefusalHandler, fake: FakeWooCommerce, view: ExceptionsView
    ) -> None:
        decision = _woo_refused(fake)
        oid = int(decision["order_id"].split(":")[1])
        line = decision["event_id"].split("/")[-2]
        await handler.handle(decision)
        await RefusalHandler(handler.actions, handler.policies, view).handle(decision)
        assert fake.orders[oid]["status"] == "processing"
        assert len(fake.notes[oid]) == 1
        assert [m["key"] for m in fake.orders[oid]["meta_data"]] == [
            f"_stockflow_backordered_{line}"
        ]
        assert view.rows() == []

    async def flag(handler: RefusalHandler, fake: FakeWooCommerce, view: ExceptionsView) -> None:
        decision = _woo_refused(fake)
        oid = int(decision["order_id"].split(":")[1])
        await handler.handle(decision)
        await RefusalHandler(handler.actions, handler.policies, view).handle(decision)
        assert fake.orders[oid]["status"] == "processing"
        assert len(fake.notes[oid]) == 1
        assert len(fake.orders[oid]["meta_data"]) == 1
        [row] = view.rows()
        assert (row["channel"], row["order_id"], row["action"]) == ("woocommerce", str(oid), "flag")

    _woo("backorder", backorder)
    _woo("flag", flag)


def test_a_channel_that_keeps_failing_lists_the_refusal_as_an_exception() -> None:
    """Given policy cancel and a fake Shopify answering 503 to every call, when a refusal is
    handled with 2 attempts, then the order is not cancelled and the line is listed with the
    error class (no request details)."""

    async def scenario(handler: RefusalHandler, fake: FakeShopify, view: ExceptionsView) -> None:
        handler._attempts, handler._backoff = 2, 0.01
        decision = _shopify_refused(fake)
        fake.fail_next(10, status=503)
        await handler.handle(decision)
        [row] = view.rows()
        assert (row["action"], row["error"]) == ("cancel", "UnavailableError")
        assert fake.cancellations == []

    _shopify("cancel", scenario)


def test_only_rejected_lines_this_connector_published_are_acted_on() -> None:
    """Given decisions accepted, backordered, for a checkout hold, or from another shop, when
    read, then none is a refusal; a rejected order line of our shop is."""
    ours = _decision("shopify", "demo.myshopify.com", 5, 9)
    assert refusal_from(ours, "shopify", "demo.myshopify.com") is not None
    for outcome in ("accepted", "backordered"):
        other = _decision("shopify", "demo.myshopify.com", 5, 9, outcome=outcome)
        assert refusal_from(other, "shopify", "demo.myshopify.com") is None
    hold = {**ours, "event_id": "checkout-17", "decision_id": "checkout-17"}
    assert refusal_from(hold, "shopify", "demo.myshopify.com") is None
    elsewhere = _decision("shopify", "other.myshopify.com", 5, 9)
    assert refusal_from(elsewhere, "shopify", "demo.myshopify.com") is None
    woo = _decision("woocommerce", "https://shop.example/", 5, 9)
    refusal = refusal_from(woo, "woocommerce", "https://shop.example/")
    assert refusal is not None and (refusal.order_id, refusal.line_id) == ("5", "9")


def test_get_v1_exceptions_lists_the_flagged_lines_as_json() -> None:
    """Given one flagged line in the view, when GET /v1/exceptions is asked, then the answer
    is a JSON list with that line."""

    async def scenario() -> None:
        view = ExceptionsView()
        refusal = refusal_from(_decision("shopify", "s", 5, 9), "shopify", "s")
        assert refusal is not None
        view.add(refusal, "flag")
        app = web.Application()
        app.add_routes(exceptions_routes(view))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(f"http://127.0.0.1:{port}/v1/exceptions") as r,
            ):
                assert r.status == 200
                rows = await r.json()
        finally:
            await runner.cleanup()
        assert [(r["order_id"], r["line_id"], r["qty"]) for r in rows] == [("5", "9", 3)]

    asyncio.run(scenario())


def test_on_refusal_defaults_to_flag_and_refuses_unknown_policies() -> None:
    """Given a channel without on_refusal, then its policy is flag; given on_refusal: drop,
    then the configuration is refused naming the key and the choices."""
    channel = {
        "name": "shop",
        "kind": "woocommerce",
        "base_url": "https://shop.example",
        "credentials": {"consumer_key": "k", "consumer_secret": "s", "webhook_secrets": ["w"]},
        "mapping": {"site": "https://shop.example/", "products": []},
    }
    config = parse_connectors_config({"channels": [channel]})
    assert config.channels[0].on_refusal == "flag"
    cancel = parse_connectors_config({"channels": [{**channel, "on_refusal": "cancel"}]})
    assert cancel.channels[0].on_refusal == "cancel"
    with pytest.raises(ConnectorConfigError, match=r"on_refusal.*cancel, backorder, flag"):
        parse_connectors_config({"channels": [{**channel, "on_refusal": "drop"}]})
