"""The wiring of planning: which SKUs get a forecast, from what history, with which peaks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from datetime import date
from typing import Any

from streams.kernel.settings import Settings
from streams.purchasing.planning import forecasts_for, horizon, with_unsent
from streams.replenishment.model import (
    Peak,
    Policy,
    PolicyKind,
    ReplenishmentConfig,
    SendVia,
    Supplier,
)
from streams.replenishment.plan import Position

TODAY = date(2026, 11, 30)


@dataclasses.dataclass(frozen=True)
class Forecast:
    method: str
    daily: tuple[float, ...]
    sigma_daily: float


def test_only_policies_that_use_a_forecast_get_one_from_their_history_and_peaks() -> None:
    """Given chair under min_max and table, lamp under reorder_point (lamp never stocked),
    a 10-day lead time, history_days 30 and a peak for furniture
    When forecasts are made
    Then the demand is read once for table and lamp over 30 days until today, the forecast
    covers 6 + 10 + 7 + 7 = 30 days from today with the furniture uplift, chair gets none
    and lamp (no history) none."""
    calls: list[dict[str, Any]] = []
    config = ReplenishmentConfig(
        suppliers={"acme": Supplier("acme", "ACME", SendVia.WEBHOOK, 10, webhook_url="http://x")},
        categories={"table": "furniture"},
        policies={("chair", None): Policy(PolicyKind.MIN_MAX, min=1, max=5)},
        default_policy=Policy(PolicyKind.REORDER_POINT),
        peaks=(Peak("sale", TODAY, TODAY, 3.0, "furniture"),),
        history_days=30,
    )

    def demand(
        client: object,
        settings: Settings,
        *,
        until: date,
        days: int,
        skus: Collection[str] | None = None,
        locations: Collection[str] | None = None,
    ) -> dict[tuple[str, str], list[float | None]]:
        calls.append({"until": until, "days": days, "skus": skus, "locations": locations})
        return {("table", "paris"): [2.0, None, 4.0]}

    def forecast(
        history: Sequence[float | None],
        *,
        start: date,
        horizon: int,
        uplift: Callable[[date], float],
    ) -> Forecast:
        mean = sum(x for x in history if x is not None) / 2
        return Forecast("stand-in", (mean * uplift(start),) * horizon, 1.0)

    def uplift_for(peaks: Sequence[Peak], category: str | None) -> Callable[[date], float]:
        return lambda day: 3.0 if category == "furniture" and day == TODAY else 1.0

    keys = [("chair", "paris"), ("lamp", "paris"), ("table", "paris")]
    got = forecasts_for(
        object(),  # type: ignore[arg-type]
        Settings(),
        config,
        keys,
        today=TODAY,
        tools=(demand, forecast, uplift_for),
    )
    assert calls == [
        {"until": TODAY, "days": 30, "skus": {"table", "lamp"}, "locations": {"paris"}}
    ]
    assert horizon(config) == 30
    assert got == {("table", "paris"): Forecast("stand-in", (9.0,) * 30, 1.0)}


def test_approved_unsent_units_count_as_incoming() -> None:
    """Given chair with 4 incoming and 6 on an approved, unsent order / Then incoming 10."""
    stock = {("chair", "paris"): Position(5, 0, 0, 4), ("table", "paris"): Position(1, 0, 0, 0)}
    got = with_unsent(stock, {("chair", "paris"): 6, ("lamp", "paris"): 3})
    assert got == {
        ("chair", "paris"): Position(5, 0, 0, 10),
        ("table", "paris"): Position(1, 0, 0, 0),
    }
