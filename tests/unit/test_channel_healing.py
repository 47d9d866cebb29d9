"""Channels heal: a push that failed for good is pushed again once the channel answers, the
dirty set and the acknowledged quantities survive a restart, reconciliation covers what was
pushed before it, the polling checkpoint is kept and Shopify's polling reads every page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from connectors.framework.drift import DriftDetector
from connectors.framework.engine import LanePolicy, OutboundEngine
from connectors.framework.polling import Poller
from connectors.framework.state import ConnectorState
from connectors.framework.types import PushItem
from connectors.shopify.inbound import ShopifyInbound
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.outbound import WooPusher
from tests.fakes.harness import (
    Published,
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)
from tests.unit.test_outbound_engine import level

FAILING = LanePolicy(
    coalesce_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.02, max_attempts=3, dirty_retry_s=0.2
)


@asynccontextmanager
async def woo_engine(
    woo: FakeWooCommerce,
    dead: list[tuple[PushItem, str]],
    *,
    policy: LanePolicy = FAILING,
    store: ConnectorState | None = None,
) -> AsyncIterator[OutboundEngine]:
    async def dead_letter(item: PushItem, error: str) -> None:
        dead.append((item, error))

    async with aiohttp.ClientSession() as session:
        pusher = WooPusher(woo_client(session, woo), woo_mapping())
        engine = OutboundEngine(
            [pusher],
            policies={"woocommerce": policy},
            dead_letter=dead_letter,
            store=store,
            seed=3,
        )
        async with engine:
            yield engine


async def until(check: Any, within_s: float = 10.0) -> None:
    async with asyncio.timeout(within_s):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def test_a_dead_lettered_push_is_pushed_again_once_the_channel_answers() -> None:
    """Given WooCommerce answering 500 to everything, when chair's level 4 (qty 2) fails for
    good (dead-lettered once, chair dirty) and WooCommerce then recovers with no new level
    arriving, then the idle lane probes it, WooCommerce shows 2, chair is clean and there is
    still exactly one dead letter."""

    async def scenario() -> None:
        async with FakeWooCommerce(seed=2) as woo:
            seed_woo(woo)
            dead: list[tuple[PushItem, str]] = []
            async with woo_engine(woo, dead) as engine:
                woo.down(3600)
                engine.offer(level("chair", 4, 2, "woocommerce"))
                await engine.drained()
                lane = engine.lanes["woocommerce"]
                assert [i.sku for i, _ in dead] == ["chair"]
                assert set(lane.dirty) == {"chair"}
                await asyncio.sleep(0.5)  # probes fail: still dirty, no second dead letter
                assert set(lane.dirty) == {"chair"}
                woo.down(0)
                await until(lambda: woo.products[1]["stock_quantity"] == 2)
                await until(lambda: not lane.dirty)
                assert len(dead) == 1

    asyncio.run(scenario())


def test_a_successful_push_of_another_sku_brings_the_dirty_ones_along() -> None:
    """Given chair dirty after WooCommerce failed for good and a long probe interval, when
    WooCommerce answers a push of table, then chair is pushed again right after."""

    async def scenario() -> None:
        policy = LanePolicy(
            coalesce_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.02, max_attempts=2,
            dirty_retry_s=3600,
        )  # fmt: skip
        async with FakeWooCommerce(seed=2) as woo:
            seed_woo(woo)
            dead: list[tuple[PushItem, str]] = []
            async with woo_engine(woo, dead, policy=policy) as engine:
                woo.fail_next(2, status=503)
                engine.offer(level("chair", 4, 2, "woocommerce"))
                await engine.drained()
                assert set(engine.lanes["woocommerce"].dirty) == {"chair"}
                engine.offer(level("table", 9, 7, "woocommerce"))
                await until(lambda: woo.products[1]["stock_quantity"] == 2)
                assert woo.products[2]["stock_quantity"] == 7
                assert not engine.lanes["woocommerce"].dirty

    asyncio.run(scenario())


def test_the_dirty_set_survives_a_restart_and_is_pushed_at_start(tmp_path: Path) -> None:
    """Given chair dead-lettered while WooCommerce was down, when the process stops and a new
    one starts on the same state folder after WooCommerce recovered, then chair's quantity is
    pushed without any new level and the dirty file is empty again."""

    async def scenario() -> None:
        store = ConnectorState(tmp_path)
        async with FakeWooCommerce(seed=2) as woo:
            seed_woo(woo)
            dead: list[tuple[PushItem, str]] = []
            async with woo_engine(woo, dead, store=store) as engine:
                woo.down(3600)
                engine.offer(level("chair", 4, 2, "woocommerce"))
                await engine.drained()
            assert (tmp_path / "dirty-woocommerce.json").read_text() != "{}"
            woo.down(0)
            async with woo_engine(woo, dead, store=ConnectorState(tmp_path)) as engine:
                await until(lambda: woo.products[1]["stock_quantity"] == 2)
                await until(lambda: not engine.lanes["woocommerce"].dirty)
            assert (tmp_path / "dirty-woocommerce.json").read_text() == "{}"

    asyncio.run(scenario())


def test_reconciliation_after_a_restart_covers_skus_pushed_before_it(tmp_path: Path) -> None:
    """Given chair pushed at 8 and the acknowledged quantities saved (as at an offsets
    commit), when a new process starts on the state folder with no level read since and
    someone sets chair to 2 in WooCommerce, then reconciliation finds the drift, alerts it
    and pushes 8 again."""

    async def scenario() -> None:
        async with FakeWooCommerce(seed=2) as woo:
            seed_woo(woo)
            dead: list[tuple[PushItem, str]] = []
            async with woo_engine(woo, dead, store=ConnectorState(tmp_path)) as engine:
                engine.offer(level("chair", 1, 8, "woocommerce"))
                await engine.drained()
                engine.lanes["woocommerce"].save()
            woo.set_stock(1, 2)
            async with woo_engine(woo, dead, store=ConnectorState(tmp_path)) as engine:
                alerts: list[tuple[str, str, int, int, str]] = []

                async def alert(*args: Any) -> None:
                    alerts.append(args)

                drift = DriftDetector(engine, alert=alert)
                assert await drift.reconcile("woocommerce") == 1
                await engine.drained()
                assert alerts == [("woocommerce", "chair", 8, 2, "reconciliation")]
                assert woo.products[1]["stock_quantity"] == 8

    asyncio.run(scenario())


def test_the_polling_checkpoint_is_saved_and_read_back(tmp_path: Path) -> None:
    """Given a poller saving to the state folder, when a poll reads an order, then the saved
    checkpoint is that order's version, and a new state object reads the same value."""

    async def scenario() -> None:
        from connectors.woocommerce.inbound import WooInbound

        async with FakeWooCommerce(seed=2) as woo, aiohttp.ClientSession() as session:
            seed_woo(woo)
            order = woo.place_order([(1, 1)])
            state = ConnectorState(tmp_path)
            inbound = WooInbound(woo_mapping(), ("woo-secret",), woo_client(session, woo))
            from connectors.framework.intake import Intake

            poller = Poller(
                inbound,
                Intake(Published()),
                checkpoint_ms=0,
                save=lambda ms: state.save_checkpoint("woocommerce", ms),
            )
            assert await poller.poll_once() == 1
            from schemas.times import iso_to_ms

            expected = iso_to_ms(order["date_modified_gmt"], naive_is_utc=True)
            assert ConnectorState(tmp_path).checkpoint("woocommerce") == expected

    asyncio.run(scenario())


