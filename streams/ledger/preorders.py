"""Pre-orders: order lines sold against ``incoming`` (open purchase orders) within a cap.

A SKU may have a pre-order allowance per channel (``preorders:`` in the ledger's YAML,
SKU -> channel -> cap). When an order line of such a channel finds ``available`` short, it
is a **pre-order** if it fits the room left:

    room = min(cap - units of the channel's waiting pre-orders,
               incoming at the locations serving the channel - every waiting backorder)

so the units pre-sold never exceed the cap, nor what is on its way (ordinary backorders
waiting before it count against the incoming too: they are served first). A pre-order is
a :class:`~streams.ledger.state.Backorder` marked ``preorder``: it reserves nothing when
placed (``reserved`` never exceeds what is on hand), its Decision is ``backordered`` with
reason ``preorder``, ``preorder: true`` and ``promised_on``, and it takes units as they
arrive, oldest first, before any new order may (``streams.ledger.orders.allocate_backorders``
runs after every event of a SKU with waiting backorders).

The promised day is the expected day of the purchase order whose units the pre-order's
place in the queue falls on: open purchase orders sorted by expected day (unknown last),
their open units added up until they cover every waiting backorder and this line. The
ledger learns the days from ``purchase_ordered`` events (``expected_on``, set by the
purchasing service) and keeps the open units per purchase order, lowered by receipts and
cancellations that name it, **only for SKUs with an allowance**: a SKU without one does no
extra work and stores nothing more.

A cancellation that leaves the incoming below the waiting pre-orders raises a
``preorder_at_risk`` alert listing the pre-orders it no longer covers (newest first: the
oldest keep their place), by order id only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from streams.ledger.availability import preorder_figures as room_figures
from streams.ledger.availability import preorder_room as room
from streams.ledger.availability import serving
from streams.ledger.config import LedgerConfig
from streams.ledger.outcome import Step
from streams.ledger.state import Backorder, SkuState

__all__ = [
    "AT_RISK",
    "REASON",
    "place",
    "purchase_cancelled",
    "purchase_late",
    "purchase_ordered",
    "receipt",
    "view",
]

AT_RISK = "preorder_at_risk"
_EPOCH = date(1970, 1, 1).toordinal()
REASON = "preorder"


def _promised(state: SkuState, position: int, names: list[str]) -> int | None:
    """Expected day of the purchase order the ``position``-th waiting unit comes from."""
    pos = sorted(
        (p for p in state.purchases.values() if p[0] in names and p[1] > 0),
        key=lambda p: (p[2] is None, p[2] or 0),
    )
    covered = 0
    for _, units, expected in pos:
        covered += units
        if covered >= position:
            return int(expected) if expected is not None else None
    return None


def place(step: Step, caps: Mapping[str, int], before: int) -> bool:
    """Take the order line as a pre-order when it fits the room; False when it does not
    (the caller applies the channel's policy: reject or backorder)."""
    ev, state = step.event, step.state
    qty, channel, order_id = ev["qty"], ev.get("channel"), ev["order_id"]
    waiting = state.backorders.get(order_id)
    if waiting is not None and (not waiting.preorder or waiting.channel != channel):
        return False  # one queue entry per order: it stays what it is
    if qty > room(state, step.config, caps, channel, ev.get("location")):
        return False
    ahead = sum(b.qty for k, b in state.backorders.items() if k != order_id)
    names = serving(state, step.config, channel, ev.get("location"))
    promised = _promised(state, ahead + qty + (waiting.qty if waiting else 0), names)
    if waiting is None:
        state.backorders[order_id] = Backorder(qty, channel, True, promised)
    else:  # a second line of one order: one queue entry, promised for its last unit
        waiting.qty += qty
        waiting.promised = promised
    step.decide("backordered", qty, before, reason=REASON, preorder=True, promised_on=promised)
    return True


# -- purchase orders of a SKU with an allowance ------------------------------------------


def purchase_ordered(step: Step, name: str) -> None:
    ev, purchases = step.event, step.state.purchases
    ref = ev["source_ref"]
    entry = purchases.get(ref)
    if entry is None:
        purchases[ref] = [name, ev["qty"], ev.get("expected_on")]
    else:
        entry[1] += ev["qty"]
        if ev.get("expected_on") is not None:
            entry[2] = ev["expected_on"]


def receipt(step: Step, name: str, units: int, incoming_after: int) -> None:
    """A receipt naming a purchase order lowers its open units; then the open units of the
    location's purchase orders are kept within its ``incoming`` (a receipt naming none
    lowered it too): the earliest expected give way first."""
    state = step.state
    _lower(state, step.event.get("source_ref"), units)
    _within(state, name, incoming_after)


def _within(state: SkuState, name: str, incoming: int) -> None:
    """Keep the open units of the location's purchase orders within its ``incoming``."""
    here = sorted(
        (p for p in state.purchases.items() if p[1][0] == name),
        key=lambda p: (p[1][2] is None, p[1][2] or 0, p[0]),
    )
    over = sum(entry[1] for _, entry in here) - incoming
    for ref, entry in here:
        if over <= 0:
            break
        take = min(over, entry[1])
        _lower(state, ref, take)
        over -= take


def purchase_cancelled(step: Step, units: int) -> None:
    """A cancelled purchase order line: its open units down; the waiting pre-orders the
    incoming no longer covers are listed in a ``preorder_at_risk`` alert."""
    state = step.state
    _lower(state, step.event["source_ref"], units)
    name = step.event.get("location") or step.config.default_location
    _within(state, name, state.location(name).incoming)
    incoming = sum(loc.incoming for loc in state.locations.values())
    waiting = list(state.backorders.items())
    uncovered = sum(b.qty for _, b in waiting) - incoming
    if uncovered <= 0:
        return
    risky: list[str] = []
    left = uncovered
    for order_id, b in reversed(waiting):  # the newest lose their place first
        if left <= 0:
            break
        if b.preorder:
            risky.append(order_id)
        left -= b.qty
    if not risky:
        return
    step.alert(
        AT_RISK,
        f"{state.sku}: purchase order {step.event['source_ref']} cancelled {units} unit(s); "
        f"{uncovered} pre-sold unit(s) are no longer on their way; pre-orders at risk: "
        f"{', '.join(sorted(risky))}",
        value=uncovered,
        threshold=incoming,
    )


def purchase_late(step: Step) -> None:
    """A purchase order past its expected day (``purchase_late``, from the purchasing
    service; no stock effect): a ``preorder_at_risk`` alert lists the waiting pre-orders
    whose units are to come from it (their place in the queue falls on its open units)."""
    state, ref = step.state, step.event["source_ref"]
    late = state.purchases.get(ref)
    if late is None or not any(b.preorder for b in state.backorders.values()):
        step.out.skipped = "no_preorders"
        return
    ordered = sorted(
        (p for p in state.purchases.items() if p[1][1] > 0),
        key=lambda p: (p[1][2] is None, p[1][2] or 0, p[0]),
    )
    start = 0
    for name, entry in ordered:
        if name == ref:
            break
        start += entry[1]
    end = start + late[1]  # the late order's units are queue places start+1 .. end
    risky, units, place = [], 0, 0
    for order_id, b in state.backorders.items():
        first, place = place + 1, place + b.qty
        if b.preorder and first <= end and place > start:
            risky.append(order_id)
            units += b.qty
    if not risky:
        step.out.skipped = "no_preorders"
        return
    step.alert(
        AT_RISK,
        f"{state.sku}: purchase order {ref} is late ({step.event['qty']} unit(s) open); "
        f"{units} pre-sold unit(s) wait for it; pre-orders at risk: {', '.join(sorted(risky))}",
        value=units,
        threshold=late[1],
    )


def view(state: SkuState, config: LedgerConfig) -> dict[str, Any] | None:
    """The pre-order part of ``GET /v1/stock/{sku}``: what each channel with an allowance
    may still pre-sell, and the waiting pre-orders (order id, channel, units, promised day
    in ISO 8601), oldest first; None for a SKU without either."""
    caps = config.preorders.get(state.sku)
    waiting = [(k, b) for k, b in state.backorders.items() if b.preorder]
    if not caps and not waiting:
        return None
    return {
        "room": room_figures(state, config, caps) if caps else {},
        "waiting": [
            {
                "order_id": order_id,
                "channel": b.channel,
                "qty": b.qty,
                "promised_on": None
                if b.promised is None
                else date.fromordinal(_EPOCH + b.promised).isoformat(),
            }
            for order_id, b in waiting
        ],
    }


def _lower(state: SkuState, ref: str | None, units: int) -> None:
    entry = state.purchases.get(ref) if ref is not None else None
    if entry is None:
        return
    entry[1] -= min(units, entry[1])
    if entry[1] <= 0:
        del state.purchases[ref]  # type: ignore[arg-type]
