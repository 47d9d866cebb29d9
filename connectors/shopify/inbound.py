"""Shopify in: verify the webhook signature, normalise orders, refunds and stock echoes.

Normalisation is by *facts*, each with an id made of Shopify's own ids, so that
``orders/create``, ``orders/updated``, ``orders/cancelled`` and a polled order all yield
the same events for the same facts (and the intake publishes each once):

- every line of an order not cancelled → ``order_placed`` (qty = line quantity)
- every line of a successful fulfilment (``fulfillments/*`` or an order's ``fulfillments``)
  → ``order_shipped`` of the shipped quantity at its location (``shopify.fulfilment``)
- a cancelled order (``cancelled_at`` set) → ``order_cancelled`` per line, qty 0 = whole rest
- a refund line with ``restock_type`` ``cancel`` → ``order_cancelled`` of that qty (units that
  never left); ``return``/``legacy_restock`` → ``return_received`` at the refund's location;
  ``no_restock`` → nothing
- ``reverse_fulfillment_orders/dispose`` → ``return_received`` with the disposition Shopify
  gives (restocked → resellable, processing required → quarantine, not restocked →
  damaged; ``shopify.returns``)
- ``inventory_levels/update`` → a stock observation (echo or drift), not an event.

With ``orders: book`` (``connectors.framework.orders``) the order facts above are Order
records instead (``connectors.shopify.orders``); only ``return_received`` stays a
StockEvent (refund returns, dispositions).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from connectors.framework import redact
from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import DEFAULT_ORDER_MODE, stock_facts
from connectors.framework.signing import check_age, check_source, verify
from connectors.framework.types import (
    Delivery,
    InvalidPayloadError,
    RejectedError,
    StockEventDict,
    StockObservation,
)
from connectors.shopify.client import ShopifyClient
from connectors.shopify.fulfilment import (
    FULFILMENT_TOPICS,
    fulfilment_events,
    order_fulfilment_events,
)
from connectors.shopify.mapping import ShopifyMapping
from connectors.shopify.orders import fulfilment_orders, order_records, order_risk, refund_order
from connectors.shopify.returns import DISPOSE_TOPIC, disposition_events
from schemas.times import iso_to_ms, ms_to_iso, now_ms

log = logging.getLogger(__name__)

HMAC_HEADER = "X-Shopify-Hmac-Sha256"
SHOP_HEADER = "X-Shopify-Shop-Domain"
TRIGGERED_HEADER = "X-Shopify-Triggered-At"
ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/paid",
        "orders/fulfilled",
        "orders/partially_fulfilled",
    }
)
RELEASE_RESTOCK = frozenset({"cancel"})
RETURN_RESTOCK = frozenset({"return", "legacy_restock"})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Headers are case-insensitive; the unstable Events product drops the ``X-``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return lowered.get(name.lower()) or lowered.get(name.lower().removeprefix("x-"))


def order_events(order: Mapping[str, Any], m: ShopifyMapping) -> list[StockEventDict]:
    """Placed lines, then shipped units (fulfilments), then the cancellation, then refunds:
    the order in which they apply (a cancellation releases what was not shipped)."""
    oid = order["id"]
    order_id = f"{m.channel}:{oid}"
    location = m.location(order.get("location_id"))
    cancelled_at = order.get("cancelled_at")
    lines = [
        (line, sku)
        for line in order.get("line_items") or []
        if (sku := m.sku_for_line(line)) is not None and not line.get("gift_card")
    ]
    events: list[StockEventDict] = []
    if not cancelled_at:
        for line, sku in lines:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.shop, "order", oid, "line", line["id"], "placed"
                    ),
                    type="order_placed",
                    sku=sku,
                    qty=int(line["quantity"]),
                    channel=m.channel,
                    occurred_at=iso_to_ms(order["created_at"]),
                    order_id=order_id,
                    location=location,
                    source_ref=str(oid),
                )
            )
    events.extend(order_fulfilment_events(order, m))
    if cancelled_at:
        for line, sku in lines:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.shop, "order", oid, "line", line["id"], "cancelled"
                    ),
                    type="order_cancelled",
                    sku=sku,
                    qty=0,
                    channel=m.channel,
                    occurred_at=iso_to_ms(cancelled_at),
                    order_id=order_id,
                    location=location,
                    source_ref=str(oid),
                    reason=order.get("cancel_reason"),
                )
            )
    for refund in order.get("refunds") or []:
        events.extend(refund_events(refund, m))
    return events


def refund_events(refund: Mapping[str, Any], m: ShopifyMapping) -> list[StockEventDict]:
    events: list[StockEventDict] = []
    order_id = f"{m.channel}:{refund['order_id']}"
    for rli in refund.get("refund_line_items") or []:
        restock = rli.get("restock_type")
        sku = m.sku_for_line(rli.get("line_item") or {})
        if sku is None or (restock not in RELEASE_RESTOCK and restock not in RETURN_RESTOCK):
            continue
        common: dict[str, Any] = {
            "sku": sku,
            "qty": int(rli["quantity"]),
            "channel": m.channel,
            "occurred_at": iso_to_ms(refund["created_at"]),
            "order_id": order_id,
            "location": m.location(rli.get("location_id")),
            "source_ref": str(refund["id"]),
        }
        if restock in RELEASE_RESTOCK:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.shop, "refund", refund["id"], "line", rli["id"], "released"
                    ),
                    type="order_cancelled",
                    reason="refund_cancel",
                    **common,
                )
            )
        else:
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.shop, "refund", refund["id"], "line", rli["id"], "returned"
                    ),
                    type="return_received",
                    disposition="resellable",
                    reason="refund_return",
                    **common,
                )
            )
    return events


def level_observations(payload: Mapping[str, Any], m: ShopifyMapping) -> list[StockObservation]:
    """``inventory_levels/update`` at the location we push to, for a mapped item."""
    if int(payload.get("location_id") or 0) != m.push_location_id:
        return []
    sku = m.sku_for_item(int(payload["inventory_item_id"]))
    if sku is None or payload.get("available") is None:
        return []
    at = payload.get("updated_at")
    return [
        StockObservation(
            m.channel, sku, int(payload["available"]), iso_to_ms(at) if at else now_ms()
        )
    ]


class ShopifyInbound:
    """Verifies and normalises Shopify deliveries; with a client, also polls orders."""

    def __init__(
        self,
        mapping: ShopifyMapping,
        secrets: Sequence[str],
        client: ShopifyClient | None = None,
        *,
        max_age_s: float = 6 * 3600.0,
        orders_mode: str = DEFAULT_ORDER_MODE,
    ) -> None:
        self.book = orders_mode == "book"  # Order records instead of per-line order events
        self._risks: OrderedDict[str, str | None] = OrderedDict()  # placed event id -> risk
        self.mapping = mapping
        self.channel = mapping.channel
        self._secrets = tuple(secrets)
        self._client = client
        self.max_age_s = max_age_s

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        verify(self._secrets, raw, _header(headers, HMAC_HEADER))  # before parsing anything
        check_source(self.mapping.shop, _header(headers, SHOP_HEADER), SHOP_HEADER)
        triggered = _header(headers, TRIGGERED_HEADER)
        if triggered:
            try:
                triggered_ms = iso_to_ms(triggered)
            except ValueError as exc:
                raise InvalidPayloadError(f"{TRIGGERED_HEADER} unreadable: {exc}") from None
            check_age(triggered_ms, now_ms(), self.max_age_s)
        topic = _header(headers, "X-Shopify-Topic") or ""
        if not topic:
            raise InvalidPayloadError("X-Shopify-Topic header missing: which webhook is this?")
        try:
            payload = orjson.loads(raw)
            if not isinstance(payload, dict):
                raise InvalidPayloadError(f"Shopify {topic} payload is not a JSON object")
            keys = tuple(
                f"{self.channel}:{name}:{value}"
                for name in ("X-Shopify-Webhook-Id", "X-Shopify-Event-Id")
                if (value := _header(headers, name))
            )
            if topic == DISPOSE_TOPIC:
                return await self._disposed(payload, headers, keys)
            return await self._assess(self._normalise(topic, payload, keys))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            # a field of another shape than the channel sends (a list where a text is, ...)
            raise InvalidPayloadError(f"Shopify {topic} payload unreadable: {exc!r}") from exc

    def _normalise(self, topic: str, payload: dict[str, Any], keys: tuple[str, ...]) -> Delivery:
        m = self.mapping
        if topic in ORDER_TOPICS:
            events = order_events(payload, m)
            return Delivery(
                m.channel,
                topic,
                events=stock_facts(events) if self.book else events,
                orders=order_records(payload, m) if self.book else [],
                delivery_keys=keys,
                order_key=event_id(m.channel, m.shop, "order", payload["id"]),
                order_version=iso_to_ms(payload["updated_at"]),
            )
        if topic in FULFILMENT_TOPICS:
            return Delivery(
                m.channel,
                topic,
                events=[] if self.book else fulfilment_events(payload, m),
                orders=fulfilment_orders(payload, m) if self.book else [],
                delivery_keys=keys,
                order_key=event_id(m.channel, m.shop, "fulfillment", payload["id"]),
                order_version=iso_to_ms(payload["updated_at"]),
            )
        if topic == "refunds/create":
            events = refund_events(payload, m)
            if not self.book:
                return Delivery(m.channel, topic, events=events, delivery_keys=keys)
            returned = refund_order(payload, m)
            return Delivery(
                m.channel,
                topic,
                events=stock_facts(events),
                orders=[] if returned is None else [returned],
                delivery_keys=keys,
            )
        if topic == "inventory_levels/update":
            return Delivery(
                m.channel, topic, observations=level_observations(payload, m), delivery_keys=keys
            )
        return Delivery(m.channel, topic, delivery_keys=keys)  # subscribed but not stock-relevant

    async def _assess(self, delivery: Delivery) -> Delivery:
        """Give a placed Order Shopify's risk (GraphQL ``Order.risk``), read once per order
        and remembered (a redelivery after a failed publish carries the same risk). A
        throttle or outage raises: the webhook fails and Shopify delivers it again. A refusal
        (the app lacks the ``read_orders`` scope, the order is gone) is logged and the order
        goes on without a risk: orders must not wait on a configuration fix."""
        if self._client is None:
            return delivery
        for record in delivery.orders:
            if record["type"] != "placed":
                continue
            key = record["event_id"]
            if key not in self._risks:
                channel_id = record["order_id"].split(":")[-1]
                try:
                    self._risks[key] = await order_risk(self._client, channel_id)
                except RejectedError as exc:
                    log.warning(
                        "risk of %s not read (%s): published without a risk",
                        record["order_id"],
                        redact.scrub(str(exc))[:200],
                    )
                    self._risks[key] = None
                while len(self._risks) > 100_000:
                    self._risks.popitem(last=False)
            record["risk"] = self._risks[key]
        return delivery

    async def _disposed(
        self, payload: dict[str, Any], headers: Mapping[str, str], keys: tuple[str, ...]
    ) -> Delivery:
        if self._client is None:
            raise RuntimeError("ShopifyInbound needs a ShopifyClient to read returns")
        key = _header(headers, "X-Shopify-Event-Id") or _header(headers, "X-Shopify-Webhook-Id")
        events = await disposition_events(self._client, payload, self.mapping, key or "none")
        return Delivery(self.channel, DISPOSE_TOPIC, events=events, delivery_keys=keys)

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        """Polling backup: orders updated since the checkpoint, as deliveries, and the new
        checkpoint (the newest ``updated_at`` seen)."""
        if self._client is None:
            raise RuntimeError("ShopifyInbound needs a ShopifyClient to poll")
        orders = await self._client.orders_updated_since(ms_to_iso(checkpoint_ms))
        deliveries = [await self._assess(self._normalise("orders/updated", o, ())) for o in orders]
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)
