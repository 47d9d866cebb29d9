"""Daily demand per SKU x location, read from ClickHouse's ``stock_movements``.

Demand is what left on_hand to customers: movements of type ``sale`` (till) and
``order_shipped``, as positive units, on the UTC day they occurred. A day the location had
nothing available for the SKU is *excluded* (None), not zero: nobody could buy what was not
there, so a zero would teach the forecast that nobody wanted it. Excluded are:

* days that ended with ``on_hand - reserved - unsellable <= 0`` (the stock model's
  ``available`` before safety stock) after the last movement applied that day,
* days without a movement whose last known figure was 0 or less (no stock all day),
* days before the first movement of that SKU at that location (it was not stocked there).

Every sale is counted once however many copies ClickHouse holds (grouped by
``movement_id`` first, as the reports do); the last figure of a day is the one of the
movement applied last (``applied_at_ms``, then ``kafka_offset``). SQL stays within what
ClickHouse 18.16 and current releases share; filters sit in an inner ``SELECT *`` (18.16
substitutes SELECT aliases into WHERE).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from streams.kernel.settings import Settings
from streams.warehouse.clickhouse import database_name

DAY_MS = 86_400_000


class Query(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...


_FILTERS = (
    "location != '' AND (%(any_sku)s = 1 OR sku IN %(skus)s)"
    " AND (%(any_location)s = 1 OR location IN %(locations)s)"
)

# Units sold per SKU, location and day of the window.
_SALES = """
SELECT sku, location, day, sum(units) FROM (
    SELECT movement_id, any(sku) AS sku, any(location) AS location,
           toDate(any(occurred_at)) AS day, -any(delta_on_hand) AS units
    FROM (SELECT * FROM {db}.stock_movements
          WHERE type IN ('sale', 'order_shipped')
            AND occurred_at_ms >= %(since)s AND occurred_at_ms < %(until)s AND {filters})
    GROUP BY movement_id
) GROUP BY sku, location, day
"""

# The available figure at the end of each day with movements; every day before the window
# folds into the day before it (the figure the window starts with). Copies of a movement are
# identical, so the last one by apply order is right without grouping by movement_id first.
_END_OF_DAY = """
SELECT sku, location, greatest(toDate(occurred_at), toDate(%(before)s)) AS day,
       argMax(on_hand_after - reserved_after - unsellable_after, (applied_at_ms, kafka_offset))
FROM (SELECT * FROM {db}.stock_movements WHERE occurred_at_ms < %(until)s AND {filters})
GROUP BY sku, location, day
"""


def daily_demand(
    client: Query,
    settings: Settings,
    *,
    until: date,
    days: int,
    skus: Collection[str] | None = None,
    locations: Collection[str] | None = None,
) -> dict[tuple[str, str], list[float | None]]:
    """Per (sku, location) stocked there before ``until``: units sold on each of the
    ``days`` days before ``until`` (``until`` itself excluded), oldest first, None for an
    excluded day. ``skus``/``locations`` narrow the SKUs and locations read (None: all)."""
    if days < 1:
        raise ValueError(f"days must be 1 or more, not {days}")
    if (skus is not None and not skus) or (locations is not None and not locations):
        return {}
    db = database_name(settings)
    first = until - timedelta(days=days)
    params = {
        "since": _ms(first),
        "until": _ms(until),
        "before": (first - timedelta(days=1)).isoformat(),
        "any_sku": int(skus is None),
        "skus": tuple(skus or ("",)),
        "any_location": int(locations is None),
        "locations": tuple(locations or ("",)),
    }
    sold: dict[tuple[str, str, date], float] = {}
    for sku, location, day, units in client.execute(_SALES.format(db=db, filters=_FILTERS), params):
        sold[(sku, location, day)] = float(units)
    ends: dict[tuple[str, str], dict[date, int]] = {}
    for sku, location, day, available in client.execute(
        _END_OF_DAY.format(db=db, filters=_FILTERS), params
    ):
        ends.setdefault((sku, location), {})[day] = int(available)
    window = [first + timedelta(days=i) for i in range(days)]
    before = first - timedelta(days=1)
    demand: dict[tuple[str, str], list[float | None]] = {}
    for (sku, location), figures in sorted(ends.items()):
        last = figures.get(before)  # None: not stocked here yet
        series: list[float | None] = []
        for day in window:
            last = figures.get(day, last)
            if last is None or last <= 0:
                series.append(None)
            else:
                series.append(sold.get((sku, location, day), 0.0))
        demand[(sku, location)] = series
    return demand


def _ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
