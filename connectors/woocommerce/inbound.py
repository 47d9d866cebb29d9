"""WooCommerce in: verify the webhook signature, normalise orders and refunds.

WooCommerce never retries a webhook and gives each delivery a new id, so the delivery key
is the order's (id, ``date_modified_gmt``) plus a digest of the body (two changes within
one second share the timestamp). Facts, with ids made of Woo's own ids:

- every line of an order in pending / processing / on-hold / completed → ``order_placed``
- every line of an order ``completed`` (Woo's "shipped"; it has no partial shipments) →
  ``order_shipped`` with qty 0: the whole reservation the line still holds
- an order ``cancelled``, ``refunded`` or ``failed`` → ``order_cancelled`` per line (qty 0 =
  whole rest; nothing once the order was shipped)
- each refund in ``refunds[]`` (details fetched from ``/orders/{id}/refunds/{rid}``): lines
  of an order never completed → ``order_cancelled`` of that qty (never left); lines of a
  completed order → ``return_received`` resellable for the units WooCommerce restocked
  (the order line's ``_restock_refunded_items``), nothing for units refunded without a
  restock (``refunds_restock: true`` counts every refunded unit as restocked)
- the unsigned ping (form body ``webhook_id=<n>``) sent when a webhook is saved → 200.

With ``orders: book`` (``connectors.framework.orders``) the order facts above are Order
records instead (``connectors.woocommerce.orders``); only ``return_received`` stays a
StockEvent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import DEFAULT_ORDER_MODE, OrderDict, stock_facts
from connectors.framework.signing import check_source, verify
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict
from connectors.woocommerce.client import WooClient
from connectors.woocommerce.mapping import WooMapping
from connectors.woocommerce.orders import order_records, refund_order
from schemas.times import iso_to_ms, ms_to_iso

SIGNATURE_HEADER = "X-WC-Webhook-Signature"
RESTOCKED_META = "_restock_refunded_items"  # order line meta set by wc_restock_refunded_items
SOURCE_HEADER = "X-WC-Webhook-Source"
PLACED = frozenset({"pending", "processing", "on-hold", "completed"})
SHIPPED = frozenset({"completed"})
CANCELLED = frozenset({"cancelled", "refunded", "failed"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return {k.lower(): v for k, v in headers.items()}.get(name.lower())


def is_ping(headers: Mapping[str, str], raw: bytes) -> bool:
    """WooCommerce's ping on creating a webhook: an unsigned form post of its id."""
    form = (_header(headers, "Content-Type") or "").startswith("application/x-www-form-urlencoded")
    return form and _header(headers, SIGNATURE_HEADER) is None and raw.startswith(b"webhook_id=")


def _gmt(value: str) -> int:
    return iso_to_ms(value, naive_is_utc=True)


def order_events(order: Mapping[str, Any], m: WooMapping) -> list[StockEventDict]:
    oid, status = order["id"], order.get("status")
    events: list[StockEventDict] = []
    for line in order.get("line_items") or []:
        sku = m.sku_for_line(line)
        if sku is None:
            continue
        common: dict[str, Any] = {
            "sku": sku,
            "channel": m.channel,
            "order_id": f"{m.channel}:{oid}",
            "source_ref": str(oid),
        }
        if status in PLACED:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.site, "order", oid, "line", line["id"], "placed"
                    ),
                    type="order_placed",
                    qty=int(line["quantity"]),
                    occurred_at=_gmt(order["date_created_gmt"]),
                    **common,
                )
            )
        if status in SHIPPED:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.site, "order", oid, "line", line["id"], "shipped"
                    ),
                    type="order_shipped",
                    qty=0,
                    occurred_at=_gmt(order["date_modified_gmt"]),
                    **common,
                )
            )
        if status in CANCELLED:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.site, "order", oid, "line", line["id"], "cancelled"
                    ),
                    type="order_cancelled",
                    qty=0,
                    reason=status,
                    occurred_at=_gmt(order["date_modified_gmt"]),
                    **common,
                )
            )
    return events


def shipped(order: Mapping[str, Any]) -> bool:
    """The order was completed at some point (``date_completed_gmt`` stays set when it later
    turns ``refunded``): its units left."""
    return order.get("status") == "completed" or bool(order.get("date_completed_gmt"))


def restocked_units(order: Mapping[str, Any]) -> dict[int, int]:
    """Per order line, the units WooCommerce put back in stock when refunding: the line's
    ``_restock_refunded_items`` meta (cumulative over the order's refunds)."""
    units: dict[int, int] = {}
    for line in order.get("line_items") or []:
        for meta in line.get("meta_data") or []:
            if meta.get("key") == RESTOCKED_META:
                units[int(line["id"])] = int(str(meta.get("value") or 0))
    return units


