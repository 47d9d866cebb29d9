"""Back-office movements with a limit: transfers, quarantine releases, supplier orders.

A transfer or a quarantine release that asks for more than the location has is refused as a
whole with a ``rejected`` Decision (nothing moves): the ledger does not invent stock at the
destination nor write off units it never quarantined. Supplier orders move ``incoming``
only, which is never sellable: it tells buyers what is on its way.
"""

from __future__ import annotations

from streams.ledger import lots, preorders
from streams.ledger.outcome import Step
from streams.ledger.state import LocationStock

__all__ = [
    "purchase_cancelled",
    "purchase_ordered",
    "quarantine_released",
    "transfer",
    "transferable",
]


def _where(step: Step) -> str:
    return step.event.get("location") or step.config.default_location


def transferable(loc: LocationStock | None) -> int:
    """Units a transfer may take out of a location: ``on_hand - reserved - unsellable``.

    Reserved units are promised to orders and holds that ship from this location: moving
    them away would leave those reservations uncovered. Unsellable units stay where they
    are inspected: a transfer moves sellable on_hand, and taking quarantined units out of
    on_hand would leave ``unsellable`` above ``on_hand``. Safety stock is a buffer kept
    back from the channels, not a claim on the units: it may be moved (the destination
    keeps its own).
    """
    if loc is None:
        return 0
    return max(0, loc.on_hand - loc.reserved - loc.unsellable)


def transfer(step: Step) -> None:
    ev = step.event
    qty, source = ev["qty"], _where(step)
    can = transferable(step.state.locations.get(source))
    if qty > can:
        step.decide("rejected", qty, can, location=source, reason="insufficient_stock")
        return
    parts = lots.transfer_parts(step.state.location(source), qty)
    for lot, units, _ in parts:  # earliest expiry first, then unlotted (streams.ledger.lots)
        step.move(source, "transfer", on_hand=-units, reason="transfer out", lot=lot)
    for lot, units, expires_on in parts:
        step.move(
            ev["to_location"],
            "transfer",
            on_hand=units,
            reason="transfer in",
            lot=lot,
            expires_on=expires_on,
        )


def quarantine_released(step: Step) -> None:
    """Quarantined units leave quarantine: ``resellable`` back to sellable stock
    (unsellable down), ``damaged`` written off (on_hand and unsellable down)."""
    ev = step.event
    qty, name = ev["qty"], _where(step)
    loc = step.state.locations.get(name)
    held = loc.unsellable if loc is not None else 0
    if qty > held:
        step.decide("rejected", qty, held, location=name, reason="insufficient_unsellable")
        return
    if ev["disposition"] == "damaged":
        step.move(name, "quarantine_released", on_hand=-qty, unsellable=-qty)
    else:
        step.move(name, "quarantine_released", unsellable=-qty)


def purchase_ordered(step: Step) -> None:
    """A supplier order line: ``incoming`` up until a receipt or a cancellation lowers it.
    A SKU with a pre-order allowance also keeps the line's open units and expected day."""
    name = _where(step)
    step.move(name, "purchase_ordered", incoming=step.event["qty"])
    if step.config.preorders and step.state.sku in step.config.preorders:
        preorders.purchase_ordered(step, name)


def purchase_cancelled(step: Step) -> None:
    """A cancelled supplier order line: ``incoming`` down by qty, never below zero."""
    name = _where(step)
    loc = step.state.locations.get(name)
    take = min(step.event["qty"], loc.incoming if loc is not None else 0)
    if not take:
        step.out.skipped = "nothing_incoming"
        return
    step.move(name, "purchase_cancelled", incoming=-take)
    if step.config.preorders and step.state.sku in step.config.preorders:
        preorders.purchase_cancelled(step, take)
