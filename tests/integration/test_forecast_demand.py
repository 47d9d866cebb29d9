"""Demand history on the real stack: rows in ClickHouse's stock_movements (the table is the
contract) → daily_demand → `stockflow replenish backtest`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.cli import main
from streams.kernel.settings import Settings
from streams.purchasing.demand import daily_demand
from streams.warehouse.clickhouse import connect
from streams.warehouse.migrations import migrate
from tests.integration.sink_support import drop_database

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
PATTERN = [4, 4, 5, 6, 12, 20, 2]  # units a day, Monday first
COLUMNS = (
    "movement_id, event_id, sku, location, channel, type, reason, delta_on_hand, delta_reserved,"
    " delta_unsellable, delta_incoming, on_hand_after, reserved_after, unsellable_after,"
    " occurred_at, occurred_at_ms, applied_at, applied_at_ms, source_ref, lot,"
    " kafka_partition, kafka_offset, ver"
)


class Ledger:
    """Movements of one SKU x location as the ledger would write them: running figures after
    each one, applied in order."""

    offset = 0

    def __init__(self, sku: str, location: str) -> None:
        self.sku, self.location = sku, location
        self.on_hand = self.reserved = self.unsellable = 0
        self.rows: list[dict[str, Any]] = []

    def move(
        self, back: int, kind: str, on_hand: int = 0, reserved: int = 0, unsellable: int = 0
    ) -> None:
        """A movement ``back`` days before today (0: today)."""
        self.on_hand += on_hand
        self.reserved += reserved
        self.unsellable += unsellable
        Ledger.offset += 1
        day = TODAY - timedelta(days=back)
        at = datetime(day.year, day.month, day.day, 9, tzinfo=UTC) + timedelta(
            seconds=Ledger.offset
        )
        ms = int(at.timestamp() * 1000)
        self.rows.append(
            {
                "movement_id": f"m{Ledger.offset}",
                "event_id": f"e{Ledger.offset}",
                "sku": self.sku,
                "location": self.location,
                "channel": "shop" if kind == "order_shipped" else "",
                "type": kind,
                "reason": None,
                "delta_on_hand": on_hand,
                "delta_reserved": reserved,
                "delta_unsellable": unsellable,
                "delta_incoming": 0,
                "on_hand_after": self.on_hand,
                "reserved_after": self.reserved,
                "unsellable_after": self.unsellable,
                "occurred_at": at,
                "occurred_at_ms": ms,
                "applied_at": at,
                "applied_at_ms": ms + 50,
                "source_ref": None,
                "lot": None,
                "kafka_partition": 0,
                "kafka_offset": Ledger.offset,
                "ver": ms + 50,
            }
        )


def regular_seller(days: int) -> Ledger:
    """mug at store-1: stocked long before, then the weekly pattern every day until today
    (today's sale is not history), half of it shipped orders, half till sales."""
    mug = Ledger("mug", "store-1")
    mug.move(days + 30, "receipt", on_hand=100_000)
    for back in range(days, -1, -1):
        units = PATTERN[(TODAY - timedelta(days=back)).weekday()]
        mug.move(back, "sale", on_hand=-(units // 2))
        mug.move(back, "order_shipped", on_hand=-(units - units // 2))
    mug.move(3, "adjustment", on_hand=-7)  # a count correction: not demand
    return mug


def stock_outs() -> tuple[Ledger, list[float | None]]:
    """tee at store-3: every way a day is excluded, and the figure each day must read as."""
    tee = Ledger("tee", "store-3")
    tee.move(30, "receipt", on_hand=5)  # first stocked 30 days ago: earlier days excluded
    tee.move(29, "sale", on_hand=-5)  # sold out: the day ended at 0
    # 28: no movement, nothing in stock all day
    tee.move(27, "receipt", on_hand=10)
    tee.move(27, "sale", on_hand=-3)  # ends at 7: 3 sold
    tee.move(26, "order_reserved", reserved=7)  # all of it promised: nothing available
    # 25: no movement, still nothing available
    tee.move(24, "order_shipped", on_hand=-7, reserved=-7)  # shipped, ends at 0
    tee.move(23, "receipt", on_hand=4, unsellable=4)  # damaged on arrival
    tee.move(22, "receipt", on_hand=6)  # 6 available from here on, no sale
    expected: list[float | None] = [None] * 5 + [0.0, None, None, 3.0, None, None, None, None]
    expected += [0.0] * 22  # days 22 .. 1 before today
    return tee, expected


def intermittent() -> Ledger:
    """mug at store-2: 2 units every fourth day."""
    mug = Ledger("mug", "store-2")
    mug.move(200, "receipt", on_hand=1_000)
    for back in range(130, 0, -1):
        if back % 4 == 0:
            mug.move(back, "sale", on_hand=-2)
    return mug


@pytest.fixture
def history(local_stack: Settings, unique_name: str) -> Iterator[tuple[Settings, Any]]:
    settings = dataclasses.replace(local_stack, clickhouse_database=unique_name)
    client = connect(settings)
    migrate(client, unique_name)
    try:
        yield settings, client
    finally:
        client.disconnect()
        drop_database(settings)


def insert(client: Any, db: str, rows: list[dict[str, Any]]) -> None:
    client.execute(f"INSERT INTO {db}.stock_movements ({COLUMNS}) VALUES", rows)


def test_daily_demand_counts_sales_and_excludes_days_without_stock(
    history: tuple[Settings, Any],
) -> None:
    """Given movements in stock_movements: a regular seller (till sales and shipped orders,
    a count correction, one movement inserted twice), and a SKU that sold out, was fully
    reserved, and received damaged stock
    When daily_demand reads the 35 days before today
    Then each day is the units sold that day, counted once, and every day without available
    stock (or before the SKU was stocked) is None, not 0; today is not in the history; the
    SKU and location filters narrow the result."""
    settings, client = history
    db = settings.clickhouse_database
    mug = regular_seller(days=40)
    tee, expected_tee = stock_outs()
    twice = [r for r in mug.rows if r["type"] == "sale"][-5:-3] + tee.rows[3:4]
    insert(client, db, mug.rows + tee.rows + twice)  # sink delivers at least once

    demand = daily_demand(client, settings, until=TODAY, days=35)

    assert set(demand) == {("mug", "store-1"), ("tee", "store-3")}
    assert demand[("tee", "store-3")] == expected_tee
    expected_mug = [
        float(PATTERN[(TODAY - timedelta(days=back)).weekday()]) for back in range(35, 0, -1)
    ]
    assert demand[("mug", "store-1")] == expected_mug
    only = daily_demand(client, settings, until=TODAY, days=7, skus=["tee"], locations=["store-3"])
    assert only == {("tee", "store-3"): [0.0] * 7}
    assert daily_demand(client, settings, until=TODAY, days=7, locations=["nowhere"]) == {}


def test_the_backtest_command_prints_accuracy_per_method(
    history: tuple[Settings, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given four months of a regular weekly seller, an intermittent seller and a SKU with
    stock-outs in ClickHouse
    When `stockflow replenish backtest --weeks 2` runs, as JSON and as a table, for every
    location and for store-1 only
    Then it scores the three series with every method, the automatic choice picks Holt-Winters
    for the weekly seller and Croston for the intermittent one, and on store-1 alone (the exact
    weekly pattern) Holt-Winters and the automatic choice have no error."""
    settings, client = history
    db = settings.clickhouse_database
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_DATABASE", db)
    insert(client, db, regular_seller(days=130).rows + stock_outs()[0].rows + intermittent().rows)

    assert main(["replenish", "backtest", "--weeks", "2", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    with capsys.disabled():
        print(json.dumps(report, indent=1))
    assert report["weeks"] == 2 and report["series"] == 3
    rows = {r["method"]: r for r in report["methods"]}
    assert list(rows) == ["auto", "holt_winters", "ses", "croston", "tsb", "naive"]
    assert report["auto_choices"]["holt_winters"] == 2 and report["auto_choices"]["croston"] >= 2
    assert all(r["wape"] is not None and r["series"] == 3 for r in rows.values())

    assert main(["replenish", "backtest", "--weeks", "2", "--location", "store-1"]) == 0
    table = capsys.readouterr().out
    with capsys.disabled():
        print(table)
    assert "1 series" in table
    lines = {line.split()[0]: line.split() for line in table.splitlines()[2:-1]}
    assert set(lines) == {"auto", "holt_winters", "ses", "croston", "tsb", "naive"}
    assert lines["auto"][1:] == ["1", "14", f"{sum(PATTERN) * 2}", "0.0%", "+0.0%"]
    assert lines["holt_winters"][4:] == ["0.0%", "+0.0%"]
    assert lines["ses"][4] != "0.0%"


def test_the_backtest_command_says_when_there_is_no_history(
    history: tuple[Settings, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Given an empty stock_movements table
    When `stockflow replenish backtest` runs
    Then it exits 1 and says there is no sales history to backtest."""
    settings, _ = history
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert main(["replenish", "backtest"]) == 1
    assert "no sales history" in capsys.readouterr().err
