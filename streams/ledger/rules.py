"""The ledger rules: ``apply(state, event, config, now_ms)``.

Pure functions over plain data (no Faust, no I/O, no clock: the caller passes ``now_ms``).

Contract:

* ``state`` is mutated **in place** and returned (``None`` creates it). Nothing is
  deep-copied per event; the agent stores the returned object.
* A malformed event raises :class:`InvalidEvent` *before* anything changes: the caller
  dead-letters it, and it is not recorded as applied.
* A business refusal (insufficient stock, unknown SKU, a transfer beyond what the source
  holds, a quarantine release beyond what is quarantined) is not an error: it is a
  ``rejected`` Decision in the returned :class:`Emitted`, and nothing moves. Transfers and
  quarantine releases get a Decision only when refused; their movements say they happened.
* An ``event_id`` already applied returns ``Emitted(duplicate=True)`` and changes nothing.
* A ``stock_count`` older than the newest count of its (source, location) by
  ``source_seq``, or older than the location's last count by ``as_of``, is recorded as
  applied but has no effect (``Emitted.skipped = "stale_count"``): conflict rule 4.
* A ``sale``, ``return_received``, ``adjustment`` or ``receipt`` that occurred before its
  location's last count is in that count: recorded as applied without moving on_hand
  (``skipped = "before_count"``; a receipt still lowers ``incoming``), so counts and deltas
  give the same stock whatever their arrival order (conflict rule 5).
"""

from __future__ import annotations

from typing import Any

from schemas.events import check
from streams.ledger import lots, orders, preorders, stock
from streams.ledger.config import LedgerConfig
from streams.ledger.outcome import Emitted, InvalidEvent, Step
from streams.ledger.state import SkuState, event_key

__all__ = ["Emitted", "InvalidEvent", "apply"]


def apply(
    state: SkuState | None, event: dict[str, Any], config: LedgerConfig, now_ms: int
) -> tuple[SkuState, Emitted]:
    """Apply one StockEvent (as the Avro decoder gives it) to the SKU's state."""
    kind = check(event, default_location=config.default_location, max_qty=config.max_qty)
    sku = event["sku"]
    if state is None:
        state = SkuState(sku=sku)
    elif state.sku != sku:
        raise InvalidEvent("wrong_sku", f"event for {sku!r} routed to the state of {state.sku!r}")
    key = event_key(event["event_id"])
    if state.seen(key):
        return state, Emitted(duplicate=True)
    step = Step(state, event, config, now_ms)
    if kind in _COUNTED_DELTAS and _before_last_count(state, event, config):
        step.out.skipped = "before_count"  # the count already holds it (conflict rule 5)
    else:
        _HANDLERS[kind](step)
    if state.backorders:
        orders.allocate_backorders(step)
    state.remember(key, config.applied_ids_limit, now_ms, config.applied_ids_window_ms)
    return state, step.finish()


# -- stock handlers ---------------------------------------------------------------------

# Deltas of one location that a physical count of it includes when they happened before it
_COUNTED_DELTAS = frozenset({"sale", "return_received", "adjustment"})


def _before_last_count(state: SkuState, event: dict[str, Any], config: LedgerConfig) -> bool:
    """True when the event happened before its location's last count: the count (which
    rebases on the movements *after* its time) already holds it, so a delta arriving late is
    absorbed instead of moving the stock twice. A delta of the count's very millisecond is
    applied (sources stamping everything with one time keep their old figures)."""
    loc = state.locations.get(event.get("location") or config.default_location)
    return (
        loc is not None
        and loc.last_count_as_of is not None
        and event["occurred_at"] < loc.last_count_as_of
    )


def _where(step: Step) -> str:
    return step.event.get("location") or step.config.default_location


def _sale(step: Step) -> None:
    lots.remove(step, _where(step), step.event["qty"], "sale", sell=True)


def _return(step: Step) -> None:
    qty = step.event["qty"]
    bad = step.event.get("disposition") in ("damaged", "quarantine")
    step.move(_where(step), "return_received", on_hand=qty, unsellable=qty if bad else 0)


