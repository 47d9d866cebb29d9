"""The reports: one function each, ClickHouse query in, :class:`Report` out.

Every query counts a record once even before ClickHouse merges duplicates: rows are first
grouped by their id (``movement_id``; ``(sku, channel, version)`` for levels) and only then
summed. Nothing relies on a merge having happened. Stock on hand at a moment is the last
``on_hand_after`` per location among movements *applied* before it (apply order is the
ledger's order); sales and discrepancies fall in the period by their ``occurred_at``.

SQL is assembled from constants and the database name (checked to be an identifier);
every user-supplied value goes through the driver's parameters (hence the S608 waivers).
Filters sit in an inner ``SELECT *`` because ClickHouse 18.16 substitutes a SELECT alias
into WHERE (``any(sku) AS sku ... WHERE sku = ...`` fails with code 184).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from streams.reports.availability import HOUR_MS, availability
from streams.reports.period import Period

SALES = "type IN ('sale', 'order_shipped')"


class Query(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...


@dataclass(frozen=True)
class Filters:
    sku: str | None = None
    channel: str | None = None
    limit: int = 10
    who: str | None = None  # the audit's principal
    order: str | None = None  # shipping-cost: one order's shipments


@dataclass(frozen=True)
class Report:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def _params(period: Period, filters: Filters) -> dict[str, Any]:
    return {
        "since": period.since_ms,
        "until": period.until_ms,
        "sku": filters.sku or "",
        "channel": filters.channel or "",
        "first_day": period.first_day,
        "last_day": period.last_day,
    }


_SKU = "(%(sku)s = '' OR sku = %(sku)s)"
_CHANNEL = "(%(channel)s = '' OR channel = %(channel)s)"

# One row per movement, whatever the number of copies inserted.
_MOVEMENTS = """
SELECT movement_id, any(sku) AS sku, any(location) AS location, any(channel) AS channel,
       any(type) AS type, any(event_id) AS event_id, any(delta_on_hand) AS delta_on_hand,
       any(on_hand_after) AS on_hand_after, any(occurred_at_ms) AS occurred_at_ms,
       any(applied_at_ms) AS applied_at_ms, min(kafka_offset) AS kafka_offset
FROM (SELECT * FROM {db}.stock_movements WHERE {where})
GROUP BY movement_id
"""


def _on_hand_at(db: str, moment: str) -> str:
    """SQL: per SKU, on hand at ``moment`` (a param name) summed over its locations."""
    inner = _MOVEMENTS.format(db=db, where=f"applied_at_ms < %({moment})s AND {_SKU}")
    return f"""
SELECT sku, sum(on_hand) AS on_hand FROM (
    SELECT sku, location, argMax(on_hand_after, (applied_at_ms, kafka_offset)) AS on_hand
    FROM ({inner}) GROUP BY sku, location
) GROUP BY sku"""  # noqa: S608


def _sold(db: str) -> str:
    inner = _MOVEMENTS.format(
        db=db,
        where=f"occurred_at_ms >= %(since)s AND occurred_at_ms < %(until)s AND {SALES}"
        f" AND {_SKU} AND {_CHANNEL}",
    )
    return f"SELECT sku, sum(-delta_on_hand) AS sold FROM ({inner}) GROUP BY sku"  # noqa: S608


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def turnover(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Units sold in the period over the average of opening and closing stock on hand."""
    p = _params(period, filters)
    sold = dict(client.execute(_sold(db), p))
    opening = dict(client.execute(_on_hand_at(db, "since"), p))
    closing = dict(client.execute(_on_hand_at(db, "until"), p))
    rows = []
    for sku in sorted(set(sold) | set(opening) | set(closing)):
        units, o, c = sold.get(sku, 0), opening.get(sku, 0), closing.get(sku, 0)
        rows.append((sku, units, o, c, _ratio(units, (o + c) / 2)))
    rows.sort(key=lambda r: (-(r[4] or 0), r[0]))
    return Report(
        "Stock turnover",
        ("sku", "units_sold", "opening_on_hand", "closing_on_hand", "turnover"),
        rows,
    )


