"""PrestaShop in: orders polled from the webservice (core sends no webhooks).

``GET /api/orders?filter[date_upd]=[from,to]&date=1&display=full`` (JSON) from the saved
checkpoint, paged; ``order_details`` for refunded and returned quantities. The order's
state maps through the configured state ids (``connectors.prestashop.mapping``). Facts,
with ids made of PrestaShop's own ids:

- every row of an order that reserves (shipped; else not cancelled nor refunded, and
  paid unless ``reserve_unpaid``) → ``order_placed`` of ``product_quantity``
- every row of an order in a shipped state, or with a ``delivery_date`` → ``order_shipped``
  with qty 0: the whole reservation the row still holds
- an order cancelled, or refunded before it shipped → ``order_cancelled`` per row (qty 0:
  whatever it still holds; an order first seen in that state never reserved)
- per order detail of a shipped order: each unit of ``product_quantity_return`` (units
  sent back through a merchandise return) → ``return_received`` resellable, one event per
  unit (``…/detail/<id>/return/<n>``) so a growing count adds only the new units; of an
  order not shipped, each unit of ``product_quantity_refunded`` → ``order_cancelled`` of 1.

With ``orders: book`` the order facts are Order records (``connectors.prestashop.orders``);
``return_received`` stays a StockEvent. Names, addresses, emails and phones are never read:
the order resource holds only ids for them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import DEFAULT_ORDER_MODE, stock_facts
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict
from connectors.prestashop.client import PrestaClient
from connectors.prestashop.facts import reserves, rows, shipped, shop_ms, shop_time
from connectors.prestashop.mapping import PrestaMapping
from connectors.prestashop.orders import order_records, returned_records

log = logging.getLogger(__name__)


def order_events(order: Mapping[str, Any], m: PrestaMapping) -> list[StockEventDict]:
    oid = order["id"]
    state = m.state(order.get("current_state"))
    sent = shipped(order, m)
    placed_at = shop_ms(order["date_add"], m.timezone)
    updated_at = shop_ms(order["date_upd"], m.timezone)
    events: list[StockEventDict] = []
    for row in rows(order):
        sku = m.sku_for(row.get("product_id"), row.get("product_attribute_id"))
        if sku is None:
            continue
        common: dict[str, Any] = {
            "sku": sku,
            "channel": m.channel,
            "order_id": f"{m.channel}:{oid}",
            "source_ref": str(oid),
        }

        def eid(kind: str, row: Mapping[str, Any] = row) -> str:
            return event_id(m.channel, m.shop, "order", oid, "row", row["id"], kind)

        if reserves(order, m):
            qty = int(row["product_quantity"])
            events.append(
                stock_event(
                    event_id=eid("placed"),
                    type="order_placed",
                    qty=qty,
                    occurred_at=placed_at,
                    **common,
                )
            )
        if sent:
            events.append(
                stock_event(
                    event_id=eid("shipped"),
                    type="order_shipped",
                    qty=0,
                    occurred_at=updated_at,
                    **common,
                )
            )
        elif state in ("cancelled", "refunded"):
            events.append(
                stock_event(
                    event_id=eid("cancelled"),
                    type="order_cancelled",
                    qty=0,
                    reason=state,
                    occurred_at=updated_at,
                    **common,
                )
            )
    return events


def detail_events(
    order: Mapping[str, Any], details: list[dict[str, Any]], m: PrestaMapping
) -> list[StockEventDict]:
    oid = order["id"]
    sent = shipped(order, m)
    at = shop_ms(order["date_upd"], m.timezone)
    events: list[StockEventDict] = []
    for detail in details:
        sku = m.sku_for(detail.get("product_id"), detail.get("product_attribute_id"))
        if sku is None:
            continue
        field = "product_quantity_return" if sent else "product_quantity_refunded"
        units = max(0, int(str(detail.get(field) or 0)))
        for n in range(1, units + 1):
            kind = "return" if sent else "refund"
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel, m.shop, "order", oid, "detail", detail["id"], kind, n
                    ),
                    type="return_received" if sent else "order_cancelled",
                    sku=sku,
                    qty=1,
                    channel=m.channel,
                    occurred_at=at,
                    order_id=f"{m.channel}:{oid}",
                    source_ref=str(detail["id"]),
                    disposition="resellable" if sent else None,
                    reason="return" if sent else "refund",
                )
            )
    return events


def needs_details(order: Mapping[str, Any], m: PrestaMapping) -> bool:
    """Returns and refunds are read only for orders that can have them."""
    return shipped(order, m) or m.state(order.get("current_state")) == "refunded"


Unreadable = Callable[[Mapping[str, Any], str], Awaitable[None]]
"""Called with an order the connector cannot read and the reason (a dead letter)."""


class PrestaInbound:
    """Normalises polled PrestaShop orders. The webhook route answers 400: core PrestaShop
    sends none (a module on its hooks could; this connector polls)."""

    def __init__(
        self,
        mapping: PrestaMapping,
        client: PrestaClient | None = None,
        *,
        orders_mode: str = DEFAULT_ORDER_MODE,
        unreadable: Unreadable | None = None,
    ) -> None:
        self._unreadable = unreadable
        self._set_aside: set[tuple[str, str]] = set()  # (id, date_upd) dead-lettered once
        self.book = orders_mode == "book"
        self.mapping = mapping
        self.channel = mapping.channel
        self._client = client

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "PrestaShop sends no webhooks: its orders are polled (poll_interval_s)"
        )

    async def normalise(self, order: dict[str, Any]) -> Delivery:
        m = self.mapping
        try:
            events = order_events(order, m)
            details: list[dict[str, Any]] = []
            if needs_details(order, m) and self._client is not None:
                details = await self._client.order_details(int(order["id"]))
                events.extend(detail_events(order, details, m))
            orders = []
            if self.book:
                destination = None
                if self._client is not None and order.get("id_address_delivery"):
                    destination = await self._client.ship_to(int(order["id_address_delivery"]))
                orders = [
                    *order_records(order, m, destination),
                    *returned_records(order, details, m),
                ]
            version = shop_ms(order["date_upd"], m.timezone)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidPayloadError(
                f"PrestaShop order {order.get('id')!r} unreadable: {exc!r}"
            ) from exc
        digest = hashlib.sha256(orjson.dumps(order, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        return Delivery(
            m.channel,
            "orders",
            events=stock_facts(events) if self.book else events,
            orders=orders,
            delivery_keys=(f"{m.channel}:order:{order['id']}:{order['date_upd']}:{digest}",),
            order_key=event_id(m.channel, m.shop, "order", order["id"]),
            order_version=version,
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("PrestaInbound needs a PrestaClient to poll")
        tz = self.mapping.timezone
        since = shop_time(checkpoint_ms, tz)
        until = shop_time(int((datetime.now(tz=UTC) + timedelta(days=1)).timestamp() * 1000), tz)
        deliveries = []
        for order in await self._client.orders_updated_between(since, until):
            try:
                deliveries.append(await self.normalise(order))
            except InvalidPayloadError as exc:
                # one bad order is set aside (dead letter, once per change of it); the
                # orders around it go on
                seen = (str(order.get("id")), str(order.get("date_upd")))
                if seen in self._set_aside:
                    continue
                log.warning("prestashop order skipped: %s", exc)
                if self._unreadable is not None:
                    await self._unreadable(order, str(exc))
                self._set_aside.add(seen)
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)
