"""PrestaShop end to end on the real stack: the fake webservice ← ``stockflow connectors
serve`` (polling its orders, writing its stock_availables) → Kafka → the real ledger
worker → levels → back to the fake. Real broker, real Faust worker, real HTTP; the shop
is the fake. Sizes: ``STOCKFLOW_PS_E2E_ORDERS`` orders in the outage test (default 3)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.testing.prestashop import FakePrestaShop
from schemas.codec import single_object_codec
from streams.kernel import topics
from streams.kernel.settings import Settings
from tests.fakes.e2e import ConnectorsProcess
from tests.support.fake_loop import FakesOnLoop
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

LOCATION = "main"
CHANNEL = "prestashop"
OUTAGE_ORDERS = int(os.environ.get("STOCKFLOW_PS_E2E_ORDERS", "3"))


class FakeThread(FakesOnLoop):
    """The fake PrestaShop on its own event loop thread; ``call`` runs on that loop."""

    def __init__(self) -> None:
        # ids unlike those of earlier runs on the same broker (dead letters are keyed by them)
        self.shop = FakePrestaShop(seed=3, first_id=uuid.uuid4().int % 10**9 * 1000)
        super().__init__(self.shop)


@dataclass
class Shop:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    connectors: ConnectorsProcess
    skus: list[str]  # SKU n is PrestaShop product n

    def pid(self, sku: str) -> int:
        return self.skus.index(sku) + 1

    def shop_qty(self, sku: str) -> int:
        return self.fake.call(lambda: self.fake.shop.qty(self.pid(sku)))

    def location(self, sku: str) -> dict[str, Any]:
        stock = self.worker.stock(sku) or {}
        result: dict[str, Any] = (stock.get("locations") or {}).get(LOCATION) or {}
        return result

    def count(self, quantities: dict[str, int]) -> None:
        produce_events(
            self.settings,
            single_object_codec(),
            [
                stock_event(
                    f"{s}-count-{uuid.uuid4().hex[:6]}", "stock_count", s, q, location=LOCATION
                )
                for s, q in quantities.items()
            ],
        )

    def wait_shop(self, quantities: dict[str, int], timeout: float = 30) -> None:
        wait_for(
            lambda: all(self.shop_qty(s) == q for s, q in quantities.items()),
            timeout=timeout,
            what=f"the shop to show {quantities}",
        )


def _config(skus: list[str], url: str, key: str, group: str) -> str:
    products = "\n".join(
        f"        - {{sku: {s}, product_id: {n}}}" for n, s in enumerate(skus, start=1)
    )
    return f"""
consumer_group: {group}
reconcile_interval_s: 2
drift_grace_s: 1
channels:
  - name: {CHANNEL}
    kind: prestashop
    base_url: {url}
    credentials: {{webservice_key: {key}}}
    mapping:
      shop: https://shop.example/
      states: {{paid: [2], shipped: [4, 5], cancelled: [6], refunded: [7]}}
      products:
{products}
    sync: {{coalesce_ms: 20}}
    poll_interval_s: 0.5
    retry: {{max_attempts: 8, dirty_retry_s: 1}}
