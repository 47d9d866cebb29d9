"""Reservations: order lines, checkout holds and backorders.

An order line or a hold is accepted only if one location serving its channel has
``available`` for the whole quantity (all or nothing per line): the event's location if it
names one, else the serving location with the most available (first in the SKU's location
order on a tie). A live hold with the same order_id counts as available at its location,
and is converted (released, then the order reserves) when the order is accepted; a second
hold with the same id replaces the first the same way.

A backorder (channel policy ``on_insufficient: backorder``) reserves nothing when placed:
it waits in a FIFO queue and takes units as they become available (``backorder_allocated``
movements), so ``reserved`` never exceeds what was available and the no-oversell invariant
holds for backorders too.

With lots, a location gives a line what :func:`streams.ledger.lots.allocatable` says for
the line's channel (expired lots and lots short of the channel's ``min_shelf_life_days``
do not count), and the line takes lots earliest expiry first (:mod:`streams.ledger.lots`).
"""

from __future__ import annotations

from streams.ledger import lots, preorders
from streams.ledger.availability import channel_quantity
from streams.ledger.outcome import Step
from streams.ledger.state import Backorder, Hold, LocationStock

__all__ = [
    "allocate_backorders",
    "hold",
    "hold_released",
    "order_cancelled",
    "order_placed",
    "order_shipped",
]


def _units(step: Step, name: str, loc: LocationStock, channel: str | None, extra: int = 0) -> int:
    """Units an order line or hold of ``channel`` may reserve at the location now."""
    return lots.allocatable(
        loc,
        step.config.safety_stock(name),
        lots.day_of(step.event["occurred_at"]),
        step.config.min_shelf_life_days(channel),
        extra,
    )


def _before(step: Step, channel: str | None) -> int:
    return channel_quantity(
        step.state, step.config, channel, lots.day_of(step.event["occurred_at"])
    )


def _choose(step: Step, channel: str | None, hold: Hold | None) -> tuple[str | None, int]:
    """Location to reserve at and the units it can give (a held order counts its hold)."""
    locations = step.state.locations
    wanted = step.event.get("location")
    if wanted is not None:
        names: list[str] = [wanted] if wanted in locations else []
    else:
        ch = step.config.channels.get(channel) if channel is not None else None
        names = [n for n in locations if ch is None or ch.serves(n)]
    best, best_units = None, -1
    config = step.config
    day = lots.day_of(step.event["occurred_at"])
    min_days = config.min_shelf_life_days(channel)
    for name in names:
        extra = hold.qty if hold is not None and hold.location == name else 0
        units = lots.allocatable(locations[name], config.safety_stock(name), day, min_days, extra)
        if units > best_units:
            best, best_units = name, units
    return best, max(best_units, 0)


def _release_hold(step: Step, order_id: str, hold: Hold, reason: str) -> None:
    step.move(
        hold.location, "hold_released", reserved=-hold.qty, reason=reason, channel=hold.channel
    )
    del step.state.holds[order_id]


def order_placed(step: Step) -> None:
    ev, state = step.event, step.state
    qty, channel, order_id = ev["qty"], ev.get("channel"), ev["order_id"]
    before = _before(step, channel)
    if not state.locations:
        step.decide("rejected", qty, before, reason="unknown_sku")
        return
    held = state.holds.get(order_id)
    name, units = _choose(step, channel, held)
    if name is not None and units >= qty:
        if held is not None:
            _release_hold(step, order_id, held, "converted to order")
        used = lots.reserve(step, name, qty, "order_placed", order_id, channel)
        lines = state.orders.setdefault(order_id, {})
        lines[name] = lines.get(name, 0) + qty
        step.decide("accepted", qty, before, location=name, lots=used)
    elif step.config.preorders and _preorder(step, before):
        return
    elif step.config.on_insufficient(channel) == "backorder":
        waiting = state.backorders.get(order_id)
        if waiting is not None and waiting.preorder:  # beyond the order's pre-order room
            step.decide("rejected", qty, before, reason="preorder_cap")
            return
        if waiting is None:
            if _state_full(step):
                step.decide("rejected", qty, before, reason="sku_state_full")
                return
            state.backorders[order_id] = Backorder(qty, channel)
        else:
            waiting.qty += qty
        step.decide("backordered", qty, before, reason="insufficient_stock")
    else:
        step.decide("rejected", qty, before, reason="insufficient_stock")
        step.alert(
            "oversell_attempt",
            f"{state.sku}: order {order_id} asked {qty} on "
            f"{channel or 'an unnamed channel'}, {units} available; rejected",
            value=qty,
            threshold=units,
            channel=channel,
        )


