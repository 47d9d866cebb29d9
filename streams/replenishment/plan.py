"""Supplier order proposals from stock positions, forecasts and the configuration: pure.

``plan`` takes plain values (no Kafka, no ClickHouse, no clock) and returns Proposal-shaped
dicts (schemas/Proposal.avsc, status ``proposed``, version 1), one per supplier x location,
ready to publish. The same inputs always give the same proposals, ids included.

For one SKU x location (``position`` = available + incoming, ``L`` = days from today until an
order placed on the supplier's next order day arrives, ``D(n)`` = forecast demand over the
next n days, ``z`` = the standard normal quantile of the service level, ``sigma`` = the
forecast's daily error):

* ``min_max``: when ``position <= min``, order ``max - position``.
* ``reorder_point``: safety stock ``ss = ceil(z * sigma * sqrt(L))`` (or the policy's fixed
  one); reorder point ``R = D(L) + ss``. When ``position <= R``, order up to
  ``D(L + C) + ss`` where ``C`` is the days from this order day to the supplier's next one
  (the stock must last until the next order can arrive).
* ``periodic``: on review days only (every ``review_days`` days counted from Monday
  2024-01-01), ``ss = ceil(z * sigma * sqrt(L + review_days))`` and, when
  ``position < D(L + review_days) + ss``, order the difference.

The quantity is rounded up to the minimum order quantity, then up to whole packs, so it is
always a multiple of the pack size and at least the MOQ. A proposal whose total stays below
the supplier's ``min_order_value`` is **not** inflated: its lines keep the quantities the
policies asked for and it waits for a person with that reason (raising lines to reach the
minimum would buy stock no policy asked for; a buyer can choose what to add).

The auto-send rule of the supplier: a proposal goes out without review when the supplier has
``auto_send.max_total`` > 0, the total is below it, the total reaches ``min_order_value``,
and no line differs from the last order of that SKU (same supplier and location) by more
than ``max_change_percent`` (a line with no earlier order passes only with
``auto_send.first_order: true``). Otherwise ``review_reason`` says every reason it waits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from statistics import NormalDist
from types import MappingProxyType
from typing import Any, Protocol

from streams.replenishment.model import (
    Policy,
    PolicyKind,
    ReplenishmentConfig,
    Supplier,
    SupplierItem,
)

__all__ = [
    "REVIEW_ANCHOR",
    "ForecastLike",
    "Position",
    "money",
    "next_order_day",
    "plan",
    "policy_for",
    "round_qty",
    "safety_stock",
    "supplier_item",
]

REVIEW_ANCHOR = date(2024, 1, 1)  # a Monday: periodic reviews fall every review_days from it
EPOCH = date(1970, 1, 1)
NO_ORDERS: Mapping[tuple[str, str, str], int] = MappingProxyType({})
_ZERO_DECIMALS = {"JPY", "KRW", "ISK", "CLP", "VND", "XAF", "XOF", "HUF"}


class ForecastLike(Protocol):
    """What planning reads of a forecast (streams.replenishment.forecast.Forecast)."""

    @property
    def method(self) -> str: ...
    @property
    def daily(self) -> Sequence[float]: ...
    @property
    def sigma_daily(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Position:
    """Stock of one SKU at one location when planning."""

    on_hand: int
    reserved: int
    unsellable: int
    incoming: int
    safety_stock: int = 0  # the ledger's safety stock kept back at the location

    @property
    def available(self) -> int:
        """Units that may still be sold; negative when reservations are not covered (those
        units are owed already, so planning counts them)."""
        return self.on_hand - self.reserved - self.unsellable - self.safety_stock


# -- the rules, one small function each -------------------------------------------------------


def policy_for(config: ReplenishmentConfig, sku: str, location: str) -> Policy | None:
    """The SKU's policy at ``location``: (sku, location), (category, location), (sku, any
    location), (category, any location), else the default policy (None: not planned)."""
    category = config.categories.get(sku)
    for key in ((sku, location), (category, location), (sku, None), (category, None)):
        if key[0] is not None and key in config.policies:
            return config.policies[key]
    return config.default_policy


def supplier_item(config: ReplenishmentConfig, sku: str, location: str) -> SupplierItem | None:
    """Where the SKU is bought for ``location``: the preferred supplier's item, else the
    cheapest item (ties: the supplier id first in order), None when no supplier sells it."""
    items = [x for x in config.items if x.sku == sku and x.supplier in config.suppliers]
    preferred = config.preferred.get((sku, location))
    for item in items:
        if item.supplier == preferred:
            return item
    return min(items, key=lambda x: (x.unit_cost, x.supplier), default=None)


def next_order_day(supplier: Supplier, today: date) -> date:
    """The first day from ``today`` on which the supplier takes orders."""
    for ahead in range(7):
        day = today + timedelta(days=ahead)
        if day.weekday() in supplier.order_days:
            return day
    return today  # no order day configured: the parser refuses that, keep it total anyway


def _cycle_days(supplier: Supplier, order_on: date) -> int:
    """Days from ``order_on`` to the supplier's following order day (1 to 7)."""
    return (next_order_day(supplier, order_on + timedelta(days=1)) - order_on).days


