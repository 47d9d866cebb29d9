"""Fulfilment end to end on the real stack: allocated orders at two locations waved and
picked (two short picks), labels bought from the three fake carriers (one down for a while:
its parcels go to the next best carrier), shipments confirmed to the channels (fake Shopify
and WooCommerce), tracking to delivery, and the ledger's stock right at the end.

Processes: Kafka and the worker (ledger + order book) are real; the wave service (with its
pick API), the shipping service (with its label route) and the connectors' shipment feed run
in this process on their own event loops; shops and carriers are the fakes.

Size: ``STOCKFLOW_FULFIL_ORDERS`` orders (default 200)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from connectors.carriers.model import Address
from connectors.framework.shipments import ShipmentHandler, ShipmentsSource
from connectors.shopify.ship import ShopifyShipper
from connectors.testing.carriers.base import FakeService
from connectors.testing.carriers.chronopost import FakeChronopost
from connectors.testing.carriers.dhl import FakeDhl
from connectors.testing.carriers.ups import FakeUps
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.ship import WooShipper
from schemas.codec import single_object_codec
from streams.fulfilment.config import parse as parse_fulfilment
from streams.fulfilment.model import Wave, WaveOrder
from streams.kernel.access.command import create
from streams.kernel.access.store import publish
from streams.kernel.access.tokens import FULFILMENT_WRITE, TokenRecord
from streams.kernel.settings import Settings
from streams.kernel.topics import STOCK_ALERTS
from streams.picking.api import add_routes
from streams.picking.service import WaveService
from streams.shipping.config import parse_shipping
from tests.fakes.harness import shopify_client, shopify_mapping, woo_client, woo_mapping
from tests.fakes.shipping import ShippingThread
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.orders import (
    StateFollower,
    book_worker,
    location_levels,
    order_record,
    send_orders,
)
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration]

T = TypeVar("T")
N = int(os.environ.get("STOCKFLOW_FULFIL_ORDERS", "200"))
RUN = uuid.uuid4().hex[:8]
CODEC = single_object_codec()
# locations of this run's own: orders other tests left allocated at a shared location would
# share its waves, and a wave is picked whole
PARIS, LYON = f"paris-{RUN}", f"lyon-{RUN}"
SKUS = {PARIS: [f"fp{k}-{RUN}" for k in range(3)], LYON: [f"fl{k}-{RUN}" for k in range(3)]}
STOCK = 10 * N  # units of each SKU at its location
CHANNELS = ("shopify", "woocommerce", "api")
SHORTS = 2
# Price lists: shopify's express (1 day) buys DHL, woocommerce's standard within 2 days buys
# Chronopost Relais (DHL while Chronopost is down), the api's standard within 5 days buys UPS.
UPS = (FakeService("11", "UPS Standard", 490, 90, 3), FakeService("65", "UPS Saver", 1490, 180, 1))
DHL = (FakeService("N", "EXPRESS DOMESTIC", 890, 100, 1),)
CHRONO = (
    FakeService("86", "Chrono Relais", 590, 90, 2),
    FakeService("01", "Chrono 13", 1290, 140, 1),
)
DELIVERED = {"ups": "D", "dhl": "OK", "chronopost": "D"}
LOST = {"ups": "X", "dhl": "OH"}


class Outside:
    """The shops, the carriers and the connectors' shipment feed, on one event loop in a
    background thread (as they would be other hosts and another process)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.shop = FakeShopify(seed=1)
        self.woo = FakeWooCommerce(seed=2)
        self.ups = FakeUps(services=UPS, per_s=2000, burst=2000)
        self.dhl = FakeDhl(services=DHL, per_s=2000, burst=2000)
        self.chrono = FakeChronopost(services=CHRONO, per_s=2000, burst=2000)
        # the shops number orders from a fixed start: this run's ids must be new to the topics
        base = 10**9 + (time.time_ns() // 10**6) % 10**8 * 10
        self.shop._ids, self.woo._ids = base, base
        self.feed: ShipmentsSource | None = None
        self.handler: ShipmentHandler | None = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Future[None] | None = None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def invoke() -> Any:
            return fn(*args)

        return self.run(invoke())

    def start(self, settings: Settings) -> None:
        self._thread.start()
        for fake in (self.shop, self.woo, self.ups, self.dhl, self.chrono):
            self.run(fake.start())
        for k, sku in enumerate(SKUS[PARIS] + SKUS[LYON]):
            self.shop.add_item(1000 + k, 2000 + k, sku, 1, 10**6)
            self.woo.add_product(1 + k, sku, 10**6)

        async def feed() -> None:
            self._session = aiohttp.ClientSession()
            shippers = {
                "shopify": ShopifyShipper(
                    shopify_client(self._session, self.shop), shopify_mapping()
                ),
                "woocommerce": WooShipper(woo_client(self._session, self.woo), woo_mapping()),
            }
            self.handler = ShipmentHandler(shippers, backoff_s=0.1)
            self.feed = ShipmentsSource(settings, CODEC, self.handler, group_id=f"e2e-ship-{RUN}")
            self._task = asyncio.ensure_future(self.feed.run())

        self.run(feed())
        wait_for(
            lambda: bool(self.feed and self.feed.assigned),
            timeout=60,
            what="shipment feed assigned",
        )

    async def address(self, order: WaveOrder) -> Address:
        """The order's street address as its shop keeps it (an api order: a fixed one)."""
        channel, _, own = order.order_id.partition(":")
        shop = {"shopify": self.shop, "woocommerce": self.woo}.get(channel)
        if shop is None:
            return Address("FR", "33000", "Bordeaux", ("3 cours Victor Hugo",), "A. Client")
        kept = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(self._address_of(shop, int(own)), self.loop)
        )
        return kept

    async def _address_of(self, shop: Any, order_id: int) -> Address:
        order = shop.orders[order_id]
        street = order.get("shipping_address") or order.get("shipping") or {}
        line = street.get("address1") or street.get("address_1") or "1 rue X"
        name = street.get("name") or f"{street.get('first_name', '')} {street.get('last_name', '')}"
        return Address("FR", "33000", "Bordeaux", (str(line),), str(name).strip())

    def stop(self) -> None:
        try:
            if self.feed is not None and self._task is not None:
                self.feed.stop()
                self.run(asyncio.wait_for(asyncio.shield(self._task), 10))
                self.feed.close()
            if self._session is not None:
                self.run(self._session.close())
            for fake in (self.shop, self.woo, self.ups, self.dhl, self.chrono):
                self.run(fake.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)


