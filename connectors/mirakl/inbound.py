"""Mirakl in: orders polled (OR11, by ``last_updated_date``), lines mapped by their state.

Mirakl sends no webhooks to a seller: every order changed since the checkpoint is listed
(``start_update_date``, offset paging, at most once a minute per operator by default).
Facts per order line, with ids made of Mirakl's own ids (``order_id``, ``order_line_id``),
so every poll of the same fact yields the same id:

- ``STAGING`` (the operator's fraud check): nothing yet; its lines are placed once the order
  awaits acceptance, after the gate was told (a line placed before would be decided
  before the gate waits for it);
- ``WAITING_ACCEPTANCE``: the order is handed to the acceptance gate (which accepts it with
  OR21 only when the ledger reserved every line, and refuses it otherwise, before its
  ``acceptance_decision_date``), then each line → ``order_placed`` of its quantity;
- ``WAITING_DEBIT``, ``WAITING_DEBIT_PAYMENT``, ``SHIPPING`` (accepted, awaiting payment or
  shipment), ``INCIDENT_OPEN``/``INCIDENT_CLOSED``: ``order_placed`` (the same id: nothing new
  once seen);
- ``SHIPPED``, ``TO_COLLECT``, ``RECEIVED``, ``CLOSED``: ``order_placed`` and
  ``order_shipped`` qty 0 (whatever the line still holds is consumed);
- each of a line's ``cancelations`` (some units cancelled, the rest goes on) →
  ``order_cancelled`` of its ``quantity`` (``…/line/<id>/cancelation/<id>/cancelled``);
- ``REFUSED``, ``CANCELED``: ``order_cancelled`` (qty 0: whatever the line still holds; the
  gate's own release of a refused order has the same id, so the ledger counts it once); a
  line first seen refused never reserved.
- ``REFUNDED`` (the line's units refunded): as shipped; the return itself is not read.

With ``orders: book`` the order is one Order record instead of per-line events: ``placed``
(its lines not refused or cancelled, unit price in minor units, ship-to country and postal
code only) once it awaits acceptance or later, ``cancelled`` (``…/order/<id>/cancelled``,
the gate's own id for a refusal) once every line is refused or cancelled; the acceptance
gate then learns the outcome from the order book's state. Shipments are the shipping
service's (confirmed on Mirakl by :class:`~connectors.mirakl.shipping.MiraklShipper`).

A release seen for the first time also asks the pusher to write the SKU's figure again
(``reassert``): Mirakl gave the units back to the offer by itself.

Only ids, SKUs, quantities, states and times are read: the order's ``customer`` (names,
addresses, phone, email) never leaves this module. An order that cannot be read is a dead
letter (its ids and states only), once per change of it; the poll goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

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
from connectors.mirakl.client import MiraklClient
from connectors.mirakl.mapping import MiraklMapping
from schemas.times import iso_to_ms

log = logging.getLogger(__name__)

AWAITING = "WAITING_ACCEPTANCE"
HOLDING = frozenset(
    {
        AWAITING,
        "WAITING_DEBIT",
        "WAITING_DEBIT_PAYMENT",
        "SHIPPING",
        "INCIDENT_OPEN",
        "INCIDENT_CLOSED",
    }
)
SHIPPED = frozenset({"SHIPPED", "TO_COLLECT", "RECEIVED", "CLOSED", "REFUNDED"})
ENDED = frozenset({"REFUSED", "CANCELED"})
NOT_YET = frozenset({"STAGING"})  # the operator's fraud check: not offered to the seller yet
STATES = HOLDING | SHIPPED | ENDED | NOT_YET

Unreadable = Callable[[Mapping[str, Any], str], Awaitable[None]]
"""Called with an order the connector cannot read and the reason (a dead letter)."""


def line_state(order: Mapping[str, Any], line: Mapping[str, Any]) -> str:
    state = str(line.get("order_line_state") or order.get("order_state") or "")
    if state not in STATES:
        raise InvalidPayloadError(
            f"Mirakl order line state {state!r} is not one of {sorted(STATES)}"
        )
    return state


def mapped_lines(order: Mapping[str, Any], m: MiraklMapping) -> list[tuple[dict[str, Any], str]]:
    """(line, state) of the lines whose ``offer_sku`` is an offer of this shop."""
    lines = order.get("order_lines")
    if not isinstance(lines, list):
        raise InvalidPayloadError("order_lines missing")
    return [(line, line_state(order, line)) for line in lines if m.knows(line.get("offer_sku"))]


def order_events(order: Mapping[str, Any], m: MiraklMapping) -> list[StockEventDict]:
    oid = str(order["order_id"])
    placed_at = iso_to_ms(str(order["created_date"]))
    updated_at = iso_to_ms(str(order["last_updated_date"]))
    events: list[StockEventDict] = []
    for line, state in mapped_lines(order, m):
        qty = int(line["quantity"])
        if qty <= 0:
            raise InvalidPayloadError(f"line {line.get('order_line_id')!r} quantity {qty}")
        lid = str(line["order_line_id"])
        common: dict[str, Any] = {
            "sku": str(line["offer_sku"]),
            "channel": m.channel,
            "order_id": f"{m.channel}:{oid}",
            "source_ref": lid,
        }

        def eid(kind: str, lid: str = lid) -> str:
            return event_id(m.channel, m.shop, "order", oid, "line", lid, kind)

        if state in NOT_YET:
            continue  # placed once it awaits acceptance, after the gate knows of it
        if state in ENDED:
            events.append(
                stock_event(
                    event_id=eid("cancelled"),
                    type="order_cancelled",
                    qty=0,
                    reason=state.lower(),
                    occurred_at=updated_at,
                    **common,
                )
            )
            continue
        events.append(
            stock_event(
                event_id=eid("placed"),
                type="order_placed",
                qty=qty,
                occurred_at=placed_at,
                **common,
            )
        )
        for cancelation in line.get("cancelations") or []:
            # units of the line cancelled while the rest goes on (OR30, the customer)
            events.append(
                stock_event(
                    event_id=event_id(
                        m.channel,
                        m.shop,
                        "order",
                        oid,
                        "line",
                        lid,
                        "cancelation",
                        cancelation["id"],
                        "cancelled",
                    ),
                    type="order_cancelled",
                    qty=int(cancelation["quantity"]),
                    reason="cancelation",
                    occurred_at=updated_at,
                    **common,
                )
            )
        if state in SHIPPED:
            events.append(
                stock_event(
                    event_id=eid("shipped"),
                    type="order_shipped",
                    qty=0,  # what the line still holds: its quantity less its cancelations
                    occurred_at=updated_at,
                    **common,
                )
            )
    return events


_ALPHA2 = {
    "FRA": "FR", "DEU": "DE", "ESP": "ES", "ITA": "IT", "BEL": "BE", "NLD": "NL",
    "LUX": "LU", "PRT": "PT", "AUT": "AT", "CHE": "CH", "GBR": "GB", "IRL": "IE",
    "POL": "PL", "ROU": "RO", "SWE": "SE", "DNK": "DK", "FIN": "FI", "CZE": "CZ",
}  # fmt: skip


def _ship_to(order: Mapping[str, Any]) -> dict[str, Any] | None:
    """Country and postal code of the shipping address: nothing else of the customer."""
    address = (order.get("customer") or {}).get("shipping_address") or {}
    country = str(address.get("country_iso_code") or "").upper()
    country = _ALPHA2.get(country, country)
    return ship_to(country, address.get("zip_code")) if len(country) == 2 else None


def order_records(order: Mapping[str, Any], m: MiraklMapping) -> list[OrderDict]:
    """``orders: book``: the order as Order records (see the module docstring)."""
    oid = str(order["order_id"])
    placed_at = iso_to_ms(str(order["created_date"]))
    currency = order.get("currency_iso_code")
    lines = mapped_lines(order, m)
    if not lines or order.get("order_state") in NOT_YET:
        return []
    common: dict[str, Any] = {
        "order_id": f"{m.channel}:{oid}",
        "channel": m.channel,
        "placed_at": placed_at,
    }
    live = [(line, state) for line, state in lines if state not in ENDED | NOT_YET]
    if not live:
        return [
            order_record(
                event_id=event_id(m.channel, m.shop, "order", oid, "cancelled"),
                type="cancelled",
                occurred_at=iso_to_ms(str(order["last_updated_date"])),
                note=str(order.get("order_state") or "").lower() or None,
                **common,
            )
        ]
    for line, _ in live:
        if int(line["quantity"]) <= 0:
            raise InvalidPayloadError(f"line {line.get('order_line_id')!r} quantity")
    return [
        order_record(
            event_id=event_id(m.channel, m.shop, "order", oid, "placed"),
            type="placed",
            occurred_at=placed_at,
            lines=[
                order_line(
                    line["order_line_id"],
                    str(line["offer_sku"]),
                    int(line["quantity"]),
                    minor_units(line.get("price_unit"), currency),
                    currency,
                )
                for line, _ in live
            ],
            ship_to=_ship_to(order),
            **common,
        )
    ]


def awaited(
    order: Mapping[str, Any], m: MiraklMapping, *, book: bool = False
) -> AwaitedOrder | None:
    """The order as the acceptance gate waits on it, when it awaits the seller's answer."""
    if order.get("order_state") != AWAITING:
        return None
    deadline = order.get("acceptance_decision_date")
    return AwaitedOrder(
        channel=m.channel,
        account=m.shop,
        order_id=str(order["order_id"]),
        lines=tuple(
            AwaitedLine(str(line["order_line_id"]), str(line["offer_sku"]), int(line["quantity"]))
            for line, _ in mapped_lines(order, m)
        ),
        deadline_ms=iso_to_ms(str(deadline)) if deadline else None,
        book=book,
    )


