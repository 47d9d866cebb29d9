"""PrestaShop orders as ``stockflow.v1.Order`` records (the channel's ``orders: book`` mode).

- an order that reserves (see ``connectors.prestashop.inbound``) → ``placed``
  (``…/order/<id>/placed``) of every mapped row with its unit price tax excluded
  (``unit_price_tax_excl``) in minor units; the webservice gives the order's currency as an
  id (``id_currency``), so the currency is the mapping's ``currency`` (default EUR).
  Ship-to: the country and postal code of ``id_address_delivery``, read with only those
  fields displayed (the address's name and street are never fetched);
- shipped (a shipped state or a ``delivery_date``) → ``shipped`` of every row;
- cancelled, or refunded before it shipped → ``cancelled``, note = the state kind;
- per order detail of a shipped order, each unit returned → ``returned`` of that unit
  (``…/detail/<id>/return/<n>``), next to its ``return_received`` StockEvent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.framework.events import event_id
from connectors.framework.orders import OrderDict, minor_units, order_line, order_record, ship_to
from connectors.prestashop import facts as inbound
from connectors.prestashop.mapping import PrestaMapping


def order_records(
    order: Mapping[str, Any], m: PrestaMapping, destination: tuple[str, str] | None = None
) -> list[OrderDict]:
    """``destination``: (country, postal code) of the delivery address, when read."""
    oid = order["id"]
    state = m.state(order.get("current_state"))
    sent = inbound.shipped(order, m)
    placed_at = inbound.shop_ms(order["date_add"], m.timezone)
    updated_at = inbound.shop_ms(order["date_upd"], m.timezone)
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": placed_at,
    }
    mapped = [
        (row, sku)
        for row in inbound.rows(order)
        if (sku := m.sku_for(row.get("product_id"), row.get("product_attribute_id")))
        and int(row.get("product_quantity") or 0) > 0
    ]
    if not mapped:
        return []
    records: list[OrderDict] = []
    if inbound.reserves(order, m):
        records.append(
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "placed"),
                type="placed",
                occurred_at=placed_at,
                lines=[
                    order_line(
                        row["id"],
                        sku,
                        int(row["product_quantity"]),
                        minor_units(row.get("unit_price_tax_excl"), m.currency),
                        m.currency,
                    )
                    for row, sku in mapped
                ],
                ship_to=None if destination is None else ship_to(*destination),
                **common,
            )
        )
    if sent:
        records.append(
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "shipped"),
                type="shipped",
                occurred_at=updated_at,
                lines=[
                    order_line(row["id"], sku, int(row["product_quantity"])) for row, sku in mapped
                ],
                **common,
            )
        )
    elif state in ("cancelled", "refunded"):
        records.append(
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "cancelled"),
                type="cancelled",
                occurred_at=updated_at,
                note=str(state),
                **common,
            )
        )
    return records


def returned_records(
    order: Mapping[str, Any], details: list[dict[str, Any]], m: PrestaMapping
) -> list[OrderDict]:
    if not inbound.shipped(order, m):
        return []
    oid = order["id"]
    at = inbound.shop_ms(order["date_upd"], m.timezone)
    records: list[OrderDict] = []
    for detail in details:
        sku = m.sku_for(detail.get("product_id"), detail.get("product_attribute_id"))
        if sku is None:
            continue
        for n in range(1, int(str(detail.get("product_quantity_return") or 0)) + 1):
            records.append(
                order_record(
                    event_id=event_id(
                        m.channel, m.shop, "order", oid, "detail", detail["id"], "return", n
                    ),
                    type="returned",
                    order_id=f"{m.channel}:{oid}",
                    channel=m.channel,
                    placed_at=inbound.shop_ms(order["date_add"], m.timezone),
                    occurred_at=at,
                    lines=[order_line(detail["id"], sku, 1)],
                    note="return",
                )
            )
    return records