def _receipt(step: Step) -> None:
    name, qty = _where(step), step.event["qty"]
    loc = step.state.locations.get(name)
    incoming = loc.incoming if loc is not None else 0
    if step.state.purchases:  # a SKU with a pre-order allowance follows its purchase orders
        preorders.receipt(step, name, qty, incoming - min(qty, incoming))
    if _before_last_count(step.state, step.event, step.config):  # the count holds the units
        step.out.skipped = "before_count"
        if incoming:
            step.move(name, "receipt", incoming=-min(qty, incoming))
        return
    step.move(
        name,
        "receipt",
        on_hand=qty,
        incoming=-min(qty, incoming),
        lot=step.event.get("lot"),
        expires_on=step.event.get("expires_on"),
    )


def _adjustment(step: Step) -> None:
    """An increase goes to the named lot (or the unlotted part); a decrease takes the named
    lot's units, and the rest (or all, without a lot) as a correction (streams.ledger.lots)."""
    name, qty, lot = _where(step), step.event["qty"], step.event.get("lot")
    if qty > 0 or (lot is None and not step.state.location(name).lots):
        step.move(name, "adjustment", on_hand=qty, lot=lot)
        return
    entry = step.state.location(name).lots.get(lot) if lot is not None else None
    have = min(-qty, entry.on_hand) if entry is not None else 0
    if have:
        step.move(name, "adjustment", on_hand=-have, lot=lot)
    if -qty - have:
        lots.remove(step, name, -qty - have, "adjustment", sell=False)


def _stock_count(step: Step) -> None:
    """Rebase on_hand on an absolute count (conflict rules 4 and 5)."""
    ev, state, config = step.event, step.state, step.config
    name, count = _where(step), ev["qty"]
    as_of = ev["as_of"] if ev.get("as_of") is not None else ev["occurred_at"]
    seq_key, seq = f"{ev.get('source', 'unknown')}|{name}", ev.get("source_seq")
    loc = state.locations.get(name)
    high = state.seq_high.get(seq_key)
    if (seq is not None and high is not None and seq <= high) or (
        loc is not None and loc.last_count_as_of is not None and as_of < loc.last_count_as_of
    ):
        step.out.skipped = "stale_count"
        return
    if loc is not None and as_of < state.journal_floor:
        step.out.skipped = "count_before_journal"
        step.alert(
            "other",
            f"{state.sku} at {name}: count as of {as_of} is older than the "
            "journal kept; raise journal_limit / journal_max_age_seconds or send a "
            "fresher count",
            value=count,
            location=name,
        )
        return
    if seq is not None:
        state.seq_high[seq_key] = seq
    if loc is None:
        step.move(name, "stock_count", on_hand=count, reason="first count", journal_at=as_of)
    else:
        diff = count + state.on_hand_moved_after(loc, as_of) - loc.on_hand
        if diff > 0 or (diff and not loc.lots):
            step.move(
                name, "discrepancy", on_hand=diff, reason="count discrepancy", journal_at=as_of
            )
        elif diff:  # re-bases the unlotted part first (streams.ledger.lots)
            for lot, units in lots.removal_parts(loc, -diff, lots.day_of(as_of), sell=False):
                step.move(
                    name,
                    "discrepancy",
                    on_hand=-units,
                    reason="count discrepancy",
                    journal_at=as_of,
                    lot=lot,
                )
        limit = config.discrepancy_alert_threshold
        if abs(diff) > limit:
            step.alert(
                "discrepancy",
                f"{state.sku} at {name}: count {count} as of {as_of} "
                f"differs from the ledger by {diff:+d}",
                value=diff,
                threshold=limit,
                location=name,
            )
    state.location(name).last_count_as_of = as_of


_HANDLERS = {
    "order_placed": orders.order_placed,
    "order_cancelled": orders.order_cancelled,
    "order_shipped": orders.order_shipped,
    "sale": _sale,
    "return_received": _return,
    "receipt": _receipt,
    "adjustment": _adjustment,
    "stock_count": _stock_count,
    "transfer": stock.transfer,
    "quarantine_released": stock.quarantine_released,
    "purchase_ordered": stock.purchase_ordered,
    "purchase_cancelled": stock.purchase_cancelled,
    "purchase_late": preorders.purchase_late,
    "hold": orders.hold,
    "hold_released": orders.hold_released,
}
