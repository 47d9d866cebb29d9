"""Amazon end to end: the fake Selling Partner API → polled MFN orders and FBA stock → Kafka
→ real ledger worker → levels → listings quantities written back (a JSON listings feed for
a bulk batch, a patch confirmed by read-back for a single change). A second seller has
``orders: book``: its orders go through the order book (in the worker) and its shipments are
confirmed to Amazon (confirmShipment). Real broker, real Faust worker, ``stockflow
connectors serve`` as a subprocess; only the channel is a fake.

Sizes: ``STOCKFLOW_AMAZON_E2E_ORDERS`` orders placed during the 429 storm (default 3)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.testing.amazon import RATES, FakeAmazon
from schemas.codec import single_object_codec
from streams.kernel import topics
from streams.kernel.settings import Settings
from tests.fakes.e2e import ConnectorsProcess
from tests.support.fake_loop import FakesOnLoop
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.ports import free_port
from tests.support.shipments import publish_shipment
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

LOCATION = "main"
FBA = "amazon-fba"
BOOK = "amazon-bk"  # the seller whose orders the order book holds (orders: book)
STORM_ORDERS = int(os.environ.get("STOCKFLOW_AMAZON_E2E_ORDERS", "3"))
# Amazon's documented rates, except polling, which a test cannot wait a minute for: the fake
# announces its rates in x-amzn-RateLimit-Limit and the connector follows them.
FAKE_RATES = {**RATES, "getOrders": (20.0, 20.0), "getOrderItems": (20.0, 30.0)}


class FakeThread(FakesOnLoop):
    """The fake Amazon on its own event loop thread; state touched only from that loop."""

    def __init__(self) -> None:
        self.amazon = FakeAmazon(apply_delay_s=0.2, feed_delay_s=0.3, rates=FAKE_RATES, seed=5)
        self.book = FakeAmazon(  # order ids of its own per run: the order book's topics stay
            seller_id="A2BOOK",
            refresh_token="Atzr|fake-book",
            rates=FAKE_RATES,
            seed=time.time_ns(),
        )
        super().__init__(self.amazon, self.book)


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    skus: list[str]
    connectors_log: Path
    book_sku: str

    def qty(self, sku: str) -> int | None:
        return self.fake.call(lambda: self.fake.amazon.quantity(sku))

    def writes(self, sku: str) -> list[int]:
        """The quantities Amazon applied for ``sku`` (patches and feed messages), in order."""
        return self.fake.call(lambda: [w.quantity for w in self.fake.amazon.writes if w.sku == sku])

    def ledger(self, sku: str) -> dict[str, Any]:
        return self.worker.stock(sku) or {}

    def channel_qty(self, sku: str) -> int | None:
        value = (self.ledger(sku).get("channels") or {}).get("amazon")
        return None if value is None else int(value)

    def location(self, sku: str, name: str = LOCATION) -> dict[str, Any]:
        return dict((self.ledger(sku).get("locations") or {}).get(name) or {})

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

    def synced(self, sku: str, want: int) -> bool:
        return self.channel_qty(sku) == want and self.qty(sku) == want


def _config(fake: FakeAmazon, skus: list[str], group: str, book: FakeAmazon, sku: str) -> str:
    return f"""
