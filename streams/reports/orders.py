"""``stockflow report orders-*``: the order figures of streams/warehouse/order_figures.py.

Each covers the orders placed in ``--since``/``--until`` (default: the last 30 days), of one
``--channel`` if given. Rates are in percent. Money is in minor units of its currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from streams.reports.period import Period
from streams.reports.queries import Filters, Query, Report, ReportFn
from streams.warehouse import order_figures as figures
from streams.warehouse.order_figures import Fees, Scope


def _scope(period: Period, filters: Filters) -> Scope:
    return Scope(period.since_ms, period.until_ms, filters.channel)


def _pct(rate: float | None) -> float | None:
    return None if rate is None else round(100 * rate, 2)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def fill_rate(client: Query, db: str, period: Period, filters: Filters) -> Report:
    rows = [
        (f.channel, f.lines, f.lines_filled, _pct(f.line_rate), f.units, f.units_filled,
         _pct(f.unit_rate))
        for f in figures.fill(client, db, _scope(period, filters))
    ]  # fmt: skip
    return Report(
        "Order fill rate (lines and units that got stock / ordered)",
        ("channel", "lines", "lines_filled", "line_fill_pct", "units", "units_filled",
         "unit_fill_pct"),
        rows,
    )  # fmt: skip


def split_rate(client: Query, db: str, period: Period, filters: Filters) -> Report:
    rows = [
        (s.channel, s.orders, s.split, _pct(s.rate))
        for s in figures.splits(client, db, _scope(period, filters))
    ]
    return Report(
        "Split shipments (orders shipping from more than one location)",
        ("channel", "orders", "split_orders", "split_pct"),
        rows,
    )


def latency(client: Query, db: str, period: Period, filters: Filters) -> Report:
    rows = [
        (x.channel, x.orders, _round(x.p50_seconds), _round(x.p95_seconds))
        for x in figures.latency(client, db, _scope(period, filters))
    ]
    return Report(
        "Time from placed to allocated (seconds; channel * = all)",
        ("channel", "orders", "p50_seconds", "p95_seconds"),
        rows,
    )


def exceptions(client: Query, db: str, period: Period, filters: Filters) -> Report:
    rows = [
        (e.reason, e.transitions, e.orders, e.open_now)
        for e in figures.exceptions(client, db, _scope(period, filters))
    ]
    return Report(
        "Order exceptions by reason",
        ("reason", "exceptions", "orders", "still_open"),
        rows,
    )


def channels(
    client: Query, db: str, period: Period, filters: Filters, *, fees: Mapping[str, Fees]
) -> Report:
    rows = [
        (c.channel, c.currency, c.orders, c.sold_orders, c.revenue, c.shipping,
         _round(c.fees), _round(c.cost_per_order))
        for c in figures.channels(client, db, _scope(period, filters), fees)
    ]  # fmt: skip
    return Report(
        "Orders, revenue and cost per order by channel (minor units)",
        ("channel", "currency", "orders", "sold_orders", "revenue", "shipping_cost", "fees",
         "cost_per_order"),
        rows,
    )  # fmt: skip


def order_reports(fees: Mapping[str, Fees]) -> dict[str, ReportFn]:
    """The order reports by name, cost per order with the channels' ``fees``."""
    return {
        "orders-fill": fill_rate,
        "orders-split": split_rate,
        "orders-latency": latency,
        "orders-exceptions": exceptions,
        "orders-channels": partial(channels, fees=fees),
    }
