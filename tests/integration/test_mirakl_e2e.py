"""Mirakl end to end: two operators' fake instances → polled orders (OR11) → Kafka → real
ledger worker → decisions → acceptance (OR21) and levels → offers written by imports (OF24
on one operator, OF01 CSV on the other) confirmed by their reports. A third operator has
``orders: book``: its orders go through the order book (in the worker), accepted or refused
from the order's state, and its shipments confirmed by OR23/OR24. Real broker, real Faust
worker, ``stockflow connectors serve`` as a subprocess; only the marketplaces are fakes.

Sizes: ``STOCKFLOW_MIRAKL_E2E_ORDERS`` orders placed during the 429 storm (default 3),
``STOCKFLOW_MIRAKL_E2E_RACE`` orders of one unit after the two competing orders (default 2)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.testing.mirakl import FakeMirakl
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
STORM_ORDERS = int(os.environ.get("STOCKFLOW_MIRAKL_E2E_ORDERS", "3"))
RACE_ORDERS = int(os.environ.get("STOCKFLOW_MIRAKL_E2E_RACE", "2"))
OPERATORS = {"lm": "of24", "cf": "of01"}  # channel suffix → how its offers are written
BOOK = "bk"  # the operator whose orders the order book holds (orders: book, OF24)


class FakeThread(FakesOnLoop):
    """The operators' fakes on their own event loop thread; state touched only there."""

    def __init__(self) -> None:
        self.fakes = {
            name: FakeMirakl(
                operator=name,
                api_key=f"key-{name}",
                or11_interval_s=0.5,
                of01_interval_s=0.5,
                import_delay_s=0.2,
                seed=5,
            )
            for name in (*OPERATORS, BOOK)
        }
        super().__init__(*self.fakes.values())


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    skus: list[str]
    connectors: ConnectorsProcess

    def op(self, name: str = "lm") -> FakeMirakl:
        return self.fake.fakes[name]

    def qty(self, sku: str, name: str = "lm") -> int | None:
        return self.fake.call(lambda: self.op(name).quantity(sku))

    def ledger(self, sku: str) -> dict[str, Any]:
        return self.worker.stock(sku) or {}

    def location(self, sku: str) -> dict[str, Any]:
        return dict((self.ledger(sku).get("locations") or {}).get(LOCATION) or {})

    def state(self, name: str, order_id: str) -> str:
        return str(self.fake.call(lambda: self.op(name).orders[order_id]["order_state"]))

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


def _config(urls: dict[str, str], skus: list[str], group: str) -> str:
    offers = ", ".join(f"{{sku: {s}, price: '49.00'}}" for s in skus)
    channels = "".join(
        f"""
  - name: mirakl-{name}
    kind: mirakl
    base_url: {urls[name]}
    credentials: {{api_key: key-{name}}}
    mapping:
      operator: {name}
      shop: "2001"
      write: {write}
      import: {{poll_s: 0.1, wait_s: 15}}
      offers: [{offers}]
    limits: {{or11_interval_s: 0.5, of01_interval_s: 0.5, throttle_pause_s: 0.5}}
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
    orders: {"book" if name == BOOK else "lines"}
"""
        for name, write in {**OPERATORS, BOOK: "of24"}.items()
    )
    return f"consumer_group: {group}\nreconcile_interval_s: 600\nchannels:{channels}"


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("mirakl-e2e")
    tag = uuid.uuid4().hex[:8]
    skus = [f"mkl-{tag}-{n}" for n in range(1, 7)]
    ledger = folder / "ledger.yaml"
    ledger.write_text(
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n"
        "channels:\n" + "".join(f"  - name: mirakl-{name}\n" for name in (*OPERATORS, BOOK))
    )
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"mkl-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for name in (*OPERATORS, BOOK):
            for sku in skus:
                fake.call(lambda sku=sku, name=name: fake.fakes[name].add_offer(sku, 0))
        worker.start()
        config = folder / "connectors.yaml"
        urls = {name: f.url for name, f in fake.fakes.items()}
        config.write_text(_config(urls, skus, f"mkl-connectors-{tag}"))
        connectors = ConnectorsProcess(config, free_port(), logs)
        connectors.start()
        s = Stack(local_stack, worker, fake, skus, connectors)
        s.count(dict.fromkeys(skus[:2], 10))
        wait_for(
            lambda: all(s.qty(sku, name) == 10 for sku in skus[:2] for name in OPERATORS),
            timeout=60,
            what="the counted quantities imported on both operators",
        )
        yield s
    finally:
        try:
            if connectors is not None:
                print(f"[mirakl-e2e] connectors exited {connectors.stop()}; {connectors.log_path}")
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_stock_is_imported_on_both_operators_and_confirmed_by_the_import_reports(
    stack: Stack,
) -> None:
    """Given the counted SKUs written at start (OF24 on one operator, an OF01 CSV file on
    the other), then each operator's offer holds the ledger's figure, every import the
    connectors made completed, and the OF01 operator never refused a file for its call
    frequency."""
    sku = stack.skus[0]
    for name in OPERATORS:
        assert stack.qty(sku, name) == 10
    imports = {
        name: stack.fake.call(
            lambda name=name: [j["status"] for j in stack.op(name).imports.values()]
        )
        for name in OPERATORS
    }
    kinds = {
        name: stack.fake.call(
            lambda name=name: {j["kind"] for j in stack.op(name).imports.values()}
        )
        for name in OPERATORS
    }
    assert kinds == {"lm": {"JSON"}, "cf": {"CSV"}}
    assert all(status == "COMPLETE" for done in imports.values() for status in done)
    assert stack.fake.call(lambda: stack.op("cf").of01_refused) == 0
    print(f"[mirakl-e2e] imports: { {name: len(done) for name, done in imports.items()} }")


