"""The shipping service on the real stack: picked waves in, labels bought (one carrier
down: the next best rate), shipments and `shipped` order events out, the ledger's stock
leaving, tracking to delivered, a delivery exception alerted, labels served by URL."""

from __future__ import annotations

import logging
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from confluent_kafka import Producer

from connectors.carriers.destinations import ChannelAddresses
from connectors.carriers.model import Address, Label
from schemas.codec import single_object_codec
from streams.fulfilment.config import parse as parse_fulfilment
from streams.fulfilment.picking import confirm
from streams.fulfilment.planner import plan_waves
from streams.fulfilment.records import wave_record
from streams.kernel.kafka_config import producer_config
from streams.kernel.produce import produce
from streams.kernel.settings import Settings
from streams.kernel.topics import (
    FULFILMENT_SHIPMENTS,
    FULFILMENT_WAVES,
    STOCK_ALERTS,
    STOCK_DEADLETTER,
)
from streams.shipping import pickups, records
from streams.shipping.config import parse_shipping
from tests.fakes.carriers import MemoryCarrier
from tests.fakes.shipping import ShippingThread
from tests.support.kafka import produce_events, read_topic, stock_event, wait_for
from tests.support.orders import (
    StateFollower,
    book_worker,
    location_levels,
    order_record,
    send_orders,
)
from tests.support.worker import WorkerProcess

pytestmark = [pytest.mark.integration]

ORDERS = int(os.environ.get("STOCKFLOW_SHIP_ORDERS", "12"))
SHIPPING = {"track_every_seconds": 1, "poll_every_seconds": 0.3}
CARRIERS = {
    "default_parcel": {"weight_g": 800, "length_mm": 300, "width_mm": 200, "height_mm": 100},
    "ship_from": {
        "paris-wh": {"country": "FR", "postal_code": "75011", "city": "Paris"},
        "lyon-wh": {"country": "FR", "postal_code": "69007", "city": "Lyon"},
    },
    "service_levels": {"shopify": {"service_level": "standard", "max_days": 4}},
}
PICKUPS = {
    "timezone": "UTC",
    "cutoffs": {"paris-wh": "23:59", "lyon-wh": "23:59"},
    "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],  # whatever day the test runs
}


def _past_cutoff() -> int:
    """Today (UTC) at 23:59:30: past the test's pickup cut-offs (labels are bought earlier)."""
    now = datetime.now(UTC)
    return int(now.replace(hour=23, minute=59, second=30, microsecond=0).timestamp() * 1000)


