"""The order figures as Prometheus gauges, for the business dashboard (Grafana reads only
Prometheus): a thread of the sink process recomputes them from ClickHouse every ``every``
seconds over the orders placed in the last ``window`` seconds, with the same formulas as
``stockflow report orders-*`` (streams/warehouse/order_figures.py), so the panels and the
reports agree.

Gauges (minor units for money; ``channel="*"`` is every channel together, ``NaN`` when no
order gives the ratio a denominator, so the series exists from the first refresh):

* ``stockflow_orders_window_orders``: orders placed in the window;
* ``stockflow_orders_placed{channel}``;
* ``stockflow_orders_fill_ratio{channel, basis=lines|units}``;
* ``stockflow_orders_split_shipment_ratio{channel}``;
* ``stockflow_orders_placed_to_allocated_seconds{channel, level=p50|p95}`` (not a
  summary's ``quantile`` label: these are exact quantiles of a window, not a summary);
* ``stockflow_orders_exceptions{reason}`` (transitions into exception) and
  ``stockflow_orders_exceptions_open{reason}`` (orders still waiting in one);
* ``stockflow_orders_revenue{channel, currency}`` and
  ``stockflow_orders_cost_per_order{channel, currency}`` (shipping + channel fees).

A ClickHouse that does not answer leaves the last figures in place (and
``stockflow_orders_figures_refreshed_timestamp_seconds`` stops moving); the sink's own loop
never waits for these queries.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict

from prometheus_client import CollectorRegistry, Gauge

from streams.kernel.settings import Settings
from streams.orders.errors import OrderConfigError
from streams.orders.setup import channel_fees
from streams.warehouse.clickhouse import connect, database_name, first_line
from streams.warehouse.order_figures import Fees, Figures, Scope, figures

log = logging.getLogger("stockflow.sink.orders")

EVERY = 30.0
RETRY = 5.0
WINDOW = 86_400.0
ALL = "*"
NAN = math.nan


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole else NAN


class OrderGauges:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        window = "orders placed in the last 24 h"
        self.orders = Gauge("stockflow_orders_window_orders", f"Number of {window}.", registry=r)
        self.orders.set(NAN)  # not computed yet
        self.placed = Gauge(
            "stockflow_orders_placed", f"Number of {window}, by channel.", ["channel"], registry=r
        )
        self.fill = Gauge(
            "stockflow_orders_fill_ratio",
            f"Lines or units that got stock / ordered, {window} (in flight, cancelled and"
            " rejected orders left out).",
            ["channel", "basis"],
            registry=r,
        )
        self.split = Gauge(
            "stockflow_orders_split_shipment_ratio",
            f"Share of the {window} whose filled lines ship from more than one location.",
            ["channel"],
            registry=r,
        )
        self.latency = Gauge(
            "stockflow_orders_placed_to_allocated_seconds",
            f"Placed to first allocated, exact quantiles over the {window}.",
            ["channel", "level"],
            registry=r,
        )
        self.exceptions = Gauge(
            "stockflow_orders_exceptions",
            f"Transitions into exception of the {window}, by reason.",
            ["reason"],
            registry=r,
        )
        self.open = Gauge(
            "stockflow_orders_exceptions_open",
            f"Of the {window}, those whose last state is an exception, by reason.",
            ["reason"],
            registry=r,
        )
        self.revenue = Gauge(
            "stockflow_orders_revenue",
            f"qty x unit_price of the reserved, shipped or delivered lines of the {window},"
            " minor units.",
            ["channel", "currency"],
            registry=r,
        )
        self.cost = Gauge(
            "stockflow_orders_cost_per_order",
            f"(shipping cost + channel fees) / sold orders, {window}, minor units.",
            ["channel", "currency"],
            registry=r,
        )
        self.refreshed = Gauge(
            "stockflow_orders_figures_refreshed_timestamp_seconds",
            "When the order gauges were last computed from ClickHouse.",
            registry=r,
        )

    def publish(self, f: Figures) -> None:
        """Replace every gauge's series with the figures ``f``."""
        for gauge in (self.placed, self.fill, self.split, self.latency, self.exceptions,
                      self.open, self.revenue, self.cost):  # fmt: skip
            gauge.clear()
        placed: dict[str, int] = defaultdict(int)
        for c in f.channels:
            placed[c.channel] += c.orders
            self.revenue.labels(c.channel, c.currency or "none").set(c.revenue)
            cost = c.cost_per_order
            self.cost.labels(c.channel, c.currency or "none").set(NAN if cost is None else cost)
        for channel, n in placed.items():
            self.placed.labels(channel).set(n)
        self.orders.set(sum(placed.values()))
        totals = [0, 0, 0, 0]
        for x in f.fill:
            self.fill.labels(x.channel, "lines").set(_ratio(x.lines_filled, x.lines))
            self.fill.labels(x.channel, "units").set(_ratio(x.units_filled, x.units))
            for i, v in enumerate((x.lines_filled, x.lines, x.units_filled, x.units)):
                totals[i] += v
        self.fill.labels(ALL, "lines").set(_ratio(totals[0], totals[1]))
        self.fill.labels(ALL, "units").set(_ratio(totals[2], totals[3]))
        orders = split = 0
        for s in f.splits:
            self.split.labels(s.channel).set(_ratio(s.split, s.orders))
            orders, split = orders + s.orders, split + s.split
        self.split.labels(ALL).set(_ratio(split, orders))
        for t in f.latency:
            for q, value in (("p50", t.p50_seconds), ("p95", t.p95_seconds)):
                self.latency.labels(t.channel, q).set(NAN if value is None else value)
        for e in f.exceptions:
            self.exceptions.labels(e.reason).set(e.transitions)
            self.open.labels(e.reason).set(e.open_now)
        self.refreshed.set(time.time())


def run_order_gauges(
    settings: Settings,
    registry: CollectorRegistry,
    stop: threading.Event,
    *,
    every: float = EVERY,
    window: float = WINDOW,
) -> threading.Thread:
    """Start the thread that refreshes the gauges until ``stop`` is set."""
    gauges = OrderGauges(registry)
    try:
        fees = {ch: Fees(*f) for ch, f in channel_fees(settings.config_path).items()}
    except OrderConfigError as exc:
        log.error("order gauges: channel fees not read (%s); cost per order without fees", exc)
        fees = {}
    db = database_name(settings)

    def loop() -> None:
        failing = False
        while not stop.is_set():
            now = int(time.time() * 1000)
            client = connect(settings)
            try:
                gauges.publish(figures(client, db, Scope(now - int(window * 1000), now), fees))
            except Exception as exc:
                if not failing:
                    log.warning("order gauges not refreshed (%s); retrying", first_line(exc))
                failing = True
                stop.wait(RETRY)
                continue
            finally:
                client.disconnect()
            if failing:
                log.info("order gauges refreshed again")
            failing = False
            stop.wait(every)

    thread = threading.Thread(target=loop, name="order-gauges", daemon=True)
    thread.start()
    return thread
