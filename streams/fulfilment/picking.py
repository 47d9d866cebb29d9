"""Pick confirmation: one line of a wave picked, maybe short.

Pure: :func:`confirm` applies a confirmation to a wave and returns the new wave and what to
send. A confirmation of a line already confirmed with the same quantity changes nothing
(``duplicate``); with another quantity it is refused (``PickError("conflict")``). A short
pick (picked < qty) sends, in this order:

1. an ``adjustment`` StockEvent of ``-missing`` at the wave's location (reason
   ``short_pick``, the line's lot): the units are not where the ledger thought;
2. an Order ``rerouted`` event naming the line and the missing quantity: the order book
   releases that many units of the line's reservation, keeps the picked ones, and routes a
   new line (``<line>/r<n>``) for the missing units alone;
3. a ``short_pick`` Alert.

Every id derives from the wave, order and line, so a confirmation sent again (or re-sent
after a crash) counts once downstream. The adjustment goes first: on the SKU's partition of
stock.events.v1 it is before the order book's release and new reservation, so the ledger
never reserves the missing units again at the same place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from schemas.events import stock_event
from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus

__all__ = ["PickError", "PickOutcome", "confirm"]

SOURCE = "fulfilment"
SHORT_REASON = "short_pick"


class PickError(ValueError):
    """A confirmation that cannot apply; ``reason`` is stable (HTTP status chosen from it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass
class PickOutcome:
    wave: Wave
    duplicate: bool = False
    stock_events: list[dict[str, Any]] = field(default_factory=list)
    order_events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def _status(orders: tuple[WaveOrder, ...], before: WaveStatus) -> WaveStatus:
    if before is WaveStatus.CLOSED:
        return before
    lines = [line for order in orders for line in order.lines]
    if all(line.confirmed for line in lines):
        return WaveStatus.PICKED
    return WaveStatus.PICKING if any(line.confirmed for line in lines) else WaveStatus.PLANNED


def confirm(
    wave: Wave, order_id: str, line_id: str, picked: Any, now_ms: int, by: str | None = None
) -> PickOutcome:
    """Apply "``picked`` units of ``line_id`` of ``order_id`` were picked" to ``wave``."""
    if isinstance(picked, bool) or not isinstance(picked, int) or picked < 0:
        raise PickError("invalid_pick", f"picked: {picked!r} is not a whole number of 0 or more")
    order = next((o for o in wave.orders if o.order_id == order_id), None)
    if order is None:
        raise PickError("unknown_line", f"order {order_id!r} is not in wave {wave.wave_id}")
    line = next((ln for ln in order.lines if ln.line_id == line_id), None)
    if line is None:
        raise PickError("unknown_line", f"line {line_id!r} of {order_id!r} is not in the wave")
    if picked > line.qty:
        raise PickError(
            "invalid_pick", f"picked: {picked} is more than the {line.qty} unit(s) of the line"
        )
    if line.picked_qty is not None:
        if line.picked_qty == picked:
            return PickOutcome(wave, duplicate=True)
        raise PickError(
            "conflict",
            f"line {line_id!r} of {order_id!r} was confirmed with {line.picked_qty} picked",
        )
    if wave.status is WaveStatus.CLOSED:
        raise PickError("closed", f"wave {wave.wave_id} is closed")
    done = replace(line, picked_qty=picked)
    lines = tuple(done if ln.line_id == line_id else ln for ln in order.lines)
    orders = tuple(replace(o, lines=lines) if o.order_id == order_id else o for o in wave.orders)
    pick_id = f"{wave.wave_id}|{order_id}|{line_id}"
    new = replace(
        wave,
        orders=orders,
        status=_status(orders, wave.status),
        version=wave.version + 1,
        updated_at_ms=now_ms,
        picks=(*wave.picks, pick_id),
    )
    out = PickOutcome(new)
    if done.missing:
        _short(out, wave, order, done, now_ms, by)
    return out


def _short(
    out: PickOutcome, wave: Wave, order: WaveOrder, line: WaveLine, now: int, by: str | None
) -> None:
    missing, base = line.missing, f"fw|{wave.wave_id}|{order.order_id}|{line.line_id}"
    out.stock_events.append(
        stock_event(
            "adjustment",
            line.sku,
            f"{base}|short",
            now,
            qty=-missing,
            location=wave.location,
            lot=line.lot,
            order_id=order.order_id,
            source=SOURCE,
            source_ref=wave.wave_id,
            reason=SHORT_REASON,
        )
    )
    note = f"{SHORT_REASON}: {missing} of {line.qty} unit(s) missing at {wave.location}"
    out.order_events.append(
        {
            "event_id": f"{base}|reroute",
            "type": "rerouted",
            "order_id": order.order_id,
            "channel": order.channel,
            "lines": [
                {
                    "line_id": line.line_id,
                    "sku": line.sku,
                    "qty": missing,
                    "unit_price": None,
                    "currency": None,
                }
            ],
            "ship_to": None,
            "delivery": "ship",
            "pickup_location": None,
            "customer_ref": None,
            "customer_type": "b2c",
            "risk": None,
            "location": None,
            "note": note,
            "by": by or SOURCE,
            "source": SOURCE,
            "placed_at": now,
            "occurred_at": now,
            "ingested_at": now,
        }
    )
    out.alerts.append(
        {
            "alert_id": f"{SHORT_REASON}|{wave.wave_id}|{order.order_id}|{line.line_id}",
            "kind": SHORT_REASON,
            "sku": line.sku,
            "location": wave.location,
            "channel": order.channel,
            "value": missing,
            "threshold": line.qty,
            "message": (
                f"{line.sku}: short pick at {wave.location} in {wave.wave_id}: "
                f"{line.picked_qty} of {line.qty} picked for order {order.order_id} line "
                f"{line.line_id}; stock corrected by -{missing}, the missing units routed again"
            ),
            "event_id": f"{base}|short",
            "at": now,
        }
    )
