"""The alerts routed to the page: read from ClickHouse's ``alert_deliveries`` (written by the
sink from notifications.deliveries.v1), newest first, for the ordering page to show."""

from __future__ import annotations

from typing import Any

from streams.kernel.settings import Settings, load
from streams.warehouse.clickhouse import connect, database_name

_COLUMNS = ("alert_id", "kind", "sku", "location", "severity", "message", "rule", "recipient")


def recent_page_alerts(
    limit: int = 50, *, settings: Settings | None = None
) -> list[dict[str, Any]]:
    """The last ``limit`` alerts delivered to a ``page`` recipient: one dict per alert and
    recipient with alert_id, kind, sku, location, severity, message, rule, recipient,
    alert_at_ms and delivered_at_ms. Deduped at query time (the sink delivers at least once)."""
    if limit < 1:
        return []
    settings = settings or load()
    db = database_name(settings)
    # aliases differ from the column names: no alias shadows a column inside an aggregate
    picks = ", ".join(f"any({c}) AS p_{c}" for c in _COLUMNS)
    query = (
        f"SELECT {picks}, max(alert_at_ms) AS p_raised, max(at_ms) AS p_delivered"  # noqa: S608
        f" FROM {db}.alert_deliveries"
        " WHERE channel = 'page' AND status = 'delivered'"
        " GROUP BY delivery_id ORDER BY p_raised DESC, p_delivered DESC"
        " LIMIT %(limit)s"
    )
    client = connect(settings)
    try:
        rows = client.execute(query, {"limit": int(limit)})
    finally:
        client.disconnect()
    names = (*_COLUMNS, "alert_at_ms", "delivered_at_ms")
    return [dict(zip(names, row, strict=True)) for row in rows]
