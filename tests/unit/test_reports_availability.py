"""Hours in stock and out of stock from a sequence of (time, quantity)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.reports.availability import HOUR_MS, availability

H = HOUR_MS


def test_the_last_quantity_before_the_period_is_the_state_at_its_start() -> None:
    """Given 5 units set before the period and 0 at hour 6 of a 24 h period, when computed,
    then 6 h are in stock, 18 h out of stock, nothing unknown and one stock-out."""
    a = availability([(-10 * H, 5), (6 * H, 0)], start=0, end=24 * H)
    assert (a.in_stock_ms, a.out_of_stock_ms, a.unknown_ms, a.stockouts) == (6 * H, 18 * H, 0, 1)
    assert a.pct_in_stock == 25.0


def test_time_before_the_first_known_quantity_is_unknown_not_out_of_stock() -> None:
    """Given a SKU that first appears at hour 4 with 3 units, when a 10 h period is computed,
    then 4 h are unknown, 6 h in stock, and % in stock counts the known time only."""
    a = availability([(4 * H, 3)], start=0, end=10 * H)
    assert (a.unknown_ms, a.in_stock_ms, a.out_of_stock_ms) == (4 * H, 6 * H, 0)
    assert a.pct_in_stock == 100.0


def test_quantities_after_the_period_do_not_count() -> None:
    """Given an out-of-stock level after the period's end, when computed, then the whole
    period is in stock."""
    a = availability([(0, 2), (30 * H, 0)], start=0, end=24 * H)
    assert (a.in_stock_ms, a.out_of_stock_ms) == (24 * H, 0)


def test_a_level_stamped_earlier_than_its_predecessor_counts_after_it() -> None:
    """Given levels in version order whose clock stepped back (0 stamped before 5), when
    computed, then the later version still wins from its predecessor's time on."""
    a = availability([(0, 5), (5 * H, 1), (3 * H, 0)], start=0, end=10 * H)
    assert (a.in_stock_ms, a.out_of_stock_ms, a.stockouts) == (5 * H, 5 * H, 1)


def test_no_levels_at_all_leave_the_whole_period_unknown() -> None:
    """Given no level, when computed, then everything is unknown and % in stock is None."""
    a = availability([], start=0, end=H)
    assert (a.unknown_ms, a.pct_in_stock) == (H, None)


points = st.lists(st.tuples(st.integers(0, 10**10), st.integers(-3, 5)), max_size=40)


@given(points, st.integers(0, 10**10), st.integers(0, 10**10))
def test_in_stock_out_of_stock_and_unknown_hours_add_up_to_the_period(
    seq: list[tuple[int, int]], a: int, b: int
) -> None:
    """Given any quantities at any times and any period, when computed, then in-stock plus
    out-of-stock plus unknown time equals the period length, none is negative, and with a
    quantity known at or before the start, in-stock plus out-of-stock alone is the period."""
    start, end = min(a, b), max(a, b)
    r = availability(seq, start, end)
    assert min(r.in_stock_ms, r.out_of_stock_ms, r.unknown_ms) >= 0
    assert r.in_stock_ms + r.out_of_stock_ms + r.unknown_ms == end - start
    if seq and seq[0][0] <= start:
        assert r.unknown_ms == 0
        assert r.in_stock_ms + r.out_of_stock_ms == end - start


@given(points, st.integers(0, 10**10), st.integers(1, 10**9))
def test_always_in_stock_means_no_out_of_stock_time(
    seq: list[tuple[int, int]], start: int, length: int
) -> None:
    """Given only positive quantities, one known at the start, when computed, then the whole
    period is in stock and there is no stock-out."""
    seq = [(start, 1)] + [(t, abs(q) + 1) for t, q in seq]
    r = availability(seq, start, start + length)
    assert (r.in_stock_ms, r.out_of_stock_ms, r.stockouts) == (length, 0, 0)
