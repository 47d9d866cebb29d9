"""The order book's short-pick re-routing: only the missing units are routed again."""

from __future__ import annotations

from streams.fulfilment.model import Wave, WaveLine, WaveOrder, WaveStatus
from streams.fulfilment.picking import confirm
from streams.orders.book import MAX_RESENDS, on_timer
from streams.orders.setup import OrderConfig
from tests.unit.test_order_book import NOW, Exchange, action, placed


def _short(ex: Exchange, order_id: str, line_id: str, sku: str, qty: int, picked: int) -> None:
    loc = next(ln.location for ln in ex.state(order_id).lines if ln.line_id == line_id)
    assert loc is not None
    wave = Wave(
        "w1", loc, WaveStatus.PLANNED,
        (WaveOrder(order_id, "web", (WaveLine(line_id, sku, qty),)),), 0, 0,
    )  # fmt: skip
    out = confirm(wave, order_id, line_id, picked, NOW)
    for event in out.stock_events:  # the adjustment first, as the wave service sends it
        ex.apply_stock(event)
    ex.refresh()
    for event in out.order_events:
        ex.order(event)
    ex.settle()


def test_a_short_pick_routes_only_the_missing_units_elsewhere() -> None:
    """Given an order of 3 x allocated at a (a holds 3, b holds 5) and 2 y
    When 1 of the 3 x is found at a
    Then the line keeps 1 reserved at a, a new line of 2 is reserved at b, y is untouched,
    and a's on_hand went down by the 2 missing units."""
    ex = Exchange({"x": {"a": 3, "b": 5}, "y": {"a": 4}}, OrderConfig())
    ex.order(placed("web:1", [("1", "x", 3), ("2", "y", 2)]))
    ex.settle()
    assert [ln.location for ln in ex.state("web:1").lines] == ["a", "a"]
    _short(ex, "web:1", "1", "x", 3, 1)
    s = ex.state("web:1")
    assert s.status == "allocated"
    got = [(ln.line_id, ln.qty, ln.location, ln.status) for ln in s.lines]
    assert got == [("1", 1, "a", "reserved"), ("2", 2, "a", "reserved"),
                   ("1/r1", 2, "b", "reserved")]  # fmt: skip
    assert ex.skus["x"].orders["web:1"] == {"a": 1, "b": 2}
    assert ex.skus["y"].orders["web:1"] == {"a": 2}
    assert ex.skus["x"].locations["a"].on_hand == 1
    ex.order(action("web:1", "shipped"))
    assert ex.reserved("web:1") == {}
    assert ex.skus["x"].locations["a"].on_hand == 0
    assert ex.skus["x"].locations["b"].on_hand == 3


def test_a_short_pick_with_nowhere_else_leaves_the_rest_partially_allocated() -> None:
    """Given an order of 2 x allocated at a, the only stock
    When nothing is found
    Then the picked nothing is released, the new line is refused, the order is
    partially_allocated, and the ledger holds nothing for it."""
    ex = Exchange({"x": {"a": 2}, "y": {"a": 1}}, OrderConfig())
    ex.order(placed("web:2", [("1", "x", 2), ("2", "y", 1)]))
    ex.settle()
    _short(ex, "web:2", "1", "x", 2, 0)
    s = ex.state("web:2")
    assert s.status == "partially_allocated"
    assert [(ln.line_id, ln.status) for ln in s.lines] == [
        ("1", "released"),
        ("2", "reserved"),
        ("1/r1", "refused"),
    ]
    assert ex.reserved("web:2") == {"y": 1}
    assert ex.skus["x"].locations["a"].on_hand == 0


def test_the_same_short_pick_twice_counts_once() -> None:
    """Given a short pick applied
    When its re-routing event arrives again
    Then nothing more is released or routed."""
    ex = Exchange({"x": {"a": 3, "b": 5}}, OrderConfig())
    ex.order(placed("web:3", [("1", "x", 3)]))
    ex.settle()
    wave = Wave("w", "a", WaveStatus.PLANNED,
                (WaveOrder("web:3", "web", (WaveLine("1", "x", 3),)),), 0, 0)  # fmt: skip
    out = confirm(wave, "web:3", "1", 2, NOW)
    ex.order(out.order_events[0])
    ex.settle()
    again = ex.order(out.order_events[0])
    assert again.duplicate
    assert len(ex.state("web:3").lines) == 2
    assert sum(ex.skus["x"].orders["web:3"].values()) == 3


def test_a_short_line_never_answered_is_refused_and_the_picked_ones_stay_reserved() -> None:
    """Given a short pick whose new line the ledger never answers
    When the resends are spent
    Then the new line is refused, the order partially_allocated, and the picked units of
    the same SKU are still reserved."""
    ex = Exchange({"x": {"a": 3, "b": 5}}, OrderConfig())
    ex.order(placed("web:4", [("1", "x", 3)]))
    ex.settle()
    wave = Wave("w", "a", WaveStatus.PLANNED,
                (WaveOrder("web:4", "web", (WaveLine("1", "x", 3),)),), 0, 0)  # fmt: skip
    out = confirm(wave, "web:4", "1", 2, NOW)
    ex.apply_stock(out.stock_events[0])
    ex.refresh()
    ex.order(out.order_events[0])
    ex.inflight.clear()  # the decision is lost
    config = OrderConfig()
    now = NOW
    for _ in range(MAX_RESENDS + 1):
        now += config.core.resend_after_seconds * 1000 + 1
        result = on_timer(ex.state("web:4"), config, ex.levels, now)
        ex.take(result, "web:4")
    ex.inflight.clear()
    s = ex.state("web:4")
    assert s.status == "partially_allocated"
    assert [(ln.line_id, ln.status) for ln in s.lines] == [("1", "reserved"), ("1/r1", "refused")]
    assert ex.skus["x"].orders["web:4"]["a"] == 2  # the picked units