def test_the_shopify_poll_pages_through_more_than_250_changed_orders() -> None:
    """Given 600 orders changed on Shopify since the checkpoint, when the poller runs once,
    then it reads 3 pages through the Link header's page_info cursor and publishes every
    order's line once (600 events)."""

    async def scenario() -> None:
        from connectors.framework.intake import Intake

        async with FakeShopify(seed=1) as shop, aiohttp.ClientSession() as session:
            seed_shopify(shop)
            for n in range(600):
                shop.place_order([(10 * (1 + n % 5), 1)])
            client = shopify_client(session, shop)
            published = Published()
            poller = Poller(
                ShopifyInbound(shopify_mapping(), ("shopify-secret",), client),
                Intake(published),
                checkpoint_ms=0,
            )
            assert await poller.poll_once() == 600
            assert shop.pages_served == 3
            assert len(set(published.ids)) == 600

    asyncio.run(scenario())


def test_a_sku_the_channel_refused_as_a_request_waits_for_the_probe_not_every_push() -> None:
    """Given chair dirty because WooCommerce refused its request (401: a 4xx is not
    transient) and a long probe interval, when table is then pushed successfully, then chair
    is not pushed again with it (no retry loop on every push), and it stays dirty until the
    probe; a reconciliation, which reads the channel, queues it again."""

    async def scenario() -> None:
        policy = LanePolicy(coalesce_s=0.01, max_attempts=3, dirty_retry_s=3600)
        async with FakeWooCommerce(seed=2) as woo:
            seed_woo(woo)
            dead: list[tuple[PushItem, str]] = []
            async with woo_engine(woo, dead, policy=policy) as engine:
                woo.fail_next(1, status=401)
                engine.offer(level("chair", 4, 2, "woocommerce"))
                await engine.drained()
                lane = engine.lanes["woocommerce"]
                assert set(lane.dirty) == {"chair"} and len(dead) == 1
                batches = woo.requests.count(("POST", "/wp-json/wc/v3/products/batch"))
                engine.offer(level("table", 9, 7, "woocommerce"))
                await engine.drained()
                assert woo.products[2]["stock_quantity"] == 7
                after = woo.requests.count(("POST", "/wp-json/wc/v3/products/batch"))
                assert after == batches + 1
                assert set(lane.dirty) == {"chair"}
                await DriftDetector(engine).reconcile("woocommerce")
                await engine.drained()
                assert woo.products[1]["stock_quantity"] == 2 and not lane.dirty

    asyncio.run(scenario())