def _preorder(step: Step, before: int) -> bool:
    """True when the line was taken as a pre-order (:mod:`streams.ledger.preorders`); a
    SKU without an allowance on the line's channel costs one lookup."""
    caps = step.config.preorders.get(step.state.sku) if step.config.preorders else None
    if not caps or step.event.get("channel") not in caps:
        return False
    if step.event["order_id"] not in step.state.backorders and _state_full(step):
        return False
    return preorders.place(step, caps, before)


def order_cancelled(step: Step) -> None:
    """Release up to qty (0: all) of the order: its backorder first, then its reservations."""
    ev, state = step.event, step.state
    order_id = ev["order_id"]
    lines, waiting = state.orders.get(order_id), state.backorders.get(order_id)
    if not lines and waiting is None:
        step.out.skipped = "unknown_order"
        return
    left = ev["qty"] or 2**62
    if waiting is not None:
        take = min(waiting.qty, left)
        waiting.qty -= take
        left -= take
        if not waiting.qty:
            del state.backorders[order_id]
    if lines:
        for name in list(lines):
            take = min(lines[name], left)
            if take:
                for lot, units in lots.take_order(state, order_id, name, take):
                    step.move(name, "order_cancelled", reserved=-units, lot=lot)
                lines[name] -= take
                left -= take
            if not lines[name]:
                del lines[name]
        if not lines:
            del state.orders[order_id]
            state.order_lots.pop(order_id, None)


def order_shipped(step: Step) -> None:
    """Consume the order's reservation (qty 0: all of it). Units shipped beyond it are a
    physical fact: they leave on_hand anyway (reason ``unreserved``), never dropped. Shipped
    from a known location other than the reserved one, the units leave that location's
    on_hand and the reservation is released where it was."""
    ev, state = step.event, step.state
    order_id, qty = ev["order_id"], ev["qty"]
    lines = state.orders.get(order_id) or {}
    if qty == 0 and not lines:
        step.out.skipped = "unknown_order"
        return
    left = qty or sum(lines.values())
    wanted = ev.get("location")
    names = sorted(lines, key=lambda n: n != wanted)  # the named location first
    last = wanted
    for name in names:
        take = min(lines[name], left)
        if take and wanted is not None and wanted != name and wanted in state.locations:
            # shipped from another location than the one reserved: the reservation ends
            # where it was, the units leave where they physically were
            for lot, units in lots.take_order(state, order_id, name, take):
                step.move(
                    name, "order_shipped", reserved=-units, lot=lot, reason="shipped elsewhere"
                )
            lots.remove(step, wanted, take, "order_shipped", sell=True)
            lines[name] -= take
            left -= take
        elif take:
            _ship_reserved(step, order_id, name, take)
            lines[name] -= take
            left -= take
            last = last or name
        if not lines[name]:
            del lines[name]
    if order_id in state.orders and not lines:
        del state.orders[order_id]
        state.order_lots.pop(order_id, None)
    if left > 0:
        waiting = state.backorders.get(order_id)
        if waiting is not None:
            waiting.qty -= min(waiting.qty, left)
            if not waiting.qty:
                del state.backorders[order_id]
        name = last or step.config.default_location
        lots.remove(step, name, left, "order_shipped", sell=True, reason="unreserved")


