"""Reports over the ClickHouse tables: turnover, days of cover, sales trend, best sellers,
discrepancies, per-channel availability, the access audit, the order and purchasing
figures, and the shipping cost."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from streams.kernel.settings import Settings

USAGE_ERROR = 2
UNAVAILABLE = 1


def run_report(
    settings: Settings,
    name: str,
    fmt: str,
    args: Mapping[str, Any] | Any,
    *,
    out: TextIO | None = None,
) -> int:
    """``stockflow report <name> --format table|csv|json [--since] [--until] [--sku]
    [--channel] [--who] [--limit] [--order]``. ``args`` is a mapping or an argparse namespace
    with those options (missing ones take their defaults). Returns 0, 2 for a bad request, 1 when
    ClickHouse cannot answer."""
    from streams.orders.errors import OrderConfigError
    from streams.orders.setup import channel_fees
    from streams.reports.audit import audit_report
    from streams.reports.orders import order_reports
    from streams.reports.period import ReportError, period
    from streams.reports.purchasing import purchasing_report
    from streams.reports.queries import REPORTS, Filters
    from streams.reports.render import FORMATS, render
    from streams.reports.shipping import shipping_cost_report
    from streams.warehouse.clickhouse import connect, database_name, is_unavailable
    from streams.warehouse.migrations import migrate
    from streams.warehouse.order_figures import Fees

    out = out or sys.stdout
    try:  # orders.channels[].fee_percent / fee_fixed, for cost per order
        fees = (
            {ch: Fees(*f) for ch, f in channel_fees(settings.config_path).items()}
            if name == "orders-channels"
            else {}
        )
    except OrderConfigError as exc:
        return _fail(str(exc))
    reports = {**REPORTS, "audit": audit_report, **order_reports(fees)}
    reports["purchasing"] = purchasing_report
    reports["shipping-cost"] = shipping_cost_report
    options = dict(args) if isinstance(args, Mapping) else dict(vars(args))
    if name not in reports:
        return _fail(f"unknown report {name!r}; choose one of {', '.join(reports)}")
    if fmt not in FORMATS:
        return _fail(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    try:
        span = period(options.get("since"), options.get("until"))
        limit = int(options.get("limit") or 10)
        if limit < 1:
            raise ReportError("--limit must be at least 1")
        db = database_name(settings)
    except ValueError as exc:  # ReportError included
        return _fail(str(exc))
    filters = Filters(
        sku=options.get("sku"),
        channel=options.get("channel"),
        limit=limit,
        who=options.get("who"),
        order=options.get("order"),
    )
    client = connect(settings)
    try:
        migrate(client, db)  # a fresh install has no tables until the sink first ran
        report = reports[name](client, db, span, filters)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
        print(
            f"stockflow report: ClickHouse at {where} is not answering ({exc}); start it"
            " with `stockflow stack up` or set STOCKFLOW_CLICKHOUSE_HOST/_PORT",
            file=sys.stderr,
        )
        return UNAVAILABLE
    finally:
        client.disconnect()
    out.write(render(report, fmt))
    return 0


def _fail(message: str) -> int:
    print(f"stockflow report: {message}", file=sys.stderr)
    return USAGE_ERROR
