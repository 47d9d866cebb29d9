"""Reservations asked of the ledger and not yet decided are not offered to the next order
(streams/worker/order_views.InFlight)."""

from __future__ import annotations

from typing import Any

from streams.worker.order_views import InFlight


def _reserve(event_id: str, sku: str, location: str, qty: int) -> dict[str, Any]:
    return {"event_id": event_id, "type": "order_placed", "sku": sku, "location": location,
            "qty": qty}  # fmt: skip


def test_units_asked_of_the_ledger_are_held_back_until_their_decision() -> None:
    """Given 5 units of x at a and 3 at b in the levels
    When two orders ask 2 and 1 units of x at a (one of them sent twice, a resend)
    Then routing sees 2 at a and 3 at b; once the 1-unit order's Decision is in, 3 at a;
    once the other
    never answers past the time limit, 5 again; a release is never counted."""
    held = InFlight(ttl_ms=1000)
    levels = {"a": 5, "b": 3}
    first, second = _reserve("ob|o1|1|1", "x", "a", 2), _reserve("ob|o2|1|1", "x", "a", 1)
    held.sent([first, second, {**first}], now=0)
    held.sent([{**_reserve("ob|o1|1|x|release", "x", "a", 0), "type": "order_cancelled"}], 0)
    assert held.less("x", levels) == {"a": 2, "b": 3}
    assert held.less("y", {"a": 1}) == {"a": 1}
    held.decided("ob|o2|1|1")
    assert held.less("x", levels) == {"a": 3, "b": 3}
    held.lapse(now=500)
    assert held.less("x", levels) == {"a": 3, "b": 3}
    held.lapse(now=1500)
    assert held.less("x", levels) == {"a": 5, "b": 3}
