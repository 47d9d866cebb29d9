"""Magento in: orders polled by ``updated_at``, with their shipments and credit memos.

Magento Open Source sends no webhooks, so every order changed since the checkpoint is read
(``GET /V1/orders`` with ``searchCriteria`` on ``updated_at``, paged), and for an order with
shipped or refunded quantities its shipments (``GET /V1/shipments``) and credit memos
(``GET /V1/creditmemos``). Facts, with ids made of Magento's own ids (``entity_id`` of the
order, shipment and credit memo, ``item_id`` of the order item), so every poll of the same
fact yields the same id:

- every mapped simple line (a configurable product's parent row is skipped, its simple
  child counted) of an order not ``canceled`` → ``order_placed`` of ``qty_ordered``;
- each shipment (MSI source deduction) → ``order_shipped`` of the shipped quantity per line,
  at the location of the shipment's ``source_code``: the reservation is consumed;
- state ``canceled`` → ``order_cancelled`` per line (qty 0 = whatever is still reserved);
- each credit memo: units of a line not yet shipped → ``order_cancelled`` of those units
  (released); shipped units of an order item listed in the memo's
  ``return_to_stock_items`` (or every shipped unit with ``refunds_restock``) →
  ``return_received`` resellable; shipped units refunded without a return give nothing.

States map to placed (``new``, ``pending_payment``, ``payment_review``, ``processing``,
``holded``), shipped (``complete``), cancelled (``canceled``) and closed (``closed``: fully
refunded, its credit memos say what came back).

With ``orders: book`` the order facts are Order records instead (``placed``, ``shipped`` per
shipment, ``cancelled``, ``returned`` per credit memo); ``return_received`` stays a StockEvent.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import (
    DEFAULT_ORDER_MODE,
    OrderDict,
    minor_units,
    order_line,
    order_record,
    ship_to,
    stock_facts,
)
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict
from connectors.magento.client import MagentoClient
from connectors.magento.mapping import MagentoMapping
from connectors.magento.reservations import Reservations
from schemas.times import iso_to_ms

STATES = {
    "new": "placed",
    "pending_payment": "placed",
    "payment_review": "placed",
    "processing": "placed",
    "holded": "placed",
    "complete": "shipped",
    "canceled": "cancelled",
    "closed": "closed",
}


def state_of(order: Mapping[str, Any]) -> str:
    state = str(order.get("state") or "")
    if state not in STATES:
        raise InvalidPayloadError(f"Magento order state {state!r} is not one of {sorted(STATES)}")
    return STATES[state]


def magento_ms(value: object) -> int:
    """``2026-11-30 06:00:00`` (UTC, Magento's format) → epoch ms."""
    return iso_to_ms(str(value).replace(" ", "T"), naive_is_utc=True)


def order_lines(order: Mapping[str, Any], m: MagentoMapping) -> list[dict[str, Any]]:
    """The order items that hold stock: simple rows of mapped SKUs (a configurable parent is
    skipped; its child carries no price, so the parent's is kept on the child)."""
    items = list(order.get("items") or [])
    by_id = {int(i["item_id"]): i for i in items}
    lines = []
    for item in items:
        if item.get("product_type") == "configurable" or not m.knows(item.get("sku")):
            continue
        parent = by_id.get(int(item.get("parent_item_id") or 0))
        price = item.get("price") if not parent else parent.get("price")
        lines.append({**item, "price": price})
    return lines


def _fetched_ids(order: Mapping[str, Any], field: str) -> bool:
    return any(float(i.get(field) or 0) > 0 for i in order.get("items") or [])


class Normaliser:
    """Facts of one order with its shipments and credit memos."""

    def __init__(self, m: MagentoMapping, order: Mapping[str, Any]) -> None:
        self.m = m
        self.order = order
        self.oid = int(order["entity_id"])
        self.lines = {int(i["item_id"]): i for i in order_lines(order, m)}
        self.order_ref = f"{m.channel}:{self.oid}"

    def _id(self, *parts: object) -> str:
        return event_id(self.m.channel, self.m.store, *parts)

    def _event(
        self, kind: str, line: Mapping[str, Any], qty: int, at: int, eid: str, **extra: Any
    ) -> StockEventDict:
        return stock_event(
            event_id=eid,
            type=kind,
            sku=str(line["sku"]),
            qty=qty,
            channel=self.m.channel,
            occurred_at=at,
            order_id=self.order_ref,
            source_ref=str(self.oid),
            **extra,
        )

    def order_events(self) -> list[StockEventDict]:
        state = state_of(self.order)
        created = magento_ms(self.order["created_at"])
        updated = magento_ms(self.order["updated_at"])
        events = []
        for item_id, line in self.lines.items():
            if state != "cancelled":
                events.append(
                    self._event(
                        "order_placed",
                        line,
                        int(float(line["qty_ordered"])),
                        created,
                        self._id("order", self.oid, "line", item_id, "placed"),
                    )
                )
            else:
                events.append(
                    self._event(
                        "order_cancelled",
                        line,
                        0,
                        updated,
                        self._id("order", self.oid, "line", item_id, "cancelled"),
                        reason="canceled",
                    )
                )
        return events

    def shipment_events(self, shipment: Mapping[str, Any]) -> list[StockEventDict]:
        source = (shipment.get("extension_attributes") or {}).get("source_code")
        at = magento_ms(shipment.get("created_at") or self.order["updated_at"])
        events = []
        for item in shipment.get("items") or []:
            line = self.lines.get(int(item["order_item_id"]))
            qty = int(float(item.get("qty") or 0))
            if line is None or qty <= 0:
                continue
            events.append(
                self._event(
                    "order_shipped",
                    line,
                    qty,
                    at,
                    self._id(
                        "shipment", shipment["entity_id"], "line", item["order_item_id"], "shipped"
                    ),
                    location=self.m.location(source),
                )
            )
        return events

    def creditmemo_events(
        self, memo: Mapping[str, Any], shipped_left: dict[int, int]
    ) -> list[StockEventDict]:
        """``shipped_left``: per order item, shipped units not yet given to an earlier memo
        (consumed here)."""
        extension = memo.get("extension_attributes") or {}
        restock = {int(i) for i in extension.get("return_to_stock_items") or []}
        at = magento_ms(memo.get("created_at") or self.order["updated_at"])
        events = []
        for item in memo.get("items") or []:
            item_id = int(item["order_item_id"])
            line = self.lines.get(item_id)
            qty = int(float(item.get("qty") or 0))
            if line is None or qty <= 0:
                continue
            shipped = min(qty, shipped_left.get(item_id, 0))
            shipped_left[item_id] = shipped_left.get(item_id, 0) - shipped
            released = qty - shipped
            mid = memo["entity_id"]
            if released:
                events.append(
                    self._event(
                        "order_cancelled",
                        line,
                        released,
                        at,
                        self._id("creditmemo", mid, "line", item_id, "released"),
                        reason="refund",
                    )
                )
            if shipped and (self.m.refunds_restock or item_id in restock):
                events.append(
                    self._event(
                        "return_received",
                        line,
                        shipped,
                        at,
                        self._id("creditmemo", mid, "line", item_id, "returned"),
                        reason="refund",
                        disposition="resellable",
                    )
                )
        return events

    # ---- book mode -----------------------------------------------------------------------
    def records(
        self, shipments: list[dict[str, Any]], returned: list[StockEventDict]
    ) -> list[OrderDict]:
        order, m = self.order, self.m
        state = state_of(order)
        currency = order.get("order_currency_code")
        placed_at = magento_ms(order["created_at"])
        common: dict[str, Any] = {
            "order_id": self.order_ref,
            "channel": m.channel,
            "placed_at": placed_at,
        }
        records: list[OrderDict] = []
        if not self.lines:
            return records
        if state != "cancelled" or shipments:
            records.append(
                order_record(
                    event_id=self._id("order", self.oid, "placed"),
                    type="placed",
                    occurred_at=placed_at,
                    lines=[
                        order_line(
                            item_id,
                            str(line["sku"]),
                            int(float(line["qty_ordered"])),
                            minor_units(line.get("price"), currency),
                            currency,
                        )
                        for item_id, line in self.lines.items()
                    ],
                    ship_to=_ship_to(order),
                    customer_ref=_customer_ref(order),
                    customer_type=_customer_type(order),
                    **common,
                )
            )
        for shipment in shipments:
            lines = [
                order_line(e["event_id"].rsplit("/", 3)[-2], e["sku"], e["qty"])
                for e in self.shipment_events(shipment)
            ]
            if lines:
                records.append(
                    order_record(
                        event_id=self._id("shipment", shipment["entity_id"], "shipped"),
                        type="shipped",
                        occurred_at=magento_ms(shipment.get("created_at") or order["updated_at"]),
                        lines=lines,
                        location=self.m.location(
                            (shipment.get("extension_attributes") or {}).get("source_code")
                        ),
                        **common,
                    )
                )
        if state == "cancelled" and not shipments:
            records.append(
                order_record(
                    event_id=self._id("order", self.oid, "cancelled"),
                    type="cancelled",
                    occurred_at=magento_ms(order["updated_at"]),
                    note="canceled",
                    **common,
                )
            )
        by_memo: dict[str, list[StockEventDict]] = {}
        for e in returned:
            if e["type"] == "return_received":
                by_memo.setdefault(
                    str(e["event_id"]).split("/creditmemo/")[1].split("/")[0], []
                ).append(e)
        for memo_id, events in by_memo.items():
            records.append(
                order_record(
                    event_id=self._id("creditmemo", memo_id, "returned"),
                    type="returned",
                    occurred_at=events[0]["occurred_at"],
                    lines=[
                        order_line(str(e["event_id"]).rsplit("/", 2)[-2], e["sku"], e["qty"])
                        for e in events
                    ],
                    note="refund",
                    **common,
                )
            )
        return records


def _ship_to(order: Mapping[str, Any]) -> dict[str, Any] | None:
    assignments = (order.get("extension_attributes") or {}).get("shipping_assignments") or []
    for assignment in assignments:
        address = (assignment.get("shipping") or {}).get("address") or {}
        if address.get("country_id"):
            return ship_to(address["country_id"], address.get("postcode"))
    billing = order.get("billing_address") or {}
    return (
        ship_to(billing["country_id"], billing.get("postcode"))
        if billing.get("country_id")
        else None
    )


def _customer_ref(order: Mapping[str, Any]) -> str | None:
    if order.get("customer_is_guest") or not order.get("customer_id"):
        return None
    return str(order["customer_id"])


def _customer_type(order: Mapping[str, Any]) -> str:
    company = (order.get("billing_address") or {}).get("company")
    return "b2b" if str(company or "").strip() else "b2c"


BadOrderSink = Callable[[int, bytes, str], Awaitable[None]]
"""Called with the order's id, the order as JSON and the error for an unreadable order."""


class MagentoInbound:
    """Polls a Magento store's orders; Magento has no webhooks to receive. An order it
    cannot read is handed to ``dead_letter`` and skipped: the orders around it go on."""

    def __init__(
        self,
        mapping: MagentoMapping,
        client: MagentoClient | None = None,
        *,
        orders_mode: str = DEFAULT_ORDER_MODE,
        reservations: Reservations | None = None,
    ) -> None:
        self.reservations = reservations  # Magento's open orders, kept for the pusher
        self.book = orders_mode == "book"
        self.mapping = mapping
        self.channel = mapping.channel
        self._client = client
        self.dead_letter: BadOrderSink | None = None
        self.unreadable = 0

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "Magento sends no webhooks to this endpoint: its orders are polled "
            "(poll_interval_s in the channel's configuration)"
        )

    async def normalise(self, order: Mapping[str, Any]) -> Delivery:
        try:
            return await self._normalise(order)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InvalidPayloadError):
                raise
            raise InvalidPayloadError(f"Magento order unreadable: {exc!r}") from exc

    async def _normalise(self, order: Mapping[str, Any]) -> Delivery:
        n = Normaliser(self.mapping, order)
        events = n.order_events()
        shipments: list[dict[str, Any]] = []
        if self._client is not None and _fetched_ids(order, "qty_shipped"):
            shipments = sorted(
                await self._client.shipments(n.oid), key=lambda s: int(s["entity_id"])
            )
            for shipment in shipments:
                events.extend(n.shipment_events(shipment))
        refunds: list[StockEventDict] = []
        if self._client is not None and _fetched_ids(order, "qty_refunded"):
            shipped_left = {
                item_id: int(float(line.get("qty_shipped") or 0))
                for item_id, line in n.lines.items()
            }
            memos = await self._client.creditmemos(n.oid)
            for memo in sorted(memos, key=lambda c: int(c["entity_id"])):  # oldest first
                refunds.extend(n.creditmemo_events(memo, shipped_left))
        events.extend(refunds)
        if self.reservations is not None:
            self.reservations.update(order)
        orders = n.records(shipments, refunds) if self.book else []
        updated = str(order["updated_at"])
        digest = hashlib.sha256(orjson.dumps(order, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        return Delivery(
            self.channel,
            "order.polled",
            events=stock_facts(events) if self.book else events,
            orders=orders,
            delivery_keys=(f"{self.channel}:order:{n.oid}:{updated}:{digest}",),
            order_key=event_id(self.channel, self.mapping.store, "order", n.oid),
            order_version=magento_ms(updated),
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("MagentoInbound needs a MagentoClient to poll")
        orders = await self._client.orders_updated_since(checkpoint_ms)
        deliveries = []
        newest = checkpoint_ms
        for order in orders:
            try:
                deliveries.append(await self.normalise(order))
            except InvalidPayloadError as exc:
                self.unreadable += 1
                raw = orjson.dumps(order, default=str)
                if self.dead_letter is not None:
                    await self.dead_letter(_order_id(order), raw, str(exc))
                with contextlib.suppress(InvalidPayloadError, KeyError, TypeError, ValueError):
                    newest = max(newest, magento_ms(order["updated_at"]))
        newest = max([newest, *(d.order_version or 0 for d in deliveries)])
        return deliveries, max(checkpoint_ms, newest)


def _order_id(order: Any) -> int:
    try:
        return int(order.get("entity_id") or 0)
    except (AttributeError, TypeError, ValueError):
        return 0
