"""Sale on one shop → the other shop acknowledged the new quantity, through the real pipeline.

Wired like the demo: fake Shopify and fake WooCommerce (``connectors.testing``) in this
process, the connectors process (webhooks in, levels out to the shops) and a ledger worker.
Each SKU is listed on both shops with a large opening count. Orders of one unit are created
on the fake Shopify at a fixed rate, spread over the SKUs, and delivered as ``orders/create``
webhooks. An order's latency runs from its creation to the moment the fake WooCommerce
accepted a stock quantity for that SKU at or below the one the order leaves (the fake's own
record of the write, same clock); a later order's write that covers it counts, as it would
for the merchant.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from deploy.bench.config import BenchConfig, BenchError
from deploy.bench.kafka import delete_app_topics
from deploy.bench.latency import percentile
from deploy.bench.table import Row
from deploy.bench.workload import progress
from deploy.local.children import (
    CONNECTORS_READY,
    ChildProcess,
    WorkerProcess,
    free_port,
)
from streams.kernel.settings import Settings

OPENING = 100_000  # units of each SKU counted before the orders
TARGET_P99_MS = 500
LOCATION = 1
WAREHOUSE = "bench-wh"


@dataclass
class Listing:
    sku: str
    item: int  # Shopify inventory item
    variant: int  # Shopify variant
    product: int  # WooCommerce product


def _listings(tag: str, skus: int) -> list[Listing]:
    return [Listing(f"sale{tag}-{i:05d}", 10_000 + i, 20_000 + i, 30_000 + i) for i in range(skus)]


def _configs(
    folder: Path, tag: str, listings: list[Listing], ports: tuple[int, int]
) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ledger = folder / f"sale-{tag}-ledger.yaml"
    ledger.write_text(
        yaml.safe_dump(
            {
                "default_location": WAREHOUSE,
                "locations": [{"name": WAREHOUSE}],
                "channels": [{"name": "shopify"}, {"name": "woocommerce"}],
            }
        )
    )
    connectors = folder / f"sale-{tag}-connectors.yaml"
    shopify = {
        "name": "shopify",
        "kind": "shopify",
        "base_url": f"http://127.0.0.1:{ports[0]}",
        "api_version": "2026-01",
        "credentials": {"token": "shpat_test", "webhook_secrets": ["shopify-secret"]},
        "mapping": {
            "shop": "demo.myshopify.com",
            "push_location_id": LOCATION,
            "locations": {LOCATION: WAREHOUSE},
            "items": [
                {"sku": x.sku, "inventory_item_id": x.item, "variant_id": x.variant}
                for x in listings
            ],
        },
        "poll_interval_s": 0,
    }
    woo = {
        "name": "woocommerce",
        "kind": "woocommerce",
        "base_url": f"http://127.0.0.1:{ports[1]}",
        "credentials": {
            "consumer_key": "ck_test",
            "consumer_secret": "cs_test",
            "webhook_secrets": ["woo-secret"],
        },
        "mapping": {
            "site": "https://shop.example/",
            "products": [{"sku": x.sku, "product_id": x.product} for x in listings],
        },
        "poll_interval_s": 0,
    }
    connectors.write_text(
        yaml.safe_dump(
            {
                "consumer_group": f"bench-connectors-{tag}",
                "reconcile_interval_s": 3600,
                "channels": [shopify, woo],
            }
        )
    )
    return ledger, connectors


def run_sale(settings: Settings, config: BenchConfig) -> Row:
    return asyncio.run(_run(settings, config))


async def _run(settings: Settings, config: BenchConfig) -> Row:
    tag = uuid.uuid4().hex[:8]
    listings = _listings(tag, config.sale_skus)
    receiver_port = free_port()  # not the configured one: a running stack may hold it
    receiver = f"http://127.0.0.1:{receiver_port}"
    shopify = FakeShopify(webhook_target=f"{receiver}/webhooks/shopify")
    woo = FakeWooCommerce(webhook_target=f"{receiver}/webhooks/woocommerce")
    for x in listings:
        shopify.add_item(x.item, x.variant, x.sku, LOCATION, 0)
        woo.add_product(x.product, x.sku, 0)
    logs = settings.state_dir / "logs"
    async with shopify, woo:
        ledger_config, connectors_config = _configs(
            settings.state_dir / "bench", tag, listings, (shopify.port, woo.port)
        )
        env = {
            "STOCKFLOW_CONFIG": str(ledger_config),
            "STOCKFLOW_CONNECTORS_CONFIG": str(connectors_config),
            "STOCKFLOW_OFFSET_RESET": "latest",
            "STOCKFLOW_CONNECTORS_PORT": str(receiver_port),
        }
        worker = WorkerProcess(
            f"bench-sale-{tag}",
            free_port(),
            logs,
            log_name=f"bench-sale-{tag}.log",
            STOCKFLOW_CONFIG=str(ledger_config),
            STOCKFLOW_OFFSET_RESET="latest",
        )
        connectors = ChildProcess(
            "connectors", ["connectors", "serve"], logs / f"bench-connectors-{tag}.log", env
        )
        try:
            worker.start()
            connectors.start()
            await asyncio.to_thread(worker.wait_ready, 120)
            await asyncio.to_thread(
                connectors.wait_serving, f"{receiver}/health", 60, CONNECTORS_READY
            )
            await _list(worker, woo, listings)
            progress(
                f"sale→channel: {config.sale_orders:,} orders at {config.sale_rate}/s over "
                f"{len(listings):,} SKUs"
            )
            placed = await _orders(shopify, listings, config)
            latencies, missing = await _acknowledged(woo, placed, within=30)
        finally:
            connectors.stop()
            worker.stop()
            delete_app_topics(settings, worker.app_id, worker.web_port)
    return _row(config, latencies, missing)


async def _list(worker: WorkerProcess, woo: FakeWooCommerce, listings: list[Listing]) -> None:
    """Count every SKU and wait until the fake WooCommerce lists it."""
    events = [
        {"event_id": f"{x.sku}-count", "type": "stock_count", "sku": x.sku, "qty": OPENING}
        for x in listings
    ]
    status, body = await asyncio.to_thread(worker.request, "POST", "/v1/events", events)
    if status != 202:
        raise BenchError(f"the ledger refused the opening counts: HTTP {status} {body}")
    wanted = {x.sku for x in listings}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if wanted <= {w.sku for w in woo.writes if w.quantity > 0}:
            return
        await asyncio.sleep(0.2)
    raise BenchError("the fake WooCommerce did not list every bench SKU within 60 s")


@dataclass
class Placed:
    sku: str
    at: float  # time.monotonic() when the order was created on the fake Shopify
    expected: int  # WooCommerce quantity once this order (and the ones before) is applied


async def _orders(
    shopify: FakeShopify, listings: list[Listing], config: BenchConfig
) -> list[Placed]:
    opening = {x.sku: OPENING for x in listings}
    placed: list[Placed] = []
    tasks: set[asyncio.Task[Any]] = set()
    began = time.monotonic()
    for n in range(config.sale_orders):
        wait = began + n / config.sale_rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        x = listings[n % len(listings)]
        order = shopify.place_order([(x.variant, 1)])
        opening[x.sku] -= 1
        placed.append(Placed(x.sku, time.monotonic(), opening[x.sku]))
        task = asyncio.create_task(shopify.deliver("orders/create", order))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    return placed


async def _acknowledged(
    woo: FakeWooCommerce, placed: list[Placed], within: float
) -> tuple[list[float], int]:
    """Latency (ms) of each order whose quantity the fake WooCommerce accepted in time."""
    deadline = time.monotonic() + within
    while True:
        latencies: list[float] = []
        writes: dict[str, list[Any]] = {}
        for w in woo.writes:
            writes.setdefault(w.sku, []).append(w)
        for order in placed:
            found = next(
                (
                    w.at
                    for w in writes.get(order.sku, ())
                    if w.at >= order.at and w.quantity <= order.expected
                ),
                None,
            )
            if found is not None:
                latencies.append((found - order.at) * 1000)
        missing = len(placed) - len(latencies)
        if not missing or time.monotonic() > deadline:
            return latencies, missing
        await asyncio.sleep(0.5)


def _row(config: BenchConfig, latencies: list[float], missing: int) -> Row:
    name = f"sale on Shopify → WooCommerce acknowledged p99 @ {config.sale_rate}/s"
    target = f"≤ {TARGET_P99_MS}"
    if not latencies:
        return Row(name, None, "ms", target, "no order reached WooCommerce", {"verdict": "no"})
    p50, p95, p99 = (percentile(latencies, q) for q in (50, 95, 99))
    note = f"p50 {p50:.0f}, p95 {p95:.0f} ms; {len(latencies):,} orders"
    if missing:
        note += f"; {missing:,} NOT acknowledged within 30 s"
    return Row(
        name,
        p99,
        "ms",
        target,
        note,
        {
            "orders": len(latencies) + missing,
            "missing": missing,
            "p50": p50,
            "p95": p95,
            "p99": p99,
            "verdict": "yes" if p99 <= TARGET_P99_MS and not missing else "no",
        },
    )
