"""Shopify side of the shipping confirmation (``connectors.framework.shipments``).

Shopify ships through fulfilment orders: ``order(id:) { fulfillmentOrders }`` gives the
open ones with their line items (``remainingQuantity`` each, and the order's line item
they stand for), then ``fulfillmentCreate(fulfillment: {lineItemsByFulfillmentOrder,
trackingInfo: {company, number}, notifyCustomer: true})`` fulfils the shipped units with
the tracking number; Shopify tells the customer. A fulfilment of the order carrying the
parcel's tracking number already (a redelivery, a restart) is ``already``; so is an order
with none of the units remaining.
A user error (an unknown order, more than remains) is a refusal.
"""

from __future__ import annotations

from typing import Any

from connectors.framework.shipments import ALREADY, SHIPPED, ShipNotice
from connectors.framework.types import RejectedError
from connectors.shopify.client import ShopifyClient
from connectors.shopify.mapping import ShopifyMapping

ORDER_GID = "gid://shopify/Order/"
LINE_GID = "gid://shopify/LineItem/"
QUERY_COST = 12.0
MUTATION_COST = 10.0
# Shopify's names of the carriers it recognises (tracking links on the order page)
COMPANIES = {"chronopost": "Chronopost", "dhl": "DHL Express", "ups": "UPS"}

FULFILLMENT_ORDERS = """
query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    fulfillments(first: 50) { id trackingInfo { company number } }
    fulfillmentOrders(first: 10) {
      nodes { id status lineItems(first: 100) {
        nodes { id remainingQuantity lineItem { id sku } } } }
    }
  }
}
"""

FULFILLMENT_CREATE = """
mutation Ship($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id status trackingInfo { company number url } }
    userErrors { field message }
  }
}
"""


def _plan(order: dict[str, Any], notice: ShipNotice) -> list[dict[str, Any]]:
    """``lineItemsByFulfillmentOrder`` for the notice's units still remaining."""
    wanted = {f"{LINE_GID}{line.line_id}": line.qty for line in notice.lines}
    groups = []
    for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
        if fo.get("status") == "CLOSED":
            continue
        items = []
        for item in (fo.get("lineItems") or {}).get("nodes") or []:
            line_gid = str((item.get("lineItem") or {}).get("id") or "")
            qty = min(wanted.get(line_gid, 0), int(item.get("remainingQuantity") or 0))
            if qty > 0:
                items.append({"id": item["id"], "quantity": qty})
                wanted[line_gid] -= qty
        if items:
            groups.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items})
    return groups


class ShopifyShipper:
    def __init__(self, client: ShopifyClient, mapping: ShopifyMapping) -> None:
        self._client = client
        self.channel = mapping.channel
        self.account = mapping.shop

    async def confirm_shipment(self, notice: ShipNotice) -> str:
        data = await self._client.graphql(
            FULFILLMENT_ORDERS, {"id": ORDER_GID + notice.channel_order_id}, QUERY_COST
        )
        order = data.get("order")
        if order is None:
            raise RejectedError("order not found on Shopify")
        numbers = {
            info.get("number")
            for done in order.get("fulfillments") or []
            for info in done.get("trackingInfo") or []
        }
        if notice.tracking_number in numbers:
            return ALREADY  # this parcel was confirmed before (a redelivery, a restart)
        groups = _plan(order, notice)
        if not groups:
            return ALREADY
        tracking = {
            "company": COMPANIES.get(notice.carrier, notice.carrier),
            "number": notice.tracking_number,
        }
        answer = (
            await self._client.graphql(
                FULFILLMENT_CREATE,
                {
                    "fulfillment": {
                        "lineItemsByFulfillmentOrder": groups,
                        "trackingInfo": tracking,
                        "notifyCustomer": True,
                    }
                },
                MUTATION_COST,
            )
        ).get("fulfillmentCreate") or {}
        errors = answer.get("userErrors") or []
        if errors or not answer.get("fulfillment"):
            raise RejectedError(f"fulfillmentCreate: {[e.get('message') for e in errors][:3]}")
        return SHIPPED