def _carriers(out: Outside) -> dict[str, Any]:
    fast = {"timeout_s": 3, "max_attempts": 2}
    return {
        "accounts": [
            {"name": "ups", "kind": "ups", "base_url": out.ups.url, "limits": fast,
             "credentials": {"client_id": out.ups.client_id,
                             "client_secret": out.ups.client_secret, "account": out.ups.account}},
            {"name": "dhl", "kind": "dhl", "base_url": out.dhl.url, "limits": fast,
             "credentials": {"api_key": out.dhl.api_key, "api_secret": out.dhl.api_secret,
                             "account": out.dhl.account}},
            {"name": "chronopost", "kind": "chronopost", "base_url": out.chrono.url,
             "limits": fast,
             "credentials": {"account": out.chrono.account, "password": out.chrono.password}},
        ],
        "quote_timeout_s": 5,
        "currency": "EUR",
        "default_parcel": {"weight_g": 700, "length_mm": 300, "width_mm": 200, "height_mm": 100},
        "ship_from": {
            PARIS: {"country": "FR", "postal_code": "75011", "city": "Paris",
                    "lines": ["1 rue de la Roquette"], "name": "Stockflow Paris"},
            LYON: {"country": "FR", "postal_code": "69007", "city": "Lyon",
                   "lines": ["2 rue de Marseille"], "name": "Stockflow Lyon"},
        },
        "service_levels": {
            "shopify": {"service_level": "express", "max_days": 1},
            "woocommerce": {"service_level": "standard", "max_days": 2},
            "default": {"service_level": "standard", "max_days": 5},
        },
    }  # fmt: skip


