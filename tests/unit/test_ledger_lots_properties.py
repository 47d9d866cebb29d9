"""Property tests of lots and expiry (FEFO) over random event sequences (hypothesis).

After every step of a random sequence of receipts of lots (with or without dates),
unlotted receipts, order lines from channels with and without a minimum shelf life,
backorders, holds, cancellations, shipments, sales, adjustments, counts and transfers:

* FEFO: an order line (or a backorder's allocation) takes no unit of a lot while a lot
  that expires earlier and is eligible for its channel still has free units, and takes
  unlotted units only once no eligible lot has free units;
* shelf life: every lot it takes is eligible (not expired at the event's day, and with
  the channel's ``min_shelf_life_days`` left);
* conservation per lot: the movements of each (location, lot) add up to the lot's
  on_hand and reserved, those of the unlotted part to what no lot holds; every lot's
  quantities are >= 0 and what the orders hold of a lot is the lot's reserved;
* a lot whose reservation rose has its reservation covered by its units.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import POSITIVE, stock_event
from streams.ledger import SkuState, apply, parse_config
from streams.ledger.lots import day_of, eligible

SKU = "milk"
BASE = 1_795_000_000_000
DAY = 86_400_000
LOCATIONS = ["a", "b"]
CHANNELS = ["web", "b2b", "bo", None]
LOTS = ["L1", "L2", "L3", "L4", None]
CONFIG = parse_config(
    {
        "locations": [{"name": "a"}, {"name": "b", "safety_stock": 1}],
        "channels": [
            {"name": "web"},
            {"name": "b2b", "min_shelf_life_days": 5},
            {"name": "bo", "on_insufficient": "backorder", "min_shelf_life_days": 2},
        ],
    }
)
TYPES = [
    "receipt",
    "receipt",
    "order_placed",
    "order_placed",
    "order_cancelled",
    "order_shipped",
    "sale",
    "adjustment",
    "stock_count",
    "transfer",
    "hold",
    "hold_released",
]

ops = st.lists(
    st.tuples(
        st.sampled_from(TYPES),
        st.integers(0, 6),  # qty
        st.sampled_from(LOCATIONS),
        st.sampled_from(CHANNELS),
        st.integers(0, 4),  # order number
        st.sampled_from(LOTS),
        st.integers(-2, 12),  # expiry, days after the event's day (None when lot is None)
        st.integers(0, 2 * DAY),  # time advance
    ),
    min_size=5,
    max_size=60,
)


def _event(op: tuple[Any, ...], n: int, now: int) -> dict[str, Any]:
    kind, qty, loc, channel, order, lot, days, _ = op
    fields: dict[str, Any] = {"location": loc, "channel": channel, "source": "erp"}
    if kind in ("order_placed", "order_cancelled", "order_shipped", "hold", "hold_released"):
        fields["order_id"] = f"o{order}"
    if kind == "order_placed" and order % 2:
        fields["location"] = None  # the ledger chooses
    if kind == "receipt" and lot is not None:
        fields["lot"] = lot
        fields["expires_on"] = day_of(now) + days if days < 11 else None
    if kind == "adjustment":
        qty, fields["reason"] = (qty - 3) or 1, "correction"
        fields["lot"] = lot
    if kind == "transfer":
        fields["to_location"] = "b" if loc == "a" else "a"
    if kind == "stock_count":
        fields["as_of"], fields["source_seq"] = now, n
    if kind in POSITIVE:
        qty = max(qty, 1)
    return stock_event(kind, SKU, f"e{n}", now, qty=qty, **fields)


def _key(lot: Any) -> tuple[bool, int, str]:
    name, entry = lot
    return (entry.expires is None, entry.expires or 0, name)


def _check_allocation(after: SkuState, out: Any, event: dict[str, Any]) -> None:
    day = day_of(event["occurred_at"])
    taken: dict[tuple[str, str | None], list[str | None]] = defaultdict(list)
    for m in out.movements:
        if m["type"] in ("order_placed", "backorder_allocated") and m["delta_reserved"] > 0:
            taken[(m["location"], m["channel"])].append(m["lot"])
    for (name, channel), used in taken.items():
        min_days = CONFIG.min_shelf_life_days(channel)
        loc = after.locations[name]  # a lot used is reserved: still there
        for lot in used:
            if lot is not None:  # shelf life respected
                assert eligible(loc.lots[lot], day, min_days), (lot, channel)
        order = sorted(loc.lots.items(), key=_key)  # FEFO, stated independently
        named = [lot for lot in used if lot is not None]
        # FEFO: every eligible lot ahead of the last lot used is fully taken now
        if named:
            last = max((x for x in order if x[0] in named), key=_key)
            for lot_name, entry in order:
                if _key((lot_name, entry)) < _key(last) and eligible(entry, day, min_days):
                    assert entry.on_hand - entry.reserved <= 0, (lot_name, used)
        if None in used:  # unlotted last: no eligible lot kept free units
            for lot_name, entry in order:
                if eligible(entry, day, min_days):
                    assert entry.on_hand - entry.reserved <= 0, (lot_name, used)


def _check_lots(state: SkuState, out: Any, totals: dict[tuple[str, str | None], list[int]]) -> None:
    raised: set[tuple[str, str]] = set()
    for m in out.movements:
        t = totals[(m["location"], m["lot"])]
        t[0] += m["delta_on_hand"]
        t[1] += m["delta_reserved"]
        if m["lot"] is not None and m["delta_reserved"] > 0:
            raised.add((m["location"], m["lot"]))
    held: dict[tuple[str, str], int] = defaultdict(int)
    for order_id, by_location in state.order_lots.items():
        for name, lots in by_location.items():
            assert sum(lots.values()) <= state.orders[order_id][name]
            for lot, qty in lots.items():
                assert qty > 0
                held[(name, lot)] += qty
    for name, loc in state.locations.items():
        lotted = [0, 0]
        for lot, entry in loc.lots.items():
            assert entry.on_hand >= 0 and entry.reserved >= 0
            assert entry.on_hand or entry.reserved  # an empty lot is forgotten
            assert totals[(name, lot)] == [entry.on_hand, entry.reserved]
            assert held[(name, lot)] == entry.reserved
            lotted[0] += entry.on_hand
            lotted[1] += entry.reserved
            if (name, lot) in raised:
                assert entry.reserved <= entry.on_hand
        assert totals[(name, None)] == [loc.on_hand - lotted[0], loc.reserved - lotted[1]]
        for (where, lot), t in totals.items():
            if where == name and lot is not None and lot not in loc.lots:
                assert t == [0, 0]  # forgotten lots hold nothing


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_lots_are_allocated_fefo_within_shelf_life_and_add_up(sequence: list[Any]) -> None:
    """Given a random sequence of lotted and unlotted stock events, orders and corrections,
    When applied one by one (the state stored and read back between steps),
    Then FEFO and shelf life hold for every allocation, and the movements of every lot add
    up to its quantities, which add up to the location's."""
    state: SkuState | None = None
    now = BASE
    totals: dict[tuple[str, str | None], list[int]] = defaultdict(lambda: [0, 0])
    for n, op in enumerate(sequence):
        now += op[-1]
        event = _event(op, n, now)
        state, out = apply(state, event, CONFIG, now)
        _check_allocation(state, out, event)
        _check_lots(state, out, totals)
        stored = dict(state.records(None))  # stored and read back between steps
        state = SkuState.from_bytes(stored[SKU.encode()], stored.get)
