"""Orchestration of `stockflow demo`: stack, processes, fakes, the day, the summary."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

from deploy.demo.children import Child, wait_http
from deploy.demo.counters import OutcomeCounter
from deploy.demo.day import Day
from deploy.demo.setup import (
    SHOPIFY_ITEM,
    SHOPIFY_LOCATION,
    SHOPIFY_PORT,
    SHOPIFY_VARIANT,
    WOO_PORT,
    WOO_PRODUCT,
    write_configs,
)
from deploy.demo.summary import summarise
from deploy.demo.view import Board
from deploy.local import stack
from streams.kafka_admin import ensure_topics
from streams.settings import PROJECT_ROOT, Settings


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def run_demo(settings: Settings, *, keep: bool) -> int:
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))  # the fake shops live with the tests
    run = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    sku = f"office-chair-{run}"
    was_running = {name for name, state, _ in stack.status(settings) if state.startswith("running")}
    say("starting the local stack (Kafka, ClickHouse, Prometheus)")
    stack.up(settings)
    ensure_topics(settings)
    ledger_config, connectors_config = write_configs(settings.state_dir / "demo", sku, run)
    logs = settings.state_dir / "logs"
    env = {
        "STOCKFLOW_CONFIG": str(ledger_config),
        "STOCKFLOW_CONNECTORS_CONFIG": str(connectors_config),
        "STOCKFLOW_APP_ID": f"stockflow-demo-{run}",
        "STOCKFLOW_OFFSET_RESET": "latest",
    }
    children = [
        Child("worker", ["worker"], logs, env),
        Child("sink", ["sink"], logs, env),
        Child("connectors", ["connectors", "serve"], logs, env),
    ]
    started = time.time()
    try:
        return asyncio.run(_play(settings, children, sku, started))
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


async def _play(settings: Settings, children: list[Child], sku: str, started: float) -> int:
    from tests.fakes.shopify import FakeShopify
    from tests.fakes.woocommerce import FakeWooCommerce

    worker_url = f"http://127.0.0.1:{settings.worker_web_port}"
    receiver = f"http://127.0.0.1:{settings.connectors_port}"
    shopify = FakeShopify(port=SHOPIFY_PORT, webhook_target=f"{receiver}/webhooks/shopify")
    woo = FakeWooCommerce(port=WOO_PORT, webhook_target=f"{receiver}/webhooks/woocommerce")
    shopify.add_item(SHOPIFY_ITEM, SHOPIFY_VARIANT, sku, SHOPIFY_LOCATION, 0)
    woo.add_product(WOO_PRODUCT, sku, 0)
    async with shopify, woo:
        say(f"fake Shopify on {shopify.url}, fake WooCommerce on {woo.url}")
        for child in children:
            say(f"starting the {child.name} (log: {child.log})")
            child.start()
        await asyncio.to_thread(wait_http, f"{worker_url}/health", children[0], 120, "Worker ready")
        await asyncio.to_thread(wait_http, f"{receiver}/health", children[2], 60, "caught up")
        say(f"playing a day for {sku}: 100 chairs listed in full on shopify, woocommerce, store")
        board = Board()
        counter = OutcomeCounter(settings, sku)
        try:
            await Day(worker_url, sku, shopify, woo, board, counter).play()
        finally:
            counter.stop()
        board.show()
    return await asyncio.to_thread(summarise, settings, sku, board, started)