def days_of_cover(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Stock on hand at the end of the period over the period's average daily sales."""
    p = _params(period, filters)
    sold = dict(client.execute(_sold(db), p))
    closing = dict(client.execute(_on_hand_at(db, "until"), p))
    rows = []
    for sku in sorted(set(sold) | set(closing)):
        per_day = sold.get(sku, 0) / period.days
        on_hand = closing.get(sku, 0)
        rows.append((sku, on_hand, round(per_day, 2), _ratio(on_hand, per_day)))
    # Most urgent first; SKUs that do not sell (no cover figure) last.
    rows.sort(key=lambda r: (r[3] is None, r[3] or 0, r[0]))
    return Report("Days of cover", ("sku", "on_hand", "units_sold_per_day", "days_of_cover"), rows)


def sales_trend(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Units sold per day, SKU and channel (whole UTC days touching the period)."""
    query = f"""
SELECT day, sku, channel, sum(units) FROM (
    SELECT movement_id, any(day) AS day, any(sku) AS sku, any(channel) AS channel,
           any(units) AS units
    FROM (SELECT * FROM {db}.daily_sales
          WHERE day >= %(first_day)s AND day <= %(last_day)s AND {_SKU} AND {_CHANNEL})
    GROUP BY movement_id
) GROUP BY day, sku, channel ORDER BY sku, channel, day"""  # noqa: S608
    rows = []
    previous: dict[tuple[str, str], int] = {}
    for day, sku, channel, units in client.execute(query, _params(period, filters)):
        before = previous.get((sku, channel))
        rows.append((day, sku, channel, units, None if before is None else units - before))
        previous[(sku, channel)] = units
    return Report("Sales trend", ("day", "sku", "channel", "units", "change"), rows)


def best_sellers(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """SKUs by units sold in the period, with their number of orders and channels."""
    inner = _MOVEMENTS.format(
        db=db,
        where=f"occurred_at_ms >= %(since)s AND occurred_at_ms < %(until)s AND {SALES}"
        f" AND {_SKU} AND {_CHANNEL}",
    )
    query = f"""
SELECT sku, sum(-delta_on_hand) AS units, uniqExact(event_id) AS orders,
       uniqExact(channel) AS channels
FROM ({inner}) GROUP BY sku ORDER BY units DESC, sku LIMIT {int(filters.limit)}"""  # noqa: S608
    rows = [(i, *row) for i, row in enumerate(client.execute(query, _params(period, filters)), 1)]
    return Report("Best sellers", ("rank", "sku", "units", "orders", "channels"), rows)


def discrepancies(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Stock count discrepancies in the period per SKU and location, largest first."""
    inner = _MOVEMENTS.format(
        db=db,
        where="occurred_at_ms >= %(since)s AND occurred_at_ms < %(until)s"
        f" AND type = 'discrepancy' AND {_SKU}",
    )
    query = f"""
SELECT sku, location, count() AS counts, sum(delta_on_hand) AS net_units,
       sum(abs(delta_on_hand)) AS abs_units, max(occurred_at_ms) AS last_ms
FROM ({inner}) GROUP BY sku, location ORDER BY abs_units DESC, sku, location"""  # noqa: S608
    rows = [
        (sku, loc, n, net, gross, _iso(last))
        for sku, loc, n, net, gross, last in client.execute(query, _params(period, filters))
    ]
    return Report(
        "Discrepancies",
        ("sku", "location", "discrepancies", "net_units", "absolute_units", "last_at"),
        rows,
    )


def channel_availability(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Per SKU x channel: hours in stock and out of stock, % in stock, number of stock-outs."""
    levels = f"""
SELECT sku, channel, version, any(quantity) AS quantity, any(at_ms) AS at_ms
FROM (SELECT * FROM {db}.stock_levels WHERE {{where}} AND {_SKU} AND {_CHANNEL})
GROUP BY sku, channel, version"""  # noqa: S608
    before = f"""
SELECT sku, channel, argMax(at_ms, version), argMax(quantity, version)
FROM ({levels.format(where="at_ms < %(since)s")}) GROUP BY sku, channel"""  # noqa: S608
    during = levels.format(where="at_ms >= %(since)s AND at_ms < %(until)s")
    during += " ORDER BY sku, channel, version"
    p = _params(period, filters)
    series: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for sku, channel, at_ms, quantity in client.execute(before, p):
        series[(sku, channel)] = [(at_ms, quantity)]
    for sku, channel, _version, quantity, at_ms in client.execute(during, p):
        series.setdefault((sku, channel), []).append((at_ms, quantity))
    rows = []
    for (sku, channel), points in sorted(series.items()):
        a = availability(points, period.since_ms, period.until_ms)
        pct = None if a.pct_in_stock is None else round(a.pct_in_stock, 2)
        rows.append(
            (
                sku,
                channel,
                _hours(a.in_stock_ms),
                _hours(a.out_of_stock_ms),
                _hours(a.unknown_ms),
                pct,
                a.stockouts,
            )
        )
    return Report(
        "Availability per channel",
        (
            "sku",
            "channel",
            "in_stock_hours",
            "out_of_stock_hours",
            "unknown_hours",
            "pct_in_stock",
            "stockouts",
        ),
        rows,
    )


def _hours(ms: int) -> float:
    return round(ms / HOUR_MS, 3)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


ReportFn = Callable[[Query, str, Period, Filters], Report]
REPORTS: dict[str, ReportFn] = {
    "turnover": turnover,
    "days-of-cover": days_of_cover,
    "sales-trend": sales_trend,
    "best-sellers": best_sellers,
    "discrepancies": discrepancies,
    "availability": channel_availability,
}


def cell(value: Any) -> Any:
    """A JSON/CSV-friendly value."""
    if isinstance(value, date):
        return value.isoformat()
    return value


def as_records(report: Report) -> list[dict[str, Any]]:
    return [dict(zip(report.columns, map(cell, row), strict=True)) for row in report.rows]
