"""Forecasts of daily demand (streams.replenishment.forecast), with hypothesis properties.

* a forecast is never negative, whatever the history, method or uplift;
* a constant series is forecast as that constant, with no error;
* a repeated weekly pattern is recovered, on the right weekdays;
* series with many days without a sale go to Croston or TSB, by the Syntetos-Boylan cuts;
* excluded days (None) are stepped over, never read as zero demand;
* an uplift multiplies exactly the days it covers; past peak days are divided by it.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from streams.replenishment.calendar import uplift_for
from streams.replenishment.forecast import (
    ADI_CUT,
    CROSTON,
    CV2_CUT,
    HOLT_WINTERS,
    METHODS,
    SES,
    TSB,
    ZERO,
    forecast,
    shape,
)
from streams.replenishment.model import Peak

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31))
amounts = st.floats(min_value=0, max_value=1000, allow_nan=False, allow_infinity=False)
histories = st.lists(st.one_of(st.none(), amounts), max_size=140)


def weekly(pattern: list[float], start: date, days: int) -> list[float | None]:
    """``days`` days ending the day before ``start``, each the pattern's value of its weekday."""
    first = start - timedelta(days=days)
    return [pattern[(first + timedelta(days=i)).weekday()] for i in range(days)]


@PROFILE
@given(
    history=histories,
    start=starts,
    horizon=st.integers(0, 30),
    method=st.sampled_from(("auto", *METHODS)),
    factor=st.floats(min_value=0, max_value=5),
)
def test_a_forecast_is_never_negative(
    history: list[float | None], start: date, horizon: int, method: str, factor: float
) -> None:
    """Given any history of sales and excluded days, any method and any uplift
    When it is forecast
    Then every day's forecast and the error's spread are finite and not negative."""
    f = forecast(history, start=start, horizon=horizon, uplift=lambda d: factor, method=method)
    assert len(f.daily) == horizon
    assert all(math.isfinite(x) and x >= 0 for x in f.daily)
    assert math.isfinite(f.sigma_daily) and f.sigma_daily >= 0


@PROFILE
@given(
    level=st.floats(min_value=0.5, max_value=500),
    days=st.integers(1, 140),
    start=starts,
)
def test_a_constant_series_is_forecast_as_that_constant(
    level: float, days: int, start: date
) -> None:
    """Given the same sales every day
    When it is forecast two weeks ahead
    Then every day is forecast at that level and the error's spread is zero once measured."""
    f = forecast([level] * days, start=start, horizon=14)
    assert f.daily == pytest.approx([level] * 14, rel=1e-6)
    assert f.method == (HOLT_WINTERS if days >= 14 else SES)
    if days > 8:
        assert f.sigma_daily == pytest.approx(0, abs=1e-6 * level)


@PROFILE
@given(
    pattern=st.lists(st.integers(1, 60).map(float), min_size=7, max_size=7),
    closed=st.one_of(st.none(), st.integers(0, 6)),
    weeks=st.integers(3, 13),
    start=starts,
)
def test_a_weekly_pattern_is_recovered_on_its_weekdays(
    pattern: list[float], closed: int | None, weeks: int, start: date
) -> None:
    """Given weeks of the same weekly pattern (possibly a day closed, selling nothing)
    When it is forecast two weeks ahead
    Then Holt-Winters is chosen and each day is forecast at its weekday's value."""
    if closed is not None:
        pattern[closed] = 0.0
    f = forecast(weekly(pattern, start, 7 * weeks), start=start, horizon=14)
    expected = [pattern[(start + timedelta(days=i)).weekday()] for i in range(14)]
    assert f.method == HOLT_WINTERS
    assert f.daily == pytest.approx(expected, abs=1e-6 * max(pattern))


@st.composite
def intermittent(draw: st.DrawFn) -> list[float | None]:
    days = draw(st.integers(28, 140))
    every = draw(st.integers(2, 10))  # about one selling day in `every`
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    sizes = draw(st.sampled_from([[1.0], [2.0, 3.0], [1.0, 1.0, 1.0, 12.0, 40.0]]))
    values: list[float | None] = [
        float(rng.choice(sizes)) if rng.random() < 1 / every else 0.0 for _ in range(days)
    ]
    return values


