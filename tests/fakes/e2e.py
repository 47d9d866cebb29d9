"""End-to-end wiring for integration and fault tests: the fakes on their own event loop
thread, a real ledger worker, and ``stockflow connectors serve`` as a subprocess.

Sync test code drives the fakes with ``fakes.run(coro)`` / ``fakes.call(fn)`` (executed on
the fakes' loop, so their state is only touched from one thread) and reads the fakes'
``writes`` logs. Everything is stopped in ``finally`` blocks, whatever fails.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from connectors.testing.shopify import FakeShopify
from connectors.testing.woocommerce import FakeWooCommerce
from deploy.local.children import CONNECTORS_READY, ChildProcess
from schemas.codec import single_object_codec
from streams.kernel.settings import Settings
from tests.support.kafka import produce_events, stock_event, wait_for
from tests.support.processes import track
from tests.support.worker import WorkerProcess

T = TypeVar("T")
LOCATION = "main"
LEDGER_CONFIG = f"""
default_location: {LOCATION}
locations:
  - name: {LOCATION}
channels:
  - name: shopify
  - name: woocommerce
"""


class FakesThread:
    """FakeShopify and FakeWooCommerce served by an event loop in a background thread."""

    def __init__(self, webhook_base: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.shopify = FakeShopify(webhook_target=f"{webhook_base}/webhooks/shopify", seed=1)
        self.woo = FakeWooCommerce(webhook_target=f"{webhook_base}/webhooks/woocommerce", seed=2)

    def start(self) -> None:
        self._thread.start()
        self.run(self.shopify.start())
        self.run(self.woo.start())

    def stop(self) -> None:
        try:
            self.run(self.shopify.close(), timeout=10)
            self.run(self.woo.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 120) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 30) -> T:
        done: Future[T] = Future()

        def invoke() -> None:
            try:
                done.set_result(fn())
            except Exception as exc:  # handed to the caller's thread
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(invoke)
        return done.result(timeout)

    def shopify_qty(self, item_id: int) -> int | None:
        return self.shopify.stock.get((item_id, 1))

    def woo_qty(self, pid: int) -> int | None:
        return self.woo.products[pid]["stock_quantity"]


class ConnectorsProcess(ChildProcess):
    """``stockflow connectors serve`` in a subprocess, logging to a file."""

    def __init__(self, config: Path, port: int, log_dir: Path, **env: str) -> None:
        super().__init__(
            "connectors",
            ["connectors", "serve"],
            log_dir / f"connectors-{port}-{uuid.uuid4().hex[:6]}.log",
            {
                "STOCKFLOW_CONNECTORS_CONFIG": str(config),
                "STOCKFLOW_CONNECTORS_PORT": str(port),
                # a new test group starts at the end of the shared levels topic
                "STOCKFLOW_OFFSET_RESET": "latest",
                **env,
            },
            on_spawn=track,
        )
        self.port = port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:  # type: ignore[override]
        super().start()
        self.wait_serving(self.url + "/health", timeout, CONNECTORS_READY)

    def stop(self, timeout: float = 30) -> int | None:
        return super().stop(timeout)


@dataclass
class Stack:
    """What a test gets: the worker, the connectors, the fakes and the mapped SKUs
    (SKU number ``n`` is Shopify item ``100 + n`` / variant ``10 * n`` and Woo product ``n``)."""

    settings: Settings
    worker: WorkerProcess
    connectors: ConnectorsProcess
    fakes: FakesThread
    skus: list[str]
    group: str  # the connectors' consumer group (their state folder is named after it)
    # a bundle of the first SKU and two of the second, mapped on both fakes after the SKUs
    # (never counted: its quantity is derived), when the stack was asked for one
    bundle: str | None = None

    @property
    def bundle_ids(self) -> tuple[int, int, int]:
        """The bundle's Shopify item, Shopify variant and Woo product ids."""
        n = len(self.skus) + 1
        return 100 + n, 10 * n, n

    def item(self, sku: str) -> int:
        return 100 + self.skus.index(sku) + 1

    def variant(self, sku: str) -> int:
        return 10 * (self.skus.index(sku) + 1)

    def pid(self, sku: str) -> int:
        return self.skus.index(sku) + 1

    def ledger_qty(self, sku: str, channel: str) -> int | None:
        stock = self.worker.stock(sku) or {}
        value = (stock.get("channels") or {}).get(channel)
        return None if value is None else int(value)

    def count(self, quantities: dict[str, int], *, timeout: float = 60) -> None:
        """Count stock at the ledger, then wait until both fakes were pushed the figures."""
        produce_events(
            self.settings,
            single_object_codec(),
            [
                stock_event(
                    f"{sku}-count-{uuid.uuid4().hex[:6]}", "stock_count", sku, q, location=LOCATION
                )
                for sku, q in quantities.items()
            ],
        )
        wait_for(
            lambda: all(
                self.fakes.shopify_qty(self.item(s)) == q and self.fakes.woo_qty(self.pid(s)) == q
                for s, q in quantities.items()
            ),
            timeout=timeout,
            what="the counted quantities on both fakes",
        )


