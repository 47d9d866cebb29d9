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


def test_todays_orders_per_location_count_each_order_once_on_its_first_allocation() -> None:
    """Given order states read from orders.state.v1: two orders allocated today (one split
    over a and b), one of them again in a later version, one still routed, and one allocated
    three days ago
    When routing asks for today's orders per location
    Then a counts 2 and b 1: each order once, only allocated ones, only today's."""
    from schemas.codec import single_object_codec
    from schemas.times import now_ms
    from streams.kernel.settings import load
    from streams.worker.order_views import DAY_MS, CapacityView

    view = CapacityView(load(), single_object_codec())
    now = now_ms()

    def state(order_id: str, status: str, places: list[str], at: int) -> dict[str, Any]:
        return {
            "order_id": order_id,
            "status": status,
            "lines": [{"location": p} for p in places],
            "transition": {"at": at},
        }

    view.apply(state("o1", "allocated", ["a"], now))
    view.apply(state("o2", "allocated", ["a", "b"], now))
    view.apply(state("o2", "shipped", ["a", "b"], now))
    view.apply(state("o1", "allocated", ["a"], now))
    view.apply(state("o3", "routed", ["b"], now))
    view.apply(state("o4", "allocated", ["b"], now - 3 * DAY_MS))
    assert view() == {"a": 2, "b": 1}
