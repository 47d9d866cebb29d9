"""Prices end to end: ``stockflow price set`` → ``prices.events.v1`` (real broker) →
``stockflow connectors serve`` → each channel's rules → the Shopify and WooCommerce fakes.
Nothing mocked; no ledger worker needed (prices do not pass through the ledger)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.price_command import run_price
from schemas.codec import codec_for
from schemas.prices import price_change
from streams.cli import build_parser
from streams.kernel.kafka_admin import ensure_topics
from streams.kernel.kafka_config import consumer_config
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    PRICE_EVENTS,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
    STOCK_DECISIONS,
    STOCK_LEVELS,
    TopicSpec,
)
from tests.fakes.e2e import ConnectorsProcess, FakesThread
from tests.support.kafka import produce_raw, read_topic, wait_for
from tests.support.ports import free_port

pytestmark = pytest.mark.integration


@dataclass
class PriceStack:
    settings: Settings
    fakes: FakesThread
    skus: list[str]

    def set_price(self, *argv: str) -> None:
        args = build_parser().parse_args(["price", "set", *argv])
        assert run_price(self.settings, args) == 0

    def shopify_price(self, n: int) -> str:
        return self.fakes.shopify.prices[10 * n]

    def woo_price(self, n: int) -> str:
        return str(self.fakes.woo.products[n]["regular_price"])


def _config(skus: list[str], shopify_url: str, woo_url: str, group: str) -> str:
    items = "\n".join(
        f"        - {{sku: {s}, inventory_item_id: {100 + n}, variant_id: {10 * n}, "
        f"product_id: {n}}}"
        for n, s in enumerate(skus, start=1)
    )
    products = "\n".join(f"        - {{sku: {s}, product_id: {n}}}" for n, s in enumerate(skus, 1))
    return f"""
consumer_group: {group}
price_rates: {{base: EUR, date: "2026-11-30", rates: {{USD: "1.10"}}}}
channels:
  - name: shopify
    kind: shopify
    base_url: {shopify_url}
    credentials: {{token: shpat_test, webhook_secrets: [shopify-secret]}}
    mapping:
      shop: demo.myshopify.com
      push_location_id: 1
      items:
{items}
    poll_interval_s: 0
    prices: {{currency: USD, markup_pct: 10, rounding: "0.99"}}
  - name: woocommerce
    kind: woocommerce
    base_url: {woo_url}
    credentials: {{consumer_key: ck_test, consumer_secret: cs_test, webhook_secrets: [woo-secret]}}
    mapping:
      site: https://shop.example/
      products:
{products}
    poll_interval_s: 0
    prices: {{rounding: whole, floor_margin_pct: 25}}
