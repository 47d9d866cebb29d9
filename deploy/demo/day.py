"""The scripted day: a count, a rush on three channels, cancellations, a return into
quarantine, a supplier receipt, orders through the order book (a multi-line order, a
click-and-collect pickup, a B2B order waiting for approval) where the worker runs it, a
cycle count that finds a discrepancy; and, with the Magento and PrestaShop shops, an order
polled in from Magento, the store's till, the nightly ERP snapshot and a price change that
every shop shows."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from deploy.demo.counters import OutcomeCounter
from deploy.demo.marketplaces import AMAZON, MIRAKL
from deploy.demo.setup import (
    PRESTA_PRODUCT,
    SHOPIFY_ITEM,
    SHOPIFY_LOCATION,
    SHOPIFY_VARIANT,
    STORE,
    WAREHOUSE,
    WOO_PRODUCT,
)
from deploy.demo.view import Board

Shops = Any  # (FakeShopify, FakeWooCommerce); kept loose: the fakes live with the tests


class Day:
    def __init__(
        self,
        worker_url: str,
        sku: str,
        shopify: Any,
        woo: Any,
        board: Board,
        counter: OutcomeCounter,
        seed: int = 7,
        token: str | None = None,
        orders: Any = None,
        purchasing: Any = None,
        magento: Any = None,
        presta: Any = None,
        evening: Any = None,
        markets: Any = None,
        sets: Any = None,
    ) -> None:
        self.sets = sets  # deploy.demo.sets.SetsDay, with the order book
        self.markets = markets  # deploy.demo.marketplaces.MarketplaceRush
        self.magento = magento  # connectors.testing.magento.FakeMagento
        self.presta = presta  # connectors.testing.prestashop.FakePrestaShop
        self.evening = evening  # deploy.demo.channels.EveningDay
        self.purchasing = purchasing  # deploy.demo.purchasing.PurchasingDay
        self.orders = orders  # deploy.demo.orders.OrderDay, when the order agent runs
        self.token = token  # the bearer token of the worker's API
        self.counter = counter
        self.worker_url = worker_url
        self.sku = sku
        self.shopify = shopify
        self.woo = woo
        self.board = board
        self.rng = random.Random(seed)
        self.http: aiohttp.ClientSession | None = None
        self.shopify_orders: list[int] = []
        self._n = 0

    # ---- plumbing ------------------------------------------------------------------
    def _id(self, what: str) -> str:
        self._n += 1
        return f"demo-{self.sku}-{what}-{self._n}"

    async def post_events(self, events: list[dict[str, Any]]) -> None:
        assert self.http is not None
        async with self.http.post(f"{self.worker_url}/v1/events", json=events) as answer:
            body = await answer.json()
            if answer.status != 202:
                raise RuntimeError(f"the ledger refused demo events: {body}")

    async def stock(self) -> dict[str, Any] | None:
        assert self.http is not None
        async with self.http.get(f"{self.worker_url}/v1/stock/{self.sku}") as answer:
            return await answer.json() if answer.status == 200 else None

    def shop_quantities(self) -> dict[str, int | None]:
        shown: dict[str, int | None] = {
            "shopify": self.shopify.stock.get((SHOPIFY_ITEM, SHOPIFY_LOCATION)),
            "woocommerce": self.woo.products.get(WOO_PRODUCT, {}).get("stock_quantity"),
        }
        if self.magento is not None:  # what Magento sells: its source less its reservations
            shown["magento"] = self.magento.salable(self.sku)
        if self.presta is not None:
            shown["prestashop"] = self.presta.qty(PRESTA_PRODUCT)
        if self.markets is not None:  # what each marketplace offers
            shown[AMAZON] = self.markets.shops.amazon.quantity(self.sku)
            shown[MIRAKL] = self.markets.shops.mirakl.quantity(self.sku)
        return shown

    async def refresh(self) -> None:
        state = await self.stock()
        if state is not None:
            self.board.ledger = dict(state["channels"])
        self.board.shops = self.shop_quantities()
        self.board.decisions = dict(self.counter.decisions)
        self.board.alerts = dict(self.counter.alerts)

    async def until(self, check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.refresh()
            if await check():
                return
            await asyncio.sleep(0.3)
        raise RuntimeError(f"timed out after {within:.0f} s waiting for {what}")

    async def totals(self) -> dict[str, int]:
        state = await self.stock()
        assert state is not None
        locations = state["locations"].values()
        return {k: sum(loc[k] for loc in locations) for k in ("on_hand", "unsellable")}

    async def until_total(self, key: str, expected: int, what: str) -> None:
        """Until the ledger has applied the event just sent (its total ``key`` moved)."""

        async def applied() -> bool:
            return (await self.totals())[key] == expected

        await self.until(applied, 30, what)

    async def shops_match_ledger(self) -> bool:
        ledger = self.board.ledger
        shops = self.board.shops
        return bool(ledger) and all(shops.get(c) == ledger.get(c) for c in shops)

    # ---- the day ---------------------------------------------------------------------
    async def play(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        async with aiohttp.ClientSession(headers=headers) as self.http:
            await self.count()
            await self.price_change()
            await self.rush()
            await self.cancellations()
            await self.quarantine_return()
            await self.supplier_receipt()
            await self.magento_order()
            await self.order_book()
            await self.sets_and_wave()
            await self.replenishment()
            await self.cycle_count()
            await self.till()
            await self.erp_snapshot()
            self.board.step = "end of day: shops in sync"
            await self.until(self.shops_match_ledger, 60, "the shops to match the ledger")

    async def count(self) -> None:
        self.board.step = "08:00 opening count: 100 chairs"
        await self.post_events(
            [{"event_id": self._id("count"), "type": "stock_count", "sku": self.sku, "qty": 100}]
        )

        async def listed() -> bool:
            return self.board.ledger.get("store") == 100 and await self.shops_match_ledger()

        await self.until(listed, 60, "100 chairs listed on every channel")

    async def price_change(self) -> None:
        if self.evening is None:
            return
        self.board.step = "09:00 the chair's price: 129.00 EUR"
        await self.evening.set_price()
        await self.evening.until_prices()

    async def magento_order(self) -> None:
        if self.evening is None or self.magento is None:
            return
        self.board.step = "15:30 an order on Magento, polled in"
        accepted = self.board.decisions.get("accepted", 0)
        order = self.magento.place_order([(self.sku, 2)])  # on Magento's side: polled in

        async def reserved() -> bool:
            return (
                self.board.decisions.get("accepted", 0) > accepted
                and await self.shops_match_ledger()
            )

        await self.until(reserved, 60, "the Magento order's decision and the shops' update")
        self.evening.say(
            f"Magento order {order['increment_id']} (2 chairs) polled in and reserved: every "
            f"shop now shows {self.board.ledger.get('magento')}, Magento sells "
            f"{self.magento.salable(self.sku)} of {self.magento.quantity(self.sku)} in its source"
        )
        self.board.show()

    async def till(self) -> None:
        if self.evening is None:
            return
        self.board.step = "19:00 the store's till: count, 2 sales"
        assert self.http is not None
        answer = await self.evening.till(self.http, self.worker_url)

        async def applied() -> bool:
            state = await self.stock()
            store = (state or {}).get("locations", {}).get(STORE, {})
            return bool(store.get("on_hand") == 4) and await self.shops_match_ledger()

        await self.until(applied, 30, "the till's changes")
        events = [r.get("event_id") for r in answer.get("results", [])]
        self.evening.say(
            f"the till at {STORE} (POST /v1/pos/changes): counted 6 chairs, sold 2 -> "
            f"on hand 4 ({len(events)} changes accepted, e.g. {events[-1] if events else '-'})"
        )
        self.board.show()

    async def erp_snapshot(self) -> None:
        if self.evening is None:
            return
        self.board.step = "23:00 nightly ERP snapshot"
        state = await self.stock()
        on_hand = int((state or {}).get("locations", {}).get(WAREHOUSE, {}).get("on_hand", 0))
        figure = await self.evening.erp_snapshot(on_hand)

        async def recounted() -> bool:
            state = await self.stock()
            place = (state or {}).get("locations", {}).get(WAREHOUSE, {})
            return bool(place.get("on_hand") == figure) and await self.shops_match_ledger()

        await self.until(recounted, 30, "the ERP snapshot's recount")
        self.board.show()

    async def rush(self) -> None:
        self.board.step = "10:00 rush on three channels"
        orders = {"shopify": 0, "woocommerce": 0, "store": 0}

        async def shopify() -> None:
            for _ in range(45):
                order = self.shopify.place_order([(SHOPIFY_VARIANT, self.rng.randint(1, 2))])
                self.shopify_orders.append(order["id"])
                await self.shopify.deliver("orders/create", order)
                orders["shopify"] += 1
                await asyncio.sleep(self.rng.uniform(0.01, 0.06))

        async def woo() -> None:
            for _ in range(45):
                order = self.woo.place_order([(WOO_PRODUCT, self.rng.randint(1, 2))])
                await self.woo.deliver("order.created", order)
                orders["woocommerce"] += 1
                await asyncio.sleep(self.rng.uniform(0.01, 0.06))

        async def till() -> None:
            for i in range(45):
                await self.post_events(
                    [
                        {
                            "event_id": self._id("till"),
                            "type": "order_placed",
                            "sku": self.sku,
                            "qty": self.rng.randint(1, 2),
                            "channel": "store",
                            "order_id": f"till-{self.sku}-{i}",
                        }
                    ]
                )
                orders["store"] += 1
                await asyncio.sleep(self.rng.uniform(0.01, 0.06))

        markets = self.markets
        sellers = [shopify(), woo(), till()]
        if markets is not None:  # the marketplaces' buyers at the same moment
            sellers += [markets.amazon(orders), markets.mirakl(orders)]
        done = asyncio.Event()

        async def watch() -> None:
            while not done.is_set():
                await self.refresh()
                self.board.show()
                await asyncio.sleep(0.5)

        async def sell() -> None:
            await asyncio.gather(*sellers)
            done.set()

        await asyncio.gather(sell(), watch())

        async def decided() -> bool:
            return sum(self.board.decisions.values()) >= sum(orders.values())

        await self.until(decided, 60, "a decision for every order")
        if markets is not None:

            async def answered() -> bool:
                return markets.answered()[2] == 0 and await self.shops_match_ledger()

            await self.until(answered, 60, "every Mirakl order answered, the shops in sync")
            assert self.evening is not None
            counter = self.counter
            for line in markets.lines(counter.units_accepted, counter.refused):
                self.evening.say(line)
            self.evening.say(
                f"the rush: {sum(counter.units_accepted.values())} chairs reserved of the 100 "
                "counted, across "
                + ", ".join(f"{c} {n}" for c, n in sorted(counter.units_accepted.items()))
            )
        self.board.show()

    async def cancellations(self) -> None:
        self.board.step = "12:00 five Shopify orders cancelled"
        for order_id in self.shopify_orders[:5]:
            await self.shopify.deliver("orders/cancelled", self.shopify.cancel_order(order_id))
        await self.until(self.shops_match_ledger, 30, "cancellations to reach the shops")
        self.board.show()

    async def quarantine_return(self) -> None:
        self.board.step = "14:00 a damaged return, quarantined"
        before = await self.totals()
        await self.post_events(
            [
                {
                    "event_id": self._id("return"),
                    "type": "return_received",
                    "sku": self.sku,
                    "qty": 1,
                    "channel": "store",
                    "disposition": "quarantine",
                }
            ]
        )
        await self.until_total("unsellable", before["unsellable"] + 1, "the quarantined return")
        self.board.show()

    async def supplier_receipt(self) -> None:
        self.board.step = "15:00 supplier delivers 40 chairs"
        before = await self.totals()
        await self.post_events(
            [{"event_id": self._id("receipt"), "type": "receipt", "sku": self.sku, "qty": 40}]
        )
        await self.until_total("on_hand", before["on_hand"] + 40, "the receipt")
        await self.until(self.shops_match_ledger, 30, "the receipt to reach the shops")
        self.board.show()

    async def order_book(self) -> None:
        if self.orders is None:
            return
        self.board.step = "16:00 orders: multi-line, pickup, B2B"
        assert self.http is not None
        for line in await self.orders.play(self.http, self.post_events):
            print(f"[demo] {line}", flush=True)
        self.board.show()

    async def sets_and_wave(self) -> None:
        if self.sets is None or self.orders is None:
            return
        self.board.step = "16:30 a desk set, a pre-order, the warehouse's wave"
        assert self.http is not None
        await self.sets.play(self.http, self.post_events)
        self.board.show()

    async def replenishment(self) -> None:
        if self.purchasing is None:
            return
        self.board.step = "17:00 lamps run low: a plan from the till, orders to suppliers"
        assert self.http is not None
        await self.purchasing.play(self.http, self.post_events)
        self.board.show()

    async def cycle_count(self) -> None:
        self.board.step = "18:00 cycle count: 3 chairs missing"
        on_hand = (await self.totals())["on_hand"]
        await self.post_events(
            [
                {
                    "event_id": self._id("cycle-count"),
                    "type": "stock_count",
                    "sku": self.sku,
                    "qty": max(0, on_hand - 3),
                    "reason": "cycle count",
                }
            ]
        )
        await self.until_total("on_hand", max(0, on_hand - 3), "the cycle count")
        self.board.show()
