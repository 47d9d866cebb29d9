"""Orchestration of `stockflow demo`: stack, processes, fakes, the day, the summary."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime

from connectors.testing.magento import FakeMagento
from connectors.testing.prestashop import FakePrestaShop
from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from deploy.demo.channels import EveningDay
from deploy.demo.counters import OutcomeCounter
from deploy.demo.day import Day
from deploy.demo.marketplaces import AMAZON, MIRAKL, MarketplaceRush, Marketplaces
from deploy.demo.orders import OrderDay, orders_config
from deploy.demo.purchasing import (
    Mailbox,
    PurchasingDay,
    add_approver,
    notifications_config,
    replenishment_config,
)
from deploy.demo.sets import SetsDay, sets_config
from deploy.demo.setup import (
    MAGENTO_SOURCE,
    PRESTA_PRODUCT,
    SHOPIFY_ITEM,
    SHOPIFY_LOCATION,
    SHOPIFY_PORT,
    SHOPIFY_PRODUCT,
    SHOPIFY_VARIANT,
    WOO_PORT,
    WOO_PRODUCT,
    write_configs,
)
from deploy.demo.summary import summarise
from deploy.demo.view import Board
from deploy.local import stack
from deploy.local.children import CONNECTORS_READY, WORKER_READY, ChildProcess, free_port
from deploy.local.credentials import demo_token
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.settings import Settings


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_demo(settings: Settings, *, keep: bool) -> int:
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    sku = f"office-chair-{run}"
    lamp = f"desk-lamp-{run}"
    was_running = {name for name, state, _ in stack.status(settings) if state.startswith("running")}
    say("starting the local stack (Kafka, ClickHouse, Prometheus)")
    stack.up(settings)
    ensure_topics(settings)
    orders = orders_config()
    purchasing = {
        "replenishment": replenishment_config(sku, lamp),
        "notifications": notifications_config(lamp),
        **sets_config(sku, f"desk-{run}", f"poster-{run}", f"desk-set-{run}"),
    }
    folder = settings.state_dir / "demo"
    # PrestaShop ids unlike those of earlier runs on the same broker (dead letters use them)
    shops = Shops(free_port(), free_port(), first_id=int(run[-9:]) * 1000)
    markets = Marketplaces(free_port(), free_port())
    ledger_config, connectors_config = write_configs(
        folder, sku, run, orders=orders, extra=purchasing, magento_port=shops.magento.port,
        presta_port=shops.presta.port, presta_key=shops.presta.key,
        marketplaces=markets.connector_channels(sku),
    )  # fmt: skip
    users = folder / "web-users.yaml"
    approver = add_approver(users)
    smtp_port, web_port = free_port(), free_port()
    logs = settings.state_dir / "logs"
    env = {
        "STOCKFLOW_CONFIG": str(ledger_config),
        "STOCKFLOW_CONNECTORS_CONFIG": str(connectors_config),
        "STOCKFLOW_APP_ID": f"stockflow-demo-{run}",
        "STOCKFLOW_OFFSET_RESET": "latest",
        "STOCKFLOW_SMTP_HOST": "127.0.0.1",
        "STOCKFLOW_SMTP_PORT": str(smtp_port),
        "STOCKFLOW_WEB_PORT": str(web_port),
        "STOCKFLOW_WEB_USERS": str(users),
    }
    children = [
        ChildProcess("worker", ["worker"], logs / "demo-worker.log", env),
        ChildProcess("sink", ["sink"], logs / "demo-sink.log", env),
        ChildProcess("connectors", ["connectors", "serve"], logs / "demo-connectors.log", env),
        ChildProcess("ordering page", ["web"], logs / "demo-web.log", env),
        ChildProcess(
            "notifier", ["notify", "run", "--group", f"demo-notifier-{run}"],
            logs / "demo-notifier.log", env,
        ),
    ]  # fmt: skip
    started = time.time()
    try:
        with Mailbox(smtp_port) as mailbox:
            return asyncio.run(
                _play(
                    settings,
                    children,
                    sku,
                    started,
                    run,
                    lamp,
                    mailbox,
                    approver,
                    web_port,
                    shops,
                    markets,
                )
            )
    finally:
        say("stopping the worker, the sink and the connectors")
        for child in reversed(children):
            child.stop()
        if keep:
            say(
                f"stack left running (--keep); Prometheus at http://127.0.0.1:{settings.prometheus_port}"
            )
        else:
            for service in stack.services(settings):
                if service.name not in was_running:
                    service.stop()
            say("local stack stopped (what this demo started)")


async def _play(
    settings: Settings,
    children: list[ChildProcess],
    sku: str,
    started: float,
    run: str,
    lamp: str,
    mailbox: Mailbox,
    approver: tuple[str, str],
    web_port: int,
    shops: Shops,
    markets: Marketplaces,
) -> int:
    worker_url = f"http://127.0.0.1:{settings.worker_web_port}"
    receiver = f"http://127.0.0.1:{settings.connectors_port}"
    shopify = FakeShopify(port=SHOPIFY_PORT, webhook_target=f"{receiver}/webhooks/shopify")
    woo = FakeWooCommerce(port=WOO_PORT, webhook_target=f"{receiver}/webhooks/woocommerce")
    shopify.add_item(
        SHOPIFY_ITEM, SHOPIFY_VARIANT, sku, SHOPIFY_LOCATION, 0, product_id=SHOPIFY_PRODUCT
    )
    woo.add_product(WOO_PRODUCT, sku, 0)
    magento, presta = shops.magento, shops.presta
    magento.add_product(sku, 0, MAGENTO_SOURCE)
    presta.add_product(PRESTA_PRODUCT, 0)
    markets.add(sku)
    async with shopify, woo, magento, presta, markets.amazon, markets.mirakl:
        say(f"fake Shopify on {shopify.url}, fake WooCommerce on {woo.url}")
        say(f"fake Magento on {magento.url}, fake PrestaShop on {presta.url}")
        say(f"fake Amazon on {markets.amazon.url}, fake Mirakl operator on {markets.mirakl.url}")
        for child in children:
            say(f"starting the {child.name} (log: {child.log_path})")
            child.start()
        await asyncio.to_thread(children[0].wait_serving, f"{worker_url}/health", 120, WORKER_READY)
        await asyncio.to_thread(
            children[2].wait_serving, f"{receiver}/health", 60, CONNECTORS_READY
        )
        web_url = f"http://127.0.0.1:{web_port}"
        await asyncio.to_thread(children[3].wait_serving, f"{web_url}/health", 60)
        say(f"ordering page at {web_url} (log: {children[3].log_path}); mailbox on {mailbox.port}")
        say(
            f"playing a day for {sku}: 100 chairs listed in full on shopify, woocommerce, "
            f"magento, prestashop, store, {AMAZON}, {MIRAKL}"
        )
        board = Board()
        ledger_file = settings.state_dir / "demo" / "channels.yaml"  # as write_configs made it
        counter = OutcomeCounter(settings, sku)
        orders = OrderDay(settings, worker_url, sku, run)
        sets = SetsDay(settings, worker_url, run, orders, ledger_file)
        buying = PurchasingDay(
            settings, worker_url, web_url, mailbox, chair=sku, lamp=lamp, approver=approver
        )
        fakes = {"shopify": shopify, "woocommerce": woo, "magento": magento, "prestashop": presta}
        evening = EveningDay(settings, sku, fakes, settings.state_dir / "demo")
        try:
            token = await asyncio.to_thread(demo_token, settings)
            day = Day(
                worker_url, sku, shopify, woo, board, counter, token=token, orders=orders,
                purchasing=buying, magento=magento, presta=presta, evening=evening,
                markets=MarketplaceRush(markets, sku, random.Random(11)),
                sets=sets,
            )  # fmt: skip
            await day.play()
        finally:
            counter.stop()
            orders.close()
            buying.close()
        board.show()
    return await asyncio.to_thread(
        summarise, settings, sku, board, started, orders, buying, evening.lines + sets.lines
    )


class Shops:
    """The Magento and PrestaShop fakes of the day, on ports chosen before the configs."""

    def __init__(self, magento_port: int, presta_port: int, first_id: int) -> None:
        self.magento = FakeMagento(port=magento_port, bulk_delay_s=0.2)
        self.presta = FakePrestaShop(port=presta_port, first_id=first_id)
