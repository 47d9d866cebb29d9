"""Shipping as pure rules: packing, the shipping configuration, rate ranking per service
level, label purchase with fallback, and the records the service writes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.carriers.base import CarrierRefused, CarrierUnavailable
from connectors.carriers.model import Address, Label, Parcel, Rate, TrackingStatus
from schemas.codec import single_object_codec
from schemas.orders import check
from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus
from streams.fulfilment.records import wave_from_record
from streams.kernel.topics import FULFILMENT_SHIPMENTS, SINK_TOPICS
from streams.shipping import records
from streams.shipping.buying import NoLabelError, buy, rank
from streams.shipping.config import ServiceLevel, ShippingConfigError, parse_shipping
from streams.shipping.packing import pack
from streams.sink.order_rows import table_rows
from streams.sink.rows import RowError
from streams.sink.shipment_rows import SHIPMENT, SHIPMENTS
from streams.warehouse.schema import MIGRATIONS

T = 1_795_420_800_000
HOME = Address("FR", "75011")
AWAY = Address("FR", "69001")

units = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(min_value=0, max_value=6)), max_size=6
)
SIZES = {
    "a": Parcel(300, 200, 100, 50),
    "b": Parcel(2500, 400, 300, 200),
    "c": Parcel(9000, 600, 500, 400),
}


@given(units, st.integers(min_value=1000, max_value=30_000))
def test_packing_puts_every_unit_in_one_parcel_within_the_weight(
    lines: list[tuple[str, int]], limit: int
) -> None:
    """Given units of SKUs of known weight and a maximum parcel weight, when packed, then the
    parcels' weights add up to the units' (none lost, none doubled), and a parcel passes the
    maximum only when it holds one unit heavier than the maximum."""
    parcels = pack(lines, SIZES.__getitem__, limit)
    assert sum(p.weight_g for p in parcels) == sum(SIZES[s].weight_g * q for s, q in lines)
    for p in parcels:
        assert p.weight_g <= limit or p.weight_g in {u.weight_g for u in SIZES.values()}
    assert (not parcels) == (sum(q for _, q in lines) == 0)


def test_the_configuration_is_parsed_and_its_mistakes_named() -> None:
    """Given a shipping section, when parsed, then SKUs, addresses and service levels are
    kept; a typo, a bad level or a missing dimension is refused with the key named."""
    config = parse_shipping(
        {
            "skus": {
                "chair": {"weight_g": 7000, "length_mm": 600, "width_mm": 500, "height_mm": 450}
            },
            "locations": {"paris": {"country": "fr", "postal_code": 75011, "city": "Paris"}},
            "channels": {"shopify": {"service_level": "express", "max_days": 2}},
        }
    )
    assert config.unit("chair").weight_g == 7000 and config.unit("other") == config.default_parcel
    assert config.origin("paris") == Address("FR", "75011", "Paris")
    assert config.service("shopify") == ServiceLevel("express", 2)
    with pytest.raises(ShippingConfigError, match="no address for location 'lyon'"):
        config.origin("lyon")
    for bad, where in (
        ({"sku": {}}, "unknown key"),
        ({"channels": {"x": {"service_level": "fast"}}}, "shipping.channels.x.service_level"),
        ({"skus": {"a": {"weight_g": 1}}}, "shipping.skus.a: missing"),
        ({"locations": {"p": {"country": "FRA", "postal_code": "1"}}}, "p.country"),
    ):
        with pytest.raises(ShippingConfigError, match=where):
            parse_shipping(bad)


def rate(carrier: str, amount: int, days: int | None, service: str = "std") -> Rate:
    return Rate(carrier, service, amount, "EUR", days, f"{carrier}-{service}")


def test_standard_ranks_by_price_and_express_by_time_within_the_promise() -> None:
    """Given rates of three carriers, when ranked, then standard puts the cheapest first,
    express the fastest first, and rates slower than max_days come only when none is in."""
    rates = [rate("dhl", 900, 1), rate("ups", 700, 3), rate("chronopost", 650, 6)]
    assert [r.carrier for r in rank(rates, ServiceLevel("standard", 5))] == ["ups", "dhl"]
    assert rank(rates, ServiceLevel("standard", None))[0].carrier == "chronopost"
    assert [r.carrier for r in rank(rates, ServiceLevel("express", 2))] == ["dhl"]
    assert rank([rate("ups", 700, 4)], ServiceLevel("express", 1))[0].carrier == "ups"


class Stub:
    """An in-memory carrier: fixed rates, and a failure switch per call."""

    def __init__(self, name: str, amount: int, days: int, fail: Exception | None = None) -> None:
        self.name = name
        self.amount = amount
        self.days = days
        self.fail_rates: Exception | None = None
        self.fail_ship = fail
        self.shipped: list[str] = []

    async def rates(
        self, ship_from: Address, ship_to: Address, parcels: Sequence[Parcel]
    ) -> list[Rate]:
        if self.fail_rates is not None:
            raise self.fail_rates
        return [rate(self.name, self.amount * len(parcels), self.days)]

    async def ship(
        self,
        r: Rate,
        ship_from: Address,
        ship_to: Address,
        parcels: Sequence[Parcel],
        reference: str,
    ) -> Label:
        if self.fail_ship is not None:
            raise self.fail_ship
        self.shipped.append(reference)
        return Label(
            self.name,
            r.service,
            f"{self.name.upper()}{len(self.shipped)}",
            "PDF",
            b"%PDF",
            r.amount_minor,
            "EUR",
        )

    async def pickup(self, ship_from: Address, day: date, parcels: int) -> str:
        return "P1"

    async def track(self, numbers: Sequence[str]) -> list[TrackingStatus]:
        return [TrackingStatus(n, "delivered", T, "OK") for n in numbers]


def test_a_label_comes_from_the_next_best_rate_when_a_carrier_is_down() -> None:
    """Given three carriers, the cheapest failing its label with a 5xx and another failing
    its rates, when a label is bought, then it comes from the remaining carrier and both
    others are named as skipped; when every carrier fails, NoLabelError says why for each."""
    cheap = Stub("ups", 500, 2, fail=CarrierUnavailable("UPS 503"))
    down = Stub("chronopost", 400, 2)
    down.fail_rates = CarrierUnavailable("timeout")
    dear = Stub("dhl", 900, 1)
    carriers = {c.name: c for c in (cheap, down, dear)}
    parcels = [Parcel(1000, 100, 100, 100)]
    bought = asyncio.run(buy(carriers, HOME, AWAY, parcels, ServiceLevel(), "ship|w|o"))
    assert bought.label.carrier == "dhl" and dear.shipped == ["ship|w|o"]
    assert len(bought.skipped) == 2 and any("ups: ship" in s for s in bought.skipped)
    dear.fail_ship = CarrierRefused("invalid postal code", code="ADDR")
    with pytest.raises(NoLabelError, match="dhl: ship CarrierRefused: invalid postal code"):
        asyncio.run(buy(carriers, HOME, AWAY, parcels, ServiceLevel(), "ship|w|o2"))


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
    cost is refused for the dead-letter topic; migration 8 creates the table and the sink
    reads the topic."""
    w = wave()
    label = Label("ups", "11", "1Z999", "PDF", b"%PDF", 1290, "EUR")
    shipment = records.moved(
        records.new_shipment(w, w.orders[0], label, parcels=1, weight_g=900, label_url=None, now=T),
        "shipped",
        T + 1000,
    )
    [(table, [row])] = table_rows(SHIPMENT, shipment, 1, 4)
    assert table is SHIPMENTS
    values = dict(zip(table.columns, row, strict=True))
    assert (values["cost_minor"], values["currency"], values["units"]) == (1290, "EUR", 3)
    assert (values["version"], values["status"], values["channel"]) == (2, "shipped", "shopify")
    assert values["updated_at_ms"] == T + 1000 and values["kafka_offset"] == 4
    with pytest.raises(RowError, match="cost_minor"):
        table_rows(SHIPMENT, {**shipment, "cost_minor": -1}, 0, 0)
    [eight] = [m for m in MIGRATIONS if m.version == 8]
    assert "shipments" in eight.statements[0] and FULFILMENT_SHIPMENTS in SINK_TOPICS
