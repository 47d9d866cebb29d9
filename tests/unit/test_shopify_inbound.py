"""Shopify in: signatures, normalisation, dedupe, stale retries and polling, against the fake."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from connectors.framework.dedupe import DedupeStore
from connectors.framework.intake import Intake
from connectors.framework.polling import Poller
from connectors.shopify.inbound import ShopifyInbound, order_events, refund_events
from connectors.testing.shopify import FakeShopify
from schemas.times import iso_to_ms
from tests.fakes.harness import receiver, seed_shopify, shopify_client, shopify_mapping

SECRETS = ("shopify-secret",)


def _inbound(secrets: tuple[str, ...] = SECRETS) -> ShopifyInbound:
    return ShopifyInbound(shopify_mapping(), secrets)


def test_an_order_becomes_one_order_placed_event_per_line_with_epoch_ms_times() -> None:
    """Given a web order of two lines, when normalised, then each line is an order_placed
    event for its SKU and quantity, with no location, the order id and created_at in ms."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(10, 2), (20, 1)])
    events = order_events(order, shopify_mapping())
    assert [(e["type"], e["sku"], e["qty"]) for e in events] == [
        ("order_placed", "chair", 2),
        ("order_placed", "table", 1),
    ]
    assert events[0]["occurred_at"] == iso_to_ms(order["created_at"])
    assert events[0]["order_id"] == f"shopify:{order['id']}"
    assert events[0]["location"] is None
    assert events[0]["event_id"] == (
        f"shopify/demo.myshopify.com/order/{order['id']}/line/{order['line_items'][0]['id']}/placed"
    )


def test_a_pos_order_carries_its_mapped_location_and_an_sku_less_line_maps_by_variant() -> None:
    """Given a POS order at location 2 whose line has an empty sku, when normalised, then the
    event is at 'lyon' and the SKU comes from the variant mapping."""
    fake = FakeShopify()
    seed_shopify(fake)
    order = fake.place_order([(30, 1)], location_id=2)
    order["line_items"][0]["sku"] = ""
    [event] = order_events(order, shopify_mapping())
    assert (event["sku"], event["location"]) == ("lamp", "lyon")


def test_a_cancelled_order_releases_each_line_and_refunds_restock_by_type() -> None:
    """Given a cancelled order and a refund with cancel, return and no_restock lines, when
    normalised, then the order gives order_cancelled qty 0 per line, the cancel line a partial
    release, the return line a resellable return at its location, no_restock nothing."""
    fake = FakeShopify()
    seed_shopify(fake)
    m = shopify_mapping()
    order = fake.place_order([(10, 3), (20, 2), (30, 1)])
    lines = [li["id"] for li in order["line_items"]]
    cancelled = fake.cancel_order(order["id"])
    assert {(e["type"], e["sku"], e["qty"]) for e in order_events(cancelled, m)} == {
        ("order_cancelled", "chair", 0),
        ("order_cancelled", "table", 0),
        ("order_cancelled", "lamp", 0),
    }
    refunds = [
        fake.refund(order["id"], [(lines[0], 1)], restock_type="cancel", location_id=1),
        fake.refund(order["id"], [(lines[1], 2)], restock_type="return", location_id=2),
        fake.refund(order["id"], [(lines[2], 1)], restock_type="no_restock", location_id=1),
    ]
    events = [e for r in refunds for e in refund_events(r, m)]
    assert [(e["type"], e["sku"], e["qty"], e["location"], e["disposition"]) for e in events] == [
        ("order_cancelled", "chair", 1, "paris", None),
        ("return_received", "table", 2, "lyon", "resellable"),
    ]


def test_signed_deliveries_pass_and_bad_or_tampered_ones_get_401_and_no_event() -> None:
    """Given the receiver with the current and the previous secret (rotation), when the fake
    delivers with the old secret, the new one, a wrong one, and a tampered body, then the first
    two are accepted, the others get 401 and publish nothing."""

    async def scenario() -> None:
        inbound = _inbound(("new-secret", "old-secret"))
        async with FakeShopify(webhook_retries=0) as fake, receiver(inbound) as rx:
            seed_shopify(fake)
            target = rx.url("shopify")
            old = await fake.deliver(
                "orders/create", fake.place_order([(10, 1)]), target=target, secret="old-secret"
            )
            new = await fake.deliver(
                "orders/create", fake.place_order([(20, 1)]), target=target, secret="new-secret"
            )
            wrong = await fake.deliver(
                "orders/create", fake.place_order([(30, 1)]), target=target, secret="attacker"
            )
            assert (old.statuses, new.statuses, wrong.statuses) == ([200], [200], [401])
            tampered = dict(new.headers, **{"X-Shopify-Webhook-Id": "other"})
            body = new.body.replace(b'"quantity":1', b'"quantity":9')
            assert await fake.post(target, body, tampered) == 401
            assert await fake.post(target, new.body, {"X-Shopify-Topic": "orders/create"}) == 401
            assert [e["sku"] for e in rx.published.events] == ["chair", "table"]

    asyncio.run(scenario())


