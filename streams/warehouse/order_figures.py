"""The order figures, from the ``orders``, ``order_lines`` and ``order_transitions`` tables.

One home for each formula: ``stockflow report orders-*`` prints them and the sink exports
them as Prometheus gauges for Grafana. Every figure covers the orders *placed* in
``[since_ms, until_ms)`` (optionally of one channel) and is exact before any merge:

* the state of an order is its last version (``max(version)`` / ``argMax(x, version)`` per
  order, never ``FINAL`` nor a merge); its lines are those of that version; copies of one
  version are identical, so ``any()`` picks any of them; a transition is counted once per
  (order id, version);
* orders still in flight (``received``, ``routed``) and orders ``cancelled`` or ``rejected``
  (a decision of the customer or an operator, not of the stock) are left out of the fill and
  split-shipment rates;
* a line is **filled** when its last status is reserved, shipped, delivered or returned (it
  got stock); **sold** when reserved, shipped or delivered (revenue = qty x unit_price of the
  sold lines, per currency; a line without a price adds 0);
* placed → allocated: from ``placed_at`` to the order's first transition into ``allocated``
  or ``partially_allocated``; ``quantileExact`` (the value at rank ⌊level x n⌋ of the sorted
  times), which ClickHouse 18.16 and current releases share;
* exceptions by reason: transitions into ``exception``, with the reason they carry;
* cost per order: (shipping cost of the chosen plan + channel fees) over the orders with a
  sold line, where fees = ``fee_fixed`` per order + ``fee_percent`` of its revenue, from the
  configuration's ``orders.channels`` (a channel it does not name pays no fee). Shipping
  costs are in the rate table's currency, added as they are.

SQL is assembled from constants and the database name; values go through driver parameters
(hence the S608 waivers). Aliases never reuse a column name: ClickHouse 18.16 substitutes a
SELECT alias into the other expressions of its query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

FILLED = "('reserved', 'shipped', 'delivered', 'returned')"
SOLD = "('reserved', 'shipped', 'delivered')"
LEFT_OUT = "('received', 'routed', 'cancelled', 'rejected', 'unknown')"
ALLOCATED = "('allocated', 'partially_allocated')"
QUANTILES = (0.5, 0.95)


class Query(Protocol):
    def execute(self, query: str, params: Any = None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Fees:
    """What a channel charges (``orders.channels[]`` of the configuration, read by the
    order book's parser): a percentage of the revenue and a fixed fee per order."""

    percent: float = 0.0
    fixed: int = 0  # minor units per order


@dataclass(frozen=True, slots=True)
class Scope:
    since_ms: int
    until_ms: int
    channel: str | None = None

    def params(self) -> dict[str, Any]:
        return {"since": self.since_ms, "until": self.until_ms, "channel": self.channel or ""}


_PLACED = (
    "placed_at_ms >= %(since)s AND placed_at_ms < %(until)s"
    " AND (%(channel)s = '' OR channel = %(channel)s)"
)

# The last state of each order placed in the scope.
_LAST = f"""
SELECT order_id, max(version) AS last_version, argMax(channel, version) AS o_channel,
       argMax(status, version) AS o_status, argMax(reason, version) AS o_reason,
       argMax(shipping_cost, version) AS o_shipping
FROM (SELECT * FROM {{db}}.orders WHERE {_PLACED})
GROUP BY order_id
"""  # noqa: S608

# The lines of the last version each order has lines of (lines and order rows of one record
# may land in ClickHouse a moment apart: the lines' own last version keeps them whole).
_LINES = f"""
SELECT order_id, line_id, any(channel) AS l_channel, any(qty) AS l_qty,
       any(location) AS l_location, any(status) AS l_status, any(unit_price) AS l_price,
       any(currency) AS l_currency
FROM (SELECT * FROM {{db}}.order_lines
      WHERE {_PLACED} AND (order_id, version) IN (
          SELECT order_id, max(version) FROM {{db}}.order_lines WHERE {_PLACED}
          GROUP BY order_id))
GROUP BY order_id, line_id
"""  # noqa: S608

_LEFT_OUT_ORDERS = f"SELECT order_id FROM ({_LAST}) WHERE o_status IN {LEFT_OUT}"  # noqa: S608


@dataclass(frozen=True, slots=True)
class Fill:
    channel: str
    lines: int
    lines_filled: int
    units: int
    units_filled: int

    @property
    def line_rate(self) -> float | None:
        return self.lines_filled / self.lines if self.lines else None

    @property
    def unit_rate(self) -> float | None:
        return self.units_filled / self.units if self.units else None


def fill(client: Query, db: str, scope: Scope) -> list[Fill]:
    """Lines and units filled over ordered, per channel (orders left out: see the module)."""
    query = f"""
SELECT l_channel, count(), countIf(l_status IN {FILLED}), sum(l_qty),
       sumIf(l_qty, l_status IN {FILLED})
FROM ({_LINES}) WHERE order_id NOT IN ({_LEFT_OUT_ORDERS})
GROUP BY l_channel ORDER BY l_channel"""  # noqa: S608
    return [Fill(*row) for row in client.execute(query.format(db=db), scope.params())]


@dataclass(frozen=True, slots=True)
class Split:
    channel: str
    orders: int  # with at least one filled line at a known location
    split: int  # with filled lines at more than one location

    @property
    def rate(self) -> float | None:
        return self.split / self.orders if self.orders else None


def splits(client: Query, db: str, scope: Scope) -> list[Split]:
    """Orders whose filled lines ship from more than one location, per channel."""
    query = f"""
SELECT o_ch, count(), countIf(places > 1) FROM (
    SELECT order_id, any(l_channel) AS o_ch, uniqExact(l_location) AS places
    FROM ({_LINES})
    WHERE l_status IN {FILLED} AND l_location IS NOT NULL
      AND order_id NOT IN ({_LEFT_OUT_ORDERS})
    GROUP BY order_id)
GROUP BY o_ch ORDER BY o_ch"""  # noqa: S608
    return [Split(*row) for row in client.execute(query.format(db=db), scope.params())]


@dataclass(frozen=True, slots=True)
class Latency:
    channel: str  # '*' for every channel together
    orders: int
    p50_seconds: float | None
    p95_seconds: float | None


def latency(client: Query, db: str, scope: Scope) -> list[Latency]:
    """Placed → first allocated, p50 and p95 in seconds, per channel and for all ('*')."""
    per_order = f"""
SELECT order_id, any(channel) AS t_ch,
       greatest(toInt64(min(at_ms)) - toInt64(any(placed_at_ms)), 0) / 1000 AS secs
FROM (SELECT * FROM {{db}}.order_transitions WHERE {_PLACED} AND to_status IN {ALLOCATED})
GROUP BY order_id"""  # noqa: S608
    levels = ", ".join(str(q) for q in QUANTILES)
    by_channel = f"""
SELECT t_ch, count(), quantilesExact({levels})(secs) FROM ({per_order})
GROUP BY t_ch ORDER BY t_ch"""  # noqa: S608
    together = f"SELECT '*', count(), quantilesExact({levels})(secs) FROM ({per_order})"  # noqa: S608
    params = scope.params()
    rows = client.execute(by_channel.format(db=db), params)
    rows += client.execute(together.format(db=db), params)
    out = []
    for channel, n, (p50, p95) in rows:
        out.append(Latency(channel, n, float(p50) if n else None, float(p95) if n else None))
    return out


@dataclass(frozen=True, slots=True)
class Exceptions:
    reason: str
    transitions: int
    orders: int
    open_now: int  # orders whose last state is an exception with this reason


NO_REASON = "(none)"


def exceptions(client: Query, db: str, scope: Scope) -> list[Exceptions]:
    """Transitions into ``exception`` by reason, and the orders still waiting in it."""
    entered = f"""
SELECT ifNull(t_reason, '{NO_REASON}') AS why, count(), uniqExact(order_id) FROM (
    SELECT order_id, version, any(reason) AS t_reason
    FROM (SELECT * FROM {{db}}.order_transitions WHERE {_PLACED} AND to_status = 'exception')
    GROUP BY order_id, version)
GROUP BY why"""  # noqa: S608
    still = f"""
SELECT ifNull(o_reason, '{NO_REASON}') AS why, count() FROM ({_LAST})
WHERE o_status = 'exception' GROUP BY why"""  # noqa: S608
    params = scope.params()
    counts: dict[str, list[int]] = {}
    for why, n, orders in client.execute(entered.format(db=db), params):
        counts[why] = [n, orders, 0]
    for why, n in client.execute(still.format(db=db), params):
        counts.setdefault(why, [0, 0, 0])[2] = n
    rows = [Exceptions(why, *c) for why, c in counts.items()]
    return sorted(rows, key=lambda e: (-e.transitions, -e.open_now, e.reason))


@dataclass(frozen=True, slots=True)
class ChannelMoney:
    channel: str
    currency: str  # '' when the order's lines carry no price
    orders: int  # placed
    sold_orders: int  # with at least one sold line
    revenue: int  # minor units
    shipping: int  # of the sold orders, rate table's minor units
    fees: float = 0.0

    @property
    def cost_per_order(self) -> float | None:
        return (self.shipping + self.fees) / self.sold_orders if self.sold_orders else None


def channels(
    client: Query, db: str, scope: Scope, fees: Mapping[str, Fees] | None = None
) -> list[ChannelMoney]:
    """Per channel and currency: orders placed, orders sold, revenue, cost per order."""
    query = f"""
SELECT m_ch, m_cur, count(), countIf(sold), sum(rev), sumIf(ifNull(o_shipping, 0), sold)
FROM (
    SELECT order_id, any(l_channel) AS m_ch, ifNull(any(l_currency), '') AS m_cur,
           sumIf(l_qty * ifNull(l_price, 0), l_status IN {SOLD}) AS rev,
           countIf(l_status IN {SOLD}) > 0 AS sold
    FROM ({_LINES}) GROUP BY order_id
) ANY LEFT JOIN (SELECT order_id, o_shipping FROM ({_LAST})) USING order_id
GROUP BY m_ch, m_cur ORDER BY m_ch, m_cur"""  # noqa: S608
    fees = fees or {}
    out = []
    for ch, cur, n, sold, rev, ship in client.execute(query.format(db=db), scope.params()):
        f = fees.get(ch, Fees())
        out.append(
            ChannelMoney(
                ch, cur, n, sold, int(rev), int(ship), sold * f.fixed + rev * f.percent / 100
            )
        )
    return out


@dataclass
class Figures:
    """Every figure at once (the sink's gauges)."""

    fill: list[Fill] = field(default_factory=list)
    splits: list[Split] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    exceptions: list[Exceptions] = field(default_factory=list)
    channels: list[ChannelMoney] = field(default_factory=list)


def figures(
    client: Query, db: str, scope: Scope, fees: Mapping[str, Fees] | None = None
) -> Figures:
    return Figures(
        fill(client, db, scope),
        splits(client, db, scope),
        latency(client, db, scope),
        exceptions(client, db, scope),
        channels(client, db, scope, fees),
    )
