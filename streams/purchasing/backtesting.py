"""``stockflow replenish backtest``: forecast accuracy per method over the last weeks."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from streams.kernel.settings import Settings
from streams.purchasing.demand import daily_demand
from streams.replenishment.backtest import BacktestResult, backtest
from streams.replenishment.calendar import uplift_for
from streams.replenishment.config import ReplenishmentConfigError, load_replenishment

FORMATS = ("table", "json")
UNAVAILABLE = 1
USAGE_ERROR = 2


def run_backtest(
    settings: Settings,
    *,
    weeks: int = 4,
    location: str | None = None,
    fmt: str = "table",
    out: TextIO | None = None,
) -> int:
    """Read ``history_days`` + ``weeks`` weeks of daily demand up to yesterday and print the
    accuracy of each method. 0, 1 when ClickHouse cannot answer or holds no sales history,
    2 for a bad request."""
    from streams.warehouse.clickhouse import connect, database_name, is_unavailable
    from streams.warehouse.migrations import migrate

    out = out or sys.stdout
    if fmt not in FORMATS:
        return _fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", USAGE_ERROR)
    if weeks < 1:
        return _fail("--weeks must be 1 or more", USAGE_ERROR)
    try:
        db = database_name(settings)
    except ValueError as exc:
        return _fail(str(exc), USAGE_ERROR)
    try:  # the history length and the peaks of STOCKFLOW_CONFIG's replenishment section
        config = load_replenishment(settings.config_path or None)
    except ReplenishmentConfigError as exc:
        return _fail(str(exc), USAGE_ERROR)
    history_days = config.history_days
    today = datetime.now(UTC).date()
    # the driver logs each refused connection with a traceback; the message below says it all
    logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
    client = connect(settings)
    try:
        migrate(client, db)  # a fresh install has no tables until the sink first ran
        series = daily_demand(
            client,
            settings,
            until=today,
            days=history_days + 7 * weeks,
            locations=None if location is None else (location,),
        )
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
        return _fail(
            f"ClickHouse at {where} is not answering ({exc}); start it with"
            " `stockflow stack up` or set STOCKFLOW_CLICKHOUSE_HOST/_PORT",
            UNAVAILABLE,
        )
    finally:
        client.disconnect()
    result = backtest(
        series,
        end=today,
        weeks=weeks,
        history_days=history_days,
        uplift=lambda key: uplift_for(config.peaks, config.categories.get(key[0])),
    )
    if result.series == 0:
        where = f" at {location}" if location else ""
        return _fail(
            f"no sales history{where} to backtest: the last {weeks} week(s) need sales"
            f" (stock_movements of type sale or order_shipped) and a week of history before",
            UNAVAILABLE,
        )
    out.write(render(result, fmt, until=today.isoformat()))
    return 0


def render(result: BacktestResult, fmt: str, *, until: str) -> str:
    if fmt == "json":
        return (
            json.dumps(
                {
                    "until": until,
                    "weeks": result.weeks,
                    "series": result.series,
                    "methods": [
                        {
                            "method": r.method,
                            "series": r.series,
                            "days": r.days,
                            "units": r.actual,
                            "wape": _round(r.wape),
                            "bias": _round(r.bias),
                        }
                        for r in result.rows
                    ],
                    "auto_choices": result.choices,
                },
                indent=2,
            )
            + "\n"
        )
    head = ("method", "series", "days", "units", "WAPE", "bias")
    rows = [
        (r.method, str(r.series), str(r.days), f"{r.actual:g}", _pct(r.wape), _pct(r.bias, True))
        for r in result.rows
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    lines = [
        f"Forecast backtest: {result.series} series, the {result.weeks} week(s) before {until},"
        " each forecast a week ahead from the history before it",
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(head, widths, strict=True))
        ),
    ]
    for row in rows:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    picks = ", ".join(f"{m} {n}" for m, n in result.choices.items())
    lines.append(f"auto picked (series x weeks): {picks}")
    return "\n".join(lines) + "\n"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    percent = round(value * 100, 1) + 0.0  # no "-0.0%" for a rounding error
    return f"{percent:+.1f}%" if signed else f"{percent:.1f}%"


def _fail(message: str, code: int) -> int:
    print(f"stockflow replenish backtest: {message}", file=sys.stderr)
    return code
