"""eMAG in: orders read by id when eMAG calls back (``?order_id=``) and polled by
``modified`` (``order/read`` with ``modifiedAfter``, paged), both through the intake.

Statuses (eMAG's numbers) and what each yields, per mapped line (``products[]``, the offer
``product_id`` → SKU; ids ``emag-ro/<account>/order/<id>/line/<line id>/<kind>``, eMAG's own
ids, so a callback and a poll of the same fact carry one id):

- 1 new: the seller must answer → :meth:`AcceptanceGate.expect`, then ``order_placed`` per
  line; the gate acknowledges (1 → 2) or cancels it from the ledger's decisions;
- 2 in progress, 3 prepared: ``order_placed`` (already placed when first seen new);
- 4 finalized: ``order_placed`` and ``order_shipped`` of the line's quantity;
- 5 returned: as finalized, plus ``return_received`` (resellable) of the line's quantity;
- 0 canceled: ``order_cancelled`` per line (the ``…/cancelled`` id the gate uses when it
  refuses, so the ledger releases once). A line removed from a live order (line status 0)
  is cancelled the same way.

With ``orders: book`` the order is one Order record instead of per-line events: ``placed``
(``…/order/<id>/placed``: its lines still counted, unit price in minor units, ship-to country
and postal code only) in statuses 1 to 5, ``cancelled`` (``…/order/<id>/cancelled``, the
gate's own id for a refusal) once canceled or every line removed; the acceptance gate learns
the outcome from the order book's state, and shipments made here are confirmed on eMAG by
:class:`~connectors.emag.shipping.EmagShipper`. A returned order's ``return_received`` stays a
StockEvent (a stock fact, not a reservation).

Orders fulfilled by eMAG (``type`` 2, FBE) hold eMAG's stock, not ours: skipped. Only ids,
statuses, times and lines are read (and, for ``orders: book``, the shipping country and
postal code); the ``customer`` block (names, phones, addresses) is never copied into an
event, an Order or a dead letter.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from connectors.emag.client import EmagClient, emag_ms, emag_time
from connectors.emag.mapping import EmagMapping
from connectors.framework.acceptance import AcceptanceGate, AwaitedLine, AwaitedOrder
from connectors.framework.events import event_id, stock_event
from connectors.framework.orders import (
    OrderDict,
    minor_units,
    order_line,
    order_record,
    ship_to,
    stock_facts,
)
from connectors.framework.types import Delivery, InvalidPayloadError, StockEventDict

log = logging.getLogger(__name__)

CANCELED, NEW, IN_PROGRESS, PREPARED, FINALIZED, RETURNED = 0, 1, 2, 3, 4, 5
STATUSES = {
    CANCELED: "cancelled",
    NEW: "awaiting_acceptance",
    IN_PROGRESS: "placed",
    PREPARED: "placed",
    FINALIZED: "shipped",
    RETURNED: "returned",
}
FULFILLED_BY_EMAG = 2

Unreadable = Callable[[Mapping[str, Any], str], Awaitable[None]]


def status_of(order: Mapping[str, Any]) -> int:
    try:
        status = int(str(order.get("status")))
    except ValueError:
        status = -1
    if status not in STATUSES:
        raise InvalidPayloadError(
            f"eMAG order {order.get('id')!r}: status {order.get('status')!r} is not one of "
            f"{sorted(STATUSES)}"
        )
    return status


def lines_of(order: Mapping[str, Any], m: EmagMapping) -> list[tuple[dict[str, Any], str]]:
    """The order's lines of mapped offers, with their SKU."""
    found = []
    for line in order.get("products") or []:
        if not isinstance(line, dict):
            raise InvalidPayloadError(f"eMAG order {order.get('id')!r}: a line is not an object")
        sku = m.sku_for(line.get("product_id"))
        if sku is not None:
            found.append((line, sku))
    return found


