"""eMAG end to end: the fake eMAG (RO) → orders called back and polled → Kafka → real ledger
worker → decisions → the acceptance gate acknowledges or cancels on eMAG; levels → offer
stock saved back (≤ 50 per save, the envelope checked, read back after ``isError``). Real
broker, real Faust worker, ``stockflow connectors serve`` as a subprocess; only eMAG is a
fake, enforcing its 12/3 requests/s split. A second seller account has ``orders: book``:
its orders go through the order book (in the worker), acknowledged or canceled from the
order's state, and its shipments confirmed with ``awb/save`` then ``order/save`` status 4.

eMAG authenticates with HTTP Basic on every request: there is no token to expire (the
other marketplaces' token-expiry case has no eMAG counterpart).

Sizes: ``STOCKFLOW_EMAG_E2E_ORDERS`` orders racing for the last units (default 4),
``STOCKFLOW_EMAG_E2E_SKUS`` SKUs counted during the 429 storm (default 60: two saves).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.testing.emag import FakeEmag
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
CHANNEL = "emag-ro"
KEY = "cb-" + uuid.uuid4().hex
ORDERS = int(os.environ.get("STOCKFLOW_EMAG_E2E_ORDERS", "4"))
STORM_SKUS = int(os.environ.get("STOCKFLOW_EMAG_E2E_SKUS", "60"))
BOOK = "emag-bk"  # the seller account whose orders the order book holds
BOOK_OFFER = 5001
PERSONAL = ("Ion Popescu", "ion.popescu@example.ro", "+40721000000", "Strada Lipscani")


class FakeThread(FakesOnLoop):
    """The fake eMAG on its own event loop thread; state touched only from that loop."""

    def __init__(self) -> None:
        self.emag = FakeEmag(seed=5)
        # order ids unique to the run: the order book keeps orders of earlier runs
        self.book = FakeEmag(seed=6, first_order_id=int(uuid.uuid4().int % 10**8) + 10**8)
        super().__init__(self.emag, self.book)


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    offers: dict[str, int]  # SKU → offer id
    book_sku: str  # the one offer of the book-mode account (BOOK_OFFER)

    def stock(self, sku: str) -> int:
        return self.fake.call(lambda: self.fake.emag.stock(self.offers[sku]))

    def order(self, order_id: int) -> dict[str, Any]:
        return self.fake.call(lambda: dict(self.fake.emag.orders[order_id]))

    def location(self, sku: str) -> dict[str, Any]:
        return dict(((self.worker.stock(sku) or {}).get("locations") or {}).get(LOCATION) or {})

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


def _config(fake_url: str, book_url: str, offers: dict[str, int], book_sku: str, group: str) -> str:
    products = ", ".join(f"{{sku: {s}, offer_id: {o}}}" for s, o in offers.items())
    return f"""
consumer_group: {group}
reconcile_interval_s: 600
channels:
  - name: {CHANNEL}
    kind: emag
    base_url: {fake_url}/api-3
    credentials: {{username: seller@example.ro, password: emag-password-0123456789,
                   callback_key: {KEY}}}
    mapping:
      account: ro
      products: [{products}]
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 1
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
  - name: {BOOK}
    kind: emag
    base_url: {book_url}/api-3
    credentials: {{username: seller@example.ro, password: emag-password-0123456789,
                   callback_key: {KEY}}}
    mapping:
      account: bk
      products: [{{sku: {book_sku}, offer_id: {BOOK_OFFER}}}]
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 1
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
    orders: book