"""


@pytest.fixture(scope="module")
def shop(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    folder: Path = tmp_path_factory.mktemp("prestashop-e2e")
    tag = uuid.uuid4().hex[:8]
    skus = [f"ps-{tag}-{n}" for n in range(1, 5)]
    ledger = folder / "ledger.yaml"
    ledger.write_text(
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n"
        f"channels:\n  - name: {CHANNEL}\n"
    )
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"ps-e2e-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for n in range(1, len(skus) + 1):
            fake.call(lambda n=n: fake.shop.add_product(n, 0))  # type: ignore[misc]
        worker.start()
        config = folder / "connectors.yaml"
        config.write_text(_config(skus, fake.shop.url, fake.shop.key, f"ps-e2e-connectors-{tag}"))
        connectors = ConnectorsProcess(config, free_port(), logs)
        connectors.start()
        started = time.monotonic()
        shop = Shop(local_stack, worker, fake, connectors, skus)
        shop.count(dict.fromkeys(skus, 20))
        shop.wait_shop(dict.fromkeys(skus, 20), timeout=60)
        print(f"[ps-e2e] first levels on the shop after {time.monotonic() - started:.1f} s")
        yield shop
    finally:
        try:
            if connectors is not None:
                code = connectors.stop()
                print(f"[ps-e2e] connectors exited {code}; log {connectors.log_path}")
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_orders_reserve_and_a_shipped_state_consumes_the_reservation(shop: Shop) -> None:
    """Given 20 counted and pushed, when the shop takes a paid order of 3 (polled), then
    the ledger holds 3 reserved of 20 on hand and the shop shows 17; when the order turns
    shipped (state 4), then the reservation is consumed: 17 on hand, 0 reserved, the shop
    at 17. An order the connector cannot read (broken date) is a dead letter on
    stock.deadletter.v1 and does not hold up the order after it."""
    sku = shop.skus[0]
    fake = shop.fake
    order = fake.call(lambda: fake.shop.place_order([(shop.pid(sku), 0, 3)], state=2))
    broken = fake.call(lambda: fake.shop.place_order([(shop.pid(sku), 0, 1)], state=2))
    fake.call(lambda: broken.update(date_add="yesterday"))
    wait_for(
        lambda: (shop.location(sku).get("on_hand"), shop.location(sku).get("reserved")) == (20, 3),
        timeout=20,
        what="3 reserved of 20",
    )
    fake.call(lambda: fake.shop.set_state(order["id"], 4))
    wait_for(
        lambda: (shop.location(sku).get("on_hand"), shop.location(sku).get("reserved")) == (17, 0),
        timeout=20,
        what="the shipment consuming the reservation",
    )
    shop.wait_shop({sku: 17})
    key = f"{CHANNEL}:{broken['id']}".encode()
    letters = read_topic(
        shop.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: r.get("key") == key,
        until=lambda found: False,  # read them all: polled again and again, set aside once
        timeout=2,
    )
    [letter] = letters
    assert letter["reason"] == "invalid_order" and "yesterday" in letter["error"]


def test_a_write_overwritten_at_once_is_verified_and_written_again(shop: Shop) -> None:
    """Given another writer that sets the row to 99 right after the connector's next PUT,
    when the ledger's figure becomes 30, then the read after write sees 99, the connector
    writes 30 again by itself (no reconciliation, so no drift alert) and the shop ends at
    30."""
    sku = shop.skus[1]
    fake = shop.fake
    before = fake.call(lambda: len(fake.shop.puts))
    fake.call(lambda: fake.shop.overwrite_after_put(99))
    shop.count({sku: 30})
    shop.wait_shop({sku: 30})
    puts = fake.call(lambda: [p["quantity"] for p in fake.shop.puts[before:]])
    assert puts[-2:] == ["30", "30"], puts
    # the connector's own check wrote it again: a reconciliation finding 99 would have
    # alerted before its correction showed, and there is no such alert
    alerts = read_topic(
        shop.settings,
        single_object_codec(),
        topics.STOCK_ALERTS,
        lambda r: r.get("sku") == sku and r.get("kind") == "drift",
        until=lambda found: bool(found),
        timeout=1,
    )
    assert alerts == []


def test_a_back_office_edit_is_drift_alerted_and_corrected(shop: Shop) -> None:
    """Given the shop at 20, when someone sets the row to 5 in the back office, then the
    reconciliation finds it: a drift alert (ours 20, theirs 5) on stock.alerts.v1 and the
    shop back at 20."""
    sku = shop.skus[2]
    fake = shop.fake
    fake.call(lambda: fake.shop.set_quantity(shop.pid(sku), 5))
    shop.wait_shop({sku: 20})
    [alert, *_] = read_topic(
        shop.settings,
        single_object_codec(),
        topics.STOCK_ALERTS,
        lambda r: r.get("sku") == sku and r.get("channel") == CHANNEL,
        until=lambda found: len(found) >= 1,
        timeout=20,
    )
    assert (alert["kind"], alert["threshold"], alert["value"]) == ("drift", 20, -15)


def test_an_outage_delays_orders_and_stock_but_loses_nothing(shop: Shop) -> None:
    """Given the shop down (503) for 2 s, when orders are placed on it and the ledger's
    figure changes meanwhile, then once it answers again every order is reserved exactly
    once and the shop shows the ledger's figure."""
    sku = shop.skus[3]
    fake = shop.fake
    fake.call(lambda: fake.shop.down(2, status=503))
    for _ in range(OUTAGE_ORDERS):
        fake.call(lambda: fake.shop.place_order([(shop.pid(sku), 0, 1)], state=2))
    shop.count({sku: 25})
    started = time.monotonic()
    wait_for(
        lambda: shop.location(sku).get("reserved") == OUTAGE_ORDERS,
        timeout=30,
        what=f"{OUTAGE_ORDERS} orders reserved",
    )
    shop.wait_shop({sku: 25 - OUTAGE_ORDERS})
    failed = fake.call(lambda: fake.shop.failed_requests)
    print(
        f"[ps-e2e] outage: {failed} requests refused, {OUTAGE_ORDERS} orders, caught up "
        f"{time.monotonic() - started:.1f} s after the count"
    )
    assert failed > 0
    time.sleep(1.0)  # two more polls: nothing reserved twice
    assert shop.location(sku).get("reserved") == OUTAGE_ORDERS
