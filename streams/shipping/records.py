"""The records the shipping service writes, built in one place (pure).

Ids are derived from the wave and the order, so a shipment written again (a restart between
its steps) carries the same ids: the order book drops an order event whose id it has seen,
and the shipments topic is compacted by shipment id.

- shipment id: ``ship|<wave id>|<order id>``
- the order's ``shipped`` event: ``<shipment id>|shipped`` (lines: the picked units, location:
  the wave's, with carrier and tracking number)
- the order's ``delivered`` event: ``<shipment id>|delivered``
- the ``delivery_exception`` alert: ``delivery_exception|<shipment id>``
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from connectors.carriers.model import Label
from schemas.orders import order_event
from streams.fulfilment.model import Wave, WaveOrder

SOURCE = "shipping"
OPEN = ("created", "shipped", "in_transit")  # tracked until delivered or exception
TRACKED = ("shipped", "in_transit")


def shipment_id(wave_id: str, order_id: str) -> str:
    return f"ship|{wave_id}|{order_id}"


def shipped_lines(order: WaveOrder) -> list[dict[str, Any]]:
    """The picked units of each line (lines picked at zero are left out)."""
    return [
        {"line_id": ln.line_id, "sku": ln.sku, "qty": int(ln.picked_qty or 0)}
        for ln in order.lines
        if (ln.picked_qty or 0) > 0
    ]


def new_shipment(
    wave: Wave,
    order: WaveOrder,
    label: Label,
    *,
    parcels: int,
    weight_g: int,
    label_url: str | None,
    now: int,
    passed_over: Iterable[str] = (),
) -> dict[str, Any]:
    """Version 1 (``created``) of the shipment of ``order`` picked in ``wave``;
    ``passed_over``: the carriers that gave no rate or no label before this one."""
    return {
        "shipment_id": shipment_id(wave.wave_id, order.order_id),
        "version": 1,
        "order_id": order.order_id,
        "channel": order.channel,
        "location": wave.location,
        "wave_id": wave.wave_id,
        "lines": shipped_lines(order),
        "parcels": parcels,
        "weight_g": weight_g,
        "carrier": label.carrier,
        "service": label.service,
        "tracking_number": label.tracking_number,
        "label_url": label_url,
        "label_format": label.format,
        "cost_minor": label.cost_minor,
        "currency": label.currency,
        "country": order.country,
        "status": "created",
        "detail": None,
        "created_at": now,
        "updated_at": now,
        "passed_over": sorted(set(passed_over)),
    }


def moved(
    shipment: Mapping[str, Any], status: str, now: int, detail: str | None = None
) -> dict[str, Any]:
    """The next version of ``shipment`` at ``status``."""
    return {
        **shipment,
        "version": int(shipment["version"]) + 1,
        "status": status,
        "detail": detail if detail is not None else shipment.get("detail"),
        "updated_at": now,
    }


def shipped_event(shipment: Mapping[str, Any], now: int) -> dict[str, Any]:
    """The order's ``shipped`` event: per line, from the shipment's location (the order book
    sends ``order_shipped`` per line to the ledger: the units leave on_hand)."""
    return order_event(
        "shipped",
        shipment["order_id"],
        shipment["channel"],
        f"{shipment['shipment_id']}|shipped",
        now,
        lines=[{**ln, "unit_price": None, "currency": None} for ln in shipment["lines"]],
        location=shipment["location"],
        tracking_number=shipment["tracking_number"],
        carrier=shipment["carrier"],
        by=SOURCE,
        source=SOURCE,
        note=f"{shipment['carrier']} {shipment['tracking_number']}",
    )


def delivered_event(shipment: Mapping[str, Any], now: int) -> dict[str, Any]:
    return order_event(
        "delivered",
        shipment["order_id"],
        shipment["channel"],
        f"{shipment['shipment_id']}|delivered",
        now,
        tracking_number=shipment["tracking_number"],
        carrier=shipment["carrier"],
        by=SOURCE,
        source=SOURCE,
    )


def exception_alert(shipment: Mapping[str, Any], detail: str, now: int) -> dict[str, Any]:
    """The ``delivery_exception`` alert of a shipment (one id per shipment: a repeat is the
    same alert downstream). SKU: the first line's; value: the units in the parcel."""
    lines = shipment["lines"]
    return {
        "alert_id": f"delivery_exception|{shipment['shipment_id']}",
        "kind": "delivery_exception",
        "sku": lines[0]["sku"] if lines else "",
        "location": shipment["location"],
        "channel": shipment["channel"],
        "value": sum(int(ln["qty"]) for ln in lines),
        "threshold": 0,
        "message": (
            f"order {shipment['order_id']}: {shipment['carrier']} parcel "
            f"{shipment['tracking_number']} cannot be delivered ({detail[:200]})"
        ),
        "event_id": shipment["shipment_id"],
        "at": now,
    }