@pytest.fixture(scope="module")
def worker(local_stack: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with book_worker(
        local_stack, f"ship-{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("ship")
    ) as proc:
        yield proc


def _get(url: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, headers={"Authorization": f"Bearer {token}"} if token else {}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class _Kept:
    """The shop's address reader (the HTTP reads are proven against the fakes in
    tests/unit/test_channel_addresses.py): every order ships to Jeanne in Paris."""

    async def shipping_address(self, channel_order_id: str) -> Address | None:
        return Address("FR", "75011", "Paris", ("12 rue Oberkampf",), "Jeanne Martin")


def test_picked_orders_ship_with_fallback_leave_the_stock_and_are_tracked_to_delivery(
    local_stack: Settings,
    worker: WorkerProcess,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Given N shopify orders of 1-2 units of a chair stocked at paris-wh and a lamp at lyon-wh,
    allocated by the order book, planned into waves per location and every line picked in full,
    and three carriers of which the cheapest sells no label (503), when the shipping service
    runs, then every order gets exactly one shipment from the next best carrier, naming the
    cheapest as passed over, the orders turn shipped, and on_hand drops by exactly the shipped
    units with nothing left reserved; when the carriers report every parcel delivered but one,
    which is an exception, then those orders turn delivered, the other's shipment is at
    exception with one delivery_exception alert; an order picked at a store without a ship-from
    address is dead-lettered (ship_failed, naming the store) and the others ship all the same;
    each label goes to the full destination the shop's address book tells, which is nowhere in
    the shipments nor the log; each label is served by URL to a token with orders:read, and
    refused without one, and so is the parcel's delivery note, which names the order, the
    carrier and the tracking number. With paris-wh's and lyon-wh's pickup cut-offs passed
    (the service's clock at 23:59:30 UTC, cut-offs 23:59), dhl's pickup is booked once at
    each location for today with at least this run's parcels, and not again at a further
    round nor after a restart on the same state folder."""
    settings = local_stack
    codec = single_object_codec()
    run = uuid.uuid4().hex[:6]
    chair, lamp = f"ship-chair-{run}", f"ship-lamp-{run}"
    produce_events(
        settings,
        codec,
        [
            stock_event(f"{run}-c", "stock_count", chair, 100, location="paris-wh"),
            stock_event(f"{run}-l", "stock_count", lamp, 100, location="lyon-wh"),
            stock_event(f"{run}-v", "stock_count", f"{lamp}-vase", 5, location="lille-store"),
        ],
    )
    wait_for(
        lambda: (
            location_levels(worker, chair).get("paris-wh") == (100, 0)
            and location_levels(worker, lamp).get("lyon-wh") == (100, 0)
        ),
        timeout=60,
        what="stock counted",
    )
    time.sleep(1.5)  # the order agent's view of the levels follows the ledger's
    orders = [
        order_record(
            f"shopify:ship-{run}-{i}",
            "shopify",
            [("1", chair if i % 2 == 0 else lamp, 1 + i % 2)],
            ship_to={"country": "FR", "postal_code": "33000", "lat": None, "lon": None},
        )
        for i in range(ORDERS)
    ]
    # the store ships nothing: no ship-from address is configured for it (bad input)
    stray = order_record(
        f"shopify:ship-{run}-stray", "shopify", [("1", f"{lamp}-vase", 1)],
        ship_to={"country": "FR", "postal_code": "33000", "lat": None, "lon": None},
    )  # fmt: skip
    units = {chair: sum(1 + i % 2 for i in range(ORDERS) if i % 2 == 0)}
    units[lamp] = sum(1 + i % 2 for i in range(ORDERS) if i % 2 == 1)
    ids = {o["order_id"] for o in orders}
    carriers = {
        "ups": MemoryCarrier("ups", 500, 2),  # cheapest: down for labels
        "dhl": MemoryCarrier("dhl", 700, 1),
        "chronopost": MemoryCarrier("chronopost", 900, 2),
    }
    carriers["ups"].labels_down = True
    with StateFollower(settings, codec, f"ship-{run}-") as follower:
        send_orders(settings, codec, [*orders, stray])
        follower.wait(
            {*ids, stray["order_id"]}, frozenset({"allocated"}), timeout=60, what="allocated"
        )
        config = parse_fulfilment({})
        now = int(time.time() * 1000)
        states = list(follower.snapshot().values())
        waves = [
            w
            for loc in ("paris-wh", "lyon-wh", "lille-store")
            for w in plan_waves(states, loc, set(), config, now)
        ]
        assert sum(len(w.orders) for w in waves) == ORDERS + 1
        producer = Producer(producer_config(settings))
        for wave in waves:
            for order in wave.orders:
                for line in order.lines:
                    wave = confirm(wave, order.order_id, line.line_id, line.qty, now).wave
            record = wave_record(wave)
            produce(
                producer,
                FULFILMENT_WAVES.name,
                wave.wave_id.encode(),
                codec.encode(FULFILMENT_WAVES.value_schema, record),
            )
        assert producer.flush(30) == 0
        caplog.set_level(logging.INFO)
        book = ChannelAddresses({"shopify": _Kept()})
        # the pickups kept apart from other runs' (the shipments topic is shared: its earlier
        # shipments of today count in the parcels, not in what this run must book)
        own = replace(settings, state_dir=tmp_path)
        ship_config = parse_shipping({**SHIPPING, "pickups": PICKUPS}, CARRIERS)
        with ShippingThread(
            own, ship_config, carriers, addresses=book, clock=_past_cutoff
        ) as shipping:
            follower.wait(ids, frozenset({"shipped"}), timeout=60, what="shipped")
            shipments = {
                s["order_id"]: s for s in shipping.shipments().values() if s["order_id"] in ids
            }
            assert len(shipments) == ORDERS
            assert {s["carrier"] for s in shipments.values()} == {"dhl"}
            assert {tuple(s["passed_over"]) for s in shipments.values()} == {("ups",)}
            sent = [carriers["dhl"].destinations[s["shipment_id"]] for s in shipments.values()]
            assert {(a.name, a.lines) for a in sent} == {("Jeanne Martin", ("12 rue Oberkampf",))}
            assert "Oberkampf" not in repr(shipments) and "Jeanne" not in repr(shipments)
            refused = [ref for ref in carriers["ups"].refused if f"ship-{run}-" in ref]
            assert len(refused) == ORDERS and not carriers["ups"].labels
            dead = read_topic(
                settings,
                codec,
                STOCK_DEADLETTER,
                lambda d: (
                    d.get("component") == "shipping"
                    and d.get("event_id", "").endswith(stray["order_id"])
                ),
                until=lambda found: bool(found),
                timeout=20,
            )
            assert dead[0]["reason"] == "ship_failed" and "lille-store" in dead[0]["error"]
            assert follower.snapshot()[stray["order_id"]]["status"] == "allocated"
            assert all(s["status"] in ("shipped", "in_transit") for s in shipments.values())
            wait_for(
                lambda: (
                    location_levels(worker, chair)["paris-wh"] == (100 - units[chair], 0)
                    and location_levels(worker, lamp)["lyon-wh"] == (100 - units[lamp], 0)
                ),
                timeout=30,
                what=f"on_hand down by {units}, nothing reserved",
            )
            numbers = sorted(s["tracking_number"] for s in shipments.values())
            lost = numbers[0]
            for n in numbers:
                carriers["dhl"].status[n] = "exception" if n == lost else "delivered"
            delivered = ids - {
                s["order_id"] for s in shipments.values() if s["tracking_number"] == lost
            }
            follower.wait(delivered, frozenset({"delivered"}), timeout=30, what="delivered")
            [late] = [s for s in shipments.values() if s["tracking_number"] == lost]
            wait_for(
                lambda: shipping.shipments()[late["shipment_id"]]["status"] == "exception",
                timeout=30,
                what="the lost parcel at exception",
            )
            alerts = read_topic(
                settings,
                codec,
                STOCK_ALERTS,
                lambda a: a.get("alert_id") == f"delivery_exception|{late['shipment_id']}",
                until=lambda found: bool(found),
                timeout=20,
            )
            assert [a["kind"] for a in alerts] == ["delivery_exception"]
            assert follower.snapshot()[late["order_id"]]["status"] == "shipped"
            url = late["label_url"]
            assert url == f"{shipping.base}/v1/labels/{quote(late['shipment_id'], safe='')}"
            status, body = _get(url, shipping.token)
            assert status == 200 and body.startswith(b"%PDF") and lost.encode() in body
            assert _get(url, None)[0] == 401
            status, note = _get(f"{url}/delivery-note.pdf", shipping.token)
            assert status == 200 and note.startswith(b"%PDF")
            text = subprocess.run(
                ["pdftotext", "-", "-"], input=note, capture_output=True, check=True
            ).stdout.decode()
            assert lost in text and late["order_id"] in text and "dhl" in text
            assert _get(f"{shipping.base}/v1/labels/nope", shipping.token)[0] == 404
            mine = {"75011": 0, "69007": 0}  # this run's parcels per ship-from postal code
            for s in shipments.values():
                mine["75011" if s["location"] == "paris-wh" else "69007"] += s["parcels"]
            day = pickups.pickup_day(
                next(iter(shipments.values()))["created_at"], "paris-wh", ship_config.pickups
            )
            wait_for(
                lambda: len(carriers["dhl"].pickups) == 2, timeout=20, what="dhl's two pickups"
            )
            assert shipping.call(shipping.service.book_pickups()) == 0
            got = {(a.postal_code, d): n for a, d, n in carriers["dhl"].pickups}
            assert set(got) == {("75011", day), ("69007", day)}
            assert all(got[(code, day)] >= mine[code] > 0 for code in mine), (got, mine)
        with ShippingThread(own, ship_config, carriers, clock=_past_cutoff) as again:
            assert again.call(again.service.book_pickups()) == 0
        assert len(carriers["dhl"].pickups) == 2
    assert "Oberkampf" not in caplog.text and "Jeanne" not in caplog.text
    print(
        f"shipping: {ORDERS} orders shipped by dhl after ups refused {ORDERS} labels; units {units}"
    )


def test_a_shipment_left_at_created_by_a_stop_is_finished_at_start_without_a_second_label(
    local_stack: Settings, worker: WorkerProcess
) -> None:
    """Given an order allocated, waved and picked, whose shipment the shipping service wrote
    at `created` before it stopped (its shipped event never sent), when the service starts,
    then it sends the order's shipped event and the shipment's shipped version, the order is
    shipped and its units leave the stock, and no carrier is asked for another label."""
    settings = local_stack
    codec = single_object_codec()
    run = uuid.uuid4().hex[:6]
    sku = f"ship-stool-{run}"
    produce_events(
        settings, codec, [stock_event(f"{run}-s", "stock_count", sku, 10, location="paris-wh")]
    )
    wait_for(
        lambda: location_levels(worker, sku).get("paris-wh") == (10, 0), timeout=60, what="counted"
    )
    time.sleep(1.5)  # the order agent's view of the levels follows the ledger's
    order_id = f"shopify:restart-{run}"
    ship_to = {"country": "FR", "postal_code": "33000", "lat": None, "lon": None}
    with StateFollower(settings, codec, f"restart-{run}") as follower:
        send_orders(
            settings, codec, [order_record(order_id, "shopify", [("1", sku, 2)], ship_to=ship_to)]
        )
        follower.wait({order_id}, frozenset({"allocated"}), timeout=60, what="allocated")
        now = int(time.time() * 1000)
        [wave] = plan_waves(
            list(follower.snapshot().values()), "paris-wh", set(), parse_fulfilment({}), now
        )
        wave = confirm(wave, order_id, "1", 2, now).wave
        label = Label("dhl", "std", f"JD{run}", "PDF", b"%PDF-1.4 label", 700, "EUR")
        created = records.new_shipment(
            wave, wave.orders[0], label, parcels=1, weight_g=800, label_url=None, now=now
        )
        producer = Producer(producer_config(settings))
        produce(
            producer,
            FULFILMENT_WAVES.name,
            wave.wave_id.encode(),
            codec.encode(FULFILMENT_WAVES.value_schema, wave_record(wave)),
        )
        produce(
            producer,
            FULFILMENT_SHIPMENTS.name,
            created["shipment_id"].encode(),
            codec.encode(FULFILMENT_SHIPMENTS.value_schema, created),
        )
        assert producer.flush(30) == 0
        carriers = {"dhl": MemoryCarrier("dhl", 700, 1)}
        with ShippingThread(settings, parse_shipping(SHIPPING, CARRIERS), carriers) as shipping:
            follower.wait({order_id}, frozenset({"shipped"}), timeout=60, what="shipped")
            wait_for(
                lambda: (
                    shipping.shipments()[created["shipment_id"]]["status"]
                    in ("shipped", "in_transit")
                ),
                timeout=30,
                what="the shipment's shipped version",
            )
            assert carriers["dhl"].labels == {}
            wait_for(
                lambda: location_levels(worker, sku)["paris-wh"] == (8, 0),
                timeout=30,
                what="2 units left",
            )
