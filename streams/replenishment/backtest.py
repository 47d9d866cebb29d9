"""Forecast accuracy measured on the past: a rolling-origin backtest per method.

For each of the last ``weeks`` weeks (the origin moving forward a week at a time) every
series is forecast from the ``history_days`` before the origin, as the planner would have
done that day, and the forecast of the week is compared with what sold. Excluded days
(None) are left out of the comparison. Per method, over every series and origin:

* WAPE = sum |forecast - actual| / sum actual (weighted by volume: a SKU selling 100 a day
  counts a hundred times one selling 1 a day),
* bias = sum (forecast - actual) / sum actual (above 0: over-forecast).

``auto`` is the automatic choice by the series' shape at each origin; ``choices`` counts
which method it picked. ``naive`` is the yardstick: each day forecast as the last observed
day of the same weekday (seasonal naive); a method worth its keep beats it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

from streams.replenishment.forecast import AUTO, METHODS, SEASON, choose, forecast, shape

K = TypeVar("K", bound=Hashable)

NAIVE = "naive"
MIN_OBSERVED = SEASON  # an origin with fewer observed training days is skipped


@dataclass(frozen=True)
class Accuracy:
    method: str
    series: int  # series with at least one observed day scored
    days: int  # series-days scored
    actual: float  # units sold over the scored days
    wape: float | None  # None: nothing sold in the scored days
    bias: float | None


@dataclass(frozen=True)
class BacktestResult:
    weeks: int
    rows: tuple[Accuracy, ...]  # auto first, then the methods, then naive
    choices: dict[str, int] = field(default_factory=dict)  # auto's picks, per series x origin

    @property
    def series(self) -> int:
        return max((r.series for r in self.rows), default=0)


@dataclass
class _Sums:
    keys: set[Hashable] = field(default_factory=set)
    days: int = 0
    actual: float = 0.0
    error: float = 0.0
    signed: float = 0.0

    def add(
        self, key: Hashable, predicted: Sequence[float], actual: Sequence[float | None]
    ) -> None:
        for f, a in zip(predicted, actual, strict=True):
            if a is None:
                continue
            self.keys.add(key)
            self.days += 1
            self.actual += a
            self.error += abs(f - a)
            self.signed += f - a

    def accuracy(self, method: str) -> Accuracy:
        wape = self.error / self.actual if self.actual > 0 else None
        bias = self.signed / self.actual if self.actual > 0 else None
        return Accuracy(method, len(self.keys), self.days, self.actual, wape, bias)


def backtest(
    series: Mapping[K, Sequence[float | None]],
    *,
    end: date,
    weeks: int,
    history_days: int = 91,
    methods: Sequence[str] = METHODS,
    uplift: Callable[[K], Callable[[date], float]] | None = None,
) -> BacktestResult:
    """Backtest ``series`` (daily demand oldest first, the last day being the day before
    ``end``) over its last ``weeks`` weeks. ``uplift(key)`` gives a series' peak factors."""
    if weeks < 1:
        raise ValueError(f"weeks must be 1 or more, not {weeks}")
    sums = {m: _Sums() for m in (AUTO, *methods, NAIVE)}
    choices: Counter[str] = Counter()
    for key, values in series.items():
        factor = uplift(key) if uplift else (lambda d: 1.0)
        for back in range(weeks, 0, -1):
            cut = len(values) - SEASON * back
            if cut <= 0:
                continue
            train = values[max(0, cut - history_days) : cut]
            actual = values[cut : cut + SEASON]
            s = shape(train)
            if s.observed < MIN_OBSERVED or all(a is None for a in actual):
                continue
            start = end - timedelta(days=SEASON * back)
            picked = choose(s)
            choices[picked] += 1
            outcome: dict[str, Sequence[float]] = {}
            for method in {*methods, picked}:
                run = AUTO if method not in METHODS else method
                f = forecast(train, start=start, horizon=SEASON, uplift=factor, method=run)
                outcome[method] = f.daily
            for method in methods:
                sums[method].add(key, outcome[method], actual)
            sums[AUTO].add(key, outcome[picked], actual)
            sums[NAIVE].add(key, _naive(train, start, factor), actual)
    rows = tuple(sums[m].accuracy(m) for m in (AUTO, *methods, NAIVE))
    return BacktestResult(weeks, rows, dict(sorted(choices.items())))


def _naive(
    train: Sequence[float | None], start: date, uplift: Callable[[date], float]
) -> list[float]:
    """Each of the next 7 days at the last observed value of its weekday (uplifts applied
    as the methods apply them); a weekday never observed gets the mean of the observed days."""
    first = start - timedelta(days=len(train))
    last: dict[int, float] = {}
    for i, value in enumerate(train):
        day = first + timedelta(days=i)
        factor = uplift(day)
        if value is not None and factor > 0:
            last[day.weekday()] = value / factor
    seen = [v for v in train if v is not None]
    fallback = sum(seen) / len(seen) if seen else 0.0
    days = [start + timedelta(days=i) for i in range(SEASON)]
    return [last.get(d.weekday(), fallback) * uplift(d) for d in days]
