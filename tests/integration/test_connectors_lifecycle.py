"""The order lifecycle closes, end to end: orders placed on both fakes, shipped (partially,
through redelivered webhooks, through order payloads), cancelled → the real ledger's
``reserved`` and ``on_hand``; and a refused line reaches its channel. Real Kafka, real
ledger worker, the connectors process; the channels are the fakes."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.kafka import wait_for
from tests.support.ports import free_port

pytestmark = pytest.mark.integration

ORDERS = int(os.environ.get("STOCKFLOW_LIFECYCLE_ORDERS", "1000"))
WAIT_S = float(os.environ.get("STOCKFLOW_LIFECYCLE_WAIT_S", "300"))
SHIPPED = ORDERS * 7 // 10
CANCELLED = ORDERS // 10
START = 100_000
LIFECYCLE_SKUS = 8


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("connectors-lifecycle")
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=LIFECYCLE_SKUS + 2,
        on_refusal={"shopify": "cancel", "woocommerce": "flag"},
    ) as stack:
        counts = dict.fromkeys(stack.skus[:LIFECYCLE_SKUS], START)
        counts.update(dict.fromkeys(stack.skus[LIFECYCLE_SKUS:], 2))
        stack.count(counts, timeout=120)
        yield stack


class Ledger:
    """What the ledger must hold per SKU: reserved and shipped units."""

    def __init__(self) -> None:
        self.reserved: Counter[str] = Counter()
        self.shipped: Counter[str] = Counter()
        self.cancelled: Counter[str] = Counter()
        self.webhooks = 0
        self.redeliveries = 0


async def _life(stack: Stack, rng: random.Random, expect: Ledger) -> None:
    """Runs on the fakes' loop: place, ship and cancel, delivering every webhook."""
    shopify, woo = stack.fakes.shopify, stack.fakes.woo
    skus = stack.skus[:LIFECYCLE_SKUS]
    placed: list[tuple[str, dict[str, Any], list[tuple[str, int]]]] = []
    for i in range(ORDERS):
        lines = [(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(1, 2))]
        if i % 2 == 0:
            order = shopify.place_order([(stack.variant(s), q) for s, q in lines])
            sent = await shopify.deliver("orders/create", order)
        else:
            order = woo.place_order([(stack.pid(s), q) for s, q in lines])
            sent = await woo.deliver("order.created", order)
        assert sent.statuses[-1] == 200, sent.statuses
        expect.webhooks += 1
        for sku, qty in lines:
            expect.reserved[sku] += qty
        placed.append(("shopify" if i % 2 == 0 else "woocommerce", order, lines))
    rng.shuffle(placed)
    for k, (channel, order, lines) in enumerate(placed[:SHIPPED]):
        if channel == "woocommerce":
            woo.set_status(order["id"], "completed")
            await woo.deliver("order.updated", order)
            expect.webhooks += 1
            if k % 3 == 0:  # the same change delivered again (Woo gives it a new id)
                await woo.deliver("order.updated", order)
                expect.redeliveries += 1
            for sku, qty in lines:
                _ship(expect, sku, qty)
            continue
        ids = [li["id"] for li in order["line_items"]]
        first_sku, first_qty = lines[0]
        if k % 4 == 0:  # partial: part of the first line only, the rest stays reserved
            part = max(1, first_qty - 1)
            await shopify.deliver(
                "fulfillments/create", shopify.fulfil(order["id"], [(ids[0], part)])
            )
            await shopify.deliver("orders/partially_fulfilled", order)
            expect.webhooks += 2
            _ship(expect, first_sku, part)
        elif k % 4 == 1 and first_qty > 1:  # two fulfilments, the first redelivered
            first = await shopify.deliver(
                "fulfillments/create", shopify.fulfil(order["id"], [(ids[0], 1)])
            )
            await shopify.deliver("fulfillments/create", shopify.fulfil(order["id"]))
            assert await shopify.redeliver(first) == 200
            expect.webhooks += 2
            expect.redeliveries += 1
            for sku, qty in lines:
                _ship(expect, sku, qty)
        elif k % 4 == 2:  # the fulfilment webhook, then the order's own
            await shopify.deliver("fulfillments/create", shopify.fulfil(order["id"]))
            await shopify.deliver("orders/fulfilled", order)
            expect.webhooks += 2
            for sku, qty in lines:
                _ship(expect, sku, qty)
        else:  # only the order payload tells, twice
            shopify.fulfil(order["id"], location_id=1)
            sent = await shopify.deliver("orders/fulfilled", order)
            assert await shopify.redeliver(sent) == 200
            expect.webhooks += 1
            expect.redeliveries += 1
            for sku, qty in lines:
                _ship(expect, sku, qty)
    for channel, order, lines in placed[SHIPPED : SHIPPED + CANCELLED]:
        if channel == "shopify":
            await shopify.deliver("orders/cancelled", shopify.cancel_order(order["id"]))
        else:
            await woo.deliver("order.updated", woo.set_status(order["id"], "cancelled"))
        expect.webhooks += 1
        for sku, qty in lines:
            expect.reserved[sku] -= qty
            expect.cancelled[sku] += qty
    for sku in skus:  # the sentinel: published last, applied last for its SKU
        sentinel = shopify.place_order([(stack.variant(sku), 1)])
        await shopify.deliver("orders/create", sentinel)
        expect.reserved[sku] += 1