def _refunded_line(line: Mapping[str, Any]) -> int | None:
    for meta in line.get("meta_data") or []:
        if meta.get("key") == "_refunded_item_id":
            return int(str(meta["value"]))
    return None


def refund_events(
    order: Mapping[str, Any],
    refund: Mapping[str, Any],
    m: WooMapping,
    restocked: dict[int, int] | None = None,
) -> list[StockEventDict]:
    """A refund of an order not shipped releases its lines. A refund of a shipped order is
    a return of the units WooCommerce restocked (``restocked``: per order line, units not
    yet given to an earlier refund; consumed here), resellable; units refunded without a
    restock did not come back to stock and give nothing, unless ``refunds_restock`` is set
    (every refunded unit counts as returned resellable)."""
    oid = order["id"]
    completed = shipped(order)
    events: list[StockEventDict] = []
    for line in refund.get("line_items") or []:
        sku = m.sku_for_line(line)
        qty = abs(int(line.get("quantity") or 0))  # Woo reports refunded quantities negative
        if completed and not m.refunds_restock:
            original = _refunded_line(line)
            budget = (restocked or {}).get(original or -1, 0)
            qty, left = min(qty, budget), budget - min(qty, budget)
            if original is not None and restocked is not None:
                restocked[original] = left
        if sku is None or qty == 0:
            continue
        kind = "returned" if completed else "released"
        events.append(
            stock_event(
                event_id=event_id(
                    m.channel, m.site, "refund", refund["id"], "line", line["id"], kind
                ),
                type="return_received" if completed else "order_cancelled",
                sku=sku,
                qty=qty,
                channel=m.channel,
                occurred_at=_gmt(refund["date_created_gmt"]),
                order_id=f"{m.channel}:{oid}",
                source_ref=str(refund["id"]),
                disposition="resellable" if completed else None,
                reason="refund",
            )
        )
    return events


class WooInbound:
    """Verifies and normalises WooCommerce deliveries; with a client it fetches refund
    details and polls orders."""

    def __init__(
        self,
        mapping: WooMapping,
        secrets: Sequence[str],
        client: WooClient | None = None,
        *,
        orders_mode: str = DEFAULT_ORDER_MODE,
    ) -> None:
        self.book = orders_mode == "book"  # Order records instead of per-line order events
        self.mapping = mapping
        self.channel = mapping.channel
        self._secrets = tuple(secrets)
        self._client = client

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        if is_ping(headers, raw):
            return Delivery(self.channel, "ping", ping=True)
        verify(self._secrets, raw, _header(headers, SIGNATURE_HEADER))
        check_source(self.mapping.site, _header(headers, SOURCE_HEADER), SOURCE_HEADER)
        topic = _header(headers, "X-WC-Webhook-Topic") or ""
        if not topic:
            raise InvalidPayloadError("X-WC-Webhook-Topic header missing: which webhook is this?")
        try:
            payload = orjson.loads(raw)
            if not isinstance(payload, dict):
                raise InvalidPayloadError(f"WooCommerce {topic} payload is not a JSON object")
            if not topic.startswith("order.") or topic == "order.deleted":
                return Delivery(self.channel, topic)
            return await self._normalise(topic, payload, raw)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            # a field of another shape than the channel sends (a list where a text is, ...)
            raise InvalidPayloadError(f"WooCommerce {topic} payload unreadable: {exc!r}") from exc

    async def _normalise(self, topic: str, order: dict[str, Any], raw: bytes) -> Delivery:
        m = self.mapping
        events = order_events(order, m)
        orders: list[OrderDict] = order_records(order, m) if self.book else []
        if order.get("refunds") and self._client is not None:
            restocked = restocked_units(order)
            # oldest refund first: the restocked units are given out in refund order
            for ref in sorted(order["refunds"], key=lambda r: int(r["id"])):
                detail = await self._client.refund(int(order["id"]), int(ref["id"]))
                refunded = refund_events(order, detail, m, restocked)
                events.extend(refunded)
                if self.book and (returned := refund_order(order, detail, refunded, m)):
                    orders.append(returned)
        modified = order["date_modified_gmt"]
        digest = hashlib.sha256(raw).hexdigest()[:16]
        return Delivery(
            m.channel,
            topic,
            events=stock_facts(events) if self.book else events,
            orders=orders,
            delivery_keys=(f"{m.channel}:order:{order['id']}:{modified}:{digest}",),
            order_key=event_id(m.channel, m.site, "order", order["id"]),
            order_version=_gmt(modified),
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("WooInbound needs a WooClient to poll")
        since = ms_to_iso(checkpoint_ms).removesuffix("Z")
        orders = await self._client.orders_modified_after(since)
        deliveries = [await self._normalise("order.updated", o, orjson.dumps(o)) for o in orders]
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)
