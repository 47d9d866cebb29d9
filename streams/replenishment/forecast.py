"""Daily demand forecasts of one SKU x location, with the method that fits the series' shape.

* **Regular sellers** (a sale most days): additive Holt-Winters with a damped trend and a
  weekly season (``holt_winters``); additive, so days without sales (zeros) are safe where a
  multiplicative season would divide by them. Fewer than two observed weeks: simple
  exponential smoothing (``ses``).
* **Intermittent sellers** (many days without a sale): Croston's method with the
  Syntetos-Boylan bias correction (``croston``) when the sizes of the sales are steady, TSB
  (Teunter-Syntetos-Babai, ``tsb``) when they vary too: TSB updates the probability of a sale
  every day, so a SKU that stopped selling fades out instead of being forecast forever.
* **Nothing sold** in the history: ``zero``.

The choice follows Syntetos-Boylan: ADI, the average number of observed days per day with a
sale, and CV², the squared coefficient of variation of the sizes of the sales; ADI >= 1.32 is
intermittent, CV² >= 0.49 is variable. Smoothing constants are picked per series from a
small grid by the in-sample one-step squared error, all grid points run together as numpy
vectors; ``sigma_daily`` is the root mean square of those one-step errors of the chosen fit.

``None`` in the history is an excluded day (the SKU could not be sold there: stock-out): it
is not a zero. The models step over it: the smoothing state moves on as forecast, the
season is not updated, and no error is counted. ``uplift(day)`` multiplies the forecast of
each future day (promotions, seasons); history days it covers are divided by it first, so a
past promotion does not inflate the base.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import NDArray

SEASON = 7  # days: the weekly pattern of retail demand
ADI_CUT = 1.32  # Syntetos-Boylan: average demand interval at or above this is intermittent
CV2_CUT = 0.49  # Syntetos-Boylan: squared variation of the sizes at or above this is variable
MIN_FACTOR = 0.01  # history days with a smaller uplift are excluded, not divided by it
WARMUP = SEASON  # the first observed days only settle the state: their errors are not counted

HOLT_WINTERS = "holt_winters"
SES = "ses"
CROSTON = "croston"
TSB = "tsb"
ZERO = "zero"
AUTO = "auto"
METHODS = (HOLT_WINTERS, SES, CROSTON, TSB)  # the ones a caller may force (backtests)

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Forecast:
    """Expected units for each of the next ``len(daily)`` days, by ``method``; ``sigma_daily``
    is the standard deviation of a day's forecast error (for safety stock)."""

    method: str
    daily: tuple[float, ...]
    sigma_daily: float


@dataclass(frozen=True)
class Shape:
    """The Syntetos-Boylan figures of a series (observed days only)."""

    observed: int  # days that are not excluded
    selling: int  # observed days with a sale
    adi: float  # observed / selling (inf: no sale)
    cv2: float  # (std / mean)² of the sales' sizes

    @property
    def kind(self) -> str:
        """smooth, erratic, intermittent, lumpy, or none (nothing sold)."""
        if self.selling == 0:
            return "none"
        if self.adi < ADI_CUT:
            return "smooth" if self.cv2 < CV2_CUT else "erratic"
        return "intermittent" if self.cv2 < CV2_CUT else "lumpy"


def shape(values: Sequence[float | None] | Floats) -> Shape:
    y = _array(values)
    seen = y[~np.isnan(y)]
    sales = seen[seen > 0]
    if sales.size == 0:
        return Shape(int(seen.size), 0, math.inf, 0.0)
    cv = float(sales.std()) / float(sales.mean())
    return Shape(int(seen.size), int(sales.size), seen.size / sales.size, cv * cv)


def choose(s: Shape) -> str:
    """The method for a series of this shape."""
    kind = s.kind
    if kind == "none":
        return ZERO
    if kind == "intermittent":
        return CROSTON
    if kind == "lumpy":
        return TSB
    return HOLT_WINTERS if s.observed >= 2 * SEASON else SES


def forecast(
    history: Sequence[float | None],
    *,
    start: date,
    horizon: int,
    uplift: Callable[[date], float] = lambda d: 1.0,
    method: str = AUTO,
) -> Forecast:
    """Forecast the ``horizon`` days from ``start``; ``history`` is daily demand oldest first,
    ending the day before ``start``, None = excluded day. ``method`` forces one of
    :data:`METHODS` (``holt_winters`` with under two observed weeks runs as ``ses``)."""
    if horizon < 0:
        raise ValueError(f"horizon must be 0 or more, not {horizon}")
    if method != AUTO and method not in METHODS:
        raise ValueError(f"unknown forecast method {method!r}; choose auto or {METHODS}")
    first = start - timedelta(days=len(history))
    y = _array(history)
    factors = np.array([uplift(first + timedelta(days=i)) for i in range(len(y))], dtype=float)
    # past peak days count at their base level; a day the calendar all but closed says
    # nothing about the base: excluded
    y = np.where(factors >= MIN_FACTOR, y / np.where(factors >= MIN_FACTOR, factors, 1.0), np.nan)
    weekdays = (first.weekday() + np.arange(len(y))) % SEASON
    s = shape(y)
    chosen = choose(s) if method == AUTO else method
    if chosen == HOLT_WINTERS and s.observed < 2 * SEASON:
        chosen = SES
    if chosen == ZERO or s.selling == 0:
        base, sigma, chosen = np.zeros(horizon), 0.0, ZERO
    elif chosen in (HOLT_WINTERS, SES):
        future = (start.weekday() + np.arange(horizon)) % SEASON
        base, sigma = _holt_winters(y, weekdays, future, seasonal=chosen == HOLT_WINTERS)
    elif chosen == CROSTON:
        base, sigma = _croston(y, horizon)
    else:
        base, sigma = _tsb(y, horizon)
    daily = tuple(
        max(0.0, float(base[i]) * uplift(start + timedelta(days=i))) for i in range(horizon)
    )
    return Forecast(chosen, daily, sigma)


