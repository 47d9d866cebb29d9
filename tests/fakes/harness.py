"""Test wiring: the connectors' receiver app on a loopback port, a list publisher, and
ready-made channel set-ups against the fakes. Used by tests/unit; no Kafka involved."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from connectors.framework.intake import Intake, ObservationSink
from connectors.framework.types import StockEventDict
from connectors.server import InboundChannel, create_app
from connectors.server import runner as make_runner
from connectors.shopify.client import ShopifyClient
from connectors.shopify.limits import ShopifyLimits
from connectors.shopify.mapping import ShopifyItem, ShopifyMapping
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.mapping import WooMapping, WooProduct

SKUS = ("chair", "table", "lamp", "desk", "sofa")


@dataclass
class Published:
    """A publisher that keeps what it was given; ``fail`` makes the next call raise."""

    events: list[StockEventDict] = field(default_factory=list)
    fail: int = 0

    async def __call__(self, events: Sequence[StockEventDict]) -> None:
        if self.fail:
            self.fail -= 1
            raise RuntimeError("broker unavailable")
        self.events.extend(events)

    @property
    def ids(self) -> list[str]:
        return [e["event_id"] for e in self.events]


@dataclass
class Receiver:
    base: str
    intake: Intake
    published: Published

    def url(self, channel: str) -> str:
        return f"{self.base}/webhooks/{channel}"


@asynccontextmanager
async def receiver(
    *channels: InboundChannel, observe: ObservationSink | None = None
) -> AsyncIterator[Receiver]:
    published = Published()
    intake = Intake(published, observe=observe)
    runner = make_runner(create_app(intake, *channels))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Receiver(f"http://127.0.0.1:{port}", intake, published)
    finally:
        await runner.cleanup()


def shopify_mapping() -> ShopifyMapping:
    return ShopifyMapping(
        shop="demo.myshopify.com",
        push_location_id=1,
        items=tuple(ShopifyItem(sku, 100 + n, 10 * n) for n, sku in enumerate(SKUS, start=1)),
        locations={1: "paris", 2: "lyon"},
    )


def seed_shopify(fake: FakeShopify, qty: int = 50) -> None:
    for n, sku in enumerate(SKUS, start=1):
        fake.add_item(100 + n, 10 * n, sku, 1, qty)


def woo_mapping(*, refunds_restock: bool = False) -> WooMapping:
    return WooMapping(
        site="https://shop.example/",
        products=tuple(WooProduct(sku, n) for n, sku in enumerate(SKUS, start=1)),
        refunds_restock=refunds_restock,
    )


def seed_woo(fake: FakeWooCommerce, qty: int = 50) -> None:
    for n, sku in enumerate(SKUS, start=1):
        fake.add_product(n, sku, qty)


def shopify_client(
    session: aiohttp.ClientSession, fake: FakeShopify, **limits: Any
) -> ShopifyClient:
    return ShopifyClient(session, fake.url, fake.token, limits=ShopifyLimits(**limits))


def woo_client(session: aiohttp.ClientSession, fake: FakeWooCommerce) -> WooClient:
    return WooClient(session, fake.url, "ck_test", "cs_test")
