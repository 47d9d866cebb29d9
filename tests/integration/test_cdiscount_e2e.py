"""Cdiscount end to end: the fake Octopia → polled orders → the acceptance gate and Kafka →
real ledger worker → decisions and levels → orders accepted or refused on Cdiscount, offer
quantities written through offer packages. A second seller account has ``orders: book``:
its orders go through the order book (in the worker), accepted or refused from the order's
state, and its shipments confirmed with ``POST /orders/{id}/shipments``. Real broker, real
Faust worker, ``stockflow connectors serve`` as a subprocess; only the marketplace is a
fake.

Sizes: ``STOCKFLOW_CDISCOUNT_E2E_ORDERS`` one-unit orders racing for
``STOCKFLOW_CDISCOUNT_E2E_STOCK`` units (defaults 6 and 4)."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.testing.cdiscount import TOKEN_PATH, FakeCdiscount
from schemas.codec import single_object_codec
from streams.kernel import topics
from streams.kernel.settings import Settings
from tests.fakes.e2e import ConnectorsProcess
from tests.support.fake_loop import FakesOnLoop
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.orders import final_states
from tests.support.ports import free_port
from tests.support.shipments import publish_shipment
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration

LOCATION = "main"
ORDERS = int(os.environ.get("STOCKFLOW_CDISCOUNT_E2E_ORDERS", "6"))
STOCK = int(os.environ.get("STOCKFLOW_CDISCOUNT_E2E_STOCK", "4"))
SECRET = "cdiscount-e2e-secret"
PERSONAL = ("Camille", "Martin", "camille.martin@example.fr", "+33612345678", "rue des Lilas")
BOOK = "cdiscount-bk"  # the seller account whose orders the order book holds
BOOK_SELLER = "98980"


class FakeThread(FakesOnLoop):
    """The fake Octopia on its own event loop thread; state touched only from that loop."""

    def __init__(self) -> None:
        self.octopia = FakeCdiscount(
            client_secret=SECRET, integration_delay_s=0.2, acceptance_window_s=600, seed=5
        )
        self.book = FakeCdiscount(
            client_secret=SECRET,
            seller_id=BOOK_SELLER,
            integration_delay_s=0.2,
            acceptance_window_s=600,
            seed=6,
        )
        super().__init__(self.octopia, self.book)


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    connectors: ConnectorsProcess
    skus: list[str]

    @property
    def octopia(self) -> FakeCdiscount:
        return self.fake.octopia

    def qty(self, sku: str) -> int | None:
        return self.fake.call(lambda: self.octopia.quantity(sku))

    def statuses(self, oids: list[str]) -> list[str]:
        return self.fake.call(lambda: [self.octopia.status(o) for o in oids])

    def place(self, lines: list[tuple[str, int]]) -> str:
        return str(self.fake.call(lambda: self.octopia.place_order(lines))["orderId"])

    def location(self, sku: str) -> dict[str, Any]:
        stock = self.worker.stock(sku) or {}
        return dict((stock.get("locations") or {}).get(LOCATION) or {})

    def channel_qty(self, sku: str) -> int | None:
        value = ((self.worker.stock(sku) or {}).get("channels") or {}).get("cdiscount")
        return None if value is None else int(value)

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

    def answered(self, oids: list[str]) -> None:
        wait_for(
            lambda: "WaitingAcceptance" not in self.statuses(oids),
            timeout=60,
            what="every order accepted or refused on Cdiscount",
        )


def _config(fake_url: str, book_url: str, skus: list[str], group: str) -> str:
    return f"""
consumer_group: {group}
reconcile_interval_s: 600
channels:
  - name: cdiscount
    kind: cdiscount
    base_url: {fake_url}/seller/v2
    credentials: {{client_id: cdiscount-client, client_secret: {SECRET}}}
    mapping:
      seller_id: "98979"
      auth_url: {fake_url}{TOKEN_PATH}
      skus: [{", ".join(skus)}]
      acceptance_window_s: 600
      packages: {{poll_s: 0.1, wait_s: 30}}
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
  - name: {BOOK}
    kind: cdiscount
    base_url: {book_url}/seller/v2
    credentials: {{client_id: cdiscount-client, client_secret: {SECRET}}}
    mapping:
      seller_id: "{BOOK_SELLER}"
      auth_url: {book_url}{TOKEN_PATH}
      skus: [{", ".join(skus)}]
      acceptance_window_s: 600
      packages: {{poll_s: 0.1, wait_s: 30}}
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
    orders: book