def _orders(out: Outside) -> list[dict[str, Any]]:
    """N orders, a third per channel, even ones at Paris's SKUs, odd ones at Lyon's, of one or
    two lines of 1-3 units; the shop orders are placed on their fake first (their ids)."""
    records = []
    skus = SKUS[PARIS] + SKUS[LYON]
    for i in range(N):
        channel = CHANNELS[i % 3]
        group = SKUS[PARIS] if i % 2 == 0 else SKUS[LYON]
        wanted = [(group[i % 3], 1 + i % 3)] + ([(group[(i + 1) % 3], 1)] if i % 4 >= 2 else [])
        if channel == "shopify":
            placed = out.call(out.shop.place_order, [(2000 + skus.index(s), q) for s, q in wanted])
            lines = [(str(li["id"]), li["sku"], li["quantity"]) for li in placed["line_items"]]
            order_id = f"shopify:{placed['id']}"
        elif channel == "woocommerce":
            placed = out.call(out.woo.place_order, [(1 + skus.index(s), q) for s, q in wanted])
            lines = [(str(li["id"]), li["sku"], li["quantity"]) for li in placed["line_items"]]
            order_id = f"woocommerce:{placed['id']}"
        else:
            lines = [(str(n + 1), s, q) for n, (s, q) in enumerate(wanted)]
            order_id = f"api:e2e-{RUN}-{i}"
        ship_to = {"country": "FR", "postal_code": "33000", "lat": None, "lon": None}
        records.append(order_record(order_id, channel, lines, ship_to=ship_to, by=channel))
    return records


