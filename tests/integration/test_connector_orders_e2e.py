"""Orders through the connectors on the real stack (channels set to ``orders: book``):
a Shopify order webhook becomes an Order on orders.v1 and no per-line StockEvent; an order
cancelled here (an OrderState on orders.state.v1) is cancelled on the fake channel, once.
Real broker, real connectors process, real HTTP; the channels are the fakes."""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from schemas.codec import single_object_codec
from streams.kernel import topics
from streams.kernel.settings import Settings
from tests.fakes.e2e import Stack, e2e_stack
from tests.support.kafka import produce_raw, read_topic, wait_for
from tests.support.ports import free_port
from tests.unit.schema_samples import SAMPLES

pytestmark = pytest.mark.integration

PERSONAL = ("Jeanne", "Martin", "jeanne.martin@example.org", "Oberkampf", "+33612345678")


@pytest.fixture(scope="module")
def stack(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("connector-orders")
    with e2e_stack(
        local_stack,
        folder,
        worker_port=free_port(),
        connectors_port=free_port(),
        n_skus=3,
        channel_extra="orders: book",
    ) as stack:
        yield stack


def _cancelled_state(order_id: str, version: int = 5) -> bytes:
    state = copy.deepcopy(SAMPLES["stockflow.v1.OrderState"])
    channel = order_id.split(":", 1)[0]
    state.update(
        order_id=order_id,
        channel=channel,
        version=version,
        status="cancelled",
        reason="customer called",
        updated_at=int(time.time() * 1000),
    )
    state["transition"].update(
        from_status="allocated",
        to_status="cancelled",
        event_id=f"api|cancel|{uuid.uuid4().hex[:8]}",
        reason="customer called",
        by="ops",
    )
    return single_object_codec().encode(topics.ORDERS_STATE.value_schema, state)


def _cancel_here(stack: Stack, order_id: str, done: Callable[[], bool]) -> None:
    """Write the cancelled state until the channel shows it (the connectors' new consumer
    group starts at the end of the topic, once it is assigned): each write is a redelivery
    the connector must recognise."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        produce_raw(
            stack.settings, [(order_id.encode(), _cancelled_state(order_id))], topics.ORDERS_STATE
        )
        try:
            wait_for(done, timeout=3, what=f"{order_id} cancelled on its channel")
            return
        except AssertionError:
            continue
    raise AssertionError(f"{order_id} was not cancelled on its channel within 60 s")


def test_a_shopify_order_webhook_becomes_one_order_record_and_no_line_event(stack: Stack) -> None:
    """Given both channels set to orders: book,
    when the fake Shopify sends a signed orders/create of two lines (with the customer's
    name, email, phone and street in the payload) for an order Shopify assessed HIGH risk,
    then orders.v1 holds one placed Order keyed shopify:<id> with both lines, ship-to FR
    75011, risk high and none of the personal data, and stock.events.v1 holds no event of
    that order."""
    fakes = stack.fakes
    a, b = stack.skus[0], stack.skus[1]
    order = fakes.call(
        lambda: fakes.shopify.place_order(
            [(stack.variant(a), 2), (stack.variant(b), 1)], risk=("PENDING", "HIGH")
        )
    )
    sent = fakes.run(fakes.shopify.deliver("orders/create", order))
    assert sent.statuses == [200]
    order_id = f"shopify:{order['id']}"
    codec = single_object_codec()
    [placed] = read_topic(
        stack.settings,
        codec,
        topics.ORDERS,
        # the fake's order ids restart with each fake: the SKUs, fresh per run, tell ours
        lambda r: r.get("order_id") == order_id and r["lines"][0]["sku"] == a,
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert placed["type"] == "placed"
    assert [(x["sku"], x["qty"]) for x in placed["lines"]] == [(a, 2), (b, 1)]
    assert (placed["ship_to"]["country"], placed["ship_to"]["postal_code"]) == ("FR", "75011")
    assert placed["risk"] == "high"  # read from Shopify's assessments before publishing
    text = orjson.dumps(placed, default=str).decode()
    assert [p for p in PERSONAL if p in text] == []
    # the webhook was answered after every record of it was acknowledged: read them all;
    # the order book's own reservations of the Order (ids "ob|...") are the one path
    line_events = read_topic(
        stack.settings,
        codec,
        topics.STOCK_EVENTS,
        lambda r: (
            r.get("order_id") == order_id
            and r.get("sku") in (a, b)
            and not r["event_id"].startswith("ob|")
        ),
        until=lambda found: False,
        timeout=5,
    )
    assert line_events == []


def test_orders_cancelled_here_are_cancelled_on_shopify_and_woocommerce_once(
    stack: Stack,
) -> None:
    """Given an open order on each fake channel,
    when an operator's cancellation of each arrives on orders.state.v1 (written again and
    again until the channel shows it, then once more),
    then Shopify applied orderCancel to its order exactly once and WooCommerce recorded
    exactly one transition of its order to cancelled."""
    fakes = stack.fakes
    sku = stack.skus[2]
    shop_order = fakes.call(lambda: fakes.shopify.place_order([(stack.variant(sku), 1)]))
    woo_order = fakes.call(lambda: fakes.woo.place_order([(stack.pid(sku), 1)]))
    shop_id, woo_id = shop_order["id"], woo_order["id"]

    def shopify_cancels() -> list[dict[str, Any]]:
        return fakes.call(
            lambda: [c for c in fakes.shopify.cancellations if c["order_id"] == shop_id]
        )

    def woo_cancels() -> list[dict[str, Any]]:
        return fakes.call(lambda: [c for c in fakes.woo.status_changes if c["order_id"] == woo_id])

    _cancel_here(stack, f"shopify:{shop_id}", lambda: bool(shopify_cancels()))
    _cancel_here(stack, f"woocommerce:{woo_id}", lambda: bool(woo_cancels()))
    # once more each, then a sentinel order: once it is cancelled, the repeats were read
    produce_raw(
        stack.settings,
        [
            (f"shopify:{shop_id}".encode(), _cancelled_state(f"shopify:{shop_id}")),
            (f"woocommerce:{woo_id}".encode(), _cancelled_state(f"woocommerce:{woo_id}")),
        ],
        topics.ORDERS_STATE,
    )
    sentinel = fakes.call(lambda: fakes.woo.place_order([(stack.pid(sku), 1)]))
    _cancel_here(
        stack,
        f"woocommerce:{sentinel['id']}",
        lambda: fakes.call(
            lambda: any(c["order_id"] == sentinel["id"] for c in fakes.woo.status_changes)
        ),
    )
    assert len(shopify_cancels()) == 1
    assert shopify_cancels()[0]["reason"] == "OTHER"
    assert woo_cancels() == [{"order_id": woo_id, "from": "processing", "to": "cancelled"}]
    assert fakes.call(lambda: fakes.woo.orders[woo_id]["status"]) == "cancelled"


def test_an_order_the_channel_cannot_cancel_is_dead_lettered_and_alerted(stack: Stack) -> None:
    """Given an order id Shopify does not know (its orderCancel answers NOT_FOUND),
    when an operator's cancellation of it arrives on orders.state.v1,
    then stock.deadletter.v1 holds a cancel_failed record naming only the order id, channel
    and state version, and stock.alerts.v1 a drift alert telling to cancel it by hand."""
    order_id = f"shopify:{900_000_000 + uuid.uuid4().int % 99_999_999}"
    codec = single_object_codec()
    deadline = time.monotonic() + 60
    letters: list[dict[str, Any]] = []
    while not letters and time.monotonic() < deadline:  # until the new group is assigned
        produce_raw(
            stack.settings, [(order_id.encode(), _cancelled_state(order_id))], topics.ORDERS_STATE
        )
        letters = read_topic(
            stack.settings,
            codec,
            topics.STOCK_DEADLETTER,
            lambda r: r.get("key") == order_id.encode(),
            until=lambda found: len(found) >= 1,
            timeout=3,
        )
    [letter] = letters
    assert (letter["reason"], letter["component"]) == ("cancel_failed", "connector:shopify")
    assert "NOT_FOUND" in letter["error"]
    assert orjson.loads(letter["original"]) == {
        "order_id": order_id,
        "channel": "shopify",
        "version": 5,
        "status": "cancelled",
    }
    [alert] = read_topic(
        stack.settings,
        codec,
        topics.STOCK_ALERTS,
        lambda r: r.get("alert_id") == f"cancel:{order_id}:5",
        until=lambda found: len(found) >= 1,
        timeout=30,
    )
    assert alert["kind"] == "drift" and "by hand" in alert["message"]
