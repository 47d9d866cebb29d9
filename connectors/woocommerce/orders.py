"""WooCommerce orders as ``stockflow.v1.Order`` records (the channel's ``orders: book`` mode).

Facts, with ids made of Woo's own ids (the same for every delivery and poll of the order):

- status ``pending``, ``processing``, ``on-hold`` or ``completed`` → ``placed``
  (``…/order/<id>/placed``): every mapped line with its unit price (``line_items[].price``:
  after discounts, before tax) in minor units of the order's ``currency``; ship-to =
  ``shipping`` country and postcode, or the ``billing`` ones when the order has no shipping
  address (virtual goods); Woo gives no coordinates. No name, street, email or phone.
  ``customer_ref`` = ``customer_id`` (none for a guest, id 0);
- ``completed`` (Woo has no partial shipment) → ``shipped`` (``…/order/<id>/shipped``) of
  every line and its quantity;
- ``cancelled``, ``refunded`` or ``failed`` before it was ever completed → ``cancelled``
  (``…/order/<id>/cancelled``), note = the status;
- a refund of a completed order whose units WooCommerce restocked → ``returned``
  (``…/refund/<id>/returned``) with those lines and quantities; the units come back through
  the ``return_received`` StockEvent, which stays in this mode.

Customer type: WooCommerce core has no business customers; an order whose billing address
names a ``company`` is ``b2b``, any other ``b2c`` (the company name itself is not kept).

A refund of an order never completed (units that never left) gives no Order: a full refund
turns the order ``refunded``, which is its cancellation; a partial line cancellation of a
live order has no Order event yet (the order book keeps those units reserved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.framework.events import event_id
from connectors.framework.orders import OrderDict, minor_units, order_line, order_record, ship_to
from connectors.framework.types import StockEventDict
from connectors.woocommerce.mapping import WooMapping
from schemas.times import iso_to_ms

PLACED = frozenset({"pending", "processing", "on-hold", "completed"})
CANCELLED = frozenset({"cancelled", "refunded", "failed"})


def _gmt(value: str) -> int:
    return iso_to_ms(value, naive_is_utc=True)


def customer_type(order: Mapping[str, Any]) -> str:
    billing = order.get("billing")
    company = billing.get("company") if isinstance(billing, dict) else None
    return "b2b" if str(company or "").strip() else "b2c"


def _ship_to(order: Mapping[str, Any]) -> dict[str, Any] | None:
    for key in ("shipping", "billing"):
        address = order.get(key)
        if isinstance(address, dict) and address.get("country"):
            return ship_to(address["country"], address.get("postcode"))
    return None


def _customer_ref(order: Mapping[str, Any]) -> str | None:
    customer = int(order.get("customer_id") or 0)
    return str(customer) if customer > 0 else None


def _completed(order: Mapping[str, Any]) -> bool:
    return order.get("status") == "completed" or bool(order.get("date_completed_gmt"))


def order_records(order: Mapping[str, Any], m: WooMapping) -> list[OrderDict]:
    oid, status = order["id"], order.get("status")
    currency = order.get("currency")
    placed_at = _gmt(order["date_created_gmt"])
    modified = _gmt(order["date_modified_gmt"])
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": placed_at,
    }
    mapped = [
        (line, sku)
        for line in order.get("line_items") or []
        if (sku := m.sku_for_line(line)) is not None and int(line.get("quantity") or 0) > 0
    ]
    records: list[OrderDict] = []
    if status in PLACED and mapped:
        records.append(
            order_record(
                event_id=event_id(m.channel, m.site, "order", oid, "placed"),
                type="placed",
                occurred_at=placed_at,
                lines=[
                    order_line(
                        line["id"],
                        sku,
                        int(line["quantity"]),
                        minor_units(line.get("price"), currency),
                        currency,
                    )
                    for line, sku in mapped
                ],
                ship_to=_ship_to(order),
                customer_ref=_customer_ref(order),
                customer_type=customer_type(order),
                **common,
            )
        )
    if status == "completed" and mapped:
        records.append(
            order_record(
                event_id=event_id(m.channel, m.site, "order", oid, "shipped"),
                type="shipped",
                occurred_at=_gmt(order.get("date_completed_gmt") or order["date_modified_gmt"]),
                lines=[order_line(line["id"], sku, int(line["quantity"])) for line, sku in mapped],
                **common,
            )
        )
    if status in CANCELLED and not _completed(order):
        records.append(
            order_record(
                event_id=event_id(m.channel, m.site, "order", oid, "cancelled"),
                type="cancelled",
                occurred_at=modified,
                note=str(status),
                **common,
            )
        )
    return records


def _refunded_line(line: Mapping[str, Any]) -> str:
    for meta in line.get("meta_data") or []:
        if meta.get("key") == "_refunded_item_id":
            return str(meta["value"])
    return str(line["id"])


def refund_order(
    order: Mapping[str, Any],
    refund: Mapping[str, Any],
    returned: Sequence[StockEventDict],
    m: WooMapping,
) -> OrderDict | None:
    """``returned`` for the lines of ``refund`` that ``returned`` (its ``return_received``
    events) brought back; None when none came back."""
    qty_by_line = {
        str(e["event_id"]).rsplit("/", 2)[-2]: int(e["qty"])
        for e in returned
        if e["type"] == "return_received" and e.get("source_ref") == str(refund["id"])
    }
    lines = [
        order_line(_refunded_line(line), sku, qty_by_line[str(line["id"])])
        for line in refund.get("line_items") or []
        if str(line["id"]) in qty_by_line and (sku := m.sku_for_line(line)) is not None
    ]
    if not lines:
        return None
    at = _gmt(refund["date_created_gmt"])
    return order_record(
        event_id=event_id(m.channel, m.site, "refund", refund["id"], "returned"),
        type="returned",
        order_id=f"{m.channel}:{order['id']}",
        channel=m.channel,
        placed_at=_gmt(order["date_created_gmt"]),
        occurred_at=at,
        lines=lines,
        note="refund",
    )
