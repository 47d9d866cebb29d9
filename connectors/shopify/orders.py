"""Shopify orders as ``stockflow.v1.Order`` records (the channel's ``orders: book`` mode).

Facts, each with an id made of Shopify's own ids (the same for a webhook, its retries, a
later ``orders/updated`` and a polled order, so the intake publishes each once):

- an order not cancelled → ``placed`` (``…/order/<id>/placed``): every mapped line (gift
  cards are not stock) with its unit price in minor units of the order's ``currency``
  (``line_items[].price``, before discounts), ship-to = ``shipping_address`` country code,
  ``zip``, ``latitude``/``longitude`` only (no name, street, email or phone),
  ``customer_ref`` = ``customer.id``; a point-of-sale order (``location_id`` set) is a
  ``pickup`` at that store's mapped location (the customer takes the goods there);
- ``cancelled_at`` set → ``cancelled`` (``…/order/<id>/cancelled``), note = ``cancel_reason``;
- a fulfilment with ``status`` ``success`` → ``shipped`` (``…/fulfillment/<id>/shipped``)
  with its lines and quantities, ``location`` = the fulfilment's location; once its
  ``shipment_status`` is ``delivered`` (the carrier's tracking), also ``delivered``
  (``…/fulfillment/<id>/delivered``) with the same lines;
- a refund with lines restocked as ``return``/``legacy_restock`` → ``returned``
  (``…/refund/<id>/returned``) with those lines and quantities. The units themselves come
  back through the ``return_received`` StockEvent, which stays in this mode.

Customer type: ``b2b`` when the order carries a ``company`` (Shopify B2B: the order was
placed for a company location), else ``b2c``. The free-text ``company`` of an address is
not used (anyone may type one).

Risk: the order payload carries no risk; Shopify keeps its assessments in GraphQL
(``Order.risk.assessments[].riskLevel``: LOW, MEDIUM, HIGH, or NONE / PENDING). The inbound
side reads them (:func:`order_risk`) before publishing a ``placed`` and keeps the highest
of low / medium / high; none, or only pending ones, give no risk. An assessment made after
the order was published does not change it (the placed record is published once).

Refund lines restocked as ``cancel`` (units that never left) give no Order: the whole
order's cancellation already releases every line, and a partial line cancellation of a live
order has no Order event yet (the order book keeps those units reserved).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.framework.events import event_id
from connectors.framework.orders import (
    OrderDict,
    minor_units,
    order_line,
    order_record,
    ship_to,
)
from connectors.shopify.cancel import ORDER_GID
from connectors.shopify.client import ShopifyClient
from connectors.shopify.fulfilment import SHIPPED
from connectors.shopify.mapping import ShopifyMapping
from schemas.times import iso_to_ms

RETURN_RESTOCK = frozenset({"return", "legacy_restock"})
DELIVERED = "delivered"  # a fulfilment's shipment_status once the carrier delivered it
RISKS = ("low", "medium", "high")  # lowest first
RISK_QUERY = """
query Risk($id: ID!) {
  order(id: $id) { risk { assessments { riskLevel } } }
}
"""
RISK_COST = 2.0


async def order_risk(client: ShopifyClient, order_id: object) -> str | None:
    """The highest of the order's low / medium / high assessments; None without one."""
    data = await client.graphql(RISK_QUERY, {"id": f"{ORDER_GID}{order_id}"}, RISK_COST)
    order = data.get("order") or {}
    levels = {
        str(a.get("riskLevel") or "").lower()
        for a in (order.get("risk") or {}).get("assessments") or []
    }
    known = [level for level in RISKS if level in levels]
    return known[-1] if known else None


def customer_type(order: Mapping[str, Any]) -> str:
    return "b2b" if isinstance(order.get("company"), dict) and order["company"] else "b2c"


def _customer_ref(order: Mapping[str, Any]) -> str | None:
    customer = order.get("customer")
    if isinstance(customer, dict) and customer.get("id") is not None:
        return str(customer["id"])
    return None


def _ship_to(order: Mapping[str, Any]) -> dict[str, Any] | None:
    address = order.get("shipping_address")
    if not isinstance(address, dict):
        return None
    return ship_to(
        address.get("country_code"),
        address.get("zip"),
        address.get("latitude"),
        address.get("longitude"),
    )