"""


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("emag-e2e")
    tag = uuid.uuid4().hex[:8]
    offers = {f"emag-{tag}-{n}": 1000 + n for n in range(1, STORM_SKUS + 5)}
    ledger = folder / "ledger.yaml"
    ledger.write_text(
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n"
        f"channels:\n  - name: {CHANNEL}\n  - name: {BOOK}\n"
    )
    book_sku = f"emag-{tag}-book"
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"emag-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for sku, offer in offers.items():
            fake.call(lambda sku=sku, offer=offer: fake.emag.add_offer(offer, sku, 0))
        fake.call(lambda: fake.book.add_offer(BOOK_OFFER, book_sku, 0))
        worker.start()
        config = folder / "connectors.yaml"
        config.write_text(
            _config(fake.emag.url, fake.book.url, offers, book_sku, f"emag-connectors-{tag}")
        )
        port = free_port()
        connectors = ConnectorsProcess(config, port, logs)
        connectors.start()
        url = f"http://127.0.0.1:{port}/callbacks/{CHANNEL}/{KEY}"
        fake.call(lambda: setattr(fake.emag, "callback_url", url))
        book_url = f"http://127.0.0.1:{port}/callbacks/{BOOK}/{KEY}"
        fake.call(lambda: setattr(fake.book, "callback_url", book_url))
        yield Stack(local_stack, worker, fake, offers, book_sku)
    finally:
        try:
            if connectors is not None:
                print(f"[emag-e2e] connectors exited {connectors.stop()}; {connectors.log_path}")
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_orders_racing_for_the_last_units_are_accepted_up_to_the_stock_and_the_rest_refused(
    stack: Stack,
) -> None:
    """Given a SKU counted at 3 and pushed to eMAG, when ``ORDERS`` new orders of 2 units
    arrive at once (called back, with the customer's details), then exactly one is
    acknowledged on eMAG (status 2) and every other one canceled with eMAG's out-of-stock
    reason 33; the ledger holds 2 reserved, never more than the stock, nothing of the refused
    orders; eMAG is sent the 1 unit left."""
    sku = next(iter(stack.offers))
    m = stack.fake.emag
    stack.count({sku: 3})
    wait_for(lambda: stack.stock(sku) == 3, timeout=60, what="the count saved on the offer")
    placed = [
        stack.fake.call(lambda: m.place_order([(stack.offers[sku], 2)])) for _ in range(ORDERS)
    ]
    ids = [o["id"] for o in placed]
    wait_for(
        lambda: all(stack.order(i)["status"] in (0, 2) for i in ids),
        timeout=60,
        what="every order answered on eMAG",
    )
    accepted = [i for i in ids if stack.order(i)["status"] == 2]
    refused = [i for i in ids if stack.order(i)["status"] == 0]
    assert len(accepted) == 1, (accepted, refused)
    assert {stack.order(i)["cancellation_reason"] for i in refused} == {33}
    wait_for(
        lambda: stack.location(sku).get("reserved") == 2 and stack.stock(sku) == 1,
        timeout=30,
        what="2 reserved by the accepted order and 1 left on eMAG",
    )
    callbacks = stack.fake.call(lambda: list(m.callbacks))
    print(
        f"[emag-e2e] {ORDERS} orders of 2 for 3 units: accepted {len(accepted)}, refused "
        f"{len(refused)} (reason 33); callbacks answered "
        f"{sorted({s for _, s in callbacks})}; reserved {stack.location(sku)['reserved']}"
    )


def test_stock_survives_a_429_storm_and_a_campaign_lock_is_an_alert_not_a_retry_loop(
    stack: Stack,
) -> None:
    """Given eMAG throttling every request (429) for 3 s, an offer locked in an active
    campaign, one with documentation errors (saved, answered ``isError: true``) and one
    eMAG no longer knows, when ``STORM_SKUS`` + 3 SKUs are counted, then after the storm every
    other offer holds its count (saves of ≤ 50, confirmed), the documented one too (read
    back), the locked offer keeps eMAG's figure and a drift alert names it, and the unknown
    offer is dead-lettered with eMAG's message; no request passed eMAG's limits."""
    m = stack.fake.emag
    skus = list(stack.offers)[1:]
    locked, faulty, unknown = skus[-3:]
    stack.fake.call(lambda: m.campaign(stack.offers[locked]))
    stack.fake.call(lambda: m.documentation_error(stack.offers[faulty]))
    stack.fake.call(lambda: m.offers.pop(stack.offers[unknown]))
    stack.fake.call(lambda: m.storm(3.0))
    counts = {sku: 10 + n for n, sku in enumerate(skus)}
    stack.count(counts)
    good = [s for s in skus if s not in (locked, unknown)]
    wait_for(
        lambda: all(stack.stock(s) == counts[s] for s in good),
        timeout=60,
        what="every offer saved after the storm",
    )
    alerts = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_ALERTS,
        lambda r: r.get("channel") == CHANNEL and r.get("sku") == locked,
        until=bool,
        timeout=30,
    )
    assert "campaign_lock" in alerts[0]["message"]
    letters = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: (
            r.get("component") == f"connector:{CHANNEL}" and unknown.encode() in r["original"]
        ),
        until=bool,
        timeout=30,
    )
    assert "not found" in letters[0]["error"]
    assert stack.stock(locked) == 0
    throttled, over, saves = stack.fake.call(
        lambda: (m.throttled_requests, m.over_limit, list(m.saves))
    )
    assert throttled > 0 and max(len(s) for s in saves) <= 50
    assert over == 0  # the client kept to eMAG's 12/3 requests per second
    tries = sum(stack.offers[locked] in save for save in saves)
    assert tries == 1  # refused once: a drift alert, not a retry loop
    print(
        f"[emag-e2e] storm: {throttled} requests answered 429 ({over} past the limits), "
        f"{len(good)} offers saved "
        f"in {len(saves)} saves (largest {max(len(s) for s in saves)}); campaign lock alerted, "
        f"locked offer sent {tries} time, unknown offer dead-lettered"
    )


def test_a_book_order_is_acknowledged_when_allocated_canceled_when_not_and_its_shipment_confirmed(
    stack: Stack,
) -> None:
    """Given the ``orders: book`` seller account and a SKU counted at 2, when an order of 2
    and then an order of 1 arrive (called back), then the order book allocates the first
    and the gate acknowledges it on eMAG (status 2), cannot hold the second and the gate
    cancels it with reason 33 (the book holding nothing for it); no customer data is in the
    Order records; when the shipping service's ``shipped`` version of the accepted order's
    shipment comes, eMAG is given the AWB (its tracking number and courier) and the order
    is finalized (status 4)."""
    sku, bk = stack.book_sku, stack.fake.book
    stack.count({sku: 2})
    wait_for(lambda: stack.location(sku).get("on_hand") == 2, timeout=30, what="the count")
    ok = int(stack.fake.call(lambda: bk.place_order([(BOOK_OFFER, 2)]))["id"])
    # the second order only once the first is acknowledged: callbacks are read concurrently
    # (a throttled order/read can let the later order reach the book first)
    wait_for(
        lambda: stack.fake.call(lambda: bk.orders[ok]["status"]) == 2,
        timeout=30,
        what="the book order acknowledged",
    )
    ko = int(stack.fake.call(lambda: bk.place_order([(BOOK_OFFER, 1)]))["id"])

    def statuses() -> tuple[int, int]:
        return stack.fake.call(lambda: (bk.orders[ok]["status"], bk.orders[ko]["status"]))

    wait_for(
        lambda: statuses() == (2, 0),
        timeout=30,
        what="the book order acknowledged, the next canceled",
    )
    assert stack.fake.call(lambda: bk.orders[ko]["cancellation_reason"]) == 33
    codec = single_object_codec()
    ids = (f"{BOOK}:{ok}", f"{BOOK}:{ko}")
    assert final_states(stack.settings, codec, {ids[0]: "allocated", ids[1]: "cancelled"}) == {
        ids[0]: "allocated",
        ids[1]: "cancelled",
    }
    assert stack.location(sku).get("reserved") == 2
    records = read_topic(
        stack.settings,
        codec,
        topics.ORDERS,
        lambda r: r["order_id"] in ids,
        until=lambda found: len(found) >= 2,
        timeout=20,
    )
    text = str(records)
    assert not any(p in text for p in PERSONAL) and "030031" in text
    line = stack.fake.call(lambda: bk.orders[ok]["products"][0]["id"])
    publish_shipment(
        stack.settings,
        codec,
        order_id=ids[0],
        channel=BOOK,
        location=LOCATION,
        lines=[(str(line), sku, 2)],
        carrier="dhl",
        tracking_number="JD0146000099",
    )
    wait_for(lambda: statuses()[0] == 4, timeout=20, what="the order finalized on eMAG")
    awbs = stack.fake.call(
        lambda: [(a["order_id"], a["awb_number"], a["courier_name"]) for a in bk.awbs]
    )
    assert awbs == [(ok, "JD0146000099", "DHL")]
    print(
        f"[emag-e2e] book: {ok} allocated, acknowledged, AWB saved, finalized; {ko} canceled (33)"
    )