@pytest.fixture(scope="module")
def worker(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("e2e")
    with book_worker(local_stack, f"e2e-{RUN}", folder, locations=(PARIS, LYON)) as proc:
        yield proc


def _post(url: str, body: Any, token: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_allocated_orders_are_waved_picked_shipped_confirmed_and_delivered(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given N orders (shopify, woocommerce, api) allocated by the order book at a Paris and
    a Lyon warehouse, and Chronopost down (every call 500) until a few parcels passed it over
    When the wave service plans waves and a picker confirms every line through the pick API,
    two lines short by one unit, the missing units being routed again, waved and picked,
    and the shipping service labels and ships what is picked (Chronopost back once Paris's
    waves left)
    Then every order ships and ends shipped, each with its parcels from the carrier of its
    channel's service level (the three carriers sell labels; woocommerce's parcels went to
    DHL while Chronopost was down), each Shopify order fulfilled and each WooCommerce order
    completed on its shop with the tracking number; when the carriers report every parcel
    delivered but one lost, every other order is delivered and one delivery_exception alert
    names the lost parcel; and the ledger holds nothing reserved, on_hand down by exactly
    the units shipped plus the two units found missing."""
    settings = local_stack
    counts = [
        stock_event(f"{sku}-count", "stock_count", sku, STOCK, location=loc)
        for loc, skus in SKUS.items()
        for sku in skus
    ]
    produce_events(settings, CODEC, counts)
    wait_for(
        lambda: all(
            location_levels(worker, s).get(loc) == (STOCK, 0) for loc in SKUS for s in SKUS[loc]
        ),
        timeout=60,
        what="stock counted",
    )
    time.sleep(1.5)  # the order agent's view of the levels follows the ledger's
    out = Outside()
    created: list[TokenRecord] = []
    began = time.monotonic()
    try:
        out.start(settings)
        orders = _orders(out)
        ids = {o["order_id"] for o in orders}
        shipping_config = parse_shipping(
            {"track_every_seconds": 2, "poll_every_seconds": 0.3}, _carriers(out)
        )
        with StateFollower(settings, CODEC, "") as follower:
            send_orders(settings, CODEC, orders)
            follower.wait(ids, frozenset({"allocated"}), timeout=180, what="allocated")
            allocated_s = time.monotonic() - began
            picker, record = create(settings, f"e2e-picker-{RUN}", [FULFILMENT_WRITE])
            created.append(record)
            out.call(out.chrono.down, 3600)
            with ShippingThread(settings, shipping_config, addresses=out.address) as shipping:
                shorts = asyncio.run(_wave_and_pick(settings, picker, follower, ids, shipping, out))
                shipped_s = time.monotonic() - began
                mine = {sid: s for sid, s in shipping.shipments().items() if s["order_id"] in ids}
                by_carrier = Counter(s["carrier"] for s in mine.values())
                assert set(by_carrier) == {"ups", "dhl", "chronopost"}, by_carrier
                assert shipping.service.counts["fallbacks"] >= 1
                assert out.chrono.failed_requests > 0
                for s in mine.values():
                    expect = {"shopify": {"dhl"}, "api": {"ups"}}.get(
                        s["channel"], {"dhl", "chronopost"}
                    )
                    assert s["carrier"] in expect, (s["channel"], s["carrier"])
                # every order's every unit left exactly once
                per_order: Counter[tuple[str, str]] = Counter()
                for s in mine.values():
                    for ln in s["lines"]:
                        per_order[(s["order_id"], ln["sku"])] += ln["qty"]
                ordered: Counter[tuple[str, str]] = Counter()
                for o in orders:
                    for ln in o["lines"]:
                        ordered[(o["order_id"], ln["sku"])] += ln["qty"]
                assert per_order == ordered
                # the channels told
                wait_for(
                    lambda: (
                        out.handler is not None
                        and sum(out.handler.outcomes.values())
                        >= sum(1 for s in mine.values() if s["channel"] != "api")
                    ),
                    timeout=60,
                    what="every shop shipment confirmed",
                )
                assert out.handler is not None and out.handler.outcomes["failed"] == 0
                shop_orders = [o for o in orders if o["channel"] == "shopify"]
                for o in shop_orders:
                    stored = out.shop.orders[int(o["order_id"].split(":")[1])]
                    assert stored["fulfillment_status"] == "fulfilled", o["order_id"]
                    numbers = {f["tracking_number"] for f in stored["fulfillments"]}
                    assert numbers == {
                        s["tracking_number"]
                        for s in mine.values()
                        if s["order_id"] == o["order_id"]
                    }
                for o in (o for o in orders if o["channel"] == "woocommerce"):
                    stored = out.woo.orders[int(o["order_id"].split(":")[1])]
                    assert stored["status"] == "completed", o["order_id"]
                # tracking: every parcel delivered but one lost
                single = Counter(s["order_id"] for s in mine.values())
                lost = next(
                    s
                    for s in sorted(mine.values(), key=lambda s: s["shipment_id"])
                    if s["carrier"] in LOST and single[s["order_id"]] == 1
                )
                fakes = {"ups": out.ups, "dhl": out.dhl, "chronopost": out.chrono}
                later = time.time() + 60
                for s in mine.values():
                    code = LOST[s["carrier"]] if s is lost else DELIVERED[s["carrier"]]
                    out.call(fakes[s["carrier"]].progress, s["tracking_number"], code, later)
                delivered = ids - {lost["order_id"]}
                follower.wait(delivered, frozenset({"delivered"}), timeout=120, what="delivered")
                wait_for(
                    lambda: shipping.shipments()[lost["shipment_id"]]["status"] == "exception",
                    timeout=60,
                    what="the lost parcel at exception",
                )
                assert follower.snapshot()[lost["order_id"]]["status"] == "shipped"
                delivered_s = time.monotonic() - began
        alerts = read_topic(
            settings,
            CODEC,
            STOCK_ALERTS,
            lambda a: a.get("kind") == "delivery_exception" and RUN in a.get("sku", ""),
            until=lambda found: bool(found),
            timeout=30,
        )
        assert [a["alert_id"] for a in alerts] == [f"delivery_exception|{lost['shipment_id']}"]
        shipped_units: Counter[tuple[str, str]] = Counter()
        for s in mine.values():
            for ln in s["lines"]:
                shipped_units[(ln["sku"], s["location"])] += ln["qty"]
        missing: Counter[tuple[str, str]] = Counter()
        for sku, loc, n in shorts:
            missing[(sku, loc)] += n
        assert len(shorts) == SHORTS
        expected = {
            sku: (STOCK - shipped_units[(sku, loc)] - missing[(sku, loc)], 0)
            for loc in SKUS
            for sku in SKUS[loc]
        }

        def levels() -> dict[str, tuple[int, int]]:
            return {s: location_levels(worker, s)[loc] for loc in SKUS for s in SKUS[loc]}

        try:
            wait_for(lambda: levels() == expected, timeout=60, what="the ledger's figures")
        except AssertionError:
            raise AssertionError(
                f"on_hand down by the shipped and missing units, nothing reserved: expected "
                f"{expected}, the ledger has {levels()}; shipped {dict(shipped_units)}, "
                f"missing {dict(missing)}"
            ) from None
    finally:
        out.stop()
        if created:
            publish(settings, [r.revoke() for r in created])
    confirmed = out.handler.outcomes if out.handler else {}
    print(
        f"\nfulfilment e2e: {N} orders, {len(mine)} shipments by carrier {dict(by_carrier)}, "
        f"{shipping.service.counts['fallbacks']} fallbacks while chronopost was down, "
        f"{len(shorts)} short picks, channel confirmations {confirmed}; "
        f"allocated at {allocated_s:.1f} s, shipped at {shipped_s:.1f} s, delivered at "
        f"{delivered_s:.1f} s (shared machine: indicative)"
    )


async def _wave_and_pick(
    settings: Settings,
    picker: str,
    follower: StateFollower,
    ids: set[str],
    shipping: ShippingThread,
    out: Outside,
) -> list[tuple[str, str, int]]:
    """Plan and pick until every order shipped: Paris's waves first, while Chronopost is
    down, then Lyon's once it is back, then the short picks' remainders; the first SHORTS
    lines of two units or more are picked one short. Returns the short picks as (sku,
    location, missing)."""
    service = WaveService(
        settings, parse_fulfilment({}), documents=settings.state_dir / f"e2e-{RUN}"
    )
    await service.start()
    port = free_port()
    app = web.Application()
    add_routes(app, service)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    shorts: list[tuple[str, str, int]] = []

    async def pick(wave: Wave) -> None:
        picks = []
        for order in wave.orders:
            for line in order.lines:
                picked = line.qty
                if len(shorts) < SHORTS and line.qty >= 2:
                    picked = line.qty - 1
                    shorts.append((line.sku, wave.location, 1))
                picks.append(
                    {"order_id": order.order_id, "line_id": line.line_id, "picked": picked}
                )
        url = f"http://127.0.0.1:{port}/v1/waves/{wave.wave_id}/picks"
        status, body = await asyncio.to_thread(_post, url, {"picks": picks}, picker)
        assert status == 200, body

    def ours(waves: list[Wave]) -> list[Wave]:
        return [w for w in waves if all(o.order_id in ids for o in w.orders)]

    try:
        deadline = time.monotonic() + float(os.environ.get("STOCKFLOW_FULFIL_WAIT", "300"))
        first = ours(await service.plan())
        # Paris's waves while Chronopost is down, then Lyon's once it is back
        paris = [w for w in first if w.location == PARIS]
        for wave in paris:
            await pick(wave)
        waved = {o.order_id for w in paris for o in w.orders}
        while time.monotonic() < deadline:
            done = {s["order_id"] for s in shipping.shipments().values()}
            if waved <= done:
                break
            await asyncio.sleep(0.3)
        out.call(out.chrono.down, 0)
        for wave in first:
            if wave.location != PARIS:
                await pick(wave)
        while time.monotonic() < deadline:
            for wave in ours(await service.plan()):  # the short picks' remainders
                await pick(wave)
            last = follower.snapshot()
            if all(last.get(i, {}).get("status") == "shipped" for i in ids):
                return shorts
            await asyncio.sleep(0.5)
        raise AssertionError(
            f"not every order shipped in time: {follower.statuses()}; shipping "
            f"{shipping.service.counts}, last error {shipping.service.last_error}"
        )
    finally:
        await runner.cleanup()
        await service.stop()
