"""``stockflow report audit``: the writes through the HTTP APIs, newest first.

One row per audit record whatever the number of copies the sink inserted (grouped by
``audit_id``); ``--since``/``--until`` bound its time, ``--who`` keeps one principal's,
``--limit`` caps the rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from streams.reports.period import Period
from streams.reports.queries import Filters, Query, Report

COLUMNS = ("at", "who", "service", "method", "route", "action", "status", "skus", "ids")

_QUERY = """
SELECT audit_id, any(at_ms) AS at_ms, any(who) AS who, any(service) AS service,
       any(method) AS method, any(route) AS route, any(action) AS action,
       any(status) AS status, any(skus) AS skus, any(ids) AS ids
FROM (SELECT * FROM {db}.audit
      WHERE at_ms >= %(since)s AND at_ms < %(until)s AND (%(who)s = '' OR who = %(who)s))
GROUP BY audit_id
ORDER BY at_ms DESC, audit_id
LIMIT {limit}
"""


def audit_report(client: Query, db: str, period: Period, filters: Filters) -> Report:
    params = {"since": period.since_ms, "until": period.until_ms, "who": filters.who or ""}
    query = _QUERY.format(db=db, limit=int(filters.limit))
    rows = [_row(r) for r in client.execute(query, params)]
    return Report("Writes through the HTTP APIs (newest first)", COLUMNS, rows)


def _row(record: Any) -> tuple[Any, ...]:
    _id, at_ms, who, service, method, route, action, status, skus, ids = record
    at = datetime.fromtimestamp(at_ms / 1000, tz=UTC).isoformat(timespec="milliseconds")
    return (at, who, service, method, route, action, status, " ".join(skus), " ".join(ids))