def test_a_line_the_operator_rejects_is_dead_lettered_with_its_message(stack: Stack) -> None:
    """Given an offer the operator rejects in every import (its OF03 error report names
    it), when its SKU is counted, then the push is dead-lettered with the operator's message
    and the offer keeps its quantity, while a SKU counted with it in the same import is
    written."""
    rejected, written = stack.skus[3], stack.skus[2]
    lm = stack.op("lm")
    stack.fake.call(lambda: lm.reject(rejected, "The offer is blocked by the operator"))
    stack.count({rejected: 30, written: 20})
    wait_for(lambda: stack.qty(written) == 20, timeout=30, what="the line imported beside it")
    letters = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: (
            r.get("component") == "connector:mirakl-lm" and rejected.encode() in r["original"]
        ),
        until=lambda found: bool(found),
        timeout=30,
    )
    assert letters and "blocked by the operator" in letters[0]["error"]
    assert stack.qty(rejected) == 0


def test_orders_during_a_429_storm_and_a_refused_key_are_reserved_once(stack: Stack) -> None:
    """Given the operator throttling every request for 2 s (429 with Retry-After), then
    answering two bare 429s and refusing the shop's key (401) for 2 s more, when orders are placed
    meanwhile (10 in stock), then every order is polled and reserved exactly once (those past
    the stock refused) and the operator's offer ends at the ledger's figure."""
    sku = stack.skus[1]
    lm = stack.op("lm")
    stack.fake.call(lambda: lm.storm(2, retry_after=1))
    orders = [stack.fake.call(lambda: lm.place_order([(sku, 1)])) for _ in range(STORM_ORDERS)]
    stack.fake.call(lambda: lm.throttle_next(2, retry_after=None))
    stack.fake.call(lambda: lm.revoke_key(4))  # 2 s past the storm
    reserved = min(STORM_ORDERS, 10)  # orders past the 10 in stock are refused
    wait_for(
        lambda: stack.location(sku).get("reserved") == reserved,
        timeout=40 + STORM_ORDERS,
        what="the orders of the storm reserved",
    )
    want = 10 - reserved
    wait_for(lambda: stack.qty(sku) == want, timeout=30, what="the operator showing the figure")
    throttled = stack.fake.call(lambda: lm.throttled_answers)
    refused = stack.fake.call(lambda: lm.unauthorized)
    print(
        f"[mirakl-e2e] storm: {throttled} answers 429, {refused} answers 401, "
        f"{len(orders)} orders, reserved {stack.location(sku)['reserved']}"
    )
    assert throttled > 0 and refused > 0
    assert stack.location(sku)["reserved"] == reserved