def _ship_reserved(step: Step, order_id: str, name: str, take: int) -> None:
    """Consume ``take`` reserved units of the order at ``name``: its lots, then unlotted. A
    lot a physical removal emptied meanwhile ships what it has; the rest leaves the
    unlotted part."""
    loc = step.state.location(name)
    for lot, units in lots.take_order(step.state, order_id, name, take):
        entry = loc.lots.get(lot) if lot is not None else None
        if lot is None or (entry is not None and entry.on_hand >= units):
            step.move(name, "order_shipped", on_hand=-units, reserved=-units, lot=lot)
            continue
        have = entry.on_hand if entry is not None else 0
        step.move(name, "order_shipped", on_hand=-have, reserved=-units, lot=lot)
        step.move(name, "order_shipped", on_hand=have - units, reason="lot short")


def hold(step: Step) -> None:
    ev, state, config = step.event, step.state, step.config
    qty, channel, order_id = ev["qty"], ev.get("channel"), ev["order_id"]
    before = _before(step, channel)
    if not state.locations:
        step.decide("rejected", qty, before, reason="unknown_sku")
        return
    held = state.holds.get(order_id)
    name, units = _choose(step, channel, held)
    if name is None or units < qty:
        step.decide("rejected", qty, before, reason="insufficient_stock")
        return
    if held is not None:
        _release_hold(step, order_id, held, "hold replaced")
    step.move(name, "hold", reserved=qty)
    expires = ev.get("expires_at")
    if expires is None:
        expires = ev["occurred_at"] + config.hold_ttl_ms
    state.holds[order_id] = Hold(ev["event_id"], name, qty, channel, expires)
    step.decide("accepted", qty, before, location=name)


def hold_released(step: Step) -> None:
    """Release up to qty (0: all) of a hold. ``reason: expired`` is the ledger timer's
    release published to the SKU's partition: it releases the whole hold as
    ``hold_expired``, and only if the hold is still due at the event's occurred_at."""
    ev, state = step.event, step.state
    order_id = ev["order_id"]
    held = state.holds.get(order_id)
    if held is None:
        step.out.skipped = "unknown_hold"
        return
    if ev.get("reason") == "expired":  # the timer's release, sent through the log
        if held.expires_at > ev["occurred_at"]:  # refreshed since the timer looked
            step.out.skipped = "hold_not_expired"
            return
        step.move(
            held.location,
            "hold_expired",
            reserved=-held.qty,
            reason="hold expired",
            channel=held.channel,
        )
        del state.holds[order_id]
        return
    take = held.qty if ev["qty"] == 0 else min(ev["qty"], held.qty)
    step.move(held.location, "hold_released", reserved=-take, channel=held.channel)
    held.qty -= take
    if not held.qty:
        del state.holds[order_id]


def allocate_backorders(step: Step) -> None:
    """Give available units to waiting backorders, oldest first (partial allocations)."""
    state, config = step.state, step.config
    for order_id, waiting in list(state.backorders.items()):
        ch = config.channels.get(waiting.channel) if waiting.channel is not None else None
        for name, loc in state.locations.items():
            if ch is not None and not ch.serves(name):
                continue
            take = min(waiting.qty, _units(step, name, loc, waiting.channel))
            if take > 0:
                why = preorders.REASON if waiting.preorder else "backorder"
                lots.reserve(
                    step, name, take, "backorder_allocated", order_id, waiting.channel, why
                )
                lines = state.orders.setdefault(order_id, {})
                lines[name] = lines.get(name, 0) + take
                waiting.qty -= take
            if not waiting.qty:
                break
        if not waiting.qty:  # older backorders took what they could use first (FIFO)
            del state.backorders[order_id]


def _state_full(step: Step) -> bool:
    """True when the SKU holds ``max_open_entries`` open orders, backorders and holds: a new
    backorder is refused, so its state stays a record Kafka takes. Alerts once on the way,
    at 80 % of the cap."""
    state, cap = step.state, step.config.max_open_entries
    entries = state.open_entries()
    if entries + 1 == cap * 4 // 5:
        step.alert(
            "other",
            f"{state.sku}: {entries + 1} open orders, backorders and holds, 80 % of the "
            f"{cap} a SKU may hold; new backorders are refused at {cap}: ship, cancel or "
            "raise max_open_entries",
            value=entries + 1,
            threshold=cap,
        )
    return entries >= cap
