"""Amazon in: merchant-fulfilled orders polled with ``getOrders``, FBA stock as counts.

Orders API v0: ``getOrders`` with ``LastUpdatedAfter`` (every page through ``NextToken``),
then ``getOrderItems`` for each order (kept per order and ``LastUpdateDate``, so the overlap
of the next poll costs no call). Only merchant-fulfilled orders (``FulfillmentChannel``
``MFN``) touch our stock; Amazon's own (``AFN``) are skipped. Per line (``OrderItemId``),
ids made of Amazon's ids:

- ``Pending`` (not paid yet, but Amazon already lowered the listing), ``Unshipped`` and
  ``PendingAvailability`` (pre-order) → ``order_placed`` of ``QuantityOrdered`` (the same id
  in every state: the ledger reserves once, whichever state is seen first);
- ``PartiallyShipped``, ``Shipped`` and ``InvoiceUnconfirmed`` → the placement, and one
  ``order_shipped`` of 1 unit per shipped unit (``.../shipped/<n>``), so a line shipped in
  two parcels is consumed once per unit whatever polls see;
- ``Canceled`` → ``order_cancelled`` (qty 0: whatever is still reserved), id
  ``.../line/<id>/cancelled``;
- ``Unfulfillable`` (multi-channel fulfilment by Amazon) → nothing.

With ``orders: book`` the order is one Order record instead of per-line events (Amazon asks
no acceptance: the order goes straight to the order book, and one the book cannot allocate
stays an exception there for a person): ``placed`` (``.../order/<id>/placed``) in every
state but ``Canceled``; while Amazon has not authorized the payment (``Pending``,
``PendingAvailability``) with ``risk: payment_pending``, so the book holds its stock and
keeps it ``pending_approval`` (never waved: Amazon says not to ship such an order), and in
every paid state followed by an ``approved`` (``.../order/<id>/paid``) that releases it.
With the mapped lines (``OrderItemId``, ``QuantityOrdered``, the unit
price from ``ItemPrice``, which is the line's total) and the ship-to country and postal
code; ``Canceled`` gives ``cancelled`` (``.../order/<id>/cancelled``). An order Amazon says
shipped stays placed: the order book ships what the shipping service ships here, and
:class:`~connectors.amazon.shipping.AmazonShipper` confirms it to Amazon.

An order whose state or lines cannot be read is handed to ``dead_letter`` (its ids only) and
skipped. The buyer's name, email and street (``BuyerInfo``, ``ShippingAddress``) are never
read: only the ship-to country and postal code, in ``orders: book``.

With ``fba_location`` set, every poll also reads the FBA summaries and hands each mapped
SKU's ``fulfillableQuantity`` to the ledger as a ``stock_count`` at that location, as of
Amazon's ``lastUpdatedTime`` (read-only: that location is never pushed). Amazon ships that
stock itself: it is not the order book's to route merchant-fulfilled orders to.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from connectors.amazon.client import AmazonClient, AmazonError
from connectors.amazon.mapping import AmazonMapping
from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import OrderDict, minor_units, order_line, order_record, ship_to
from connectors.framework.types import (
    Delivery,
    InvalidPayloadError,
    StockEventDict,
    ThrottledError,
    UnavailableError,
)
from schemas.times import iso_to_ms, now_ms
from streams.orders.approvals import PAYMENT_PENDING

STATES = {
    "Pending": "placed",
    "Unshipped": "placed",
    "PendingAvailability": "placed",
    "PartiallyShipped": "shipped",
    "Shipped": "shipped",
    "InvoiceUnconfirmed": "shipped",
    "Canceled": "cancelled",
    "Unfulfillable": "ignored",
}
UNPAID = frozenset({"Pending", "PendingAvailability"})  # payment not authorized yet
ITEMS_CACHE = 5_000

BadOrderSink = Callable[[Mapping[str, Any], str], Awaitable[None]]
"""Called with the order (as Amazon sent it) and the error for an unreadable order."""


def state_of(order: Mapping[str, Any]) -> str:
    status = str(order.get("OrderStatus") or "")
    if status not in STATES:
        raise InvalidPayloadError(f"Amazon OrderStatus {status!r} is not one of {sorted(STATES)}")
    return STATES[status]


def order_events(
    m: AmazonMapping, order: Mapping[str, Any], items: list[dict[str, Any]]
) -> list[StockEventDict]:
    """The StockEvents of one MFN order in its current state (see the module docstring)."""
    state = state_of(order)
    if state == "ignored":
        return []
    oid = str(order["AmazonOrderId"])
    placed_at = iso_to_ms(str(order["PurchaseDate"]))
    updated_at = iso_to_ms(str(order["LastUpdateDate"]))
    events: list[StockEventDict] = []

    def event(
        kind: str, item: Mapping[str, Any], qty: int, at: int, *tail: object, **kw: Any
    ) -> None:
        events.append(
            stock_event(
                event_id=event_id(
                    m.channel, m.seller_id, "order", oid, "line", item["OrderItemId"], *tail
                ),
                type=kind,
                sku=str(item["SellerSKU"]),
                qty=qty,
                channel=m.channel,
                occurred_at=at,
                order_id=f"{m.channel}:{oid}",
                source_ref=oid,
                **kw,
            )
        )

    for item in items:
        if not m.knows(item.get("SellerSKU")):
            continue
        ordered = int(item["QuantityOrdered"])
        if state == "cancelled":
            event("order_cancelled", item, 0, updated_at, "cancelled", reason="canceled")
            continue
        if ordered > 0:
            event("order_placed", item, ordered, placed_at, "placed")
        if state == "shipped":
            shipped = min(ordered, int(item.get("QuantityShipped") or 0))
            for n in range(1, shipped + 1):
                event("order_shipped", item, 1, updated_at, "shipped", n)
    return events


def order_records(
    m: AmazonMapping, order: Mapping[str, Any], items: list[dict[str, Any]]
) -> list[OrderDict]:
    """``orders: book``: the Order records of one MFN order (see the module docstring)."""
    state = state_of(order)
    mapped = [item for item in items if m.knows(item.get("SellerSKU"))]
    if state == "ignored" or not mapped:
        return []
    oid = str(order["AmazonOrderId"])
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": iso_to_ms(str(order["PurchaseDate"])),
    }
    if state == "cancelled":
        return [
            order_record(
                event_id=event_id(m.channel, m.seller_id, "order", oid, "cancelled"),
                type="cancelled",
                occurred_at=iso_to_ms(str(order["LastUpdateDate"])),
                note="canceled",
                **common,
            )
        ]
    lines = []
    for item in mapped:
        qty = int(item["QuantityOrdered"])
        if qty <= 0:
            continue
        price = item.get("ItemPrice") or {}
        currency = price.get("CurrencyCode")
        total = minor_units(price.get("Amount"), currency)
        unit = None if total is None else total // qty
        lines.append(order_line(item["OrderItemId"], str(item["SellerSKU"]), qty, unit, currency))
    if not lines:
        return []
    address = order.get("ShippingAddress") or {}
    unpaid = order.get("OrderStatus") in UNPAID
    records = [
        order_record(
            event_id=event_id(m.channel, m.seller_id, "order", oid, "placed"),
            type="placed",
            occurred_at=common["placed_at"],
            lines=lines,
            ship_to=ship_to(address.get("CountryCode"), address.get("PostalCode")),
            risk=PAYMENT_PENDING if unpaid else None,
            **common,
        )
    ]
    if not unpaid:  # paid: an order placed while Pending stops waiting for it
        records.append(
            order_record(
                event_id=event_id(m.channel, m.seller_id, "order", oid, "paid"),
                type="approved",
                occurred_at=iso_to_ms(str(order["LastUpdateDate"])),
                note="payment confirmed by Amazon",
                **common,
            )
        )
    return records


def fba_counts(m: AmazonMapping, summaries: list[dict[str, Any]]) -> list[StockEventDict]:
    """``stock_count`` per mapped SKU at ``fba_location`` from the FBA summaries."""
    assert m.fba_location is not None
    events = []
    for row in summaries:
        sku = row.get("sellerSku")
        details = row.get("inventoryDetails") or {}
        if not m.knows(sku) or "fulfillableQuantity" not in details:
            continue
        qty = int(details["fulfillableQuantity"])
        stamp = str(row.get("lastUpdatedTime") or "")
        as_of = iso_to_ms(stamp) if stamp else now_ms()
        events.append(
            stock_event(
                event_id=event_id(m.channel, m.seller_id, "fba", sku, as_of, qty),
                type="stock_count",
                sku=str(sku),
                qty=qty,
                channel=m.channel,
                occurred_at=as_of,
                location=m.fba_location,
                source_ref=str(row.get("fnSku") or sku),
                reason="fba",
            )
        )
    return events


class AmazonInbound:
    """Polls the seller's orders (and FBA stock); Amazon sends nothing to our webhooks."""

    def __init__(
        self,
        mapping: AmazonMapping,
        client: AmazonClient | None = None,
        *,
        orders_mode: str = "lines",
    ) -> None:
        self.mapping = mapping
        self.book = orders_mode == "book"  # Order records instead of per-line order events
        self.channel = mapping.channel
        self._client = client
        self._items: OrderedDict[str, tuple[str, list[dict[str, Any]]]] = OrderedDict()
        self.dead_letter: BadOrderSink | None = None
        self.unreadable = 0
        self.skipped_afn = 0

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "Amazon sends no webhooks to this endpoint: its orders are polled "
            "(poll_interval_s in the channel's configuration)"
        )

    async def items_of(self, order: Mapping[str, Any]) -> list[dict[str, Any]]:
        assert self._client is not None
        oid, version = str(order["AmazonOrderId"]), str(order.get("LastUpdateDate"))
        cached = self._items.get(oid)
        if cached is not None and cached[0] == version:
            return cached[1]
        items = await self._client.order_items(oid)
        self._items[oid] = (version, items)
        self._items.move_to_end(oid)
        while len(self._items) > ITEMS_CACHE:
            self._items.popitem(last=False)
        return items

    def normalise(self, order: Mapping[str, Any], items: list[dict[str, Any]]) -> Delivery:
        try:
            if self.book:
                events: list[StockEventDict] = []
                records = order_records(self.mapping, order, items)
            else:
                events, records = order_events(self.mapping, order, items), []
            updated = iso_to_ms(str(order["LastUpdateDate"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidPayloadError):
                raise
            raise InvalidPayloadError(f"Amazon order unreadable: {exc!r}") from exc
        oid = str(order["AmazonOrderId"])
        facts = orjson.dumps(
            [
                order.get("OrderStatus"),
                [(e["event_id"], e["qty"]) for e in events],
                [r["event_id"] for r in records],
            ]
        )
        digest = hashlib.sha256(facts).hexdigest()[:16]
        return Delivery(
            self.channel,
            "order.polled",
            events=events,
            orders=records,
            delivery_keys=(f"{self.channel}:order:{oid}:{order['LastUpdateDate']}:{digest}",),
            order_key=event_id(self.channel, self.mapping.seller_id, "order", oid),
            order_version=updated,
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("AmazonInbound needs an AmazonClient to poll")
        deliveries = await self._fba()
        orders = await self._client.orders_updated_since(checkpoint_ms)
        newest = checkpoint_ms
        for order in orders:
            if order.get("FulfillmentChannel") == "AFN":
                self.skipped_afn += 1
            else:
                try:
                    items = await self.items_of(order)
                except (ThrottledError, UnavailableError):
                    # the rest next poll (the items read so far are kept): no checkpoint move
                    return deliveries, checkpoint_ms
                except (AmazonError, KeyError) as exc:
                    await self._bad(order, f"Amazon order items unreadable: {exc}")
                    items = None
                if items is not None:
                    try:
                        deliveries.append(self.normalise(order, items))
                    except InvalidPayloadError as exc:
                        await self._bad(order, str(exc))
            with contextlib.suppress(KeyError, TypeError, ValueError):
                newest = max(newest, iso_to_ms(str(order["LastUpdateDate"])))
        return deliveries, newest

    async def _fba(self) -> list[Delivery]:
        if self.mapping.fba_location is None or self._client is None:
            return []
        try:
            summaries = await self._client.fba_inventory()
        except (ThrottledError, UnavailableError):
            return []  # the orders still go on; FBA stock is read again next poll
        events = fba_counts(self.mapping, summaries)
        if not events:
            return []
        return [Delivery(self.channel, "fba.polled", events=events)]

    async def _bad(self, order: Mapping[str, Any], error: str) -> None:
        self.unreadable += 1
        if self.dead_letter is not None:
            await self.dead_letter(order, error)
