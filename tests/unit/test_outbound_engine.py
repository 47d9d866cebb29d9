"""The outbound engine against the in-process fakes: coalescing, ordering, throttling,
compare-and-set, idempotent replay, partial batch failures, dead letters, drift."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client import REGISTRY

from connectors.framework.engine import LanePolicy, OutboundEngine, items_from_level
from connectors.framework.types import Outcome, PushItem, PushResult
from connectors.shopify.outbound import ShopifyPusher
from connectors.testing.base import Write
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.mapping import WooMapping, WooProduct
from connectors.woocommerce.outbound import WooPusher
from tests.fakes.harness import (
    seed_shopify,
    seed_woo,
    shopify_client,
    shopify_mapping,
    woo_client,
    woo_mapping,
)

FAST = LanePolicy(coalesce_s=0.02, backoff_base_s=0.05, backoff_cap_s=0.2, max_attempts=20)


def level(sku: str, version: int, qty: int, *channels: str) -> dict[str, Any]:
    channels = channels or ("shopify", "woocommerce")
    return {
        "sku": sku,
        "version": version,
        "channels": dict.fromkeys(channels, qty),
        "changed_channels": list(channels),
        "default_quantity": qty,
        "cause_event_id": f"e{version}",
        "occurred_at": int(time.time() * 1000),
        "at": 0,
    }


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@dataclass
class Sinks:
    dead: list[tuple[PushItem, str]] = field(default_factory=list)
    refused: list[tuple[PushItem, str]] = field(default_factory=list)

    async def dead_letter(self, item: PushItem, error: str) -> None:
        self.dead.append((item, error))

    async def refuse(self, item: PushItem, error: str) -> None:
        self.refused.append((item, error))


@dataclass
class Rig:
    shop: FakeShopify
    woo: FakeWooCommerce
    engine: OutboundEngine
    sinks: Sinks
    shopify: ShopifyPusher
    session: aiohttp.ClientSession


@asynccontextmanager
async def rig(
    policy: LanePolicy = FAST,
    *,
    woo_map: WooMapping | None = None,
    shop_kwargs: dict[str, Any] | None = None,
    setup: Callable[[FakeShopify, FakeWooCommerce], None] | None = None,
) -> AsyncIterator[Rig]:
    async with (
        FakeShopify(seed=1, **(shop_kwargs or {})) as shop,
        FakeWooCommerce(seed=2) as woo,
        aiohttp.ClientSession() as session,
    ):
        seed_shopify(shop)
        seed_woo(woo)
        if setup:
            setup(shop, woo)
        shopify = ShopifyPusher(shopify_client(session, shop), shopify_mapping())
        woo_pusher = WooPusher(woo_client(session, woo), woo_map or woo_mapping())
        sinks = Sinks()
        engine = OutboundEngine(
            [shopify, woo_pusher],
            policies={"shopify": policy, "woocommerce": policy},
            dead_letter=sinks.dead_letter,
            refused=sinks.refuse,
            seed=7,
        )
        async with engine:
            yield Rig(shop, woo, engine, sinks, shopify, session)


def by_sku(writes: list[Write]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for w in sorted(writes, key=lambda w: w.at):
        out.setdefault(w.sku, []).append(w.quantity)
    return out


def test_a_burst_of_levels_is_coalesced_to_few_pushes_ending_on_the_newest() -> None:
    """Given 30 versions of one SKU offered at once, when the engine drains, then each channel
    got far fewer writes than versions and its last quantity is the newest one."""

    async def scenario() -> None:
        async with rig() as r:
            for version in range(1, 31):
                r.engine.offer(level("chair", version, version))
            await r.engine.drained()
            for fake in (r.shop, r.woo):
                assert by_sku(fake.writes)["chair"][-1] == 30
                assert len(fake.writes) <= 3

    asyncio.run(scenario())


def test_an_older_version_is_never_pushed_after_a_newer_one_under_random_delays() -> None:
    """Given fakes answering with random delays and random 429/502 failures, when levels of
    five SKUs arrive shuffled (older versions after newer ones) in random bursts, then each
    channel's writes per SKU only ever increase and end on the newest version."""

    async def scenario(seed: int) -> None:
        rng = random.Random(seed)
        async with rig(shop_kwargs={"gql_restore": 1000.0}) as r:
            for fake in (r.shop, r.woo):
                fake.slow(1, jitter_ms=15)
            newest: dict[str, int] = {}
            offers = [
                (sku, v) for sku in ("chair", "table", "lamp", "desk", "sofa") for v in range(1, 16)
            ]
            rng.shuffle(offers)
            for n, (sku, version) in enumerate(offers):
                r.engine.offer(level(sku, version, version))  # quantity == version
                newest[sku] = max(newest.get(sku, 0), version)
                if rng.random() < 0.1:  # Woo's Retry-After is whole seconds: use 5xx there
                    if rng.random() < 0.5:
                        r.shop.fail_next(1, status=rng.choice((429, 502)), retry_after=0.05)
                    else:
                        r.woo.fail_next(1, status=rng.choice((500, 502, 503)))
                if n % rng.randint(3, 9) == 0:
                    await asyncio.sleep(rng.uniform(0, 0.03))
            await r.engine.drained(within_s=20)
            for fake in (r.shop, r.woo):
                for sku, quantities in by_sku(fake.writes).items():
                    assert quantities == sorted(set(quantities)), (fake, sku, quantities)
                    assert quantities[-1] == newest[sku]
            assert r.sinks.dead == []

    for seed in range(3):
        asyncio.run(scenario(seed))


