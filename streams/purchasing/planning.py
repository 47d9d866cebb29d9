"""Compute supplier order proposals now: ClickHouse's figures through the pure planner.

``compute_proposals`` reads, for the SKUs some supplier sells (``replenishment.items``):
the stock position per SKU x location (:mod:`streams.purchasing.position`; incoming counts
the units of purchase orders approved but not sent yet), the daily demand
of the last ``history_days`` days (:mod:`streams.purchasing.demand`) turned into a forecast
per SKU x location with the peaks of its category (:mod:`streams.replenishment.forecast`,
:mod:`streams.replenishment.calendar`), and the last purchase order per supplier, location
and SKU (for the auto-send rule); then :func:`streams.replenishment.plan.plan` decides.
It only reads: publishing the proposals is the purchasing service's job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any, cast

from streams.kernel.settings import Settings
from streams.ledger.config import load_config
from streams.purchasing.demand import daily_demand
from streams.purchasing.position import Query, last_orders, positions, unsent_orders
from streams.replenishment.calendar import uplift_for
from streams.replenishment.forecast import forecast
from streams.replenishment.model import PolicyKind, ReplenishmentConfig
from streams.replenishment.plan import ForecastLike, Position, plan, policy_for
from streams.warehouse.clickhouse import connect, database_name
from streams.warehouse.migrations import migrate

__all__ = ["compute_proposals", "forecasts_for", "planned_ids", "with_unsent"]

log = logging.getLogger("stockflow.purchasing.planning")

Demand = Callable[..., dict[tuple[str, str], list[float | None]]]


Tools = tuple[Demand, Callable[..., ForecastLike], Callable[..., Any]]


def _forecasting() -> Tools:
    """(daily_demand, forecast, uplift_for) of this installation."""
    return (
        daily_demand,
        cast(Callable[..., ForecastLike], forecast),
        cast(Callable[..., Any], uplift_for),
    )


def horizon(config: ReplenishmentConfig) -> int:
    """Days a forecast must cover: the longest wait for an order day (6), lead time, and
    review period or order cycle (at least 7), plus a week of margin."""
    lead = max((s.lead_time_days for s in config.suppliers.values()), default=0)
    review = max(
        (p.review_days for p in (*config.policies.values(), config.default_policy) if p),
        default=7,
    )
    return 6 + lead + max(review, 7) + 7


def forecasts_for(
    client: Query,
    settings: Settings,
    config: ReplenishmentConfig,
    keys: Sequence[tuple[str, str]],
    *,
    today: date,
    tools: Tools | None = None,
) -> dict[tuple[str, str], ForecastLike]:
    """A forecast from ``today`` for each (sku, location) of ``keys`` whose policy uses one.
    ``tools``: (daily_demand, forecast, uplift_for); default the installed ones."""
    wanted = [
        (sku, location)
        for sku, location in keys
        if (policy := policy_for(config, sku, location)) is not None
        and policy.kind is not PolicyKind.MIN_MAX
    ]
    if not wanted:
        return {}
    if tools is None:
        tools = _forecasting()
    daily_demand, forecast, uplift_for = tools
    history = daily_demand(
        client,
        settings,
        until=today,
        days=config.history_days,
        skus={sku for sku, _ in wanted},
        locations={location for _, location in wanted},
    )
    days = horizon(config)
    out: dict[tuple[str, str], ForecastLike] = {}
    for sku, location in wanted:
        series = history.get((sku, location))
        if series is None:
            continue  # never stocked there within the history: the planner says so
        uplift = uplift_for(config.peaks, config.categories.get(sku))
        out[(sku, location)] = forecast(series, start=today, horizon=days, uplift=uplift)
    return out


def with_unsent(
    stock: Mapping[tuple[str, str], Position], unsent: Mapping[tuple[str, str], int]
) -> dict[tuple[str, str], Position]:
    """``stock`` with the units of approved, not yet sent purchase orders added to incoming."""
    return {
        key: replace(p, incoming=p.incoming + unsent[key]) if key in unsent else p
        for key, p in stock.items()
    }


def planned_ids(client: Query, db: str, today: date) -> set[str]:
    """Proposal ids already planned today (so a new plan takes the next number)."""
    rows = client.execute(
        f"SELECT DISTINCT proposal_id FROM {db}.purchase_orders"  # noqa: S608 (checked db)
        " WHERE proposal_id LIKE %(pattern)s",
        {"pattern": f"PO-%-{today:%Y%m%d}-%"},
    )
    return {proposal_id for (proposal_id,) in rows}


def compute_proposals(
    settings: Settings,
    config: ReplenishmentConfig,
    *,
    today: date,
    locations: Collection[str] | None = None,
    taken_ids: Collection[str] | None = None,
    now_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Proposals (status ``proposed``, version 1) for today, from ClickHouse's figures.
    ``taken_ids``: ids not to reuse (None: those already in ClickHouse for today).
    Raises the driver's errors when ClickHouse does not answer (see
    :func:`streams.warehouse.clickhouse.is_unavailable`), and the ledger's ConfigError for a
    bad ledger configuration (its safety stock per location is read)."""
    skus = sorted({item.sku for item in config.items})
    if not skus:
        return []
    ledger = load_config(settings.config_path or None)
    db = database_name(settings)
    client = connect(settings)
    try:
        migrate(client, db)  # a fresh install has no purchase order tables before the sink ran
        stock: Mapping[tuple[str, str], Position] = with_unsent(
            positions(client, db, skus=skus, locations=locations, safety=ledger.safety_stock),
            unsent_orders(client, db),
        )
        forecasts = forecasts_for(client, settings, config, sorted(stock), today=today)
        previous = last_orders(client, db)
        taken = planned_ids(client, db, today) if taken_ids is None else set(taken_ids)
    finally:
        client.disconnect()
    return plan(
        stock,
        forecasts,
        config,
        today=today,
        last_orders=previous,
        locations=locations,
        now_ms=now_ms if now_ms is not None else int(time.time() * 1000),
        taken_ids=taken,
    )
