"""Fnac Darty in: orders polled with ``orders_query`` (Fnac sends no webhooks).

Each poll asks for the orders changed since the checkpoint (``<date type="Modified">``,
every page). An order and each of its ``order_detail`` have a state; a detail's own state
wins over the order's (a person may accept part of an order in the back office). Facts per
detail of a mapped SKU (``offer_seller_id``), ids made of Fnac's ``order_id`` and
``order_detail_id`` so every poll of the same fact yields the same id:

- ``Created`` (waiting for the seller): the order is handed to the acceptance gate
  (``connectors.framework.acceptance``) first, then ``order_placed`` per detail: the ledger
  reserves, and the gate accepts the order only when every detail was reserved, else
  refuses it whole (releasing what was reserved);
- ``Accepted``, ``ToShip``: ``order_placed`` (the same id: nothing new when seen before);
- ``Shipped``, ``NotReceived``, ``Received``: ``order_placed`` then ``order_shipped``
  (qty 0: whatever the line still holds);
- ``Refused``, ``Cancelled``: ``order_cancelled`` with the id the gate's release uses, so a
  refusal is counted once;
- ``Refunded``: a detail refunded before it shipped is released (``order_cancelled``); one
  refunded after shipping gives nothing (Fnac does not say whether the unit came back).

An order awaiting acceptance none of whose details is a mapped SKU is not stockflow's to
answer: it is left to the seller (Fnac cancels it when its window closes).

With ``orders: book`` the order is one Order record instead of per-line events: ``placed``
(its details not refused or cancelled, unit price in minor units, ship-to country and postal
code only) in every state but a refusal or cancellation of every detail, which gives
``cancelled`` (``…/order/<id>/cancelled``, the gate's own id for a refusal); the acceptance
gate learns the outcome from the order book's state, and shipments made here are confirmed
by :class:`~connectors.fnac.shipping.FnacShipper`.

The order's version is its newest ``*_at`` time. Names, addresses and emails, which every
order carries, are never read. An order that cannot be read is set aside (a dead letter
with its id and state only) and the poll goes on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, tostring

from connectors.fnac.client import FnacClient
from connectors.fnac.dialog import text
from connectors.fnac.mapping import FnacMapping
from connectors.framework.acceptance import AcceptanceGate, AwaitedLine, AwaitedOrder
from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import (
    OrderDict,
    minor_units,
    order_line,
    order_record,
    ship_to,
)
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict
from schemas.times import iso_to_ms, now_ms

log = logging.getLogger(__name__)

AWAITING = "Created"
PLACED = frozenset({"Created", "Accepted", "ToShip"})
SHIPPED = frozenset({"Shipped", "NotReceived", "Received"})
CANCELLED = frozenset({"Refused", "Cancelled"})
REFUNDED = "Refunded"
STATES = PLACED | SHIPPED | CANCELLED | {REFUNDED}

Unreadable = Callable[[dict[str, str], str], Awaitable[None]]
"""Called with an unreadable order's id, state and change time, and the reason."""


def fnac_ms(value: str) -> int:
    return iso_to_ms(value)


def version_of(order: Element) -> int:
    """The newest ``*_at`` time of the order and its details (epoch ms)."""
    times = [
        fnac_ms(node.text.strip())
        for node in order.iter()
        if isinstance(node.tag, str)
        and node.tag.endswith("_at")
        and node.text
        and node.text.strip()
    ]
    if not times:
        raise InvalidPayloadError("Fnac order without any *_at time")
    return max(times)


