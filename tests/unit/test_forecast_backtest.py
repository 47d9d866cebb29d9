"""The rolling-origin backtest of the forecasts (streams.replenishment.backtest)."""

from __future__ import annotations

import dataclasses
import socket
from datetime import date, timedelta

import pytest

from streams.kernel.settings import load
from streams.purchasing.backtesting import run_backtest
from streams.replenishment.backtest import NAIVE, backtest
from streams.replenishment.forecast import AUTO, CROSTON, HOLT_WINTERS, METHODS, forecast

END = date(2026, 11, 30)
PATTERN = [4.0, 4.0, 5.0, 6.0, 12.0, 20.0, 2.0]


def weekly(days: int, scale: float = 1.0) -> list[float | None]:
    first = END - timedelta(days=days)
    return [scale * PATTERN[(first + timedelta(days=i)).weekday()] for i in range(days)]


def test_a_perfect_weekly_pattern_scores_zero_error_with_holt_winters() -> None:
    """Given two SKUs repeating the same week for 13 weeks
    When the last 4 weeks are backtested
    Then Holt-Winters, the automatic choice (which picks it) and the seasonal naive yardstick
    have WAPE and bias 0, over both series and 4 x 7 days each."""
    result = backtest({("a", "L"): weekly(91), ("b", "L"): weekly(91, 3.0)}, end=END, weeks=4)
    rows = {r.method: r for r in result.rows}
    assert [r.method for r in result.rows] == [AUTO, *METHODS, NAIVE]
    assert result.choices == {HOLT_WINTERS: 8}
    for method in (AUTO, HOLT_WINTERS, NAIVE):
        assert rows[method].series == 2 and rows[method].days == 56
        assert rows[method].wape == pytest.approx(0, abs=1e-9)
        assert rows[method].bias == pytest.approx(0, abs=1e-9)
    assert rows["ses"].wape is not None and rows["ses"].wape > 0.2  # no weekly season


def test_wape_and_bias_are_weighted_by_volume_across_series() -> None:
    """Given a big seller forecast exactly and a small one that jumped in its last week
    When the last week is backtested
    Then WAPE and bias are the summed errors over the summed sales of both (not the mean of
    each series' ratios), excluded days left out of both sums."""
    big = weekly(63, 10.0)
    small: list[float | None] = [2.0] * 56 + [6.0, 6.0, None, 6.0, 6.0, 6.0, 6.0]
    result = backtest({"big": big, "small": small}, end=END, weeks=1)
    auto = result.rows[0]
    start = END - timedelta(days=7)
    f_small = forecast(small[:56], start=start, horizon=7).daily
    f_big = forecast(big[:56], start=start, horizon=7).daily
    pairs = [(f, a) for f, a in zip(f_small + f_big, small[56:] + big[56:], strict=True)]
    scored = [(f, a) for f, a in pairs if a is not None]
    actual = sum(a for _, a in scored)
    assert auto.days == 13 and auto.actual == actual
    assert auto.wape == pytest.approx(sum(abs(f - a) for f, a in scored) / actual)
    assert auto.bias == pytest.approx(sum(f - a for f, a in scored) / actual)
    assert auto.bias < 0  # the small seller's jump was under-forecast


def test_the_automatic_choice_scores_each_series_with_its_own_method() -> None:
    """Given a regular seller and an intermittent one
    When they are backtested over 3 weeks
    Then auto picked Holt-Winters for one and Croston for the other at each origin, and its
    error is the sum of those methods' errors on their own series."""
    intermittent: list[float | None] = [3.0 if i % 5 == 0 else 0.0 for i in range(91)]
    series = {"regular": weekly(91), "rare": intermittent}
    result = backtest(series, end=END, weeks=3)
    assert result.choices == {CROSTON: 3, HOLT_WINTERS: 3}
    alone = {k: backtest({k: v}, end=END, weeks=3).rows[0] for k, v in series.items()}
    auto = result.rows[0]
    assert auto.actual == alone["regular"].actual + alone["rare"].actual
    assert auto.wape is not None and alone["regular"].wape is not None
    assert alone["rare"].wape is not None
    error = alone["regular"].wape * alone["regular"].actual
    error += alone["rare"].wape * alone["rare"].actual
    assert auto.wape * auto.actual == pytest.approx(error)


def test_the_naive_yardstick_repeats_the_last_observed_weekday() -> None:
    """Given a seller whose last week before the origin sold 50 on its Monday, and whose
    Tuesday that week was a stock-out
    When the next week is backtested
    Then the naive forecast of Monday is 50 and of Tuesday the Tuesday before (2), so its
    error is measured against those."""
    values: list[float | None] = [2.0] * 84
    monday = next(i for i in range(77, 84) if (END - timedelta(days=84 - i)).weekday() == 0)
    values[monday] = 50.0
    values[monday + 1 if monday < 83 else monday - 6] = None
    values += [2.0] * 7
    naive = backtest({"s": values}, end=END, weeks=1).rows[-1]
    assert naive.method == NAIVE and naive.days == 7 and naive.actual == 14.0
    assert naive.wape == pytest.approx(48 / 14)
    assert naive.bias == pytest.approx(48 / 14)


def test_origins_without_enough_history_or_sales_are_skipped() -> None:
    """Given a SKU first stocked 10 days ago and one out of stock for the last week
    When 4 weeks are backtested
    Then neither is scored: nothing to learn from, or nothing to compare with."""
    late: list[float | None] = [None] * 81 + [5.0] * 10
    out: list[float | None] = [5.0] * 84 + [None] * 7
    result = backtest({"late": late, "out": out}, end=END, weeks=1)
    assert result.series == 0 and result.choices == {}
    assert all(r.wape is None and r.days == 0 for r in result.rows)
    with pytest.raises(ValueError, match="weeks"):
        backtest({}, end=END, weeks=0)


def test_the_backtest_command_says_when_clickhouse_is_not_answering(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given no ClickHouse listening where the settings point
    When `stockflow replenish backtest` runs
    Then it exits 1 with a message naming the address and how to start it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = dataclasses.replace(load(), clickhouse_host="127.0.0.1", clickhouse_port=port)
    assert run_backtest(settings, weeks=2) == 1
    err = capsys.readouterr().err
    assert f"ClickHouse at 127.0.0.1:{port} is not answering" in err
    assert "stockflow stack up" in err
    assert run_backtest(settings, fmt="xml") == 2