def personal_data_free(order: Mapping[str, Any]) -> dict[str, Any]:
    """What of an order may reach Kafka (a dead letter): ids, status, times, lines."""
    lines = order.get("products")
    return {
        **{k: order.get(k) for k in ("id", "status", "type", "date", "modified") if k in order},
        "products": [
            {k: line.get(k) for k in ("id", "product_id", "quantity", "status")}
            for line in lines
            if isinstance(line, dict)
        ]
        if isinstance(lines, list)
        else None,
    }


class EmagInbound:
    """Normalises eMAG orders; the gate (``acceptance_gate``) is set by the runtime."""

    def __init__(
        self,
        mapping: EmagMapping,
        client: EmagClient | None = None,
        *,
        unreadable: Unreadable | None = None,
        orders_mode: str = "lines",
    ) -> None:
        self.mapping = mapping
        self.book = orders_mode == "book"
        self.channel = mapping.channel
        self._client = client
        self.unreadable = unreadable
        self.acceptance_gate: AcceptanceGate | None = None
        self._set_aside: set[tuple[str, str]] = set()

    async def handle(self, headers: Mapping[str, str], raw: bytes) -> Delivery:
        raise InvalidPayloadError(
            "eMAG calls back with GET /callbacks/<channel>/<key>?order_id=<id>, not a POST"
        )

    def normalise(self, order: Mapping[str, Any]) -> Delivery:
        m = self.mapping
        try:
            oid = int(str(order["id"]))
            status = status_of(order)
            placed_at = emag_ms(order["date"], m.timezone)
            modified = emag_ms(order.get("modified") or order["date"], m.timezone)
            lines = lines_of(order, m)
            fbe = str(order.get("type")) == str(FULFILLED_BY_EMAG)
            events = [] if fbe else self._events(oid, status, placed_at, modified, lines)
            records: list[OrderDict] = []
            if self.book:
                events = stock_facts(events)
                if not fbe:
                    records = self._records(order, oid, status, placed_at, modified, lines)
            awaited = None
            if status == NEW and not fbe:
                awaited = self._awaited(oid, placed_at, lines)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidPayloadError(
                f"eMAG order {order.get('id')!r} unreadable: {exc!r}"
            ) from exc
        if awaited is not None and awaited.lines:
            if self.acceptance_gate is not None:
                self.acceptance_gate.expect(awaited)
            else:
                log.warning("eMAG order %s awaits acceptance but no gate is wired", oid)
        digest = hashlib.sha256(
            orjson.dumps(personal_data_free(order), option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:16]
        return Delivery(
            m.channel,
            "orders",
            events=events,
            orders=records,
            delivery_keys=(f"{m.channel}:order:{oid}:{modified}:{digest}",),
            order_key=event_id(m.channel, m.account, "order", oid),
            order_version=modified,
        )

    def _awaited(
        self, oid: int, placed_at: int, lines: list[tuple[dict[str, Any], str]]
    ) -> AwaitedOrder:
        m = self.mapping
        window = int(m.accept_within_s * 1000)
        return AwaitedOrder(
            channel=m.channel,
            account=m.account,
            order_id=str(oid),
            lines=tuple(
                AwaitedLine(str(line["id"]), sku, int(line["quantity"]))
                for line, sku in lines
                if _active(line)
            ),
            deadline_ms=placed_at + window if window > 0 else None,
            book=self.book,
        )

    def _records(
        self,
        order: Mapping[str, Any],
        oid: int,
        status: int,
        placed_at: int,
        modified: int,
        lines: list[tuple[dict[str, Any], str]],
    ) -> list[OrderDict]:
        """``orders: book``: the order as Order records (see the module docstring)."""
        m = self.mapping
        if not lines:
            return []
        common: dict[str, Any] = {
            "order_id": f"{m.channel}:{oid}",
            "channel": m.channel,
            "placed_at": placed_at,
        }
        live = [(line, sku) for line, sku in lines if _active(line)]
        if status == CANCELED or not live:
            return [
                order_record(
                    event_id=event_id(m.channel, m.account, "order", oid, "cancelled"),
                    type="cancelled",
                    occurred_at=modified,
                    note="canceled",
                    **common,
                )
            ]
        rows = []
        for line, sku in live:
            qty = int(line["quantity"])
            if qty <= 0:
                raise InvalidPayloadError(f"eMAG order {oid} line {line.get('id')}: quantity {qty}")
            currency = line.get("currency")
            rows.append(
                order_line(
                    line["id"], sku, qty, minor_units(line.get("sale_price"), currency), currency
                )
            )
        customer = order.get("customer") or {}
        return [
            order_record(
                event_id=event_id(m.channel, m.account, "order", oid, "placed"),
                type="placed",
                occurred_at=placed_at,
                lines=rows,
                ship_to=_ship_to(customer),
                **common,
            )
        ]

    def _events(
        self,
        oid: int,
        status: int,
        placed_at: int,
        modified: int,
        lines: list[tuple[dict[str, Any], str]],
    ) -> list[StockEventDict]:
        m = self.mapping
        events: list[StockEventDict] = []
        for line, sku in lines:
            qty = int(line["quantity"])
            common: dict[str, Any] = {
                "sku": sku,
                "channel": m.channel,
                "order_id": f"{m.channel}:{oid}",
                "source_ref": str(line["id"]),
            }

            def eid(kind: str, line: Mapping[str, Any] = line) -> str:
                return event_id(m.channel, m.account, "order", oid, "line", line["id"], kind)

            if status == CANCELED or not _active(line):
                events.append(
                    stock_event(
                        event_id=eid("cancelled"),
                        type="order_cancelled",
                        qty=qty,
                        reason="cancelled",
                        occurred_at=modified,
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
            if status in (FINALIZED, RETURNED):
                events.append(
                    stock_event(
                        event_id=eid("shipped"),
                        type="order_shipped",
                        qty=qty,
                        occurred_at=modified,
                        **common,
                    )
                )
            if status == RETURNED:
                events.append(
                    stock_event(
                        event_id=eid("returned"),
                        type="return_received",
                        qty=qty,
                        occurred_at=modified,
                        disposition="resellable",
                        reason="return",
                        **common,
                    )
                )
        return events

    # ---- reading eMAG ---------------------------------------------------------------
    def _need_client(self) -> EmagClient:
        if self._client is None:
            raise RuntimeError("EmagInbound needs an EmagClient to read orders")
        return self._client

    async def called_back(self, order_id: int) -> Delivery | None:
        """The delivery of the order eMAG called back about (None: eMAG does not know it,
        or it cannot be read: dead-lettered)."""
        order = await self._need_client().order(order_id)
        if order is None:
            return None
        return await self._read(order)

    async def changed_since(self, checkpoint_ms: int) -> tuple[list[Delivery], int]:
        client = self._need_client()
        orders = await client.orders(modifiedAfter=emag_time(checkpoint_ms, self.mapping.timezone))
        deliveries = []
        for order in orders:
            delivery = await self._read(order)
            if delivery is not None:
                deliveries.append(delivery)
        newest = max((d.order_version or 0 for d in deliveries), default=checkpoint_ms)
        return deliveries, max(checkpoint_ms, newest)

    async def _read(self, order: Mapping[str, Any]) -> Delivery | None:
        try:
            return self.normalise(order)
        except InvalidPayloadError as exc:
            seen = (str(order.get("id")), str(order.get("modified")))
            if seen not in self._set_aside:  # dead-lettered once per change of the order
                log.warning("emag order skipped: %s", exc)
                if self.unreadable is not None:
                    await self.unreadable(personal_data_free(order), str(exc))
                self._set_aside.add(seen)
            return None


def _ship_to(customer: Mapping[str, Any]) -> dict[str, Any] | None:
    """Country (ISO alpha-2) and postal code of the shipping address: nothing else."""
    country = str(customer.get("shipping_country") or "").upper()
    if len(country) != 2:
        return None
    return ship_to(country, customer.get("shipping_postal_code"))


def _active(line: Mapping[str, Any]) -> bool:
    """A line eMAG still counts (status 1); a removed line has status 0."""
    return str(line.get("status", 1)) != "0"
