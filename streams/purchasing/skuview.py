"""A SKU at a location as the ordering page shows it: stock position, daily sales and the
last movements (ClickHouse's ``stock_movements``, one row per movement whatever the copies),
and its forecast when the forecasting modules are installed.

The position is the ledger's as the sink last wrote it: on hand, reserved and unsellable
after the location's latest movement, incoming as the sum of its ``delta_incoming``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.times import ms_to_iso
from streams.kernel.settings import Settings
from streams.purchasing.demand import daily_demand
from streams.replenishment.forecast import forecast
from streams.warehouse.clickhouse import connect, database_name
from streams.warehouse.schema import SALE_TYPES

log = logging.getLogger("stockflow.purchasing")

_ONE_PER_MOVEMENT = """
SELECT movement_id, any(type) AS type, any(event_id) AS event_id,
       any(delta_on_hand) AS delta_on_hand, any(delta_reserved) AS delta_reserved,
       any(delta_incoming) AS delta_incoming, any(on_hand_after) AS on_hand_after,
       any(reserved_after) AS reserved_after, any(unsellable_after) AS unsellable_after,
       any(occurred_at_ms) AS occurred_at_ms, any(applied_at_ms) AS applied_at_ms,
       any(source_ref) AS source_ref, any(channel) AS channel, min(kafka_offset) AS kafka_offset
FROM {db}.stock_movements
WHERE sku = %(sku)s AND location = %(location)s
GROUP BY movement_id
"""

_POSITION = """
SELECT argMax(on_hand_after, (applied_at_ms, kafka_offset)),
       argMax(reserved_after, (applied_at_ms, kafka_offset)),
       argMax(unsellable_after, (applied_at_ms, kafka_offset)),
       sum(delta_incoming), count()
FROM ({inner})
"""

_RECENT = """
SELECT type, event_id, delta_on_hand, delta_reserved, delta_incoming, on_hand_after,
       occurred_at_ms, source_ref, channel
FROM ({inner})
ORDER BY applied_at_ms DESC, kafka_offset DESC
LIMIT %(limit)s
"""

_DAILY_SALES = """
SELECT toDate(toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')) AS day, sum(-delta_on_hand)
FROM ({inner})
WHERE type IN %(sales)s AND occurred_at_ms >= %(since)s
GROUP BY day ORDER BY day
"""


def read_sku_view(
    settings: Settings, sku: str, location: str, *, days: int = 28, limit: int = 20
) -> dict[str, Any]:
    """``{"sku", "location", "position", "daily_sales", "movements", "forecast"}``;
    ``position`` is None when ClickHouse has no movement of the SKU there."""
    db = database_name(settings)
    inner = _ONE_PER_MOVEMENT.format(db=db)
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days - 1)
    since = int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp() * 1000)
    params = {"sku": sku, "location": location, "limit": limit, "sales": SALE_TYPES, "since": since}
    client = connect(settings)
    try:
        on_hand, reserved, unsellable, incoming, count = client.execute(
            _POSITION.format(inner=inner), params
        )[0]
        recent = client.execute(_RECENT.format(inner=inner), params)
        sold = dict(client.execute(_DAILY_SALES.format(inner=inner), params))
    finally:
        client.disconnect()
    position = None
    if count:
        position = {
            "on_hand": int(on_hand),
            "reserved": int(reserved),
            "unsellable": int(unsellable),
            "incoming": int(incoming),
            "available": int(on_hand) - int(reserved) - int(unsellable),
        }
    daily = [
        {
            "day": (start + timedelta(days=i)).isoformat(),
            "units": int(sold.get(start + timedelta(days=i), 0)),
        }
        for i in range(days)
    ]
    movements = [
        {
            "type": row[0],
            "event_id": row[1],
            "delta_on_hand": int(row[2]),
            "delta_reserved": int(row[3]),
            "delta_incoming": int(row[4]),
            "on_hand_after": int(row[5]),
            "occurred_at": ms_to_iso(int(row[6])),
            "source_ref": row[7],
            "channel": row[8] or None,
        }
        for row in recent
    ]
    return {
        "sku": sku,
        "location": location,
        "position": position,
        "daily_sales": daily,
        "movements": movements,
        "forecast": _forecast(settings, sku, location, today),
    }


def _forecast(settings: Settings, sku: str, location: str, today: Any) -> dict[str, Any] | None:
    """The next 14 days' forecast, None without history or when it fails (the view still
    shows stock and movements)."""
    try:
        client = connect(settings)
        try:
            history = daily_demand(
                client, settings, until=today, days=91, skus=[sku], locations=[location]
            ).get((sku, location))
        finally:
            client.disconnect()
        if not history:
            return None
        found = forecast(history, start=today, horizon=14)
        return {
            "method": found.method,
            "daily": [round(float(x), 2) for x in found.daily],
            "sigma_daily": round(float(found.sigma_daily), 2),
        }
    except Exception as exc:  # a forecast is extra information on this screen
        log.warning("purchasing: forecast of %s at %s failed: %s", sku, location, exc)
        return None
