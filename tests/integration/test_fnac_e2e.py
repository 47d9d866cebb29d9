"""Fnac Darty end to end: the fake Fnac → orders polled (``orders_query``) → Kafka → real
ledger worker → decisions → the acceptance gate answering Fnac (``orders_update``), and
levels → ``offers_update`` confirmed by ``batch_status``. Real broker, real Faust worker,
``stockflow connectors serve`` as a subprocess; only the marketplace is a fake.

Sizes: ``STOCKFLOW_FNAC_E2E_ORDERS`` orders of 3 units competing for 10 (default 5)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.testing.fnac import FakeFnac
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
ORDERS = int(os.environ.get("STOCKFLOW_FNAC_E2E_ORDERS", "5"))
UNITS = 3
STOCK = 10


class FakeThread(FakesOnLoop):
    """The fake Fnac on its own event loop thread; state touched only from that loop."""

    def __init__(self) -> None:
        self.fnac = FakeFnac(batch_delay_s=0.3, seed=5)
        super().__init__(self.fnac)


@dataclass
class Stack:
    settings: Settings
    worker: WorkerProcess
    fake: FakeThread
    skus: list[str]

    @property
    def fnac(self) -> FakeFnac:
        return self.fake.fnac

    def qty(self, sku: str) -> int | None:
        return self.fake.call(lambda: self.fnac.quantity(sku))

    def state(self, oid: str) -> str:
        return self.fake.call(lambda: self.fnac.state(oid))

    def place(self, lines: list[tuple[str, int]]) -> str:
        return self.fake.call(lambda: self.fnac.place_order(lines))

    def location(self, sku: str) -> dict[str, Any]:
        ledger = self.worker.stock(sku) or {}
        return dict((ledger.get("locations") or {}).get(LOCATION) or {})

    def channel_qty(self, sku: str) -> int | None:
        value = ((self.worker.stock(sku) or {}).get("channels") or {}).get("fnac")
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


def _config(fake: FakeFnac, skus: list[str], group: str) -> str:
    products = ", ".join(f"{{sku: {s}, ean: '37{n:011d}'}}" for n, s in enumerate(skus))
    return f"""
consumer_group: {group}
reconcile_interval_s: 600
channels:
  - name: fnac
    kind: fnac
    base_url: {fake.url}
    credentials: {{partner_id: {fake.partner_id}, shop_id: {fake.shop_id}, key: {fake.key}}}
    mapping:
      shop: shop-e2e
      batch: {{poll_s: 0.1, wait_s: 15}}
      products: [{products}]
    sync: {{coalesce_ms: 0}}
    poll_interval_s: 0.5
    poll_lookback_s: 60
    retry: {{max_attempts: 3, dirty_retry_s: 1}}