def test_an_order_is_accepted_and_the_next_refused_for_want_of_stock(stack: Stack) -> None:
    """Given a SKU counted at 3, when two orders of 2 wait for acceptance (then
    ``STOCKFLOW_MIRAKL_E2E_RACE`` orders of 1), then the ledger reserves in order and the
    gate accepts the orders it reserved in full (OR21: SHIPPING) and refuses the others
    (REFUSED): never more accepted than the stock, and a refused order keeps nothing
    reserved; when the first accepted order ships, its reservation is consumed."""
    sku = stack.skus[4]
    lm = stack.op("lm")
    stack.count({sku: 3})
    wait_for(lambda: stack.qty(sku) == 3, timeout=30, what="the count imported")
    sizes = [2, 2] + [1] * RACE_ORDERS
    orders = [stack.fake.call(lambda n=n: lm.place_order([(sku, n)]))["order_id"] for n in sizes]
    left, expected = 3, []
    for n in sizes:  # the ledger decides in the order the orders were placed
        expected.append("SHIPPING" if n <= left else "REFUSED")
        left -= n if n <= left else 0
    wait_for(
        lambda: all(stack.state("lm", o) in ("SHIPPING", "REFUSED") for o in orders),
        timeout=30 + len(orders),
        what="every order answered on the operator",
    )
    assert [stack.state("lm", o) for o in orders] == expected
    accepted = sum(n for n, state in zip(sizes, expected, strict=True) if state == "SHIPPING")
    assert accepted <= 3
    wait_for(lambda: stack.qty(sku) == 3 - accepted, timeout=30, what="the offer at the rest")
    assert stack.location(sku)["reserved"] == accepted
    calls = stack.fake.call(lambda: [(o, a) for o, a in lm.accept_calls if o in orders])
    assert len(calls) == len(orders)  # one answer per order
    stack.fake.call(lambda: lm.ship_order(orders[0]))
    wait_for(
        lambda: stack.location(sku).get("reserved") == accepted - 2,
        timeout=30,
        what="the shipment consuming the reservation",
    )
    assert stack.location(sku)["on_hand"] == 1
    print(
        f"[mirakl-e2e] acceptance: 3 in stock, orders {sizes}: {expected.count('SHIPPING')} "
        f"accepted ({accepted} units), {expected.count('REFUSED')} refused"
    )


def test_a_book_order_is_accepted_when_allocated_refused_when_not_and_its_shipment_confirmed(
    stack: Stack,
) -> None:
    """Given the ``orders: book`` operator and a SKU counted at 2, when an order of 2 and
    then an order of 1 wait for acceptance, then the order book allocates the first and the
    gate accepts it (OR21: SHIPPING), cannot hold the second and the gate refuses it
    (REFUSED) with the book holding nothing for it (cancelled there, 2 reserved in all);
    when the shipping service's ``shipped`` version of the accepted order's shipment comes,
    the operator is given its carrier and tracking (OR23) and the order ships (OR24)."""
    sku = stack.skus[5]
    bk = stack.op(BOOK)
    stack.count({sku: 2})
    wait_for(lambda: stack.qty(sku, BOOK) == 2, timeout=30, what="the count on the operator")
    ok = stack.fake.call(lambda: bk.place_order([(sku, 2)]))["order_id"]
    # the second order only once the first is accepted: orders are keyed by their id, so two
    # orders read in one listing reach the book on different partitions, in either order
    wait_for(
        lambda: stack.state(BOOK, ok) == "SHIPPING", timeout=60, what="the book order accepted"
    )
    ko = stack.fake.call(lambda: bk.place_order([(sku, 1)]))["order_id"]
    wait_for(
        lambda: stack.state(BOOK, ok) == "SHIPPING" and stack.state(BOOK, ko) == "REFUSED",
        timeout=30,
        what="the book order accepted and the next refused",
    )
    codec = single_object_codec()
    want = {f"mirakl-bk:{ok}": "allocated", f"mirakl-bk:{ko}": "cancelled"}
    assert final_states(stack.settings, codec, want) == want
    wait_for(
        lambda: stack.location(sku).get("reserved") == 2, timeout=20, what="2 held for the first"
    )
    publish_shipment(
        stack.settings,
        codec,
        order_id=f"mirakl-bk:{ok}",
        channel="mirakl-bk",
        location=LOCATION,
        lines=[(f"{ok}-1", sku, 2)],
        carrier="colissimo",
        tracking_number="6A0000001",
    )
    wait_for(
        lambda: stack.state(BOOK, ok) == "SHIPPED", timeout=20, what="the order shipped (OR24)"
    )
    tracking = stack.fake.call(lambda: dict(bk.trackings[ok]))
    assert tracking == {"carrier_name": "colissimo", "tracking_number": "6A0000001"}
    assert stack.state(BOOK, ko) == "REFUSED"
    print(f"[mirakl-e2e] book: {ok} allocated, accepted, shipped; {ko} refused, nothing held")