def _ship(expect: Ledger, sku: str, qty: int) -> None:
    expect.reserved[sku] -= qty
    expect.shipped[sku] += qty


def _figures(stack: Stack, sku: str) -> tuple[int, int]:
    stock = stack.worker.stock(sku) or {}
    locations = (stock.get("locations") or {}).values()
    return sum(loc["reserved"] for loc in locations), sum(loc["on_hand"] for loc in locations)


def test_shipments_and_cancellations_leave_exactly_the_open_units_reserved(stack: Stack) -> None:
    """Given SKUs counted at 100,000 and ORDERS orders of 1-2 lines placed by webhook, half
    on each fake,
    when 70 % ship (Shopify: partial fulfilments, two fulfilments with a redelivery, the
    fulfilment then the order payload, the order payload redelivered; Woo: completed, a
    third delivered twice) and 10 % are cancelled, then one sentinel order per SKU,
    then per SKU the ledger's reserved equals exactly the units placed, not shipped and not
    cancelled, and on_hand dropped by exactly the units shipped."""
    expect = Ledger()
    began = time.monotonic()
    stack.fakes.run(_life(stack, random.Random(10), expect), timeout=1800)
    sent_s = time.monotonic() - began
    skus = stack.skus[:LIFECYCLE_SKUS]
    want = {s: (expect.reserved[s], START - expect.shipped[s]) for s in skus}
    try:
        wait_for(
            lambda: all(_figures(stack, s) == want[s] for s in skus),
            timeout=WAIT_S,
            what="the ledger to hold the open reservations and the shipped on_hand",
        )
    finally:
        got = {s: _figures(stack, s) for s in skus}
        print(
            f"\n[lifecycle] orders={ORDERS} shipped={SHIPPED} cancelled={CANCELLED} "
            f"webhooks={expect.webhooks} redeliveries={expect.redeliveries} "
            f"units shipped={sum(expect.shipped.values())} "
            f"cancelled={sum(expect.cancelled.values())} "
            f"still reserved={sum(expect.reserved.values())} sent in {sent_s:.1f}s, "
            f"applied after {time.monotonic() - began:.1f}s"
        )
        for s in skus:
            print(f"[lifecycle] {s}: expected (reserved, on_hand)={want[s]} ledger={got[s]}")
    assert got == want


def _decisions_ready(stack: Stack) -> bool:
    return "stock.decisions.v1 assigned" in stack.connectors.log_path.read_text()


def _exceptions(stack: Stack) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {stack.worker.token}"}
    request = urllib.request.Request(stack.connectors.url + "/v1/exceptions", headers=auth)
    with urllib.request.urlopen(request, timeout=10) as answer:
        rows: list[dict[str, Any]] = json.loads(answer.read())
        return rows


def test_a_refused_line_is_cancelled_on_shopify_and_flagged_on_woocommerce(stack: Stack) -> None:
    """Given two SKUs counted at 2, Shopify's policy cancel and WooCommerce's flag,
    when a Shopify order and a Woo order each ask 5 units by webhook,
    then the ledger rejects both lines; the Shopify order is cancelled by orderCancel with
    restock off and a staff note; the Woo order gets a private note and the exception meta
    and stays processing; GET /v1/exceptions lists the Woo line (not the Shopify one)."""
    wait_for(lambda: _decisions_ready(stack), timeout=60, what="the decisions consumer")
    fakes = stack.fakes
    shop_sku, woo_sku = stack.skus[LIFECYCLE_SKUS:]
    order = fakes.call(lambda: fakes.shopify.place_order([(stack.variant(shop_sku), 5)]))
    assert fakes.run(fakes.shopify.deliver("orders/create", order)).statuses == [200]
    woo_order = fakes.call(lambda: fakes.woo.place_order([(stack.pid(woo_sku), 5)]))
    assert fakes.run(fakes.woo.deliver("order.created", woo_order)).statuses == [200]
    wait_for(
        lambda: fakes.call(lambda: fakes.shopify.orders[order["id"]]["cancelled_at"]) is not None,
        timeout=60,
        what="the Shopify order cancelled",
    )
    [cancel] = fakes.call(lambda: list(fakes.shopify.cancellations))
    assert (cancel["order_id"], cancel["restock"]) == (order["id"], False)
    assert "insufficient_stock" in cancel["staff_note"]
    wait_for(lambda: len(_exceptions(stack)) == 1, timeout=60, what="the Woo line listed")
    [row] = _exceptions(stack)
    line = woo_order["line_items"][0]["id"]
    assert row["channel"] == "woocommerce"
    assert (row["order_id"], row["line_id"], row["sku"], row["qty"], row["reason"]) == (
        str(woo_order["id"]),
        str(line),
        woo_sku,
        5,
        "insufficient_stock",
    )
    stored = fakes.call(lambda: dict(fakes.woo.orders[woo_order["id"]]))
    assert stored["status"] == "processing"
    assert [m["key"] for m in stored["meta_data"]] == [f"_stockflow_exception_{line}"]
    assert len(fakes.call(lambda: list(fakes.woo.notes[woo_order["id"]]))) == 1
    assert stack.ledger_qty(shop_sku, "shopify") == 2  # nothing reserved for either
    assert stack.ledger_qty(woo_sku, "woocommerce") == 2