class FnacInbound:
    """Normalises polled Fnac orders; the webhook route answers 400 (Fnac sends none)."""

    def __init__(
        self,
        mapping: FnacMapping,
        client: FnacClient | None = None,
        *,
        gate: AcceptanceGate | None = None,
        unreadable: Unreadable | None = None,
        orders_mode: str = "lines",
    ) -> None:
        self.mapping = mapping
        self.book = orders_mode == "book"
        self.channel = mapping.channel
        self.acceptance_gate = gate  # set by the runtime once the gate exists
        self._client = client
        self._unreadable = unreadable
        self._set_aside: set[tuple[str, int | str]] = set()

    async def handle(self, headers: Any, raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "Fnac Darty sends no webhooks: its orders are polled (poll_interval_s)"
        )

    def awaited(self, order: Element) -> AwaitedOrder:
        m = self.mapping
        created = fnac_ms(text(order, "created_at"))
        return AwaitedOrder(
            channel=m.channel,
            account=m.shop,
            order_id=text(order, "order_id"),
            lines=tuple(
                AwaitedLine(text(d, "order_detail_id"), text(d, "offer_seller_id"), _qty(d))
                for d in order.findall("order_detail")
                if m.knows(text(d, "offer_seller_id"))
            ),
            deadline_ms=created + int(m.acceptance_hours * 3_600_000),
            book=self.book,
        )

    def records(self, order: Element) -> list[OrderDict]:
        """``orders: book``: the order as Order records (see the module docstring)."""
        m = self.mapping
        oid = text(order, "order_id")
        order_state = text(order, "state")
        if not oid or order_state not in STATES:
            raise InvalidPayloadError(f"Fnac order {oid!r} in state {order_state!r}")
        common: dict[str, Any] = {
            "order_id": f"{m.channel}:{oid}",
            "channel": m.channel,
            "placed_at": fnac_ms(text(order, "created_at")),
        }
        mapped = [d for d in order.findall("order_detail") if m.knows(text(d, "offer_seller_id"))]
        if not mapped:
            return []
        live = [d for d in mapped if (text(d, "state") or order_state) not in CANCELLED]
        if not live:
            return [
                order_record(
                    event_id=event_id(m.channel, m.shop, "order", oid, "cancelled"),
                    type="cancelled",
                    occurred_at=version_of(order),
                    note=order_state.lower(),
                    **common,
                )
            ]
        address = order.find("shipping_address")
        country = "" if address is None else text(address, "country").upper()
        country = _ALPHA2.get(country, country)
        return [
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "placed"),
                type="placed",
                occurred_at=common["placed_at"],
                lines=[
                    order_line(
                        text(d, "order_detail_id"),
                        text(d, "offer_seller_id"),
                        _qty(d),
                        minor_units(text(d, "price") or None, "EUR"),
                        "EUR",
                    )
                    for d in live
                ],
                ship_to=(
                    ship_to(country, text(address, "zipcode") or None)
                    if address is not None and len(country) == 2
                    else None
                ),
                **common,
            )
        ]

    def events(self, order: Element) -> list[StockEventDict]:
        m = self.mapping
        oid = text(order, "order_id")
        order_state = text(order, "state")
        if not oid or order_state not in STATES:
            raise InvalidPayloadError(f"Fnac order {oid!r} in state {order_state!r}")
        at = version_of(order)
        events: list[StockEventDict] = []
        for detail in order.findall("order_detail"):
            sku = text(detail, "offer_seller_id")
            if not m.knows(sku):
                continue
            line = text(detail, "order_detail_id")
            if not line:
                raise InvalidPayloadError(f"Fnac order {oid}: a detail without order_detail_id")
            state = text(detail, "state") or order_state
            if state not in STATES:
                raise InvalidPayloadError(f"Fnac order {oid} detail {line}: state {state!r}")
            qty = _qty(detail)
            placed_at = fnac_ms(text(detail, "created_at") or text(order, "created_at"))
            shipped = bool(text(detail, "shipped_at")) or state in SHIPPED

            line_fact = _LineFact(m, oid, line, sku, state)
            if state in PLACED or state in SHIPPED:
                events.append(line_fact("placed", "order_placed", qty, placed_at))
            if state in SHIPPED:
                events.append(line_fact("shipped", "order_shipped", 0, at))
            elif state in CANCELLED or (state == REFUNDED and not shipped):
                events.append(line_fact("cancelled", "order_cancelled", qty, at))
        return events

    async def normalise(self, order: Element) -> Delivery:
        m = self.mapping
        try:
            events = [] if self.book else self.events(order)
            records = self.records(order) if self.book else []
            version = version_of(order)
            awaited = self.awaited(order) if text(order, "state") == AWAITING else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidPayloadError(
                f"Fnac order {text(order, 'order_id')!r} unreadable: {exc}"
            ) from exc
        if awaited is not None and awaited.lines:
            if self.acceptance_gate is None:
                raise RuntimeError(f"{m.channel}: an order awaits acceptance but no gate is wired")
            self.acceptance_gate.expect(awaited)  # before the reservations reach the ledger
        oid = text(order, "order_id")
        digest = hashlib.sha256(tostring(order)).hexdigest()[:16]
        return Delivery(
            m.channel,
            "orders",
            events=events,
            orders=records,
            delivery_keys=(f"{m.channel}:order:{oid}:{version}:{digest}",),
            order_key=event_id(m.channel, m.shop, "order", oid),
            order_version=version,
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("FnacInbound needs a FnacClient to poll")
        orders = await self._client.orders_query(
            since_ms=checkpoint_ms, until_ms=now_ms() + 86_400_000, date_type=self.mapping.date_type
        )
        deliveries = []
        for order in orders:
            try:
                deliveries.append(await self.normalise(order))
            except InvalidPayloadError as exc:
                await self._set_aside_order(order, str(exc))
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)

    async def _set_aside_order(self, order: Element, error: str) -> None:
        """Dead-lettered once per change of the order; the orders around it go on."""
        facts = {
            "order_id": text(order, "order_id"),
            "state": text(order, "state"),
            "created_at": text(order, "created_at"),
        }
        seen = (facts["order_id"], hashlib.sha256(tostring(order)).hexdigest())
        if seen in self._set_aside:
            return
        log.warning("fnac order skipped: %s", error)
        if self._unreadable is not None:
            await self._unreadable(facts, error)
        self._set_aside.add(seen)


@dataclass(frozen=True, slots=True)
class _LineFact:
    """The StockEvents of one order detail."""

    m: FnacMapping
    oid: str
    line: str
    sku: str
    state: str

    def __call__(self, kind: str, type_: str, qty: int, occurred_at: int) -> StockEventDict:
        m = self.m
        return stock_event(
            event_id=event_id(m.channel, m.shop, "order", self.oid, "line", self.line, kind),
            type=type_,
            sku=self.sku,
            qty=qty,
            channel=m.channel,
            occurred_at=occurred_at,
            order_id=f"{m.channel}:{self.oid}",
            source_ref=self.line,
            reason=self.state,
        )


_ALPHA2 = {"FRA": "FR", "BEL": "BE", "ESP": "ES", "PRT": "PT", "CHE": "CH", "LUX": "LU"}


def _qty(detail: Element) -> int:
    raw = text(detail, "quantity")
    qty = int(raw)
    if qty <= 0:
        raise ValueError(f"quantity {raw!r}")
    return qty