def demand(forecast: ForecastLike | None, days: int) -> float:
    """Forecast units over the next ``days`` days; past the forecast's horizon its mean day."""
    if forecast is None or days <= 0:
        return 0.0
    daily = list(forecast.daily)
    total = sum(max(0.0, x) for x in daily[:days])
    if days > len(daily) and daily:
        total += (days - len(daily)) * max(0.0, sum(daily) / len(daily))
    return total


def safety_stock(policy: Policy, sigma_daily: float, days: int) -> int:
    """``ceil(z(service level) * sigma * sqrt(days))``, or the policy's fixed safety stock."""
    if policy.safety_stock is not None:
        return policy.safety_stock
    if sigma_daily <= 0 or days <= 0:
        return 0
    z = NormalDist().inv_cdf(policy.service_level)
    return math.ceil(z * sigma_daily * math.sqrt(days) - 1e-9)


def round_qty(need: float, pack_size: int, moq: int) -> int:
    """Units to order for ``need``: at least the MOQ, in whole packs (0 when need <= 0;
    a need within float noise of a whole number counts as that number)."""
    units = math.ceil(need - 1e-9)
    if units <= 0:
        return 0
    units = max(units, moq)
    return -(-units // pack_size) * pack_size


def money(amount: int, currency: str) -> str:
    """Minor units as a figure a person reads: ``480.00 EUR``."""
    if currency in _ZERO_DECIMALS:
        return f"{amount} {currency}"
    return f"{amount / 100:.2f} {currency}"


@dataclass(frozen=True, slots=True)
class _Need:
    units: float  # before rounding
    demand_lead: float  # forecast over the lead time (plus review period for periodic)
    safety: int
    why: str


def _need(
    policy: Policy,
    position: Position,
    forecast: ForecastLike | None,
    supplier: Supplier,
    today: date,
) -> _Need | None:
    """What the policy asks for (None: the position covers it, or not a review day)."""
    order_on = next_order_day(supplier, today)
    lead = (order_on - today).days + supplier.lead_time_days
    have = position.available + position.incoming
    figures = f"available {position.available} + incoming {position.incoming} = {have}"
    sigma = forecast.sigma_daily if forecast is not None else 0.0
    if policy.kind is PolicyKind.MIN_MAX:
        if have > policy.min:
            return None
        why = f"{figures} <= min {policy.min}: order up to max {policy.max}"
        return _Need(policy.max - have, demand(forecast, lead), 0, why)
    if policy.kind is PolicyKind.REORDER_POINT:
        ss = safety_stock(policy, sigma, lead)
        lead_demand = demand(forecast, lead)
        point = lead_demand + ss
        if have > point:
            return None
        cycle = _cycle_days(supplier, order_on)
        target = demand(forecast, lead + cycle) + ss
        why = (
            f"{figures} <= reorder point {point:.1f} (forecast {lead_demand:.1f} over {lead}"
            f" days lead time + safety stock {ss}); order up to {target:.1f} (forecast over"
            f" {lead + cycle} days, to the next order's arrival, + safety stock {ss})"
        )
        return _Need(target - have, lead_demand, ss, why)
    if (today - REVIEW_ANCHOR).days % policy.review_days:
        return None
    days = lead + policy.review_days
    ss = safety_stock(policy, sigma, days)
    period_demand = demand(forecast, days)
    target = period_demand + ss
    if have >= target:
        return None
    why = (
        f"review every {policy.review_days} days: {figures} < forecast {period_demand:.1f}"
        f" over {days} days (lead time {lead} + review {policy.review_days})"
        f" + safety stock {ss} = {target:.1f}"
    )
    return _Need(target - have, period_demand, ss, why)


def _line(
    sku: str,
    item: SupplierItem,
    policy: Policy,
    position: Position,
    forecast: ForecastLike | None,
    supplier: Supplier,
    today: date,
    last_qty: int | None,
) -> dict[str, Any] | None:
    need = _need(policy, position, forecast, supplier, today)
    if need is None:
        return None
    qty = round_qty(need.units, item.pack_size, item.moq)
    if qty == 0:
        return None
    short = math.ceil(need.units - 1e-9)
    rounding = []
    if qty != short:
        if item.moq > short:
            rounding.append(f"MOQ {item.moq}")
        if item.pack_size > 1:
            rounding.append(f"packs of {item.pack_size}")
    reason = f"{need.why} -> {short}"
    reason += f", rounded to {qty} ({', '.join(rounding)})" if rounding else ""
    if forecast is None and policy.kind is not PolicyKind.MIN_MAX:
        reason += " (no forecast: no demand history)"
    lead = (next_order_day(supplier, today) - today).days + supplier.lead_time_days
    have = position.available + position.incoming
    return {
        "sku": sku,
        "supplier_sku": item.supplier_sku,
        "qty": qty,
        "proposed_qty": qty,
        "pack_size": item.pack_size,
        "moq": item.moq,
        "unit_cost": item.unit_cost,
        "policy": policy.kind.value,
        "available": position.available,
        "incoming": position.incoming,
        "projected_available": round(have - demand(forecast, lead)),
        "forecast_lead_time": round(need.demand_lead, 3),
        "safety_stock": need.safety,
        "forecast_method": forecast.method if forecast is not None else None,
        "reason": reason,
        "last_order_qty": last_qty,
        "received_qty": 0,
        "cancelled_qty": 0,
    }


def _review_reasons(supplier: Supplier, lines: list[dict[str, Any]], total: int) -> list[str]:
    """Why a proposal waits for a person (empty: the auto-send rule lets it go)."""
    rule, cur = supplier.auto_send, supplier.currency
    reasons = []
    if total < supplier.min_order_value:
        reasons.append(
            f"total {money(total, cur)} is below {supplier.id}'s minimum order value"
            f" {money(supplier.min_order_value, cur)}"
        )
    if rule.max_total <= 0:
        reasons.append(f"auto-send is off for {supplier.id}")
        return reasons
    if total >= rule.max_total:
        reasons.append(
            f"total {money(total, cur)} is not below the auto-send limit"
            f" {money(rule.max_total, cur)}"
        )
    for line in lines:
        last, qty = line["last_order_qty"], line["qty"]
        if not last:
            if not rule.first_order:
                reasons.append(f"{line['sku']}: no earlier order to compare {qty} with")
            continue
        change = abs(qty - last) * 100 / last
        if change > rule.max_change_percent:
            reasons.append(
                f"{line['sku']}: {qty} differs from the last order of {last} by {change:.0f} %"
                f" (limit {rule.max_change_percent:g} %)"
            )
    return reasons


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def plan(
    positions: Mapping[tuple[str, str], Position],
    forecasts: Mapping[tuple[str, str], ForecastLike],
    config: ReplenishmentConfig,
    *,
    today: date,
    last_orders: Mapping[tuple[str, str, str], int] = NO_ORDERS,
    locations: Collection[str] | None = None,
    now_ms: int | None = None,
    taken_ids: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Proposals (Proposal records, status ``proposed``, version 1) for every SKU x location
    of ``positions`` (only ``locations`` when given) whose policy asks for stock, grouped per
    supplier x location and sorted by id. ``last_orders[(supplier, location, sku)]``: units
    of the last purchase order, for the auto-send rule. ``now_ms``: created_at/updated_at
    (default: midnight UTC of ``today``). Ids are ``PO-{supplier}-{location}-{yyyymmdd}-{n}``
    with the smallest n >= 1 not in ``taken_ids``."""
    grouped: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for sku, location in sorted(positions):
        if locations is not None and location not in locations:
            continue
        policy = policy_for(config, sku, location)
        item = supplier_item(config, sku, location)
        if policy is None or item is None:
            continue
        supplier = config.suppliers[item.supplier]
        last = last_orders.get((supplier.id, location, sku))
        line = _line(
            sku,
            item,
            policy,
            positions[(sku, location)],
            forecasts.get((sku, location)),
            supplier,
            today,
            last,
        )
        if line is not None:
            grouped[(supplier.id, location)].append(line)
    stamp = now_ms if now_ms is not None else _ms(datetime.combine(today, datetime.min.time(), UTC))
    taken = set(taken_ids)
    proposals = []
    for (supplier_id, location), lines in sorted(grouped.items()):
        supplier = config.suppliers[supplier_id]
        base = f"PO-{supplier_id}-{location}-{today:%Y%m%d}"
        n = 1
        while f"{base}-{n}" in taken:
            n += 1
        taken.add(f"{base}-{n}")
        total = sum(line["qty"] * line["unit_cost"] for line in lines)
        reasons = _review_reasons(supplier, lines, total)
        arrives = next_order_day(supplier, today) + timedelta(days=supplier.lead_time_days)
        proposals.append(
            {
                "proposal_id": f"{base}-{n}",
                "version": 1,
                "status": "proposed",
                "supplier": supplier_id,
                "location": location,
                "currency": supplier.currency,
                "total": total,
                "lines": lines,
                "auto": not reasons,
                "review_reason": "; ".join(reasons) or None,
                "send_via": None,
                "send_ref": None,
                "expected_on": (arrives - EPOCH).days,
                "by": "planner",
                "note": None,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
    return proposals