def placed(order: Mapping[str, Any], m: ShopifyMapping) -> OrderDict | None:
    oid = order["id"]
    currency = order.get("currency")
    lines = [
        order_line(
            line["id"],
            sku,
            int(line["quantity"]),
            minor_units(line.get("price"), currency),
            currency,
        )
        for line in order.get("line_items") or []
        if (sku := m.sku_for_line(line)) is not None
        and not line.get("gift_card")
        and int(line.get("quantity") or 0) > 0
    ]
    if not lines:
        return None
    at = iso_to_ms(order["created_at"])
    return order_record(
        event_id=event_id(m.channel, m.shop, "order", oid, "placed"),
        type="placed",
        order_id=f"{m.channel}:{oid}",
        channel=m.channel,
        placed_at=at,
        occurred_at=at,
        lines=lines,
        ship_to=_ship_to(order),
        customer_ref=_customer_ref(order),
        customer_type=customer_type(order),
        pickup_location=m.location(order.get("location_id")),
    )


def fulfilment_orders(
    fulfilment: Mapping[str, Any], m: ShopifyMapping, placed_at: int | None = None
) -> list[OrderDict]:
    """``shipped`` (and ``delivered``) for a successful fulfilment's mapped lines."""
    if fulfilment.get("status") not in SHIPPED:
        return []
    fid, oid = fulfilment["id"], fulfilment["order_id"]
    lines = [
        order_line(line["id"], sku, int(line.get("quantity") or 0))
        for line in fulfilment.get("line_items") or []
        if (sku := m.sku_for_line(line)) is not None
        and not line.get("gift_card")
        and int(line.get("quantity") or 0) > 0
    ]
    if not lines:
        return []
    at = iso_to_ms(fulfilment.get("created_at") or fulfilment["updated_at"])
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": at if placed_at is None else placed_at,
        "lines": lines,
        "location": m.location(fulfilment.get("location_id")),
    }
    records = [
        order_record(
            event_id=event_id(m.channel, m.shop, "fulfillment", fid, "shipped"),
            type="shipped",
            occurred_at=at,
            **common,
        )
    ]
    if fulfilment.get("shipment_status") == DELIVERED:
        records.append(
            order_record(
                event_id=event_id(m.channel, m.shop, "fulfillment", fid, "delivered"),
                type="delivered",
                occurred_at=iso_to_ms(fulfilment.get("updated_at") or fulfilment["created_at"]),
                **common,
            )
        )
    return records


def refund_order(
    refund: Mapping[str, Any], m: ShopifyMapping, placed_at: int | None = None
) -> OrderDict | None:
    """``returned`` for the refund's lines restocked as returns (else None)."""
    lines = []
    for rli in refund.get("refund_line_items") or []:
        sku = m.sku_for_line(rli.get("line_item") or {})
        qty = int(rli.get("quantity") or 0)
        if sku is None or rli.get("restock_type") not in RETURN_RESTOCK or qty <= 0:
            continue
        lines.append(order_line(rli.get("line_item_id") or rli["id"], sku, qty))
    if not lines:
        return None
    at = iso_to_ms(refund["created_at"])
    return order_record(
        event_id=event_id(m.channel, m.shop, "refund", refund["id"], "returned"),
        type="returned",
        order_id=f"{m.channel}:{refund['order_id']}",
        channel=m.channel,
        placed_at=at if placed_at is None else placed_at,
        occurred_at=at,
        lines=lines,
        note="refund_return",
    )


def order_records(order: Mapping[str, Any], m: ShopifyMapping) -> list[OrderDict]:
    """Placed, then shipped / delivered (fulfilments), then cancelled, then returned: the
    order in which the book applies them."""
    oid = order["id"]
    placed_at = iso_to_ms(order["created_at"])
    records: list[OrderDict] = []
    if not order.get("cancelled_at") and (record := placed(order, m)) is not None:
        records.append(record)
    for fulfilment in order.get("fulfillments") or []:
        records.extend(fulfilment_orders({"order_id": oid, **fulfilment}, m, placed_at))
    if order.get("cancelled_at"):
        records.append(
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "cancelled"),
                type="cancelled",
                order_id=f"{m.channel}:{oid}",
                channel=m.channel,
                placed_at=placed_at,
                occurred_at=iso_to_ms(order["cancelled_at"]),
                note=str(order.get("cancel_reason") or "") or None,
            )
        )
    for refund in order.get("refunds") or []:
        returned = refund_order({"order_id": oid, **refund}, m, placed_at)
        if returned is not None:
            records.append(returned)
    return records
