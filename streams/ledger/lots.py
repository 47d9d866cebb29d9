"""Lots and expiry dates: which units of a location an event takes (FEFO).

A ``receipt`` may name a ``lot`` and its ``expires_on`` (a day); the location then keeps
the lot's own ``on_hand`` and ``reserved`` (:class:`streams.ledger.state.Lot`). The
location's quantities stay the totals: what no lot holds is its **unlotted** part
(``on_hand`` minus the lots' ``on_hand``). A SKU that never received a lot has no lot
anywhere and every rule works on the totals as before.

A lot is *eligible* for a channel at an event when it does not expire, or when its
``expires_on`` is at least the channel's ``min_shelf_life_days`` (default 0) after the
event's day (UTC day of ``occurred_at``): a lot expiring today is still sold, never the
day after. The rules, per event type:

* ``order_placed`` (and a backorder's allocation): the location's units for the channel
  are :func:`allocatable`: its free units (as without lots) but at most the free units of
  its eligible lots plus its unlotted free units. The line is reserved all or nothing, from
  the eligible lots earliest expiry first (FEFO; a lot without a date after every dated
  one, ties by name), then from the unlotted part: **lotted first, unlotted last**. One
  movement per lot; the Decision names the lots, comma-joined, earliest first.
* ``order_cancelled`` / ``order_shipped``: release / consume the order's own lots (those
  it reserved, then its unlotted part). A lot emptied meanwhile by a physical removal
  ships what it has and the rest leaves the unlotted part.
* ``hold``: checked against :func:`allocatable` for its channel, but held on the
  location's unlotted part (a hold names no lot); the order that converts it takes lots.
* ``sale`` (a till, a channel selling outside orders), and units shipped beyond an
  order's reservation: free units of unexpired lots FEFO, then unlotted units, then any
  lot's units FEFO; beyond all of that the unlotted part goes negative, as a location does.
* ``transfer``: moves free units earliest expiry first (expired lots included: moving them
  out is how they reach a disposal location), then unlotted ones; each lot arrives with
  its name and date.
* ``adjustment``: with a ``lot``, it corrects that lot (a decrease beyond the lot's units
  takes the rest as a correction below); without one, an increase is unlotted and a
  decrease is a correction: unlotted units first, then lots' free units, then any lot's,
  FEFO.
* ``stock_count`` (counts name no lot): the difference re-bases the unlotted part; a
  decrease beyond the unlotted units is taken from the lots as a correction.
* ``return_received`` and quarantine releases concern unlotted units (a return names no
  lot; returned units are not put back into a lot whose date is unknown to the return).

A lot left with no unit on hand nor reserved is forgotten. Two receipts of one lot with
different dates keep the earlier one (never sell beyond the earliest date known).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Protocol

from schemas.events import DAY_MS
from streams.ledger.config import LedgerConfig
from streams.ledger.state import LocationStock, Lot, SkuState


class Step(Protocol):
    """What these rules use of :class:`streams.ledger.outcome.Step` (which imports this
    module for its levels)."""

    state: SkuState
    event: dict[str, Any]
    config: LedgerConfig

    def move(
        self,
        location: str,
        kind: str,
        *,
        on_hand: int = 0,
        reserved: int = 0,
        reason: str | None = None,
        channel: str | None = None,
        lot: str | None = None,
    ) -> None: ...


__all__ = [
    "allocatable",
    "day_of",
    "eligible",
    "fefo",
    "lots_view",
    "remove",
    "reserve",
    "take_order",
    "transfer_parts",
    "unlotted_on_hand",
]

Parts = list[tuple[str | None, int]]  # (lot, units); lot None: the unlotted part


def day_of(ms: int) -> int:
    """The UTC day (days since 1970-01-01) of epoch milliseconds."""
    return ms // DAY_MS


def eligible(lot: Lot, day: int, min_days: int) -> bool:
    """True when ``lot`` may be allocated on ``day`` to a channel needing ``min_days``."""
    return lot.expires is None or lot.expires - day >= min_days


def fefo(loc: LocationStock) -> list[tuple[str, Lot]]:
    """The location's lots, earliest expiry first; undated lots last; ties by name."""
    return sorted(
        loc.lots.items(),
        key=lambda kv: (kv[1].expires is None, kv[1].expires or 0, kv[0]),
    )


def lots_view(loc: LocationStock) -> dict[str, dict[str, Any]]:
    """The location's lots as JSON values, FEFO: units, reserved, expiry date (ISO)."""
    return {
        name: {
            "on_hand": lot.on_hand,
            "reserved": lot.reserved,
            "expires_on": None if lot.expires is None else _iso_day(lot.expires),
        }
        for name, lot in fefo(loc)
    }


def _iso_day(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).isoformat()


_EPOCH = date(1970, 1, 1)


def unlotted_on_hand(loc: LocationStock) -> int:
    return loc.on_hand - sum(lot.on_hand for lot in loc.lots.values())