@PROFILE
@given(history=intermittent(), start=starts)
def test_intermittent_series_go_to_croston_or_tsb(history: list[float | None], start: date) -> None:
    """Given a series with many days without a sale
    When it is forecast
    Then Croston is chosen for steady sizes and TSB for variable ones (Syntetos-Boylan), and
    the forecast is flat: a rate per day, not a guess of which day sells."""
    s = shape(history)
    assume(s.selling > 0 and s.adi >= ADI_CUT)
    f = forecast(history, start=start, horizon=7)
    assert f.method == (CROSTON if s.cv2 < CV2_CUT else TSB)
    assert len(set(f.daily)) == 1
    assert 0 < f.daily[0] <= max(v for v in history if v is not None)


def test_a_seller_falling_to_nothing_is_forecast_at_zero_not_below() -> None:
    """Given a seller of 40 a day whose sales fell by 6 a day to nothing two weeks ago
    When it is forecast (the fitted trend still points down)
    Then every day is forecast at 0, never a negative demand."""
    history: list[float | None] = [40.0] * 35 + [max(0.0, 40 - 6 * i) for i in range(1, 15)]
    f = forecast(history, start=date(2026, 11, 30), horizon=7)
    assert f.method == HOLT_WINTERS
    assert f.daily == (0.0,) * 7


def test_smooth_and_empty_series_are_routed_by_their_shape() -> None:
    """Given a seller selling every day, one that never sold, and one never in stock
    When they are forecast
    Then the first gets Holt-Winters, the others zero demand with no spread."""
    start = date(2026, 11, 30)
    assert forecast([3.0, 5.0, 4.0] * 10, start=start, horizon=3).method == HOLT_WINTERS
    for history in ([0.0] * 30, [None] * 30, []):
        f = forecast(history, start=start, horizon=3)
        assert (f.method, f.daily, f.sigma_daily) == (ZERO, (0.0, 0.0, 0.0), 0.0)


@PROFILE
@given(
    level=st.floats(min_value=1, max_value=200),
    days=st.integers(21, 120),
    excluded=st.sets(st.integers(0, 119), max_size=60),
    start=starts,
)
def test_excluded_days_are_not_read_as_zero_demand(
    level: float, days: int, excluded: set[int], start: date
) -> None:
    """Given a steady seller whose history has stock-out days (None) anywhere
    When it is forecast
    Then the forecast is the seller's level, as if the days were not there."""
    history: list[float | None] = [None if i in excluded else level for i in range(days)]
    assume(sum(v is not None for v in history) >= 14)
    f = forecast(history, start=start, horizon=7)
    assert f.daily == pytest.approx([level] * 7, rel=1e-6)


@PROFILE
@given(history=intermittent(), gaps=st.lists(st.integers(0, 140), max_size=40), start=starts)
def test_excluded_days_do_not_change_an_intermittent_forecast(
    history: list[float | None], gaps: list[int], start: date
) -> None:
    """Given an intermittent series
    When stock-out days (None) are inserted anywhere in it
    Then Croston and TSB forecast exactly as without them: intervals count days that could sell."""
    with_gaps = list(history)
    for at in sorted(gaps, reverse=True):
        with_gaps.insert(min(at, len(with_gaps)), None)
    for method in (CROSTON, TSB):
        a = forecast(history, start=start, horizon=5, method=method)
        b = forecast(with_gaps, start=start, horizon=5, method=method)
        assert a.daily == pytest.approx(b.daily) and a.sigma_daily == pytest.approx(b.sigma_daily)


def test_a_weekly_pattern_is_recovered_through_stock_outs() -> None:
    """Given ten weeks of a weekly pattern with a stock-out on every third day
    When it is forecast
    Then the pattern comes back on its weekdays."""
    start = date(2026, 11, 30)
    pattern = [4.0, 4.0, 5.0, 6.0, 12.0, 20.0, 2.0]
    history = weekly(pattern, start, 70)
    for i in range(0, 70, 3):
        history[i] = None
    f = forecast(history, start=start, horizon=7)
    expected = [pattern[(start + timedelta(days=i)).weekday()] for i in range(7)]
    assert f.method == HOLT_WINTERS
    assert f.daily == pytest.approx(expected, rel=1e-6)