"""


def _wait_for_leaders(settings: Settings, specs: tuple[TopicSpec, ...]) -> None:
    """Until every partition answers its offsets (a topic created a moment ago on a fresh
    broker may still answer NOT_LEADER, which the connectors' start does not wait out)."""
    consumer = Consumer(consumer_config(settings, f"prices-e2e-{uuid.uuid4().hex[:6]}"))
    try:

        def ready() -> bool:
            try:
                for spec in specs:
                    meta = consumer.list_topics(spec.name, timeout=5)
                    for p in meta.topics[spec.name].partitions:
                        consumer.get_watermark_offsets(TopicPartition(spec.name, p), timeout=5)
            except (KafkaException, KeyError):
                return False
            return True

        wait_for(ready, timeout=30, what="leaders of the connectors' topics")
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def prices(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PriceStack]:
    folder: Path = tmp_path_factory.mktemp("prices-e2e")
    ensure_topics(local_stack)  # as a worker or `stack up` would: the connectors need them
    _wait_for_leaders(local_stack, (STOCK_LEVELS, STOCK_DECISIONS, PRICE_EVENTS))
    tag = uuid.uuid4().hex[:8]
    skus = [f"price-{tag}-{n}" for n in (1, 2)]
    port = free_port()
    fakes = FakesThread(f"http://127.0.0.1:{port}")
    fakes.start()
    connectors: ConnectorsProcess | None = None
    try:
        for n, sku in enumerate(skus, start=1):
            fakes.shopify.add_item(100 + n, 10 * n, sku, 1, 0, product_id=n)
            fakes.woo.add_product(n, sku, 0)
        config = folder / "connectors.yaml"
        config.write_text(_config(skus, fakes.shopify.url, fakes.woo.url, f"prices-{tag}"))
        connectors = ConnectorsProcess(config, port, local_stack.state_dir / "logs")
        connectors.start()
        yield PriceStack(local_stack, fakes, skus)
    finally:
        try:
            if connectors is not None:
                print(f"[prices] connectors exited {connectors.stop()}; {connectors.log_path}")
        finally:
            fakes.stop()


def test_a_price_change_reaches_both_shops_with_each_channels_rule(prices: PriceStack) -> None:
    """Given Shopify priced in USD (+10 %, .99) and WooCommerce in EUR (whole), when
    `stockflow price set SKU 19.99 --currency EUR` is run, then Shopify shows 23.99 (19.99 x
    1.10 x 1.10 = 24.19 → .99) and WooCommerce 20.00."""
    started = time.monotonic()
    prices.set_price(prices.skus[0], "19.99", "--currency", "EUR")
    wait_for(
        lambda: prices.shopify_price(1) == "23.99" and prices.woo_price(1) == "20.00",
        timeout=30,
        what="23.99 USD on Shopify and 20.00 EUR on WooCommerce",
    )
    print(f"[prices] on both shops {time.monotonic() - started:.2f} s after the command")


def test_a_change_below_the_floor_is_blocked_on_that_channel_with_an_alert(
    prices: PriceStack,
) -> None:
    """Given WooCommerce's floor of cost + 25 %, when the second SKU is set to 15.00 (cost
    10.00) and then 11.00, then Shopify shows 12.99 for the second, WooCommerce keeps 15.00,
    and an alert on stock.alerts.v1 names WooCommerce, the price and the floor."""
    sku = prices.skus[1]
    prices.set_price(sku, "15.00", "--cost", "10.00")
    wait_for(lambda: prices.woo_price(2) == "15.00", timeout=30, what="15.00 on WooCommerce")
    prices.set_price(sku, "11.00", "--cost", "10.00")
    wait_for(lambda: prices.shopify_price(2) == "12.99", timeout=30, what="12.99 on Shopify")
    alerts = read_topic(
        prices.settings,
        codec_for(prices.settings),
        STOCK_ALERTS,
        lambda a: a["sku"] == sku,
        until=lambda found: bool(found),
        timeout=30,
    )
    assert [(a["kind"], a["channel"], a["value"], a["threshold"]) for a in alerts] == [
        ("other", "woocommerce", 1100, 1250)
    ]
    assert "below the floor" in alerts[0]["message"]
    assert prices.woo_price(2) == "15.00"


def test_bad_price_records_are_dead_lettered_and_the_next_good_one_still_applies(
    prices: PriceStack,
) -> None:
    """Given bytes no codec reads and a decodable change with a negative price on
    prices.events.v1, when a good change of the first SKU follows, then both bad records are
    dead-lettered (with their reasons) and both shops show the good price."""
    sku = prices.skus[0]
    codec = codec_for(prices.settings)
    bad = price_change(sku, 1, "EUR", version=1, source="test")
    bad["amount_minor"] = -100
    produce_raw(
        prices.settings,
        [
            (sku.encode(), b"not a price"),
            (sku.encode(), codec.encode(PRICE_EVENTS.value_schema, bad)),
        ],
        PRICE_EVENTS,
    )
    prices.set_price(sku, "9.50")
    wait_for(
        lambda: prices.shopify_price(1) == "11.99" and prices.woo_price(1) == "10.00",
        timeout=30,
        what="11.99 USD on Shopify and 10.00 EUR on WooCommerce",
    )
    letters = read_topic(
        prices.settings,
        codec,
        STOCK_DEADLETTER,
        lambda d: d["topic"] == PRICE_EVENTS.name and d["key"] == sku.encode(),
        until=lambda found: len(found) >= 2,
        timeout=30,
    )
    reasons = sorted(d["reason"] for d in letters)
    print(f"[prices] dead letters: {reasons}")
    assert reasons == ["bad_amount_minor", "bad_magic"]