def test_a_429_storm_is_waited_out_with_retry_after_and_the_channel_converges() -> None:
    """Given Shopify throttling every request for 1 s with Retry-After 0.3, when levels
    arrive, then nothing is written during the storm, throttles are counted, and afterwards
    every SKU holds its newest quantity, with nothing dead-lettered."""

    async def scenario() -> None:
        async with rig() as r:
            throttles = metric("stockflow_connector_throttles_total", channel="shopify")
            r.shop.storm(1.0, retry_after=0.3)
            storm_end = time.monotonic() + 1.0
            for version, sku in enumerate(("chair", "table", "lamp"), start=1):
                r.engine.offer(level(sku, version, 10 + version, "shopify"))
            await r.engine.drained(within_s=10)
            assert all(w.at >= storm_end - 0.05 for w in r.shop.writes)
            assert {s: q[-1] for s, q in by_sku(r.shop.writes).items()} == {
                "chair": 11,
                "table": 12,
                "lamp": 13,
            }
            assert metric("stockflow_connector_throttles_total", channel="shopify") > throttles
            assert r.sinks.dead == []

    asyncio.run(scenario())


def test_the_other_channel_keeps_syncing_while_one_is_throttled() -> None:
    """Given Shopify in a 1.5 s storm, when a level for both channels arrives, then
    WooCommerce is written well before the storm ends and Shopify after it."""

    async def scenario() -> None:
        async with rig() as r:
            r.shop.storm(1.5, retry_after=0.5)
            start = time.monotonic()
            r.engine.offer(level("chair", 1, 9))
            await r.engine.drained(within_s=10)
            assert r.woo.writes[0].at - start < 0.5
            assert r.shop.writes[0].at - start >= 1.4

    asyncio.run(scenario())


def test_a_graphql_throttled_body_is_honoured_from_its_cost_extension() -> None:
    """Given a Shopify cost bucket of 25 points restoring 50/s (our client assumes 1000),
    when many mutations of 10 points are needed, then THROTTLED answers are read from the
    body, waited out, and every SKU converges."""

    async def scenario() -> None:
        async with rig(shop_kwargs={"gql_capacity": 25.0, "gql_restore": 50.0}) as r:
            r.shopify.max_batch = 1
            for n, sku in enumerate(("chair", "table", "lamp", "desk", "sofa"), start=1):
                r.engine.offer(level(sku, n, n, "shopify"))
            await r.engine.drained(within_s=10)
            assert len(r.shop.writes) == 5
            assert r.sinks.dead == []

    asyncio.run(scenario())


def test_a_stale_compare_and_set_is_re_read_and_written_again() -> None:
    """Given we wrote 20 and then a sale on Shopify made it 19, when we push 25, then the
    first mutation is refused as CHANGE_FROM_QUANTITY_STALE, the pusher re-reads 19 and the
    second mutation (changeFromQuantity 19) sets 25."""

    async def scenario() -> None:
        async with rig() as r:
            conflicts = metric("stockflow_connector_cas_conflicts_total", channel="shopify")
            r.engine.offer(level("chair", 1, 20, "shopify"))
            await r.engine.drained()
            r.shop.set_available(101, 1, 19)
            r.engine.offer(level("chair", 2, 25, "shopify"))
            await r.engine.drained()
            assert r.shop.stock[(101, 1)] == 25
            assert [w.quantity for w in r.shop.writes] == [20, 25]
            assert (
                metric("stockflow_connector_cas_conflicts_total", channel="shopify")
                == conflicts + 1
            )

    asyncio.run(scenario())


def test_a_lost_response_is_retried_with_the_same_idempotency_key_and_replayed() -> None:
    """Given Shopify applies a write but the response is lost (502), when the engine retries,
    then the same @idempotent key is sent, Shopify replays the first result, and the quantity
    was written exactly once."""

    async def scenario() -> None:
        async with rig() as r:
            r.engine.offer(level("chair", 1, 20, "shopify"))
            await r.engine.drained()
            r.shop.fail_next(1, status=502, after_apply=True)
            r.engine.offer(level("chair", 2, 30, "shopify"))
            await r.engine.drained()
            assert [w.quantity for w in r.shop.writes] == [20, 30]
            assert r.shop.replays == 1

    asyncio.run(scenario())