consumer_group: {group}
reconcile_interval_s: 600
channels:
  - name: amazon
    kind: amazon
    base_url: {fake.url}
    credentials:
      client_id: {fake.client_id}
      client_secret: {fake.client_secret}
      refresh_token: "{fake.refresh_token}"
    mapping:
      seller_id: {fake.seller_id}
      marketplace_id: {fake.marketplace_id}
      skus: [{", ".join(skus)}]
      fba_location: {FBA}
      token_url: {fake.url}/auth/o2/token
      confirm: {{poll_s: 0.1, wait_s: 10}}
      feed: {{above: 3, poll_s: 0.1, wait_s: 10}}
    sync: {{coalesce_ms: 300}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
  - name: {BOOK}
    kind: amazon
    orders: book
    base_url: {book.url}
    credentials:
      client_id: {book.client_id}
      client_secret: {book.client_secret}
      refresh_token: "{book.refresh_token}"
    mapping:
      seller_id: {book.seller_id}
      marketplace_id: {book.marketplace_id}
      skus: [{sku}]
      fba_location: {FBA}
      token_url: {book.url}/auth/o2/token
      confirm: {{poll_s: 0.1, wait_s: 10}}
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
"""


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("amazon-e2e")
    tag = uuid.uuid4().hex[:8]
    skus = [f"amz-{tag}-{n}" for n in range(1, 6)]
    book_sku = f"amz-{tag}-bk"
    ledger = folder / "ledger.yaml"
    ledger.write_text(  # Amazon ships its FBA stock itself: no channel's order goes there
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n  - name: {FBA}\n"
        f"channels:\n  - name: amazon\n    locations: [{LOCATION}]\n"
        f"  - name: {BOOK}\n    locations: [{LOCATION}]\n"
    )
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"amz-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for sku in skus:
            fake.call(lambda sku=sku: fake.amazon.add_listing(sku, 0))
        fake.call(lambda: fake.amazon.reject(skus[4], "The listing is suppressed (missing image)."))
        fake.call(lambda: fake.book.add_listing(book_sku, 0))
        worker.start()
        config = folder / "connectors.yaml"
        config.write_text(_config(fake.amazon, skus, f"amz-connectors-{tag}", fake.book, book_sku))
        connectors = ConnectorsProcess(config, free_port(), logs)
        connectors.start()
        s = Stack(local_stack, worker, fake, skus, connectors.log_path, book_sku)
        s.count(dict.fromkeys(skus, 10))
        wait_for(
            lambda: all(s.qty(sku) == 10 for sku in skus[:4]),
            timeout=60,
            what="the counted quantities written to the fake's listings",
        )
        yield s
    finally:
        try:
            if connectors is not None:
                print(f"[amazon-e2e] connectors exited {connectors.stop()}; {connectors.log_path}")
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_a_bulk_count_goes_as_a_feed_confirmed_by_its_report_and_a_refused_sku_is_dead_lettered(
    stack: Stack,
) -> None:
    """Given five SKUs counted at once, one of which Amazon refuses, when the connector
    pushes them, then they went as a JSON listings feed, the four others show 10 on Amazon
    (the report confirmed them), and the refused one is dead-lettered with Amazon's issue
    and never written."""
    m = stack.fake.amazon
    assert stack.fake.call(lambda: len(m.feeds)) >= 1
    refused = stack.skus[4]
    letters = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: r.get("component") == "connector:amazon" and refused.encode() in r["original"],
        until=lambda found: bool(found),
        timeout=30,
    )
    assert letters and "missing image" in letters[0]["error"]
    assert stack.qty(refused) == 0
    print(f"[amazon-e2e] feeds: {stack.fake.call(lambda: len(m.feeds))}; 1 SKU dead-lettered")


def test_a_pending_order_is_reserved_a_cancelled_one_released_and_afn_ignored(
    stack: Stack,
) -> None:
    """Given a SKU at 10 on Amazon, when a Pending MFN order of 3 is polled, then the ledger
    reserves 3 and Amazon is patched to 7 (confirmed by reading the listing back); when an
    order of 2 is placed and then cancelled, its reservation is released (reserved 3 again)
    and Amazon shows 7; an order fulfilled by Amazon (AFN) reserves nothing; the buyer's
    data never reaches Kafka."""
    sku = stack.skus[0]
    m = stack.fake.amazon
    stack.fake.call(lambda: m.place_order([(sku, 3)]))
    wait_for(lambda: stack.location(sku).get("reserved") == 3, timeout=30, what="the reservation")
    wait_for(
        lambda: stack.synced(sku, 7) and 7 in stack.writes(sku),
        timeout=30,
        what="Amazon patched to 7",
    )
    second = stack.fake.call(lambda: m.place_order([(sku, 2)]))
    wait_for(lambda: stack.location(sku).get("reserved") == 5, timeout=30, what="second order")
    stack.fake.call(lambda: m.place_order([(sku, 4)], channel="AFN"))
    stack.fake.call(lambda: m.set_status(second["AmazonOrderId"], "Canceled"))
    wait_for(lambda: stack.location(sku).get("reserved") == 3, timeout=30, what="the release")
    wait_for(lambda: stack.synced(sku, 7), timeout=30, what="Amazon back at the ledger's 7")
    assert (stack.location(sku)["reserved"], stack.location(sku)["on_hand"]) == (3, 10)
    events = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_EVENTS,
        lambda r: r.get("sku") == sku and r.get("channel") == "amazon",
        until=lambda found: len(found) >= 3,
        timeout=30,
    )
    assert sorted(e["type"] for e in events) == ["order_cancelled", "order_placed", "order_placed"]
    text = repr(events)
    assert "Jeanne" not in text and "Lilas" not in text and "marketplace.amazon" not in text


def test_an_order_amazon_took_on_a_lagging_listing_is_refused_by_the_ledger(
    stack: Stack,
) -> None:
    """Given a SKU at 10 on Amazon whose stock drops to 4 elsewhere while Amazon is slow to
    apply the patch, when a buyer orders 6 on Amazon (which still shows 10), then the ledger
    refuses the line and reserves nothing (never more accepted than the stock), and once
    Amazon applies writes again it shows the ledger's 4."""
    sku = stack.skus[2]
    m = stack.fake.amazon
    stack.fake.call(lambda: setattr(m, "apply_delay_s", 30.0))
    stack.count({sku: 4})
    wait_for(lambda: stack.channel_qty(sku) == 4, timeout=30, what="the ledger at 4")
    assert stack.qty(sku) == 10
    big = stack.fake.call(lambda: m.place_order([(sku, 6)]))
    decisions = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DECISIONS,
        lambda r: r.get("sku") == sku and big["AmazonOrderId"] in str(r.get("event_id")),
        until=lambda found: bool(found),
        timeout=30,
    )
    stack.fake.call(lambda: setattr(m, "apply_delay_s", 0.2))
    assert decisions[0]["outcome"] == "rejected"
    assert stack.location(sku).get("reserved", 0) == 0
    wait_for(lambda: stack.synced(sku, 4), timeout=30, what="Amazon at the ledger's 4")


