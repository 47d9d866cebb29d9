"""Planning proposals: the three policies, rounding, grouping, ids, expected day, auto-send."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from streams.replenishment.model import (
    AutoSend,
    Policy,
    PolicyKind,
    ReplenishmentConfig,
    SendVia,
    Supplier,
    SupplierItem,
)
from streams.replenishment.plan import (
    REVIEW_ANCHOR,
    Position,
    next_order_day,
    plan,
    round_qty,
    safety_stock,
)

MONDAY = date(2026, 11, 30)


@dataclass(frozen=True)
class Forecast:
    """A stand-in with the fields of streams.replenishment.forecast.Forecast."""

    method: str
    daily: tuple[float, ...]
    sigma_daily: float


def flat(per_day: float, sigma: float = 0.0, days: int = 28) -> Forecast:
    return Forecast("ets_weekly", (per_day,) * days, sigma)


def supplier(**kw: Any) -> Supplier:
    base = Supplier(
        id="acme",
        name="ACME",
        send_via=SendVia.EMAIL,
        lead_time_days=5,
        email=("orders@acme.example",),
        auto_send=AutoSend(max_total=100_000, max_change_percent=25),
    )
    return replace(base, **kw)


def config(
    policy: Policy, *, pack: int = 1, moq: int = 0, cost: int = 100, **kw: Any
) -> ReplenishmentConfig:
    return ReplenishmentConfig(
        suppliers={"acme": supplier(**kw)},
        items=(SupplierItem("chair", "acme", "AC-1", cost, pack, moq),),
        default_policy=policy,
    )


def position(available: int, incoming: int = 0) -> Position:
    return Position(on_hand=available, reserved=0, unsellable=0, incoming=incoming)


def one_line(proposals: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(proposals) == 1 and len(proposals[0]["lines"]) == 1
    line: dict[str, Any] = proposals[0]["lines"][0]
    return line


MIN_MAX = Policy(PolicyKind.MIN_MAX, min=10, max=40)


def test_min_max_orders_up_to_max_in_packs_with_the_figures_in_the_reason() -> None:
    """Given chair at paris-wh: available 3, incoming 2, min 10, max 40, packs of 6
    When planned
    Then 35 units are needed and 36 (6 packs) proposed, with the figures in the reason."""
    proposals = plan(
        {("chair", "paris-wh"): position(3, 2)}, {}, config(MIN_MAX, pack=6), today=MONDAY
    )
    line = one_line(proposals)
    assert (line["qty"], line["proposed_qty"], line["policy"]) == (36, 36, "min_max")
    assert line["reason"] == (
        "available 3 + incoming 2 = 5 <= min 10: order up to max 40 -> 35,"
        " rounded to 36 (packs of 6)"
    )
    assert (line["available"], line["incoming"], line["forecast_method"]) == (3, 2, None)


def test_nothing_is_proposed_above_min() -> None:
    """Given available 8 + incoming 3 above min 10 / When planned / Then no proposal."""
    assert plan({("chair", "paris-wh"): position(8, 3)}, {}, config(MIN_MAX), today=MONDAY) == []


def test_reorder_point_uses_lead_time_demand_and_safety_stock() -> None:
    """Given 4 units a day with sigma 2, lead time 5 days, service level 95 %, available 20
    When planned on an order day (every day)
    Then safety stock = ceil(1.645 x 2 x sqrt 5) = 8, reorder point 20 + 8 = 28 >= 20, and
    the order brings the position to the forecast over 6 days (next order day) + 8 = 32."""
    policy = Policy(PolicyKind.REORDER_POINT, service_level=0.95)
    proposals = plan(
        {("chair", "paris-wh"): position(20)},
        {("chair", "paris-wh"): flat(4, 2)},
        config(policy),
        today=MONDAY,
    )
    line = one_line(proposals)
    assert line["safety_stock"] == math.ceil(1.6448536 * 2 * math.sqrt(5)) == 8
    assert line["qty"] == 32 - 20
    assert line["forecast_lead_time"] == 20.0 and line["projected_available"] == 0
    assert line["forecast_method"] == "ets_weekly"
    assert "reorder point 28.0" in line["reason"] and "safety stock 8" in line["reason"]


def test_reorder_point_covered_proposes_nothing() -> None:
    """Given the same SKU with 29 available (above the reorder point 28) / Then nothing."""
    policy = Policy(PolicyKind.REORDER_POINT, service_level=0.95)
    assert (
        plan(
            {("chair", "paris-wh"): position(29)},
            {("chair", "paris-wh"): flat(4, 2)},
            config(policy),
            today=MONDAY,
        )
        == []
    )


def test_periodic_orders_only_on_review_days() -> None:
    """Given a periodic policy reviewed every 7 days, 2 a day, lead time 5, no sigma
    When planned on a review day and on the day after
    Then the review day orders the forecast over 12 days (24) minus the position; the next
    day proposes nothing."""
    policy = Policy(PolicyKind.PERIODIC, review_days=7)
    review = REVIEW_ANCHOR + timedelta(days=7 * 151)
    positions = {("chair", "paris-wh"): position(4)}
    forecasts = {("chair", "paris-wh"): flat(2)}
    line = one_line(plan(positions, forecasts, config(policy), today=review))
    assert line["qty"] == 24 - 4 and line["forecast_lead_time"] == 24.0
    after = review + timedelta(days=1)
    assert plan(positions, forecasts, config(policy), today=after) == []


def test_expected_on_is_the_next_order_day_plus_lead_time() -> None:
    """Given a supplier taking orders on Wednesdays only, lead time 5
    When planned on Monday 2026-11-30
    Then the order leaves Wednesday 2026-12-02 and is expected Monday 2026-12-07."""
    proposals = plan(
        {("chair", "paris-wh"): position(0)},
        {},
        config(MIN_MAX, order_days=frozenset({2})),
        today=MONDAY,
    )
    assert proposals[0]["expected_on"] == (date(2026, 12, 7) - date(1970, 1, 1)).days


def test_proposals_are_grouped_per_supplier_and_location_with_deterministic_ids() -> None:
    """Given two SKUs at two locations from one supplier and one id already taken
    When planned twice
    Then one proposal per location, ids PO-acme-<location>-20261130-<n> skipping the taken
    one, the same both times."""
    cfg = replace(
        config(MIN_MAX),
        items=(
            SupplierItem("chair", "acme", "AC-1", 100),
            SupplierItem("table", "acme", "AC-2", 900),
        ),
    )
    positions = {(s, loc): position(0) for s in ("chair", "table") for loc in ("lyon", "paris")}
    taken = ["PO-acme-lyon-20261130-1"]
    first = plan(positions, {}, cfg, today=MONDAY, taken_ids=taken)
    assert first == plan(positions, {}, cfg, today=MONDAY, taken_ids=taken)
    assert [p["proposal_id"] for p in first] == [
        "PO-acme-lyon-20261130-2",
        "PO-acme-paris-20261130-1",
    ]
    assert [[x["sku"] for x in p["lines"]] for p in first] == [["chair", "table"]] * 2
    assert first[0]["total"] == 40 * 100 + 40 * 900
    only_paris = plan(positions, {}, cfg, today=MONDAY, locations={"paris"})
    assert [p["location"] for p in only_paris] == ["paris"]


def test_the_preferred_supplier_wins_else_the_cheapest() -> None:
    """Given chair sold by acme (100) and bolt (90), bolt preferred at lyon only
    When planned at lyon and paris / Then lyon buys from bolt, paris from bolt too (cheaper);
    with acme preferred at paris, paris buys from acme."""
    bolt = supplier(id="bolt")
    cfg = ReplenishmentConfig(
        suppliers={"acme": supplier(), "bolt": bolt},
        items=(SupplierItem("chair", "acme", "A", 100), SupplierItem("chair", "bolt", "B", 90)),
        default_policy=MIN_MAX,
    )
    positions = {("chair", "lyon"): position(0), ("chair", "paris"): position(0)}
    assert [(p["supplier"], p["location"]) for p in plan(positions, {}, cfg, today=MONDAY)] == [
        ("bolt", "lyon"),
        ("bolt", "paris"),
    ]
    cfg = replace(cfg, preferred={("chair", "paris"): "acme"})
    assert {p["location"]: p["supplier"] for p in plan(positions, {}, cfg, today=MONDAY)} == {
        "lyon": "bolt",
        "paris": "acme",
    }


def test_a_policy_for_the_sku_beats_its_category_and_the_default() -> None:
    """Given a category policy at paris and a SKU policy at paris / Then the SKU's applies;
    a SKU with no policy and no default is not planned."""
    cfg = replace(
        config(MIN_MAX),
        categories={"chair": "furniture"},
        policies={
            ("furniture", "paris"): Policy(PolicyKind.MIN_MAX, min=1, max=5),
            ("chair", "paris"): Policy(PolicyKind.MIN_MAX, min=1, max=7),
        },
        default_policy=None,
    )
    assert one_line(plan({("chair", "paris"): position(0)}, {}, cfg, today=MONDAY))["qty"] == 7
    assert plan({("chair", "lyon"): position(0)}, {}, cfg, today=MONDAY) == []


# -- auto-send -------------------------------------------------------------------------------


def auto_of(qty_last: int | None, *, cost: int = 100, **kw: Any) -> dict[str, Any]:
    cfg = config(MIN_MAX, cost=cost, **kw)
    last = {} if qty_last is None else {("acme", "paris", "chair"): qty_last}
    return plan({("chair", "paris"): position(0)}, {}, cfg, today=MONDAY, last_orders=last)[0]


def test_a_small_proposal_like_the_last_order_goes_out_automatically() -> None:
    """Given 40 units at 1.00 (40.00 < 1000.00) and a last order of 36 (11 % < 25 %)
    Then auto and no review reason."""
    proposal = auto_of(36)
    assert proposal["auto"] is True and proposal["review_reason"] is None
    assert proposal["lines"][0]["last_order_qty"] == 36


def test_each_broken_auto_send_rule_is_a_review_reason() -> None:
    """Given a total above the limit, a change above 25 %, no earlier order, or auto-send off
    Then the proposal waits for a person and review_reason says why."""
    big = auto_of(40, cost=5000)
    assert big["auto"] is False
    assert big["review_reason"] == "total 2000.00 EUR is not below the auto-send limit 1000.00 EUR"
    changed = auto_of(20)
    assert changed["review_reason"] == (
        "chair: 40 differs from the last order of 20 by 100 % (limit 25 %)"
    )
    assert "no earlier order" in (auto_of(None)["review_reason"] or "")
    assert auto_of(None, auto_send=AutoSend(100_000, 25, first_order=True))["auto"] is True
    assert auto_of(40, auto_send=AutoSend())["review_reason"] == "auto-send is off for acme"


def test_a_proposal_below_the_minimum_order_value_waits_and_keeps_its_quantities() -> None:
    """Given a supplier minimum of 100.00 EUR and a proposal of 40.00 EUR
    Then the lines keep 40 units and the proposal waits with that reason."""
    proposal = auto_of(40, min_order_value=10_000)
    assert proposal["lines"][0]["qty"] == 40 and proposal["auto"] is False
    assert proposal["review_reason"] == (
        "total 40.00 EUR is below acme's minimum order value 100.00 EUR"
    )


# -- properties ------------------------------------------------------------------------------

quantities = st.integers(min_value=-50, max_value=500)
packs = st.integers(min_value=1, max_value=48)
moqs = st.integers(min_value=0, max_value=200)


@given(need=st.floats(min_value=-100, max_value=10_000), pack=packs, moq=moqs)
def test_rounded_quantities_are_whole_packs_at_least_the_moq(
    need: float, pack: int, moq: int
) -> None:
    """For any need, pack size and MOQ: 0 when nothing is needed, else a multiple of the
    pack size, at least the MOQ and the need, and less than one pack above the larger."""
    qty = round_qty(need, pack, moq)
    if need <= 1e-9:
        assert qty == 0
        return
    assert qty % pack == 0 and qty >= moq and qty >= need
    assert qty - max(math.ceil(need - 1e-9), moq) < pack


policies = st.one_of(
    st.builds(
        lambda lo, extra: Policy(PolicyKind.MIN_MAX, min=lo, max=lo + extra),
        st.integers(0, 100),
        st.integers(1, 200),
    ),
    st.builds(
        lambda level, fixed: Policy(
            PolicyKind.REORDER_POINT, service_level=level, safety_stock=fixed
        ),
        st.floats(0.51, 0.999),
        st.one_of(st.none(), st.integers(0, 30)),
    ),
    st.builds(
        lambda level, days: Policy(PolicyKind.PERIODIC, service_level=level, review_days=days),
        st.floats(0.51, 0.999),
        st.sampled_from([1, 7]),
    ),
)
forecasts = st.builds(
    Forecast,
    st.just("ets_weekly"),
    st.lists(st.floats(0, 50), min_size=1, max_size=30).map(tuple),
    st.floats(0, 20),
)


@given(
    policy=policies,
    forecast=forecasts,
    available=quantities,
    incoming=st.integers(0, 300),
    pack=packs,
    moq=moqs,
    lead=st.integers(0, 14),
    offset=st.integers(0, 13),
)
def test_any_proposed_line_is_whole_packs_and_only_when_the_policy_is_not_covered(
    policy: Policy,
    forecast: Forecast,
    available: int,
    incoming: int,
    pack: int,
    moq: int,
    lead: int,
    offset: int,
) -> None:
    """For any policy, forecast, position, pack size, MOQ and lead time: every line is a
    multiple of its pack size and at least its MOQ; and when the position covers the
    policy's target (so available + incoming is enough) nothing is proposed."""
    today = MONDAY + timedelta(days=offset)
    cfg = config(policy, pack=pack, moq=moq, lead_time_days=lead)
    key = ("chair", "paris")
    proposals = plan({key: position(available, incoming)}, {key: forecast}, cfg, today=today)
    for proposal in proposals:
        for line in proposal["lines"]:
            assert line["qty"] > 0 and line["qty"] % pack == 0 and line["qty"] >= moq
            assert line["qty"] * line["unit_cost"] == proposal["total"]
    have = available + incoming
    if policy.kind is PolicyKind.MIN_MAX:
        assert bool(proposals) == (have <= policy.min)
    lead_days = (next_order_day(cfg.suppliers["acme"], today) - today).days + lead
    horizon_demand = sum(forecast.daily) + max(forecast.daily) * (lead_days + 14)
    if have > horizon_demand + 200:  # far above any target these policies can reach
        assert proposals == []