"""


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder: Path = tmp_path_factory.mktemp("fnac-e2e")
    tag = uuid.uuid4().hex[:8]
    skus = [f"fnac-{tag}-{n}" for n in range(1, 5)]
    ledger = folder / "ledger.yaml"
    ledger.write_text(
        f"default_location: {LOCATION}\nlocations:\n  - name: {LOCATION}\n"
        "channels:\n  - name: fnac\n"
    )
    logs = local_stack.state_dir / "logs"
    worker = WorkerProcess(f"fnac-{tag}", free_port(), logs, STOCKFLOW_CONFIG=str(ledger))
    fake = FakeThread()
    connectors: ConnectorsProcess | None = None
    try:
        fake.start()
        for sku in skus:
            fake.call(lambda sku=sku: fake.fnac.add_offer(sku, 0))
        worker.start()
        config = folder / "connectors.yaml"
        config.write_text(_config(fake.fnac, skus, f"fnac-connectors-{tag}"))
        connectors = ConnectorsProcess(config, free_port(), logs)
        connectors.start()
        s = Stack(local_stack, worker, fake, skus)
        s.count(dict.fromkeys(skus[:2], STOCK))
        wait_for(
            lambda: all(s.qty(sku) == STOCK for sku in skus[:2]),
            timeout=60,
            what="the counted quantities applied by Fnac's batches",
        )
        yield s
    finally:
        try:
            if connectors is not None:
                log = connectors.log_path
                code = connectors.stop()
                print(f"[fnac-e2e] connectors exited {code}; {log}")
                text = Path(log).read_text()
                assert fake.fnac.key not in text, "the Fnac key reached the connectors' log"
                tokens = fake.call(lambda: list(fake.fnac.tokens))
                assert not [t for t in tokens if t in text], "a Fnac token reached the log"
        finally:
            try:
                worker.stop()
            finally:
                fake.stop()


def test_orders_are_accepted_up_to_the_stock_and_the_others_refused_whole(stack: Stack) -> None:
    """Given 10 units counted and pushed, when ORDERS orders of 3 units arrive awaiting
    acceptance, then exactly floor(10/3) are accepted on Fnac and the others refused, the
    ledger reserves only the accepted units and Fnac is pushed what is left; and an order
    of two SKUs, one of them short, is refused whole: its other line is released; when an
    accepted order ships, its reservation is consumed."""
    sku, other = stack.skus[0], stack.skus[1]
    orders = [stack.place([(sku, UNITS)]) for _ in range(ORDERS)]
    wait_for(
        lambda: all(stack.state(o) != "Created" for o in orders),
        timeout=60,
        what="every order answered on Fnac",
    )
    accepted = [o for o in orders if stack.state(o) == "Accepted"]
    refused = [o for o in orders if stack.state(o) == "Refused"]
    want = min(ORDERS, STOCK // UNITS)
    print(
        f"[fnac-e2e] {ORDERS} orders of {UNITS}: {len(accepted)} accepted, {len(refused)} refused"
    )
    assert (len(accepted), len(refused)) == (want, ORDERS - want)
    left = STOCK - UNITS * want
    wait_for(
        lambda: stack.location(sku).get("reserved") == UNITS * want and stack.qty(sku) == left,
        timeout=30,
        what="only the accepted units reserved, and Fnac shown what is left",
    )
    mixed = stack.place([(other, 2), (sku, left + 1)])
    wait_for(lambda: stack.state(mixed) != "Created", timeout=30, what="the mixed order answered")
    assert stack.state(mixed) == "Refused"
    wait_for(
        lambda: stack.location(other).get("reserved", 0) == 0 and stack.channel_qty(other) == STOCK,
        timeout=30,
        what="the short order's other line released",
    )
    assert stack.location(sku)["reserved"] == UNITS * want
    stack.fake.call(lambda: stack.fnac.ship(accepted[0]))
    wait_for(
        lambda: stack.location(sku).get("reserved") == UNITS * (want - 1),
        timeout=30,
        what="the shipped order's reservation consumed",
    )
    assert stack.location(sku)["on_hand"] == STOCK - UNITS


def test_a_token_expiry_and_a_429_storm_are_survived(stack: Stack) -> None:
    """Given every Fnac token expired and a 2 s storm of 429 with Retry-After, when a new
    count and an order arrive meanwhile, then the connector authenticates again, waits the
    storm out, accepts the order and Fnac shows the ledger's figure."""
    sku = stack.skus[1]
    fnac = stack.fnac
    auths = stack.fake.call(lambda: fnac.authentications)
    stack.fake.call(fnac.expire_tokens)
    stack.fake.call(lambda: fnac.storm(2, retry_after=0.5))
    stack.count({sku: 20})
    order = stack.place([(sku, 4)])
    wait_for(lambda: stack.state(order) == "Accepted", timeout=60, what="the order accepted")
    wait_for(lambda: stack.qty(sku) == 16, timeout=60, what="Fnac showing 20 - 4")
    refusals, throttled, now = stack.fake.call(
        lambda: (fnac.token_refusals, fnac.throttled_requests, fnac.authentications)
    )
    print(f"[fnac-e2e] token refusals {refusals}, throttled {throttled}, auths {auths}->{now}")
    assert refusals > 0 and throttled > 0 and now > auths


def test_a_rejected_offer_is_dead_lettered_and_a_fatal_batch_retried(stack: Stack) -> None:
    """Given one offer Fnac refuses in every batch report and one batch that ends FATAL,
    when both SKUs are counted, then the refused one is dead-lettered with Fnac's code and
    never applied, and the other is pushed again and applied."""
    rejected, retried = stack.skus[2], stack.skus[3]
    fnac = stack.fnac
    stack.fake.call(lambda: fnac.offer_fail(rejected, 50, code="ERR_120", message="Bad quantity"))
    stack.fake.call(lambda: fnac.fail_batches(1))
    stack.count({rejected: 30, retried: 7})
    wait_for(lambda: stack.qty(retried) == 7, timeout=30, what="the retried offer applied")
    letters = read_topic(
        stack.settings,
        single_object_codec(),
        topics.STOCK_DEADLETTER,
        lambda r: r.get("component") == "connector:fnac" and rejected.encode() in r["original"],
        until=lambda found: bool(found),
        timeout=30,
    )
    assert letters and "ERR_120" in letters[0]["error"]
    assert stack.qty(rejected) == 0