def allocatable(loc: LocationStock, safety: int, day: int, min_days: int, extra: int = 0) -> int:
    """Units an order line of a channel needing ``min_days`` may reserve at ``loc`` on
    ``day``; ``extra``: units about to be released there (a hold being converted)."""
    free = loc.free(safety) + extra
    if not loc.lots:
        return free if free > 0 else 0
    lot_free = pool = 0
    for lot in loc.lots.values():
        units = lot.on_hand - lot.reserved
        lot_free += units
        if units > 0 and (lot.expires is None or lot.expires - day >= min_days):
            pool += units
    unlotted = loc.free(0) + extra - lot_free  # negative when holds use lotted units
    return max(0, min(free, pool + unlotted))


def reserve(
    step: Step,
    name: str,
    qty: int,
    kind: str,
    order_id: str,
    channel: str | None,
    reason: str | None = None,
) -> list[str]:
    """Reserve ``qty`` units (at most :func:`allocatable`) of the order at ``name``: eligible
    lots FEFO, then unlotted; one movement per part. Returns the lots used, FEFO."""
    state = step.state
    loc = state.location(name)
    if not loc.lots:  # a SKU without lots: one movement, as ever
        step.move(name, kind, reserved=qty, reason=reason, channel=channel)
        return []
    parts: Parts = []
    left = qty
    if loc.lots:
        day = day_of(step.event["occurred_at"])
        min_days = step.config.min_shelf_life_days(channel)
        for named, lot in fefo(loc):
            units = lot.on_hand - lot.reserved
            if units > 0 and eligible(lot, day, min_days):
                take = min(units, left)
                parts.append((named, take))
                left -= take
                if not left:
                    break
    if left:
        parts.append((None, left))
    for lot_name, take in parts:
        step.move(name, kind, reserved=take, lot=lot_name, reason=reason, channel=channel)
    used = [named for named, _ in parts if named is not None]
    if used:
        held = state.order_lots.setdefault(order_id, {}).setdefault(name, {})
        for part, take in parts:
            if part is not None:
                held[part] = held.get(part, 0) + take
    return used


def take_order(state: SkuState, order_id: str, name: str, qty: int) -> Parts:
    """Split ``qty`` units of the order's reservation at ``name`` into its lots (first)
    and its unlotted part, and forget them from the order's lots."""
    by_location = state.order_lots.get(order_id)
    held = by_location.get(name) if by_location is not None else None
    if not held:
        return [(None, qty)]
    parts: Parts = []
    for lot_name in list(held):
        take = min(held[lot_name], qty)
        if take:
            parts.append((lot_name, take))
            held[lot_name] -= take
            qty -= take
        if not held[lot_name]:
            del held[lot_name]
        if not qty:
            break
    if qty:
        parts.append((None, qty))
    if not held and by_location is not None:
        del by_location[name]
        if not by_location:
            del state.order_lots[order_id]
    return parts


def _greedy(qty: int, caps: list[tuple[str | None, int]]) -> Parts:
    taken: dict[str | None, int] = {}
    left = qty
    for lot_name, cap in caps:
        if not left:
            break
        take = min(left, cap - taken.get(lot_name, 0))
        if take > 0:
            taken[lot_name] = taken.get(lot_name, 0) + take
            left -= take
    if left:
        taken[None] = taken.get(None, 0) + left
    return list(taken.items())


def removal_parts(loc: LocationStock, qty: int, day: int, *, sell: bool) -> Parts:
    """Which units a physical removal of ``qty`` takes: a sale (``sell``) FEFO from
    unexpired lots' free units, then unlotted, then any lot; a correction unlotted first,
    then lots' free units, then any lot. The rest: the unlotted part, below zero."""
    if not loc.lots:
        return [(None, qty)]
    order = fefo(loc)
    caps: list[tuple[str | None, int]] = []
    unlotted = (None, max(0, unlotted_on_hand(loc)))
    if sell:
        caps.extend((n, lot.on_hand - lot.reserved) for n, lot in order if eligible(lot, day, 0))
        caps.append(unlotted)
    else:
        caps.append(unlotted)
        caps.extend((n, lot.on_hand - lot.reserved) for n, lot in order)
    caps.extend((n, lot.on_hand) for n, lot in order)
    return _greedy(qty, caps)


def remove(
    step: Step, name: str, qty: int, kind: str, *, sell: bool, reason: str | None = None
) -> None:
    """Take ``qty`` units off ``name``'s on_hand, one movement per lot (:func:`removal_parts`)."""
    loc = step.state.location(name)
    for lot_name, take in removal_parts(loc, qty, day_of(step.event["occurred_at"]), sell=sell):
        step.move(name, kind, on_hand=-take, lot=lot_name, reason=reason)


def transfer_parts(loc: LocationStock, qty: int) -> list[tuple[str | None, int, int | None]]:
    """A transfer's units: free units of lots FEFO, then unlotted; (lot, units, expires_on)."""
    if not loc.lots:
        return [(None, qty, None)]
    order = fefo(loc)
    caps: list[tuple[str | None, int]] = [(n, lot.on_hand - lot.reserved) for n, lot in order]
    caps.append((None, max(0, unlotted_on_hand(loc))))
    return [
        (n, take, loc.lots[n].expires if n is not None else None) for n, take in _greedy(qty, caps)
    ]