@given(low=st.integers(0, 100), extra=st.integers(1, 200), have=quantities, pack=packs)
def test_min_max_fills_up_to_exactly_max_rounded_up_to_a_pack(
    low: int, extra: int, have: int, pack: int
) -> None:
    """For any min <= max, position at or below min and pack size (no MOQ): the position plus
    the order is max rounded up to the next whole pack above the position."""
    assume(have <= low)
    high = low + extra
    cfg = config(Policy(PolicyKind.MIN_MAX, min=low, max=high), pack=pack)
    line = one_line(plan({("chair", "paris"): position(have)}, {}, cfg, today=MONDAY))
    assert line["qty"] == math.ceil((high - have) / pack) * pack
    assert high <= have + line["qty"] < high + pack


@given(
    low=st.floats(0.51, 0.99),
    step=st.floats(0.001, 0.2),
    sigma=st.floats(0.1, 50),
    days=st.integers(1, 30),
)
def test_safety_stock_grows_with_the_service_level(
    low: float, step: float, sigma: float, days: int
) -> None:
    """For any sigma and lead time, a higher service level never keeps less safety stock,
    and sigma 0 keeps none."""
    high = min(0.999, low + step)
    ss_low = safety_stock(Policy(PolicyKind.REORDER_POINT, service_level=low), sigma, days)
    ss_high = safety_stock(Policy(PolicyKind.REORDER_POINT, service_level=high), sigma, days)
    assert 0 <= ss_low <= ss_high
    assert safety_stock(Policy(PolicyKind.REORDER_POINT, service_level=high), 0, days) == 0