def test_a_refused_item_is_a_drift_alert_and_does_not_block_the_rest() -> None:
    """Given a Shopify bundle item (quantity not settable) in a batch, when pushed, then the
    mutation's NON_MUTABLE error refuses that item only and the other items are written."""

    async def scenario() -> None:
        async with rig(setup=lambda shop, woo: shop.non_mutable.add(102)) as r:
            r.engine.offer(level("chair", 1, 5, "shopify"))
            r.engine.offer(level("table", 1, 6, "shopify"))
            await r.engine.drained()
            assert [(w.sku, w.quantity) for w in r.shop.writes] == [("chair", 5)]
            assert [(i.sku, e.split(":")[0]) for i, e in r.sinks.refused] == [
                ("table", "NON_MUTABLE_INVENTORY_ITEM")
            ]

    asyncio.run(scenario())


def test_woo_batch_item_errors_inside_a_200_are_retried_or_refused_per_item() -> None:
    """Given a Woo batch where one product fails once with a 500 item error and one with a
    400 invalid-id error, when pushed, then the others are written by the one batch, the
    500 item is retried and written, and the 400 item is refused (drift), not retried."""

    async def scenario() -> None:
        def setup(shop: FakeShopify, woo: FakeWooCommerce) -> None:
            woo.item_error(2, "woocommerce_rest_db_error", "Could not write.", 500)
            woo.item_error(3, "woocommerce_rest_product_invalid_id", "Invalid ID.", 400)

        async with rig(setup=setup) as r:
            for sku in ("chair", "table", "lamp", "desk"):
                r.engine.offer(level(sku, 1, 7, "woocommerce"))
            await r.engine.drained()
            assert sorted(w.sku for w in r.woo.writes) == ["chair", "desk", "table"]
            assert [i.sku for i, _ in r.sinks.refused] == ["lamp"]
            assert r.woo.requests.count(("POST", "/wp-json/wc/v3/products/batch")) == 2

    asyncio.run(scenario())


def test_more_than_100_woo_updates_are_split_into_batches_of_100() -> None:
    """Given 150 mapped products changing at once, when pushed, then two batch requests (100
    and 50 items) write them all and none is refused with a 413."""

    async def scenario() -> None:
        products = tuple(WooProduct(f"sku-{n}", 1000 + n) for n in range(150))

        def setup(shop: FakeShopify, woo: FakeWooCommerce) -> None:
            for p in products:
                woo.add_product(p.product_id, p.sku, 0)

        async with rig(woo_map=WooMapping(site="s", products=products), setup=setup) as r:
            for p in products:
                r.engine.offer(level(p.sku, 1, 3, "woocommerce"))
            await r.engine.drained()
            assert len(r.woo.writes) == 150
            assert r.woo.requests.count(("POST", "/wp-json/wc/v3/products/batch")) == 2

    asyncio.run(scenario())


def test_a_push_that_keeps_failing_goes_to_the_dead_letter_sink_once() -> None:
    """Given WooCommerce answering 503 to everything, when a level is pushed with at most 3
    attempts, then after 3 attempts the item is dead-lettered once with the last error."""

    async def scenario() -> None:
        policy = LanePolicy(
            coalesce_s=0.01, backoff_base_s=0.01, backoff_cap_s=0.02, max_attempts=3
        )
        async with rig(policy) as r:
            r.woo.fail_next(10, status=503)
            r.engine.offer(level("chair", 4, 2, "woocommerce"))
            await r.engine.drained()
            assert [(i.sku, i.version, i.attempt) for i, _ in r.sinks.dead] == [("chair", 4, 2)]
            assert "503" in r.sinks.dead[0][1]
            assert r.woo.writes == []

    asyncio.run(scenario())


def test_echoes_of_our_writes_are_ignored_and_real_drift_is_alerted_and_corrected() -> None:
    """Given Shopify echoing each write as inventory_levels/update, when we write 12, then
    the echo is recognised; when the merchant then sets 3 in Shopify, then after the grace
    period drift is alerted and 12 is pushed again."""

    async def scenario() -> None:
        from connectors.framework.drift import DriftDetector
        from connectors.shopify.inbound import ShopifyInbound
        from tests.fakes.harness import receiver

        async with rig() as r:
            alerts: list[tuple[str, str, int, int, str]] = []

            async def alert(*args: Any) -> None:
                alerts.append(args)

            drift = DriftDetector(r.engine, alert=alert, grace_s=0.1)
            inbound = ShopifyInbound(shopify_mapping(), ("shopify-secret",))
            async with receiver(inbound, observe=drift.observe) as rx:
                r.shop.webhook_target = rx.url("shopify")
                echoes = metric("stockflow_connector_echoes_total", channel="shopify")
                r.engine.offer(level("chair", 1, 12, "shopify"))
                await r.engine.drained()
                await r.shop.settle()
                assert metric("stockflow_connector_echoes_total", channel="shopify") == echoes + 1
                r.shop.set_available(101, 1, 3)
                await r.shop.deliver(
                    "inventory_levels/update",
                    {
                        "inventory_item_id": 101,
                        "location_id": 1,
                        "available": 3,
                        "updated_at": "2026-01-01T00:00:00Z",
                    },
                )
                await asyncio.sleep(0.3)
                await r.engine.drained()
                await r.shop.settle()
                assert alerts == [("shopify", "chair", 12, 3, "webhook")]
                assert r.shop.stock[(101, 1)] == 12
            await drift.close()

    asyncio.run(scenario())


