"""Cdiscount in: orders polled from the Octopia Seller API (no webhooks exist).

``GET /orders`` from the saved checkpoint by ``updatedAt`` (paged, oldest change first).
Per order status, with ids made of Octopia's own ids (order id, line id), so every poll of
the same fact yields the same id:

- ``Processing``: not yet handed to the seller → nothing;
- ``WaitingAcceptance``: the order is handed to the acceptance gate first
  (:meth:`AcceptanceGate.expect`, deadline = ``createdAt`` + ``acceptance_window_s``), then
  ``order_placed`` per line (``…/order/<id>/line/<line>/placed``): the ledger's decisions on
  those lines make the gate accept the order or refuse it;
- ``Accepted``, ``InPreparation``: ``order_placed`` per line (the same ids: nothing new if
  seen before, a reservation if the order was accepted elsewhere, e.g. in the back office);
- ``Shipped``, ``Delivered``: ``order_placed`` and ``order_shipped`` per line;
- ``Cancelled``, ``Refused``: ``order_cancelled`` per line (``…/line/<line>/cancelled``, the
  id the gate uses when it releases a refused order, so the ledger counts it once).

With ``orders: book`` the order is one Order record instead of per-line events: ``placed``
(``…/order/<id>/placed``: its lines, unit price in minor units, ship-to country and postal
code only) once it awaits acceptance or later, ``cancelled`` (``…/order/<id>/cancelled``, the
gate's own id for a refusal) once ``Cancelled`` or ``Refused``; the acceptance gate learns the
outcome from the order book's state, and shipments made here are confirmed on Octopia by
:class:`~connectors.cdiscount.shipping.CdiscountShipper`.

Only lines of mapped SKUs (``offer.sellerProductId``) count; an order without one is left
alone (not sent to the gate). An order that cannot be read is handed to ``dead_letter``
(its ids, status, times and lines only) and skipped. The customer block and the addresses
are never read (but the shipping address's country and postal code in ``orders: book``): no
name, street, email or phone leaves the connector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import orjson

from connectors.cdiscount.client import CdiscountClient
from connectors.cdiscount.mapping import CdiscountMapping
from connectors.framework.acceptance import AwaitedLine, AwaitedOrder
from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import OrderDict, minor_units, order_line, order_record, ship_to
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict
from schemas.times import iso_to_ms

STATES = {
    "Processing": "none",
    "WaitingAcceptance": "awaiting",
    "Accepted": "placed",
    "InPreparation": "placed",
    "Shipped": "shipped",
    "Delivered": "shipped",
    "Cancelled": "cancelled",
    "Refused": "cancelled",
}

BadOrderSink = Callable[[Mapping[str, Any], str], Awaitable[None]]
"""Called with the order (as polled) and the error for an order that cannot be read."""


class Gate(Protocol):
    def expect(self, order: AwaitedOrder) -> None: ...


def state_of(order: Mapping[str, Any]) -> str:
    status = str(order.get("status") or "")
    if status not in STATES:
        raise InvalidPayloadError(f"Octopia order status {status!r} is not one of {sorted(STATES)}")
    return STATES[status]


def order_lines(order: Mapping[str, Any], m: CdiscountMapping) -> list[tuple[str, str, int]]:
    """``(line id, sku, qty)`` of the lines of mapped SKUs."""
    lines = []
    for line in order.get("lines") or []:
        sku = (line.get("offer") or {}).get("sellerProductId")
        if not m.knows(sku):
            continue
        qty = int(line["quantity"])
        if qty <= 0:
            raise InvalidPayloadError(f"line {line.get('lineId')}: quantity {qty} is not positive")
        lines.append((str(line["lineId"]), str(sku), qty))
    return lines


def order_records(order: Mapping[str, Any], m: CdiscountMapping) -> list[OrderDict]:
    """``orders: book``: the order as Order records (see the module docstring)."""
    oid = str(order["orderId"])
    state = state_of(order)
    mapped = [
        line
        for line in order.get("lines") or []
        if m.knows((line.get("offer") or {}).get("sellerProductId"))
    ]
    if state == "none" or not mapped:
        return []
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": iso_to_ms(str(order["createdAt"])),
    }
    if state == "cancelled":
        return [
            order_record(
                event_id=event_id(m.channel, m.seller_id, "order", oid, "cancelled"),
                type="cancelled",
                occurred_at=iso_to_ms(str(order["updatedAt"])),
                note=str(order["status"]).lower(),
                **common,
            )
        ]
    lines = []
    for line in mapped:
        qty = int(line["quantity"])
        if qty <= 0:
            raise InvalidPayloadError(f"line {line.get('lineId')}: quantity {qty} is not positive")
        currency = line.get("currency")
        lines.append(
            order_line(
                line["lineId"],
                str(line["offer"]["sellerProductId"]),
                qty,
                minor_units(line.get("unitSalesPrice"), currency),
                currency,
            )
        )
    address = order.get("shippingAddress") or {}
    return [
        order_record(
            event_id=event_id(m.channel, m.seller_id, "order", oid, "placed"),
            type="placed",
            occurred_at=common["placed_at"],
            lines=lines,
            ship_to=ship_to(address.get("countryCode"), address.get("zipCode")),
            **common,
        )
    ]


def normalise(
    order: Mapping[str, Any], m: CdiscountMapping, *, book: bool = False
) -> tuple[list[StockEventDict], AwaitedOrder | None]:
    """The order's StockEvents (none with ``book``: its Order records are
    :func:`order_records`), and the order to await when it waits for acceptance."""
    oid = str(order["orderId"])
    state = state_of(order)
    created = iso_to_ms(str(order["createdAt"]))
    updated = iso_to_ms(str(order["updatedAt"]))
    lines = order_lines(order, m)
    events: list[StockEventDict] = []

    def add(kind: str, suffix: str, line: tuple[str, str, int], at: int) -> None:
        line_id, sku, qty = line
        events.append(
            stock_event(
                event_id=event_id(m.channel, m.seller_id, "order", oid, "line", line_id, suffix),
                type=kind,
                sku=sku,
                qty=qty,
                channel=m.channel,
                occurred_at=at,
                order_id=f"{m.channel}:{oid}",
                source_ref=oid,
                reason=str(order["status"]).lower() if kind == "order_cancelled" else None,
            )
        )

    for line in lines:
        if state in ("awaiting", "placed", "shipped"):
            add("order_placed", "placed", line, created)
        if state == "shipped":
            add("order_shipped", "shipped", line, updated)
        if state == "cancelled":
            add("order_cancelled", "cancelled", line, updated)
    awaited = None
    if state == "awaiting" and lines:
        awaited = AwaitedOrder(
            channel=m.channel,
            account=m.seller_id,
            order_id=oid,
            lines=tuple(AwaitedLine(line_id, sku, qty) for line_id, sku, qty in lines),
            deadline_ms=created + int(m.acceptance_window_s * 1000),
            book=book,
        )
    return ([] if book else events), awaited


def without_personal_data(order: Mapping[str, Any]) -> bytes:
    """The order's ids, status, times and lines (SKU, quantity): never the customer block or
    the addresses."""
    kept = ("orderId", "status", "salesChannel", "createdAt", "updatedAt")
    lines = order.get("lines")
    rows = (
        [
            {
                "lineId": line.get("lineId"),
                "sellerProductId": (line.get("offer") or {}).get("sellerProductId")
                if isinstance(line.get("offer"), dict)
                else None,
                "quantity": line.get("quantity"),
            }
            for line in lines
            if isinstance(line, dict)
        ]
        if isinstance(lines, list)
        else None
    )
    return orjson.dumps(
        {**{k: order.get(k) for k in kept if k in order}, "lines": rows}, default=str
    )


class CdiscountInbound:
    """Polls one seller's orders. ``acceptance_gate`` (set by the runtime) receives the
    orders waiting for acceptance before their lines reach the intake."""

    def __init__(
        self,
        mapping: CdiscountMapping,
        client: CdiscountClient | None = None,
        *,
        orders_mode: str = "lines",
    ) -> None:
        self.mapping = mapping
        self.book = orders_mode == "book"
        self.channel = mapping.channel
        self._client = client
        self.acceptance_gate: Gate | None = None
        self.dead_letter: BadOrderSink | None = None
        self.unreadable = 0

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "Octopia sends no webhooks to this endpoint: Cdiscount orders are polled "
            "(poll_interval_s in the channel's configuration)"
        )

    def normalise(self, order: Mapping[str, Any]) -> Delivery:
        try:
            events, awaited = normalise(order, self.mapping, book=self.book)
            records = order_records(order, self.mapping) if self.book else []
            oid = str(order["orderId"])
            updated = str(order["updatedAt"])
            version = iso_to_ms(updated)
        except InvalidPayloadError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidPayloadError(f"Octopia order unreadable: {exc!r}") from None
        if awaited is not None:
            if self.acceptance_gate is None:
                raise RuntimeError(
                    f"{self.channel}: an order awaits acceptance but no gate is wired"
                )
            self.acceptance_gate.expect(awaited)
        return Delivery(
            self.channel,
            "order.polled",
            events=events,
            orders=records,
            delivery_keys=(f"{self.channel}:order:{oid}:{updated}:{order.get('status')}",),
            order_key=event_id(self.channel, self.mapping.seller_id, "order", oid),
            order_version=version,
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("CdiscountInbound needs a CdiscountClient to poll")
        orders = await self._client.orders_updated_since(checkpoint_ms)
        deliveries = []
        newest = checkpoint_ms
        for order in orders:
            try:
                deliveries.append(self.normalise(order))
            except InvalidPayloadError as exc:
                self.unreadable += 1
                if self.dead_letter is not None:
                    await self.dead_letter(order, str(exc))
            with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
                newest = max(newest, iso_to_ms(str(order["updatedAt"])))
        return deliveries, newest