def test_a_retried_or_duplicated_delivery_publishes_its_events_once() -> None:
    """Given a delivery the receiver first failed to publish (503), when Shopify retries it
    with the same webhook id and later sends a duplicate, then its event is published once."""

    async def scenario() -> None:
        async with FakeShopify() as fake, receiver(_inbound()) as rx:
            seed_shopify(fake)
            rx.published.fail = 1
            sent = await fake.deliver(
                "orders/create", fake.place_order([(10, 2)]), target=rx.url("shopify")
            )
            assert sent.statuses == [503, 200]
            assert await fake.redeliver(sent, target=rx.url("shopify")) == 200
            assert len(rx.published.events) == 1

    asyncio.run(scenario())


def test_an_out_of_order_stale_retry_changes_nothing() -> None:
    """Given an order created then cancelled, when the cancellation arrives first and the
    original orders/create delivery is retried afterwards, then only the cancellation events
    are published; the stale create is dropped."""

    async def scenario() -> None:
        async with FakeShopify(webhook_retries=0) as fake, receiver(_inbound()) as rx:
            seed_shopify(fake)
            target = rx.url("shopify")
            order = fake.place_order([(10, 2)])
            created = dict(order, line_items=[dict(li) for li in order["line_items"]])
            await fake.deliver("orders/cancelled", fake.cancel_order(order["id"]), target=target)
            published = list(rx.published.ids)
            stale = await fake.deliver("orders/create", created, target=target)
            assert stale.statuses == [200]
            assert rx.published.ids == published
            assert [e["type"] for e in rx.published.events] == ["order_cancelled"]

    asyncio.run(scenario())


def test_an_inventory_levels_update_is_an_observation_not_an_event() -> None:
    """Given an inventory_levels/update at the push location, when delivered, then no stock
    event is published and the observation reaches the drift sink with the mapped SKU."""

    async def scenario() -> None:
        seen = []

        async def observe(observations: object) -> None:
            seen.extend(observations)  # type: ignore[call-overload]

        async with FakeShopify() as fake, receiver(_inbound(), observe=observe) as rx:
            payload = {
                "inventory_item_id": 102,
                "location_id": 1,
                "available": 7,
                "updated_at": "2026-01-01T10:00:00Z",
            }
            await fake.deliver("inventory_levels/update", payload, target=rx.url("shopify"))
            assert rx.published.events == []
            assert [(o.sku, o.quantity) for o in seen] == [("table", 7)]

    asyncio.run(scenario())


def test_polling_and_webhooks_together_publish_each_fact_once() -> None:
    """Given orders delivered by webhook and one whose webhook was lost, when the poller reads
    orders updated since before both, then the lost one is published and nothing twice; the
    REST answers are served under the leaky bucket."""

    async def scenario() -> None:
        async with FakeShopify() as fake, aiohttp.ClientSession() as session:
            seed_shopify(fake)
            inbound = ShopifyInbound(shopify_mapping(), SECRETS, shopify_client(session, fake))
            async with receiver(inbound) as rx:
                first = fake.place_order([(10, 1)])
                await fake.deliver("orders/create", first, target=rx.url("shopify"))
                fake.place_order([(20, 4)])  # its webhook never arrives
                poller = Poller(
                    inbound,
                    rx.intake,
                    checkpoint_ms=iso_to_ms(first["created_at"]) - 5000,
                    overlap_s=1,
                )
                assert await poller.poll_once() == 2
                assert await poller.poll_once() == 2
                assert sorted((e["sku"], e["qty"]) for e in rx.published.events) == [
                    ("chair", 1),
                    ("table", 4),
                ]

    asyncio.run(scenario())


def test_the_dedupe_store_forgets_after_its_ttl_and_beyond_its_bound() -> None:
    """Given a store of 3 keys living 10 s, when keys age or overflow, then the oldest go."""
    now = [0.0]
    store = DedupeStore(max_keys=3, ttl_s=10, clock=lambda: now[0])
    assert not store.check_and_add("a")
    assert store.check_and_add("a")
    for key in ("b", "c", "d"):
        store.add(key)
    assert not store.seen("a") and store.seen("d")
    now[0] = 11.0
    assert not store.seen("d") and len(store) == 0


def test_intake_publishes_nothing_for_a_ping_and_keeps_keys_only_after_success() -> None:
    """Given an intake whose publisher fails once, when the same delivery comes twice, then
    the second attempt publishes it (keys were not remembered on failure)."""

    async def scenario() -> None:
        from tests.fakes.harness import Published

        published = Published(fail=1)
        intake = Intake(published)
        fake = FakeShopify()
        seed_shopify(fake)
        order = fake.place_order([(10, 1)])
        delivery = _inbound()._normalise("orders/create", order, ("shopify:webhook:1",))
        with pytest.raises(RuntimeError, match="broker unavailable"):
            await intake.accept(delivery)
        assert (await intake.accept(delivery)).value == "accepted"
        assert (await intake.accept(delivery)).value == "duplicate"
        assert len(published.events) == 1

    asyncio.run(scenario())