def test_fba_stock_is_imported_at_its_own_location_and_never_pushed(stack: Stack) -> None:
    """Given 40 units of a SKU in Amazon's warehouses, when the connector polls, then the
    ledger counts 40 at the FBA location, and the merchant-fulfilled quantity Amazon sells
    stays the main location's figure."""
    sku = stack.skus[3]
    stack.fake.call(lambda: stack.fake.amazon.set_fba(sku, 40))
    wait_for(
        lambda: stack.location(sku, FBA).get("on_hand") == 40, timeout=30, what="the FBA count"
    )
    assert stack.channel_qty(sku) == 10 and stack.qty(sku) == 10


def test_a_quota_storm_and_an_expired_token_are_survived_with_every_order_once(
    stack: Stack,
) -> None:
    """Given Amazon answering 429 QuotaExceeded to everything for 2 s and every access token
    expired, when orders are placed meanwhile, then after the storm a new token is fetched,
    every order is reserved exactly once, Amazon shows the ledger's figure, and no credential
    or token is in the connectors' log."""
    sku = stack.skus[1]
    m = stack.fake.amazon
    issued = stack.fake.call(lambda: m.tokens_issued)
    stack.fake.call(m.expire_tokens)
    stack.fake.call(lambda: m.storm(2.0))
    for _ in range(STORM_ORDERS):
        stack.fake.call(lambda: m.place_order([(sku, 1)]))
    want = 10 - STORM_ORDERS
    wait_for(
        lambda: stack.location(sku).get("reserved") == STORM_ORDERS,
        timeout=30,
        what="the storm's orders reserved",
    )
    wait_for(lambda: stack.synced(sku, want), timeout=30, what="Amazon at the ledger's figure")
    throttled = stack.fake.call(lambda: m.quota_answers)
    tokens = stack.fake.call(lambda: m.tokens_issued) - issued
    refused = stack.fake.call(lambda: m.expired_refusals)
    print(
        f"[amazon-e2e] storm: {throttled} answers 429, {STORM_ORDERS} orders reserved "
        f"{stack.location(sku)['reserved']}; {refused} expired-token refusals, "
        f"{tokens} new token(s)"
    )
    assert throttled > 0 and tokens >= 1 and refused >= 1
    assert stack.location(sku)["reserved"] == STORM_ORDERS
    log = stack.connectors_log.read_text()
    assert "QuotaExceeded" in log  # the storm is in the log, the credentials are not
    assert m.client_secret not in log and m.refresh_token not in log and "Atza|" not in log


