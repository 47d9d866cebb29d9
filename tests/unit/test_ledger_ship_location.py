"""Shipped from another location than the one reserved: each location keeps its truth."""

from __future__ import annotations

from schemas.events import stock_event
from streams.ledger import SkuState, apply, parse_config

T0 = 1_700_000_000_000
CONFIG = parse_config(
    {"default_location": "paris", "locations": [{"name": "paris"}, {"name": "lyon"}]}
)


def test_units_shipped_from_another_location_leave_that_locations_on_hand() -> None:
    """Given 10 units at paris and 10 at lyon and an order of 3 reserved at paris,
    when 2 units ship from lyon and then the rest (qty 0) from paris,
    then lyon's on_hand is 8, paris's on_hand is 9, and no unit is reserved anywhere."""
    state: SkuState | None = None
    events = [
        stock_event("receipt", "chair", "r1", T0, qty=10, location="paris"),
        stock_event("receipt", "chair", "r2", T0 + 1, qty=10, location="lyon"),
        stock_event("order_placed", "chair", "o", T0 + 2, qty=3, order_id="o1", location="paris"),
        stock_event("order_shipped", "chair", "s1", T0 + 3, qty=2, order_id="o1", location="lyon"),
        stock_event("order_shipped", "chair", "s2", T0 + 4, qty=0, order_id="o1", location="paris"),
    ]
    for event in events:
        state, _ = apply(state, event, CONFIG, event["occurred_at"])
    assert state is not None
    figures = {n: (loc.on_hand, loc.reserved) for n, loc in state.locations.items()}
    assert figures == {"paris": (9, 0), "lyon": (8, 0)}
    assert not state.orders