def _array(values: Sequence[float | None] | Floats) -> Floats:
    if isinstance(values, np.ndarray):
        return values.astype(float)
    y = np.array([np.nan if v is None else max(0.0, float(v)) for v in values], dtype=float)
    return y


def _sigma(sse: Floats, count: int, best: int, y: Floats) -> float:
    if count >= 2:
        return math.sqrt(float(sse[best]) / count)
    seen = y[~np.isnan(y)]  # too few errors to measure: Poisson-like spread of the mean
    return math.sqrt(float(seen.mean())) if seen.size else 0.0


# Smoothing constants tried per series (alpha level, beta trend, gamma season).
_HW_GRID = np.array(
    [(a, b, g) for a in (0.05, 0.1, 0.2, 0.3, 0.5) for b in (0.0, 0.05) for g in (0.05, 0.1, 0.2)],
    dtype=float,
)
_PHI = 0.9  # trend damping: a trend fades over about ten days instead of running away


def _holt_winters(
    y: Floats, weekdays: NDArray[np.int64], future: NDArray[np.int64], *, seasonal: bool
) -> tuple[Floats, float]:
    grid = _HW_GRID if seasonal else np.unique(_HW_GRID[:, 0])[:, None] * np.array([1, 0, 0])
    alpha, beta, gamma = grid[:, 0], grid[:, 1], grid[:, 2]
    seen = ~np.isnan(y)
    # Initial state from the first four weeks: level = their mean, season = each weekday's
    # mean minus it (weekdays never observed start at 0).
    head = np.zeros(len(y), dtype=bool)
    head[: 4 * SEASON] = True
    init = seen & head
    level0 = float(y[init].mean()) if init.any() else float(y[seen].mean())
    season0 = np.zeros(SEASON)
    if seasonal:
        for w in range(SEASON):
            days = init & (weekdays == w)
            if days.any():
                season0[w] = float(y[days].mean()) - level0
    k = len(grid)
    level = np.full(k, level0)
    trend = np.zeros(k)
    season = np.tile(season0, (k, 1))
    sse = np.zeros(k)
    count = 0
    rows = np.arange(k)
    observed = 0
    for t in range(len(y)):
        w = int(weekdays[t])
        s_t = season[:, w]
        damped = level + _PHI * trend
        if not seen[t]:  # excluded day: the state moves on as forecast, nothing is learnt
            level, trend = damped, _PHI * trend
            continue
        value = float(y[t])
        if observed >= WARMUP:
            sse += (value - damped - s_t) ** 2
            count += 1
        observed += 1
        new_level = alpha * (value - s_t) + (1 - alpha) * damped
        trend = beta * (new_level - level) + (1 - beta) * _PHI * trend
        season[rows, w] = gamma * (value - new_level) + (1 - gamma) * s_t
        level = new_level
    best = int(np.argmin(sse)) if count else 0
    steps = np.arange(1, len(future) + 1)
    damp = np.cumsum(_PHI**steps)
    base = level[best] + damp * trend[best] + season[best, future]
    return base, _sigma(sse, count, best, y)


_CROSTON_ALPHAS = np.array([0.05, 0.1, 0.2, 0.3])
_TSB_GRID = np.array([(d, p) for d in (0.1, 0.2, 0.3) for p in (0.02, 0.05, 0.1, 0.2)])


def _croston(y: Floats, horizon: int) -> tuple[Floats, float]:
    """Croston with the Syntetos-Boylan correction: (1 - alpha/2) * size / interval, size and
    interval smoothed at each sale; intervals count observed days only."""
    seen = y[~np.isnan(y)]
    sales = seen[seen > 0]
    alpha = _CROSTON_ALPHAS
    size = np.full(len(alpha), float(sales.mean()))
    interval = np.full(len(alpha), seen.size / sales.size)
    sse = np.zeros(len(alpha))
    count = 0
    since = 1
    for i, value in enumerate(seen):
        if i >= WARMUP:
            sse += (value - (1 - alpha / 2) * size / interval) ** 2
            count += 1
        if value > 0:
            size = alpha * value + (1 - alpha) * size
            interval = alpha * since + (1 - alpha) * interval
            since = 1
        else:
            since += 1
    best = int(np.argmin(sse)) if count else 1
    rate = (1 - alpha[best] / 2) * size[best] / interval[best]
    return np.full(horizon, rate), _sigma(sse, count, best, y)


def _tsb(y: Floats, horizon: int) -> tuple[Floats, float]:
    """TSB: the probability of a sale is smoothed every observed day, its size at each sale;
    the forecast is their product."""
    seen = y[~np.isnan(y)]
    sales = seen[seen > 0]
    a_size, a_prob = _TSB_GRID[:, 0], _TSB_GRID[:, 1]
    size = np.full(len(_TSB_GRID), float(sales.mean()))
    prob = np.full(len(_TSB_GRID), sales.size / seen.size)
    sse = np.zeros(len(_TSB_GRID))
    count = 0
    for i, value in enumerate(seen):
        if i >= WARMUP:
            sse += (value - prob * size) ** 2
            count += 1
        if value > 0:
            prob = prob + a_prob * (1 - prob)
            size = size + a_size * (value - size)
        else:
            prob = prob - a_prob * prob
    best = int(np.argmin(sse)) if count else 0
    return np.full(horizon, prob[best] * size[best]), _sigma(sse, count, best, y)
