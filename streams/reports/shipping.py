"""``stockflow report shipping-cost``: what the labels cost, per channel and per carrier.

Each shipment counts once, at its last version (``argMax(..., version)`` per
``shipment_id``), exact before ClickHouse merges the copies of a replayed record: the cost is
the label's price as bought, in minor units of its currency. The period is the day the label
was bought (``created_at``, default: the last 30 days), optionally of one ``--channel``.

Rows per channel, carrier and currency, then each channel over all its carriers
(``carrier`` ``*``) and each carrier over all channels (``channel`` ``*``): shipments,
parcels, orders shipped, units, total cost, mean cost per order and per parcel, fallbacks. With
``--order ID`` one row per shipment of that order, whatever the period. ``fallbacks``:
shipments whose label came from a carrier after others gave no rate or no label (the
shipment's ``passed_over``; shipments written before it was recorded count as none).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from streams.reports.period import Period
from streams.reports.queries import Filters, Query, Report

# One row per shipment, its last version; filtered outside, on names no column has (18.16
# would substitute a SELECT alias named like a column into WHERE). ``{where}`` narrows the
# rows read first, on what every version of a shipment shares (order, time of purchase).
_LAST = """
SELECT shipment_id, argMax(order_id, version) AS s_order, argMax(channel, version) AS s_channel,
       argMax(carrier, version) AS s_carrier, argMax(service, version) AS s_service,
       argMax(status, version) AS s_status, argMax(parcels, version) AS s_parcels,
       argMax(units, version) AS s_units, argMax(weight_g, version) AS s_weight,
       argMax(cost_minor, version) AS s_cost, argMax(currency, version) AS s_currency,
       argMax(passed_over, version) AS s_passed,
       argMax(created_at_ms, version) AS s_created, max(version) AS s_version
FROM (SELECT * FROM {db}.shipments WHERE {where})
GROUP BY shipment_id
"""

_BY_CARRIER = """
SELECT s_channel, s_carrier, s_currency, count(), sum(s_parcels), sum(s_units), sum(s_cost),
       sum(notEmpty(s_passed))
FROM ({last})
WHERE s_created >= %(since)s AND s_created < %(until)s
  AND (%(channel)s = '' OR s_channel = %(channel)s)
GROUP BY s_channel, s_carrier, s_currency
"""

_ORDERS = """
SELECT s_channel, s_carrier, s_currency, s_order
FROM ({last})
WHERE s_created >= %(since)s AND s_created < %(until)s
  AND (%(channel)s = '' OR s_channel = %(channel)s)
GROUP BY s_channel, s_carrier, s_currency, s_order
"""

_ONE_ORDER = """
SELECT shipment_id, s_order, s_channel, s_carrier, s_service, s_status, s_parcels, s_units,
       s_weight, s_cost, s_currency, s_passed, s_created, s_version
FROM ({last})
WHERE s_order = %(order)s
ORDER BY s_created, shipment_id
"""

COLUMNS = (
    "channel", "carrier", "currency", "shipments", "parcels", "orders", "units", "cost",
    "cost_per_order", "cost_per_parcel", "fallbacks",
)  # fmt: skip

ORDER_COLUMNS = (
    "order_id", "shipment_id", "channel", "carrier", "service", "status", "parcels", "units",
    "weight_g", "cost", "currency", "passed_over", "bought_at", "version",
)  # fmt: skip


def _mean(total: int, n: int) -> float | None:
    return round(total / n, 2) if n else None


def shipping_cost_report(client: Query, db: str, period: Period, filters: Filters) -> Report:
    """Shipping cost per channel and carrier in the period, or per shipment of one order."""
    if filters.order:
        return _order_report(client, db, filters.order)
    params = {"since": period.since_ms, "until": period.until_ms, "channel": filters.channel or ""}
    last = _LAST.format(db=db, where="created_at_ms >= %(since)s AND created_at_ms < %(until)s")
    # (channel, carrier, currency) -> shipments, parcels, units, cost; orders as sets, so an
    # order shipped in two parcels by one carrier, or by two carriers, counts once per total.
    sums: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    orders: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for ch, carrier, cur, n, parcels, units, cost, fallbacks in client.execute(
        _BY_CARRIER.format(last=last), params
    ):
        for key in ((ch, carrier, cur), (ch, "*", cur), ("*", carrier, cur)):
            s = sums[key]
            s[0] += int(n)
            s[1] += int(parcels)
            s[2] += int(units)
            s[3] += int(cost)
            s[4] += int(fallbacks)
    for ch, carrier, cur, order in client.execute(_ORDERS.format(last=last), params):
        for key in ((ch, carrier, cur), (ch, "*", cur), ("*", carrier, cur)):
            orders[key].add(order)
    rows: list[tuple[Any, ...]] = []
    for (ch, carrier, cur), (n, parcels, units, cost, fallbacks) in sums.items():
        k = len(orders[(ch, carrier, cur)])
        rows.append(
            (ch, carrier, cur, n, parcels, k, units, cost, _mean(cost, k), _mean(cost, parcels),
             fallbacks)
        )  # fmt: skip
    # Each channel's carriers, then its total (*); the carriers over all channels (*) last.
    rows.sort(key=lambda r: (r[0] == "*", r[0], r[1] == "*", r[1], r[2]))
    return Report(
        "Shipping cost by channel and carrier (labels bought in the period; minor units; * = all)",
        COLUMNS,
        rows,
    )


def _order_report(client: Query, db: str, order_id: str) -> Report:
    rows: list[tuple[Any, ...]] = []
    for (
        sid,
        order,
        ch,
        carrier,
        service,
        status,
        parcels,
        units,
        weight,
        cost,
        cur,
        passed,
        created,
        v,
    ) in client.execute(
        _ONE_ORDER.format(last=_LAST.format(db=db, where="order_id = %(order)s")),
        {"order": order_id},
    ):
        bought = datetime.fromtimestamp(int(created) / 1000, tz=UTC)
        rows.append(
            (order, sid, ch, carrier, service, status, int(parcels), int(units), int(weight),
             int(cost), cur, " ".join(passed), bought, int(v))
        )  # fmt: skip
    return Report(
        f"Shipping cost of order {order_id} (one row per shipment; minor units; any period)",
        ORDER_COLUMNS,
        rows,
    )