def connectors_yaml(
    stack_skus: list[str],
    shopify_url: str,
    woo_url: str,
    group: str,
    on_refusal: dict[str, str] | None = None,
    channel_extra: str = "",
) -> str:
    """``channel_extra``: YAML lines (no indent) added to both channel entries."""
    policy = on_refusal or {}
    extra = "".join(f"    {line}\n" for line in channel_extra.splitlines() if line.strip())
    shopify_items = "\n".join(
        f"        - {{sku: {s}, inventory_item_id: {100 + n}, variant_id: {10 * n}}}"
        for n, s in enumerate(stack_skus, start=1)
    )
    woo_products = "\n".join(
        f"        - {{sku: {s}, product_id: {n}}}" for n, s in enumerate(stack_skus, start=1)
    )
    return f"""
consumer_group: {group}
reconcile_interval_s: 30
drift_grace_s: 10
channels:
  - name: shopify
    kind: shopify
    base_url: {shopify_url}
    credentials: {{token: shpat_test, webhook_secrets: [old-secret, shopify-secret]}}
    mapping:
      shop: demo.myshopify.com
      push_location_id: 1
      locations: {{1: {LOCATION}}}
      items:
{shopify_items}
    sync: realtime
    poll_interval_s: 30
    on_refusal: {policy.get("shopify", "flag")}
{extra}  - name: woocommerce
    kind: woocommerce
    base_url: {woo_url}
    credentials: {{consumer_key: ck_test, consumer_secret: cs_test, webhook_secrets: [woo-secret]}}
    mapping:
      site: https://shop.example/
      products:
{woo_products}
    sync: {{coalesce_ms: 0}}  # no coalescing: every level is its own push (ordering tests)
    poll_interval_s: 30
    on_refusal: {policy.get("woocommerce", "flag")}
{extra}"""


@contextmanager
def e2e_stack(
    settings: Settings,
    folder: Path,
    *,
    worker_port: int,
    connectors_port: int,
    n_skus: int,
    on_refusal: dict[str, str] | None = None,
    channel_extra: str = "",
    bundle: bool = False,
) -> Iterator[Stack]:
    """A worker, the fakes (``n_skus`` fresh SKUs at 0 on both) and the connectors
    (``on_refusal``: policy per channel name, default flag; ``channel_extra``: YAML lines
    added to both channel entries of their configuration)."""
    tag = uuid.uuid4().hex[:8]
    skus = [f"e2e-{tag}-{n}" for n in range(1, n_skus + 1)]
    ledger = folder / "ledger.yaml"
    ledger.write_text(LEDGER_CONFIG)
    set_sku = f"e2e-{tag}-set" if bundle else None
    if set_sku is not None:
        ledger.write_text(
            LEDGER_CONFIG
            + f"bundles:\n  - sku: {set_sku}\n    components: {{{skus[0]}: 1, {skus[1]}: 2}}\n"
        )
    logs = settings.state_dir / "logs"
    worker = WorkerProcess(f"e2e-{tag}", worker_port, logs, STOCKFLOW_CONFIG=str(ledger))
    fakes = FakesThread(f"http://127.0.0.1:{connectors_port}")
    connectors: ConnectorsProcess | None = None
    try:
        fakes.start()
        mapped = skus + ([set_sku] if set_sku is not None else [])
        for n, sku in enumerate(mapped, start=1):
            fakes.shopify.add_item(100 + n, 10 * n, sku, 1, 0)
            fakes.woo.add_product(n, sku, 0)
        worker.start()
        config = folder / "connectors.yaml"
        group = f"e2e-connectors-{tag}"
        config.write_text(
            connectors_yaml(
                mapped,
                fakes.shopify.url,
                fakes.woo.url,
                group,
                on_refusal,
                channel_extra,
            )
        )
        # the bundle definitions, for the line intake (the connectors read no other key)
        env = {"STOCKFLOW_CONFIG": str(ledger)} if set_sku is not None else {}
        connectors = ConnectorsProcess(config, connectors_port, logs, **env)
        connectors.start()
        yield Stack(settings, worker, connectors, fakes, skus, group, set_sku)
    finally:
        try:
            if connectors is not None:
                code = connectors.stop()
                print(f"[e2e] connectors exited {code}; log {connectors.log_path}")
        finally:
            try:
                worker.stop()
            finally:
                fakes.stop()
