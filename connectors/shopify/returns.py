"""Shopify returns: the disposition of returned units reaches ``return_received``.

``reverse_fulfillment_orders/dispose`` fires when returned units are dispositioned. Its
payload names only the reverse fulfilment order and its line items, so the connector asks
GraphQL which order and order lines (SKU) they are, then maps each disposition ``type``:

- ``restocked`` → ``return_received`` ``resellable`` at the disposition's location;
- ``processing_required`` → ``quarantine`` (on hand, not sellable until released);
- ``not_restocked`` → ``damaged``;
- ``missing`` → nothing (the units never came back).

The event id is made of the reverse fulfilment order, the delivery's
``X-Shopify-Event-Id`` (the same for every retry and subscription of one disposal) and the
disposition's place in the payload.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.framework.events import event_id, stock_event
from connectors.framework.types import StockEventDict
from connectors.shopify.client import ShopifyClient
from connectors.shopify.mapping import ShopifyMapping
from schemas.times import now_ms

DISPOSE_TOPIC = "reverse_fulfillment_orders/dispose"
DISPOSITIONS = {
    "restocked": "resellable",
    "processing_required": "quarantine",
    "not_restocked": "damaged",
}
QUERY_COST = 5.0
RFO_QUERY = """
query ReturnLines($id: ID!) {
  reverseFulfillmentOrder(id: $id) {
    id
    order { id }
    lineItems(first: 250) {
      nodes { id fulfillmentLineItem { lineItem { id sku variant { id } } } }
    }
  }
}
"""


def _tail(gid: object) -> str:
    return str(gid).rsplit("/", 1)[-1]


async def disposition_events(
    client: ShopifyClient, payload: Mapping[str, Any], m: ShopifyMapping, event_key: str
) -> list[StockEventDict]:
    rfo = (
        payload.get("admin_graphql_api_id")
        or f"gid://shopify/ReverseFulfillmentOrder/{payload['id']}"
    )
    data = await client.graphql(RFO_QUERY, {"id": rfo}, QUERY_COST)
    found = data.get("reverseFulfillmentOrder") or {}
    order_id = _tail((found.get("order") or {}).get("id", ""))
    lines: dict[str, Mapping[str, Any]] = {}
    for node in (found.get("lineItems") or {}).get("nodes") or []:
        line = (node.get("fulfillmentLineItem") or {}).get("lineItem") or {}
        variant = (line.get("variant") or {}).get("id")
        lines[_tail(node["id"])] = {
            "sku": line.get("sku"),
            "variant_id": int(_tail(variant)) if variant else None,
        }
    events: list[StockEventDict] = []
    for n, disposition in enumerate(payload.get("dispositions") or []):
        kind = DISPOSITIONS.get(str(disposition.get("type", "")).lower())
        rfo_line = _tail((disposition.get("reverse_fulfillment_order_line_item") or {})["id"])
        line = lines.get(rfo_line)
        sku = None if line is None else m.sku_for_line(line)
        qty = int(disposition.get("quantity") or 0)
        if kind is None or sku is None or qty <= 0 or not order_id:
            continue
        location = (disposition.get("location") or {}).get("id")
        events.append(
            stock_event(
                event_id=event_id(
                    m.channel,
                    m.shop,
                    "reverse_fulfillment_order",
                    payload["id"],
                    "event",
                    event_key,
                    n,
                    kind,
                ),
                type="return_received",
                sku=sku,
                qty=qty,
                channel=m.channel,
                occurred_at=now_ms(),
                order_id=f"{m.channel}:{order_id}",
                location=m.location(location),
                source_ref=str(payload["id"]),
                disposition=kind,
                reason=f"return_{str(disposition.get('type')).lower()}",
            )
        )
    return events