@PROFILE
@given(
    history=st.one_of(histories, intermittent()),
    start=starts,
    offset=st.integers(0, 20),
    length=st.integers(0, 6),
    factor=st.floats(min_value=0.1, max_value=5),
    mine=st.booleans(),
)
def test_an_uplift_raises_exactly_the_peak_days(
    history: list[float | None],
    start: date,
    offset: int,
    length: int,
    factor: float,
    mine: bool,
) -> None:
    """Given a peak of the SKU's category (or another one) ahead of ``start``
    When the SKU is forecast with the calendar's uplift
    Then the days of the peak are the plain forecast times the factor, every other day is
    the plain forecast, and a peak of another category changes nothing."""
    peak = Peak(
        "promo",
        start + timedelta(days=offset),
        start + timedelta(days=offset + length),
        factor,
        "garden" if mine else "kitchen",
    )
    plain = forecast(history, start=start, horizon=28)
    raised = forecast(history, start=start, horizon=28, uplift=uplift_for([peak], "garden"))
    assert raised.method == plain.method
    for i, (p, r) in enumerate(zip(plain.daily, raised.daily, strict=True)):
        inside = mine and offset <= i <= offset + length
        assert r == pytest.approx(p * factor if inside else p, rel=1e-9, abs=1e-12)


def test_past_peak_days_do_not_inflate_the_base() -> None:
    """Given a steady seller of 10 a day whose sales doubled during a past promotion
    When it is forecast with the calendar that knows the promotion
    Then the forecast is 10 a day: the promotion's days were divided by its factor."""
    start = date(2026, 11, 30)
    first = start - timedelta(days=56)
    peak = Peak("black friday", date(2026, 11, 20), date(2026, 11, 29), 2.0)
    history = [20.0 if peak.start <= first + timedelta(days=i) else 10.0 for i in range(56)]
    f = forecast(history, start=start, horizon=7, uplift=uplift_for([peak], None))
    assert f.daily == pytest.approx([10.0] * 7, rel=1e-6)
    assert forecast(history, start=start, horizon=7).daily[0] > 12


def test_sigma_measures_the_one_step_error_of_noisy_sales() -> None:
    """Given three months of Poisson sales averaging 20 a day
    When it is forecast
    Then the forecast is near 20 and sigma_daily near the sales' spread (sqrt 20 ≈ 4.5)."""
    rng = np.random.default_rng(7)
    history: list[float | None] = [float(v) for v in rng.poisson(20, 91)]
    f = forecast(history, start=date(2026, 11, 30), horizon=7)
    assert f.method == HOLT_WINTERS
    assert all(16 < x < 24 for x in f.daily)
    assert 3.5 < f.sigma_daily < 6.5


def test_a_bad_method_or_horizon_is_refused() -> None:
    """Given an unknown method or a negative horizon
    When forecast is asked for it
    Then it says what is allowed."""
    with pytest.raises(ValueError, match="unknown forecast method"):
        forecast([1.0], start=date(2026, 1, 1), horizon=1, method="arima")
    with pytest.raises(ValueError, match="horizon"):
        forecast([1.0], start=date(2026, 1, 1), horizon=-1)


def test_the_calendar_multiplies_overlapping_peaks_of_the_category() -> None:
    """Given a peak for every category and one for garden overlapping it
    When the garden and kitchen uplifts are read around them
    Then garden days get both factors multiplied, kitchen only the general one, ends included."""
    peaks = [
        Peak("season", date(2026, 12, 1), date(2026, 12, 10), 1.5),
        Peak("garden week", date(2026, 12, 10), date(2026, 12, 12), 2.0, "garden"),
    ]
    garden, kitchen = uplift_for(peaks, "garden"), uplift_for(peaks, "kitchen")
    assert garden(date(2026, 11, 30)) == 1.0
    assert garden(date(2026, 12, 1)) == 1.5
    assert garden(date(2026, 12, 10)) == 3.0
    assert garden(date(2026, 12, 12)) == 2.0
    assert kitchen(date(2026, 12, 10)) == 1.5
    assert kitchen(date(2026, 12, 12)) == 1.0
    assert uplift_for(peaks, None)(date(2026, 12, 11)) == 1.0