"""


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("cdiscount-e2e")
    tag = uuid.uuid4().hex[:8]
    skus = [f"cds-{tag}-{n}" for n in range(1, 8)]
    ledger = folder / "ledger.yaml"
    ledger.write_text(
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n"
        f"channels:\n  - name: cdiscount\n  - name: {BOOK}\n"
    )
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"cds-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for sku in skus:
            fake.call(partial(fake.octopia.add_offer, sku, 0))
            fake.call(partial(fake.book.add_offer, sku, 0))
        worker.start()
        config = folder / "connectors.yaml"
        config.write_text(_config(fake.octopia.url, fake.book.url, skus, f"cds-connectors-{tag}"))
        connectors = ConnectorsProcess(config, free_port(), logs)
        connectors.start()
        s = Stack(local_stack, worker, fake, connectors, skus)
        serving = connectors
        wait_for(
            lambda: re.search(r"decisions\S* assigned", serving.logged()) is not None,
            timeout=60,
            what="the connectors reading the ledger's decisions",
        )
        yield s
    finally:
        try:
            if connectors is not None:
                print(
                    f"[cdiscount-e2e] connectors exited {connectors.stop()}; {connectors.log_path}"
                )
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_orders_are_accepted_while_stock_lasts_and_a_refused_order_keeps_nothing(
    stack: Stack,
) -> None:
    """Given a SKU counted at STOCK units and pushed to Cdiscount through an offer package
    (confirmed Integrated), when ORDERS one-unit orders wait for acceptance at once, then
    exactly STOCK are accepted and the rest refused with Cdiscount's out-of-stock reason,
    the ledger holds STOCK reserved and Cdiscount is sent 0; given an order of two lines of
    which one cannot be served, then the whole order is refused and its servable line's
    reservation is released (nothing stays reserved); no customer data reached Kafka."""
    sku, partial, short = stack.skus[0], stack.skus[1], stack.skus[2]
    stack.count({sku: STOCK, partial: 5, short: 1})
    wait_for(
        lambda: (stack.qty(sku), stack.qty(partial), stack.qty(short)) == (STOCK, 5, 1),
        timeout=60,
        what="the counted quantities integrated through offer packages",
    )
    assert all(
        p["packageState"] == "Integrated"
        for p in stack.fake.call(lambda: list(stack.octopia.packages.values()))
    )
    oids = [stack.place([(sku, 1)]) for _ in range(ORDERS)]
    stack.answered(oids)
    statuses = stack.statuses(oids)
    accepted, refused = statuses.count("Accepted"), statuses.count("Refused")
    print(
        f"[cdiscount-e2e] {ORDERS} orders for {STOCK} units: {accepted} accepted, {refused} refused"
    )
    assert (accepted, refused) == (min(STOCK, ORDERS), max(0, ORDERS - STOCK))
    reasons = {
        r for o, s, r in stack.fake.call(lambda: list(stack.octopia.approvals)) if s == "Refused"
    }
    assert reasons <= {"OutOfStock"}
    wait_for(lambda: stack.qty(sku) == max(0, STOCK - ORDERS), timeout=30, what="the sold-out push")
    assert stack.location(sku).get("reserved") == min(STOCK, ORDERS)

    mixed = stack.place([(partial, 2), (short, 3)])
    stack.answered([mixed])
    assert stack.statuses([mixed]) == ["Refused"]
    wait_for(
        lambda: stack.location(partial).get("reserved") == 0 and stack.channel_qty(partial) == 5,
        timeout=30,
        what="the refused order's servable line released",
    )
    mine = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_EVENTS,
        lambda r: r.get("source") == "connector:cdiscount" and r.get("sku") in stack.skus,
        until=lambda found: len(found) >= ORDERS + 2,
        timeout=30,
    )
    text = orjson.dumps(mine, default=str).decode()
    assert not any(p in text for p in PERSONAL)


def test_a_429_storm_and_a_token_expiry_are_survived(stack: Stack) -> None:
    """Given every Octopia token expired and a 429 storm of 2 s, when stock is counted and an
    order waits for acceptance meanwhile, then the connectors get a new token, the quantity
    is integrated and the order accepted once the storm passes; the client secret and the
    tokens appear in no log line."""
    sku = stack.skus[3]
    o = stack.octopia
    issued = stack.fake.call(lambda: o.tokens_issued)
    stack.fake.call(o.expire_tokens)
    stack.fake.call(lambda: o.storm(2, retry_after=1))
    stack.count({sku: 8})
    oid = stack.place([(sku, 2)])
    wait_for(lambda: stack.qty(sku) == 6, timeout=60, what="the quantity after the storm")
    stack.answered([oid])
    assert stack.statuses([oid]) == ["Accepted"]
    expired, throttled, now_issued = stack.fake.call(
        lambda: (o.expired_calls, o.throttled_calls, o.tokens_issued)
    )
    print(
        f"[cdiscount-e2e] storm: {throttled} calls answered 429; {expired} calls with an "
        f"expired token; tokens issued {issued} → {now_issued}"
    )
    assert throttled > 0 and now_issued > issued
    logged = stack.connectors.logged()
    tokens = stack.fake.call(lambda: list(o.tokens))
    assert SECRET not in logged and not any(t in logged for t in tokens)


def test_a_rejected_line_is_dead_lettered_and_a_transient_one_retried(stack: Stack) -> None:
    """Given one SKU whose offer requests Octopia rejects for good (InvalidOffer) and one it
    rejects once with a transient code, when both are counted, then the second is integrated
    on the retry and the first is dead-lettered with Octopia's code after that one attempt
    (no retry loop), never written."""
    failed, retried = stack.skus[4], stack.skus[5]
    o = stack.octopia
    stack.fake.call(lambda: o.reject(failed, "InvalidOffer", times=50))
    stack.fake.call(lambda: o.reject(retried, "InternalError", times=1))
    stack.count({failed: 30, retried: 20})
    wait_for(lambda: stack.qty(retried) == 20, timeout=30, what="the retried offer request")
    letters = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: r.get("component") == "connector:cdiscount" and failed.encode() in r["original"],
        until=lambda found: bool(found),
        timeout=30,
    )
    assert letters and "InvalidOffer" in letters[0]["error"]
    assert stack.qty(failed) == 0

    def attempts() -> int:
        return 50 - len(stack.fake.call(lambda: list(o.rejections[failed])))

    # a permanent rejection is not retried in a loop: once dead-lettered, no more attempts
    # for several of the channel's retry periods (dirty_retry_s: 1). Before it, a package
    # whose results could not be read is sent again: a loaded machine may show 2 attempts
    dead_lettered_after = attempts()
    time.sleep(4)
    print(f"[cdiscount-e2e] rejected line: {dead_lettered_after} attempts, then dead-lettered")
    assert attempts() == dead_lettered_after


def test_a_book_order_is_accepted_when_allocated_refused_when_not_and_its_shipment_confirmed(
    stack: Stack,
) -> None:
    """Given the ``orders: book`` seller account and a SKU counted at 2, when an order of 2
    and then an order of 1 wait for acceptance, then the order book allocates the first and
    the gate accepts it on Cdiscount (approval-status Accepted), cannot hold the second and
    the gate refuses it (Refused) with the book holding nothing for it; no customer data
    is in the Order records nor in the connectors' log; when the shipping service's
    ``shipped`` version of the accepted order's shipment comes, Octopia is sent one shipment
    with its carrier, tracking number and line, and the order is Shipped."""
    sku = stack.skus[6]
    book = stack.fake.book
    stack.count({sku: 2})
    wait_for(lambda: stack.location(sku).get("on_hand") == 2, timeout=30, what="the count")
    ok = str(stack.fake.call(lambda: book.place_order([(sku, 2)]))["orderId"])
    # the second order only once the first is accepted: orders are keyed by their id, so two
    # orders read in one listing reach the book on different partitions, in either order
    wait_for(
        lambda: stack.fake.call(lambda: book.status(ok)) == "Accepted",
        timeout=60,
        what="the book order accepted",
    )
    ko = str(stack.fake.call(lambda: book.place_order([(sku, 1)]))["orderId"])
    wait_for(
        lambda: (
            stack.fake.call(lambda: (book.status(ok), book.status(ko))) == ("Accepted", "Refused")
        ),
        timeout=30,
        what="the book order accepted and the next refused",
    )
    codec = single_object_codec()
    ids = (f"{BOOK}:{ok}", f"{BOOK}:{ko}")
    want = {ids[0]: "allocated", ids[1]: "cancelled"}
    assert final_states(stack.settings, codec, want) == want
    assert stack.location(sku).get("reserved") == 2
    records = read_topic(
        stack.settings,
        codec,
        topics.ORDERS,
        lambda r: r["order_id"] in ids,
        until=lambda found: len(found) >= 2,
        timeout=20,
    )
    text = orjson.dumps(records, default=str).decode()
    assert not any(p in text for p in PERSONAL) and "69003" in text
    assert not any(p in stack.connectors.logged() for p in PERSONAL)
    publish_shipment(
        stack.settings,
        codec,
        order_id=ids[0],
        channel=BOOK,
        location=LOCATION,
        lines=[("1", sku, 2)],
        carrier="ups",
        tracking_number="1Z999AA10123456784",
    )
    wait_for(
        lambda: stack.fake.call(lambda: book.status(ok)) == "Shipped",
        timeout=20,
        what="the order shipped on Octopia",
    )
    [sent] = stack.fake.call(lambda: list(book.shipments))
    assert (sent["orderId"], sent["carrierName"], sent["trackingNumber"]) == (
        ok,
        "UPS",
        "1Z999AA10123456784",
    )
    assert sent["lines"] == [{"lineId": "1", "quantity": 2}]
    print(f"[cdiscount-e2e] book: {ok} allocated, accepted, shipped; {ko} refused, nothing held")