@given(
    total_units=st.integers(1, 400),
    last=st.one_of(st.none(), st.integers(1, 400)),
    limit=st.integers(1, 100_000),
    change=st.floats(0, 200),
    minimum=st.integers(0, 50_000),
)
def test_auto_send_holds_exactly_when_every_rule_holds(
    total_units: int, last: int | None, limit: int, change: float, minimum: int
) -> None:
    """For any order size, last order, limit, change allowance and minimum order value: the
    proposal is automatic exactly when total < limit, total >= minimum, and the line is
    within the change allowance of a last order; otherwise review_reason is set."""
    cfg = config(
        Policy(PolicyKind.MIN_MAX, min=0, max=total_units),
        cost=100,
        auto_send=AutoSend(limit, change),
        min_order_value=minimum,
    )
    lasts = {} if last is None else {("acme", "paris", "chair"): last}
    proposal = plan({("chair", "paris"): position(0)}, {}, cfg, today=MONDAY, last_orders=lasts)[0]
    total = total_units * 100
    expected = (
        total < limit
        and total >= minimum
        and last is not None
        and abs(total_units - last) * 100 / last <= change
    )
    assert proposal["auto"] is expected
    assert (proposal["review_reason"] is None) is expected


@given(
    policy=policies,
    forecast=forecasts,
    have=quantities,
    more=st.integers(1, 300),
    pack=packs,
    moq=moqs,
    lead=st.integers(0, 14),
)
def test_more_stock_never_orders_more_and_once_covered_stays_covered(
    policy: Policy,
    forecast: Forecast,
    have: int,
    more: int,
    pack: int,
    moq: int,
    lead: int,
) -> None:
    """For any policy and forecast: the units proposed never grow when available + incoming
    grows, so once the position covers the policy (nothing proposed), any larger position
    proposes nothing either; incoming counts exactly like available."""
    cfg = config(policy, pack=pack, moq=moq, lead_time_days=lead)
    key = ("chair", "paris")

    def ordered(available: int, incoming: int = 0) -> int:
        found = plan({key: position(available, incoming)}, {key: forecast}, cfg, today=MONDAY)
        return sum(line["qty"] for p in found for line in p["lines"])

    assert ordered(have + more) <= ordered(have)
    assert ordered(have, more) == ordered(have + more)
