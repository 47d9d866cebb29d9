"""``stockflow report purchasing``: purchase orders by supplier, late ones, received vs ordered.

One row per purchase order (a proposal that was sent to its supplier): every one still open
(``sent``, ``partially_received``) whatever its age, and those first planned in
``--since``/``--until`` (default: the last 30 days) that are closed (``received``,
``cancelled``). Each figure is the proposal's last version (``max(version)`` per id, its
lines of that version), exact before ClickHouse merges duplicates. An open purchase order
whose ``expected_on`` has passed is late: ``days_late`` counts the days since (0: on time).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from streams.reports.period import Period
from streams.reports.queries import Filters, Query, Report

OPEN = ("sent", "partially_received")
CLOSED = ("received", "cancelled")

_HEADS = """
SELECT proposal_id, max(version) AS last_version, argMax(status, version) AS last_status,
       argMax(supplier, version) AS o_supplier, argMax(location, version) AS o_location,
       argMax(expected_on, version) AS o_expected, argMax(total, version) AS o_total,
       argMax(currency, version) AS o_currency, argMax(created_at_ms, version) AS o_created
FROM {db}.purchase_orders
GROUP BY proposal_id
"""

_UNITS = """
SELECT proposal_id, sum(q), sum(r), sum(c) FROM (
    SELECT proposal_id, sku, any(qty) AS q, any(received_qty) AS r, any(cancelled_qty) AS c
    FROM {db}.purchase_order_lines
    WHERE (proposal_id, version) IN (
        SELECT proposal_id, max(version) FROM {db}.purchase_orders GROUP BY proposal_id
    )
    GROUP BY proposal_id, sku
) GROUP BY proposal_id
"""

COLUMNS = (
    "supplier", "proposal_id", "location", "status", "expected_on", "days_late", "ordered",
    "received", "cancelled", "open_units", "received_pct", "total", "currency",
)  # fmt: skip


def purchasing_report(
    client: Query, db: str, period: Period, filters: Filters, *, today: date | None = None
) -> Report:
    """Open purchase orders and those closed in the period, by supplier then expected day."""
    today = today or datetime.now(UTC).date()
    units = {pid: (int(q), int(r), int(c)) for pid, q, r, c in client.execute(_UNITS.format(db=db))}
    rows: list[tuple[Any, ...]] = []
    for pid, _, status, supplier, location, expected, total, currency, created in client.execute(
        _HEADS.format(db=db)
    ):
        in_period = period.since_ms <= created < period.until_ms
        if not (status in OPEN or (status in CLOSED and in_period)):
            continue
        ordered, received, cancelled = units.get(pid, (0, 0, 0))
        late = (today - expected).days if status in OPEN and expected and expected < today else 0
        rows.append(
            (
                supplier,
                pid,
                location,
                status,
                expected,
                late,
                ordered,
                received,
                cancelled,
                max(0, ordered - received - cancelled),
                round(100 * received / ordered, 1) if ordered else None,
                total,
                currency,
            )
        )
    rows.sort(key=lambda r: (r[0], r[4] or date.max, r[1]))
    late_count = sum(1 for r in rows if r[5] > 0)
    return Report(
        f"Purchase orders: open, and closed in the period ({late_count} late;"
        " amounts in minor units)",
        COLUMNS,
        rows,
    )
