"""Shopify fulfilments: shipped units consume the order's reservation.

A fulfilment (``fulfillments/create``, ``fulfillments/update``, and the ``fulfillments[]``
of an order payload: ``orders/updated``, ``orders/fulfilled``, ``orders/partially_fulfilled``
and a polled order) lists the order's lines it ships, each with the quantity shipped by
*this* fulfilment. Once its ``status`` is ``success`` every mapped line becomes one
``order_shipped`` of that quantity, at the fulfilment's location, with the id
``shopify/<shop>/fulfillment/<id>/line/<line id>/shipped``: the webhook, its redeliveries
and every later order payload carrying the same fulfilment yield the same id, so the units
are counted once. ``pending``/``open`` fulfilments have not shipped; ``cancelled``,
``error`` and ``failure`` ones never shipped anything we counted (a fulfilment is counted
only once it is ``success``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.framework.events import event_id, stock_event
from connectors.framework.types import StockEventDict
from connectors.shopify.mapping import ShopifyMapping
from schemas.times import iso_to_ms

SHIPPED = frozenset({"success"})
FULFILMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})


def fulfilment_events(fulfilment: Mapping[str, Any], m: ShopifyMapping) -> list[StockEventDict]:
    """``order_shipped`` per mapped line of a successful fulfilment (else nothing)."""
    if fulfilment.get("status") not in SHIPPED:
        return []
    fid, oid = fulfilment["id"], fulfilment["order_id"]
    at = fulfilment.get("created_at") or fulfilment["updated_at"]
    events: list[StockEventDict] = []
    for line in fulfilment.get("line_items") or []:
        sku = m.sku_for_line(line)
        qty = int(line.get("quantity") or 0)
        if sku is None or line.get("gift_card") or qty <= 0:
            continue
        events.append(
            stock_event(
                event_id=event_id(
                    m.channel, m.shop, "fulfillment", fid, "line", line["id"], "shipped"
                ),
                type="order_shipped",
                sku=sku,
                qty=qty,
                channel=m.channel,
                occurred_at=iso_to_ms(at),
                order_id=f"{m.channel}:{oid}",
                location=m.location(fulfilment.get("location_id")),
                source_ref=str(fid),
            )
        )
    return events


def order_fulfilment_events(order: Mapping[str, Any], m: ShopifyMapping) -> list[StockEventDict]:
    """The shipped lines of every fulfilment an order payload carries."""
    events: list[StockEventDict] = []
    for fulfilment in order.get("fulfillments") or []:
        events.extend(fulfilment_events({"order_id": order["id"], **fulfilment}, m))
    return events