class MiraklInbound:
    """Normalises polled Mirakl orders; ``acceptance_gate`` (set by the runtime) answers the
    orders awaiting acceptance."""

    def __init__(
        self,
        mapping: MiraklMapping,
        client: MiraklClient | None = None,
        *,
        acceptance_gate: AcceptanceGate | None = None,
        unreadable: Unreadable | None = None,
        orders_mode: str = "lines",
    ) -> None:
        self.mapping = mapping
        self.book = orders_mode == "book"
        self.channel = mapping.channel
        self._client = client
        self.acceptance_gate = acceptance_gate
        self.unreadable = unreadable
        self.reassert: Callable[[Iterable[str]], None] | None = None  # set by the wiring
        self._released: set[str] = set()  # release event ids already reasserted
        self._set_aside: set[tuple[str, str]] = set()  # (id, last_updated_date) dead-lettered
        self._book_skus: dict[str, tuple[str, ...]] = {}  # book order id → its SKUs, this poll

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "Mirakl sends no webhooks to sellers: its orders are polled (poll_interval_s)"
        )

    def normalise(self, order: Mapping[str, Any]) -> Delivery:
        m = self.mapping
        try:
            events = [] if self.book else order_events(order, m)
            records = order_records(order, m) if self.book else []
            if records:
                self._book_skus[records[0]["order_id"]] = tuple(
                    str(line["offer_sku"]) for line, _ in mapped_lines(order, m)
                )
            waiting = awaited(order, m, book=self.book)
            version = iso_to_ms(str(order["last_updated_date"]))
            oid = str(order["order_id"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidPayloadError(
                f"Mirakl order {order.get('order_id')!r} unreadable: {exc!r}"
            ) from exc
        if waiting is not None and waiting.lines and self.acceptance_gate is not None:
            self.acceptance_gate.expect(waiting)  # before its lines reach the ledger
        return Delivery(
            m.channel,
            "orders",
            events=events,
            orders=records,
            delivery_keys=(f"{m.channel}:order:{oid}:{order['last_updated_date']}",),
            order_key=event_id(m.channel, m.shop, "order", oid),
            order_version=version,
        )

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        if self._client is None:
            raise RuntimeError("MiraklInbound needs a MiraklClient to poll")
        deliveries = []
        self._book_skus.clear()
        for order in await self._client.orders_updated_since(checkpoint_ms):
            try:
                deliveries.append(self.normalise(order))
            except InvalidPayloadError as exc:
                seen = (str(order.get("order_id")), str(order.get("last_updated_date")))
                if seen in self._set_aside:
                    continue
                log.warning("mirakl order skipped channel=%s: %s", self.channel, exc)
                if self.unreadable is not None:
                    await self.unreadable(order, str(exc))
                self._set_aside.add(seen)
        released = [
            (str(e["event_id"]), str(e["sku"]))
            for d in deliveries
            for e in d.events
            if e["type"] == "order_cancelled" and e["event_id"] not in self._released
        ]
        released += [  # book mode: an Order cancelled gives back every line of the order
            (str(o["event_id"]), sku)
            for d in deliveries
            for o in d.orders
            if o["type"] == "cancelled" and o["event_id"] not in self._released
            for sku in self._book_skus.get(str(o["order_id"]), ())
        ]
        if released and self.reassert is not None:
            # Mirakl gave these units back to the offers: the figure is written again
            self.reassert(sku for _, sku in released)
            self._released.update(eid for eid, _ in released)
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)