def test_a_book_order_is_allocated_by_the_order_book_and_its_shipment_confirmed_to_amazon(
    stack: Stack,
) -> None:
    """Given the ``orders: book`` seller, a SKU counted at 2 at the main location and 40 in
    Amazon's warehouses (FBA), when an order of 2 is polled while Amazon has not been paid
    (Pending), then it reaches the order book, which holds 2 at the main location (never
    FBA) and keeps it pending_approval (never shipped unpaid); once Amazon says it is paid
    (Unshipped) the next poll releases it;
    when Amazon still sells 1 more on a lagging listing, the book cannot allocate it and it
    stays an exception (nothing written to Amazon for it); when the shipping service's
    ``shipped`` version of the first order's shipment comes, Amazon gets one package with the
    carrier and tracking number and the order is Shipped there; no Order record carries the
    buyer's name or street."""
    sku, bk = stack.book_sku, stack.fake.book
    stack.fake.call(lambda: bk.set_fba(sku, 40))
    stack.count({sku: 2})
    wait_for(lambda: stack.location(sku, FBA).get("on_hand") == 40, timeout=30, what="FBA 40")
    wait_for(lambda: stack.fake.call(lambda: bk.quantity(sku)) == 2, timeout=30, what="listing")
    ok = stack.fake.call(lambda: bk.place_order([(sku, 2)], status="Pending"))["AmazonOrderId"]
    codec = single_object_codec()
    ids = {f"{BOOK}:{ok}"}

    def states(*ending: str) -> list[dict[str, Any]]:
        return read_topic(
            stack.settings,
            codec,
            topics.ORDERS_STATE,
            lambda r: r["order_id"] in ids,
            until=lambda found: any(r["status"] in ending for r in found),
            timeout=20,
        )

    waiting = [r for r in states("pending_approval", "exception") if r["version"] > 0]
    assert waiting[-1]["status"] == "pending_approval", waiting[-1]
    assert str(waiting[-1]["reason"]).startswith("payment_pending")
    assert {ln["location"] for ln in waiting[-1]["lines"]} == {LOCATION}
    wait_for(lambda: stack.location(sku).get("reserved") == 2, timeout=20, what="2 held")
    stack.fake.call(lambda: bk.set_status(ok, "Unshipped"))  # Amazon is paid
    assert states("released")[-1]["status"] == "released"

    def lagging() -> str:
        bk.add_listing(sku, 1)  # Amazon has not applied the 0 yet and sells one more
        return str(bk.place_order([(sku, 1)], status="Unshipped")["AmazonOrderId"])

    ko = stack.fake.call(lagging)
    ids = {f"{BOOK}:{ko}"}
    assert [r["status"] for r in states("allocated", "exception")][-1] == "exception"

    line = stack.fake.call(lambda: bk.order_items[ok][0]["OrderItemId"])
    publish_shipment(
        stack.settings,
        codec,
        order_id=f"{BOOK}:{ok}",
        channel=BOOK,
        location=LOCATION,
        lines=[(line, sku, 2)],
        carrier="ups",
        tracking_number="1Z999AA10123456784",
    )
    wait_for(
        lambda: stack.fake.call(lambda: bk.orders[ok]["OrderStatus"]) == "Shipped",
        timeout=20,
        what="the order confirmed shipped on Amazon",
    )
    [package] = stack.fake.call(lambda: [dict(p) for p in bk.shipments[ok]])
    assert (package["carrierCode"], package["trackingNumber"]) == ("UPS", "1Z999AA10123456784")
    assert package["orderItems"] == [{"orderItemId": line, "quantity": 2}]
    assert stack.fake.call(lambda: ko not in bk.shipments)
    orders = read_topic(
        stack.settings,
        codec,
        topics.ORDERS,
        lambda r: r["order_id"] in (f"{BOOK}:{ok}", f"{BOOK}:{ko}"),
        until=lambda found: len(found) >= 4,
        timeout=20,
    )
    kinds = sorted({(r["type"], r["event_id"]) for r in orders})  # polls overlap: ids repeat
    assert [kind for kind, _ in kinds] == ["approved", "approved", "placed", "placed"]
    assert "Jeanne" not in repr(orders) and "Lilas" not in repr(orders)
    print(f"[amazon-e2e] book: {ok} held unpaid, released when paid, shipped; {ko} exception")