def test_reconciliation_finds_a_woo_quantity_changed_behind_our_back() -> None:
    """Given we pushed 8 to WooCommerce and someone set 2 in its admin, when reconciliation
    runs, then one SKU drifts, it is alerted and 8 is pushed again."""

    async def scenario() -> None:
        from connectors.framework.drift import DriftDetector

        async with rig() as r:
            drift = DriftDetector(r.engine)
            r.engine.offer(level("chair", 1, 8, "woocommerce"))
            r.engine.offer(level("table", 1, 5, "woocommerce"))
            await r.engine.drained()
            r.woo.set_stock(1, 2)
            assert await drift.reconcile("woocommerce") == 1
            await r.engine.drained()
            assert r.woo.products[1]["stock_quantity"] == 8

    asyncio.run(scenario())


def test_a_level_where_only_the_split_between_locations_changed_pushes_nothing() -> None:
    """Given level records of a SKU, when one names the channels that changed, one names
    none and carries the split per location (a transfer), and one from an older writer
    names none and has no split, then the first pushes its channels, the transfer nothing,
    and the older record every served channel."""
    base = {"sku": "chair", "version": 3, "channels": {"shopify": 4}, "default_quantity": 6}
    base["occurred_at"] = 1
    changed = items_from_level(
        {**base, "changed_channels": ["shopify"], "locations": {"a": 6}}, ["shopify", "woo"]
    )
    moved = items_from_level(
        {**base, "changed_channels": [], "locations": {"a": 2, "b": 4}}, ["shopify", "woo"]
    )
    old = items_from_level({**base, "changed_channels": []}, ["shopify", "woo"])
    assert [(i.channel, i.quantity) for i in changed] == [("shopify", 4)]
    assert moved == []
    assert [(i.channel, i.quantity) for i in old] == [("shopify", 4), ("woo", 6)]


class _Refusing:
    """A channel that refuses SKU ``bad``: for good (its data) or as a request."""

    max_batch = 10

    def __init__(self, channel: str, *, permanent: bool) -> None:
        self.channel = channel
        self.permanent = permanent
        self.pushed: list[str] = []

    def observed(self, sku: str, quantity: int) -> None:
        return None

    async def read(self, skus: Any) -> dict[str, int]:
        return {}

    async def push(self, items: Any) -> list[PushResult]:
        self.pushed += [i.sku for i in items]
        return [
            PushResult(i, Outcome.FAILED, "invalid offer", permanent=self.permanent)
            if i.sku == "bad"
            else PushResult(i, Outcome.OK)
            for i in items
        ]


def test_an_item_the_channel_refuses_for_good_is_dead_lettered_once_and_not_probed() -> None:
    """Given two channels that refuse one SKU, one for good (the item's own data: an
    invalid offer) and one as a failed request, and idle lanes probing dirty SKUs every 20 ms
    When the SKU is pushed to both and the lanes stay idle a while
    Then both dead-letter it once; the refusal for good is never pushed again (its next
    change will be), the failed request is probed again and again."""

    async def scenario() -> None:
        policy = LanePolicy(coalesce_s=0.001, dirty_retry_s=0.02, max_attempts=1)
        good, request = _Refusing("a", permanent=True), _Refusing("b", permanent=False)
        sinks = Sinks()
        async with OutboundEngine(
            [good, request],
            policies={"a": policy, "b": policy},
            dead_letter=sinks.dead_letter,
            refused=sinks.refuse,
            seed=7,
        ) as engine:
            engine.offer(level("bad", 1, 3, "a", "b"))
            await asyncio.sleep(0.4)
            assert sorted(i.channel for i, _ in sinks.dead) == ["a", "b"]
            assert good.pushed == ["bad"]
            assert request.pushed.count("bad") > 3
            engine.offer(level("bad", 2, 4, "a", "b"))
            await asyncio.sleep(0.1)
            assert good.pushed == ["bad", "bad"]

    asyncio.run(scenario())
