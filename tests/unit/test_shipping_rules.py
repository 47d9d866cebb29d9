"""Shipping as pure rules: the shipping configuration, the records the service writes and
the sink's row of a shipment (packing and rate shopping: tests/unit/test_rate_shopping.py)."""

from __future__ import annotations

import pytest

from connectors.carriers.model import Address, Label
from schemas.codec import single_object_codec
from schemas.orders import check
from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus
from streams.fulfilment.records import wave_from_record
from streams.kernel.topics import FULFILMENT_SHIPMENTS, SINK_TOPICS
from streams.shipping import records
from streams.shipping.config import ShippingConfigError, parse_shipping
from streams.sink.order_rows import table_rows
from streams.sink.rows import RowError
from streams.sink.shipment_rows import SHIPMENT, SHIPMENTS
from streams.warehouse.schema import MIGRATIONS

T = 1_795_420_800_000
HOME = Address("FR", "75011")
AWAY = Address("FR", "69001")


def test_the_configuration_is_parsed_and_its_mistakes_named() -> None:
    """Given shipping and carriers sections, when parsed, then the rhythm and the ship-from
    addresses are kept; a location without address, an unknown key, a bad number or a bad
    carriers section is refused with the key named."""
    config = parse_shipping(
        {"track_every_seconds": 60},
        {"ship_from": {"paris": {"country": "FR", "postal_code": "75011", "city": "Paris"}}},
    )
    assert config.track_every_seconds == 60 and config.poll_every_seconds == 2
    assert config.origin("paris") == Address("FR", "75011", "Paris")
    with pytest.raises(ShippingConfigError, match="no address for location 'lyon'"):
        config.origin("lyon")
    for shipping, carriers, where in (
        ({"track_every": 1}, None, "unknown key"),
        ({"poll_every_seconds": 0}, None, "shipping.poll_every_seconds"),
        (None, {"parcel": {}}, "carriers"),
    ):
        with pytest.raises(ShippingConfigError, match=where):
            parse_shipping(shipping, carriers)


def wave() -> Wave:
    order = WaveOrder(
        "shopify:1001",
        "shopify",
        (
            WaveLine("l1", "chair", 2, picked_qty=2),
            WaveLine("l2", "lamp", 3, picked_qty=1),
            WaveLine("l3", "mug", 1, picked_qty=0),
        ),
        country="FR",
        postal_code="69001",
    )
    return Wave("w1", "paris", WaveStatus.PICKED, (order,), T, T, version=4)


def test_the_records_carry_the_picked_units_and_encode() -> None:
    """Given an order picked short (one line at zero), when its shipment and order events are
    built, then they name only the picked units, from the wave's location, with carrier and
    tracking number; every record encodes with its schema and the order event passes the
    order contract; the ids are the same when built again."""
    w = wave()
    order = w.orders[0]
    label = Label("dhl", "N", "JD0001", "PDF", b"%PDF", 1234, "EUR")
    shipment = records.new_shipment(w, order, label, parcels=1, weight_g=100, label_url=None, now=T)
    assert shipment["shipment_id"] == "ship|w1|shopify:1001"
    assert [(ln["line_id"], ln["qty"]) for ln in shipment["lines"]] == [("l1", 2), ("l2", 1)]
    shipped = records.shipped_event(shipment, T)
    assert shipped["location"] == "paris" and shipped["tracking_number"] == "JD0001"
    assert (
        check(shipped) == "shipped" and check(records.delivered_event(shipment, T)) == "delivered"
    )
    assert records.shipped_event(shipment, T + 5)["event_id"] == shipped["event_id"]
    alert = records.exception_alert(records.moved(shipment, "exception", T), "address unknown", T)
    assert alert["kind"] == "delivery_exception" and alert["value"] == 3
    codec = single_object_codec()
    codec.encode("stockflow.v1.Shipment", records.moved(shipment, "shipped", T))
    codec.encode("stockflow.v1.Order", shipped)
    codec.encode("stockflow.v1.Alert", alert)


def test_a_waves_record_reads_back_as_the_model() -> None:
    """Given a wave as its record, when read, then the model is the same wave."""
    w = wave()
    record = {
        "wave_id": w.wave_id,
        "version": 4,
        "location": "paris",
        "status": "picked",
        "orders": [
            {
                "order_id": o.order_id,
                "channel": o.channel,
                "express": False,
                "carrier": None,
                "country": "FR",
                "postal_code": "69001",
                "lines": [
                    {
                        "line_id": ln.line_id,
                        "sku": ln.sku,
                        "qty": ln.qty,
                        "bin": None,
                        "lot": None,
                        "picked_qty": ln.picked_qty,
                    }
                    for ln in o.lines
                ],
            }
            for o in w.orders
        ],
        "created_at": T,
        "updated_at": T,
    }
    assert wave_from_record(record) == w


def test_a_shipment_becomes_one_row_of_shipments_with_its_cost_and_units() -> None:
    """Given a shipment version read at partition 1 offset 4, when the sink maps it, then it
    is one shipments row with the label's cost, the units shipped and the version; a negative
    cost is refused for the dead-letter topic; the carriers passed over are named, sorted;
    migration 8 creates the table, 9 adds passed_over, and the sink reads the topic."""
    w = wave()
    label = Label("ups", "11", "1Z999", "PDF", b"%PDF", 1290, "EUR")
    shipment = records.moved(
        records.new_shipment(
            w,
            w.orders[0],
            label,
            parcels=1,
            weight_g=900,
            label_url=None,
            now=T,
            passed_over={"dhl": "503", "chronopost": "no rate"},
        ),
        "shipped",
        T + 1000,
    )
    [(table, [row])] = table_rows(SHIPMENT, shipment, 1, 4)
    assert table is SHIPMENTS
    values = dict(zip(table.columns, row, strict=True))
    assert (values["cost_minor"], values["currency"], values["units"]) == (1290, "EUR", 3)
    assert (values["version"], values["status"], values["channel"]) == (2, "shipped", "shopify")
    assert values["updated_at_ms"] == T + 1000 and values["kafka_offset"] == 4
    assert values["passed_over"] == ["chronopost", "dhl"]
    with pytest.raises(RowError, match="cost_minor"):
        table_rows(SHIPMENT, {**shipment, "cost_minor": -1}, 0, 0)
    [eight] = [m for m in MIGRATIONS if m.version == 8]
    assert "shipments" in eight.statements[0] and FULFILMENT_SHIPMENTS in SINK_TOPICS
    [nine] = [m for m in MIGRATIONS if m.version == 9]
    assert "ADD COLUMN passed_over Array(String)" in nine.statements[0]
