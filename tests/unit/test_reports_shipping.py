"""The shipping-cost report's totals, order of rows and one order's shipments, from the
rows ClickHouse answers (the SQL itself runs in tests/integration/test_shipping_cost.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.reports.period import Period
from streams.reports.queries import Filters
from streams.reports.render import render
from streams.reports.shipping import shipping_cost_report


class Answers:
    """ClickHouse's answers by query, and the queries asked with their parameters."""

    def __init__(self, grouped: list[Any], orders: list[Any], one: list[Any] | None = None) -> None:
        self.grouped, self.orders, self.one = grouped, orders, one or []
        self.asked: list[tuple[str, Any]] = []

    def execute(self, query: str, params: Any = None) -> Any:
        self.asked.append((query, params))
        if "WHERE s_order" in query:
            return self.one
        if "sum(s_cost)" in query:
            return self.grouped
        return self.orders


PERIOD = Period(0, 86_400_000)


def test_channel_and_carrier_totals_count_an_order_once_and_follow_their_lines() -> None:
    """Given shop's order 1 shipped in two parcels by dhl and order 2 by dhl and ups, when
    the report is made, then shop's rows are dhl, ups, then shop * (2 orders, 3 shipments,
    cost 3000, 1500 per order, 1 fallback), and the carriers over all channels come last."""
    grouped = [
        ("shop", "dhl", "EUR", 2, 3, 4, 2000, 1),
        ("shop", "ups", "EUR", 1, 1, 1, 1000, 0),
    ]
    orders = [
        ("shop", "dhl", "EUR", "shop:1"),
        ("shop", "dhl", "EUR", "shop:2"),
        ("shop", "ups", "EUR", "shop:2"),
    ]
    report = shipping_cost_report(Answers(grouped, orders), "db", PERIOD, Filters())
    assert [r[:3] for r in report.rows] == [
        ("shop", "dhl", "EUR"),
        ("shop", "ups", "EUR"),
        ("shop", "*", "EUR"),
        ("*", "dhl", "EUR"),
        ("*", "ups", "EUR"),
    ]
    assert report.rows[2][3:] == (3, 4, 2, 5, 3000, 1500.0, 750.0, 1)
    assert report.rows[0][3:] == (2, 3, 2, 4, 2000, 1000.0, 666.67, 1)
    assert report.rows[4][3:] == (1, 1, 1, 1, 1000, 1000.0, 1000.0, 0)
    table = render(report, "table")
    assert "cost_per_order" in table and "1500.00" in table


def test_the_channel_filter_and_period_reach_clickhouse_as_parameters() -> None:
    """Given --channel woo, when the report is made, then both queries carry the period's
    bounds and the channel as parameters, never in the SQL text."""
    answers = Answers([], [])
    shipping_cost_report(answers, "db", PERIOD, Filters(channel="wo'o"))
    assert len(answers.asked) == 2
    for query, params in answers.asked:
        assert params == {"since": 0, "until": 86_400_000, "channel": "wo'o"}
        assert "wo'o" not in query


def test_one_order_lists_its_shipments_whatever_the_period() -> None:
    """Given --order shop:2, when the report is made, then one query asks for that order only
    (no period) and each shipment is a row with its carrier, cost, the carriers passed over and
    the time of purchase."""
    one = [
        ("ship|w1|shop:2", "shop:2", "shop", "dhl", "N", "delivered", 1, 2, 900, 1000, "EUR",
         ["chronopost", "ups"], 86_400_000 * 40, 3),
    ]  # fmt: skip
    answers = Answers([], [], one)
    report = shipping_cost_report(answers, "db", PERIOD, Filters(order="shop:2"))
    [(query, params)] = answers.asked
    assert "s_created >=" not in query
    assert params == {"order": "shop:2"}
    assert report.rows == [
        ("shop:2", "ship|w1|shop:2", "shop", "dhl", "N", "delivered", 1, 2, 900, 1000, "EUR",
         "chronopost ups", datetime(1970, 2, 10, tzinfo=UTC), 3),
    ]  # fmt: skip
    assert '"bought_at": "1970-02-10T00:00:00+00:00"' in render(report, "json")
