"""The end-of-day summary: decisions, quantities, ClickHouse rows, availability report."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clickhouse_driver import Client

from deploy.demo.view import Board
from streams.kernel.settings import Settings
from streams.reports import run_report
from streams.warehouse.clickhouse import tls_options

TABLES = ("stock_movements", "stock_levels", "decisions", "alerts")


def summarise(
    settings: Settings,
    sku: str,
    board: Board,
    started: float,
    orders: Any = None,
    purchasing: Any = None,
    channels: list[str] | None = None,
) -> int:
    """Prints the day's summary; ``orders``: the day's OrderDay (None: no order agent);
    ``purchasing``: the day's PurchasingDay (None: none played); ``channels``: the lines of
    the Magento order, the till, the ERP snapshot and the prices."""
    rows = _clickhouse_rows(settings, sku)
    print()
    print("=" * 72)
    print(f"Summary for {sku}")
    print("=" * 72)
    print(
        f"orders: accepted {board.decisions.get('accepted', 0)}, "
        f"rejected {board.decisions.get('rejected', 0)} "
        f"(never more accepted than there were chairs)"
    )
    print("final sellable quantity per channel (ledger -> what the shop shows):")
    for channel, quantity in sorted(board.ledger.items()):
        shown = board.shops.get(channel, "(till: reads the ledger)")
        print(f"  {channel:<12} {quantity:>4}  ->  {shown}")
    for line in channels or []:
        print(line)
    print("alerts: " + (", ".join(f"{k} {v}" for k, v in sorted(board.alerts.items())) or "none"))
    if orders is not None:
        for line in orders.summary():
            print(line)
    if purchasing is not None:
        for line in purchasing.summary():
            print(line)
    print("rows in ClickHouse (distinct ids): " + ", ".join(f"{t} {n}" for t, n in rows.items()))
    print()
    print("per-channel availability today (from stock_levels):")
    since = datetime.fromtimestamp(started - 60, tz=UTC).isoformat()
    run_report(settings, "availability", "table", {"sku": sku, "since": since})
    dashboards = Path(__file__).resolve().parents[1] / "grafana" / "dashboards"
    print()
    print(f"Prometheus: http://127.0.0.1:{settings.prometheus_port}  dashboards: {dashboards}")
    return 0


def _clickhouse_rows(settings: Settings, sku: str, timeout: float = 30) -> dict[str, int]:
    """Distinct rows per table, once the sink has caught up (movements stop growing)."""
    client = Client(
        host=settings.clickhouse_host,
        port=settings.clickhouse_port,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password.reveal(),
        database=settings.clickhouse_database,
        **tls_options(settings),
    )
    ids = {
        "stock_movements": "movement_id",
        "stock_levels": "concat(channel, ':', toString(version))",
        "decisions": "decision_id",
        "alerts": "alert_id",
    }
    counts: dict[str, int] = {}
    last = -1
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            counts = {
                table: int(
                    client.execute(
                        f"SELECT uniqExact({ids[table]}) FROM {table} WHERE sku = %(sku)s",  # noqa: S608
                        {"sku": sku},
                    )[0][0]
                )
                for table in TABLES
            }
            if counts["stock_movements"] and counts["stock_movements"] == last:
                break
            last = counts["stock_movements"]
            time.sleep(2)
    finally:
        client.disconnect()
    return counts
