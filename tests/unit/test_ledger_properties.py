"""Property tests of the ledger rules over random event sequences (hypothesis).

The no-oversell invariant, stated exactly (DESIGN.md rule 3, reliability.md I1):

* The ledger never *accepts* beyond availability: after any step that raised ``reserved``
  at a location L (an accepted order line, hold or backorder allocation),
  ``reserved(L) <= on_hand(L) - unsellable(L) - safety_stock(L)``.
* Only a physical reduction may leave reservations uncovered: the uncovered amount
  ``max(0, reserved(L) - (on_hand(L) - unsellable(L)))`` grows only in a step that has a
  movement at L lowering ``on_hand`` without touching ``reserved`` (till sale, negative
  adjustment, count, unreserved shipment) - and that step raises an ``oversell_attempt``
  alert for L. Never a transfer: it moves only units neither reserved nor unsellable.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import POSITIVE, stock_event
from streams.ledger import (
    SkuState,
    apply,
    channel_quantities,
    expiry_events,
    location_available,
    parse_config,
)

SKU = "chair"
BASE = 1_700_000_000_000  # times are epoch ms from 2000 on; examples start here
END = 4_000_000_000_000  # after every hold of an example expired, before 2100
LOCATIONS = ["a", "b"]
CHANNELS = ["web", "amazon", "pos", "ebay", None]
CONFIG = parse_config(
    {
        "low_stock_threshold": 2,
        "discrepancy_alert_threshold": 1,
        "journal_limit": 25,
        "locations": [{"name": "a"}, {"name": "b", "safety_stock": 1}],
        "channels": [
            {"name": "web", "rule": {"buffer": 1}},
            {
                "name": "amazon",
                "locations": ["a"],
                "on_insufficient": "backorder",
                "rule": {"percentage": 50, "max_shown": 7},
            },
            {"name": "pos", "locations": ["b"], "rule": {"zero_at_or_below": 2}},
        ],
    }
)
TYPES = [
    "order_placed",
    "order_cancelled",
    "order_shipped",
    "sale",
    "return_received",
    "receipt",
    "adjustment",
    "stock_count",
    "transfer",
    "hold",
    "hold_released",
    "quarantine_released",
    "purchase_ordered",
    "purchase_cancelled",
]

event_ops = st.tuples(
    st.just("event"),
    st.sampled_from(TYPES),
    st.integers(0, 6),  # qty
    st.sampled_from([*LOCATIONS, None]),
    st.sampled_from(CHANNELS),
    st.integers(0, 5),  # order / hold number
    st.integers(0, 3000),  # time advance, and how far in the past a count is
    st.sampled_from([None, "damaged", "resellable"]),
)
ops = st.lists(
    st.one_of(
        event_ops,
        event_ops,
        event_ops,
        event_ops,
        event_ops,
        event_ops,
        st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
        st.tuples(st.just("expire"), st.integers(0, 6000)),
        st.tuples(st.just("timer"), st.integers(0, 6000)),
    ),
    min_size=8,
    max_size=80,
)
SEED = [
    stock_event("receipt", SKU, "seed-a", BASE, qty=8, location="a"),
    stock_event("receipt", SKU, "seed-b", BASE, qty=8, location="b"),
]


def _event(op: tuple[Any, ...], n: int, now: int) -> dict[str, Any]:
    _, kind, qty, loc, channel, order, back, disposition = op
    fields: dict[str, Any] = {"location": loc, "channel": channel, "source": "erp"}
    if kind in ("order_placed", "order_cancelled", "order_shipped", "hold", "hold_released"):
        fields["order_id"] = f"o{order}"
    if kind == "adjustment":
        qty, fields["reason"] = (qty - 3) or 1, "correction"
    if kind == "transfer":
        fields["to_location"] = "b" if loc == "a" else "a"
        fields["location"] = loc or "default"
    if kind == "stock_count":
        fields["as_of"], fields["source_seq"] = now - back, n
    if kind == "hold":
        fields["expires_at"] = now + 1 + back
    if kind == "return_received":
        fields["disposition"] = disposition
    if kind == "quarantine_released":
        fields["disposition"] = disposition or "damaged"
        fields["reason"] = "inspected"
    if kind in ("purchase_ordered", "purchase_cancelled"):
        fields["source_ref"] = f"PO-{order}"
    if kind in POSITIVE:
        qty = max(qty, 1)
    return stock_event(kind, SKU, f"e{n}", now, qty=qty, **fields)


def _stored(state: SkuState | None) -> dict[bytes, bytes | None]:
    """Every record the state is stored as (its main record and its live pages)."""
    return dict(state.records(None)) if state is not None else {}


def _load(stored: dict[bytes, bytes | None]) -> SkuState:
    main = stored.get(SKU.encode())
    return SkuState.from_bytes(main, stored.get) if main is not None else SkuState(sku=SKU)


def _check_step(
    state: SkuState,
    before: dict[bytes, bytes | None],
    out: Any,
    totals: dict[str, list[int]],
    levels: dict[str, Any],
) -> None:
    if out.duplicate:
        assert not out.movements and out.decision is None and not out.alerts
        assert out.level is None and _stored(state) == before
        return
    old = _load(before)
    raised: set[str] = set()
    physical: set[str] = set()
    transferred: set[str] = set()
    for m in out.movements:
        t = totals[m["location"]]
        t[0] += m["delta_on_hand"]
        t[1] += m["delta_reserved"]
        t[2] += m["delta_unsellable"]
        t[3] += m["delta_incoming"]
        if m["delta_reserved"] > 0:
            raised.add(m["location"])
        if m["delta_reserved"] == 0 and m["delta_on_hand"] < 0:
            physical.add(m["location"])
        if m["type"] == "transfer" and m["delta_on_hand"] < 0:
            transferred.add(m["location"])
    # conservation: movements add up to the state
    for name, loc in state.locations.items():
        assert totals[name] == [loc.on_hand, loc.reserved, loc.unsellable, loc.incoming]
        # reservations are exactly the orders' lines plus the live holds
        lines = sum(o.get(name, 0) for o in state.orders.values())
        held = sum(h.qty for h in state.holds.values() if h.location == name)
        assert loc.reserved == lines + held
        assert location_available(loc, name, CONFIG) >= 0
    # no oversell
    alerted = {a["location"] for a in out.alerts if a["kind"] == "oversell_attempt"}
    for name in raised:
        loc = state.locations[name]
        assert loc.reserved <= loc.on_hand - loc.unsellable - CONFIG.safety_stock(name)
    for name, loc in state.locations.items():
        prev = old.locations.get(name)
        gap = max(0, loc.reserved - (loc.on_hand - loc.unsellable))
        gap_before = max(0, prev.reserved - (prev.on_hand - prev.unsellable)) if prev else 0
        if gap > gap_before:
            assert name in physical and name in alerted
            assert name not in transferred
    # levels: only when a channel's quantity or a location's available changed, version +1,
    # never negative, with the split per location
    now_qty = channel_quantities(state, CONFIG)
    split = {n: location_available(loc, n, CONFIG) for n, loc in state.locations.items()}
    assert all(q >= 0 for q in now_qty.values())
    if out.level is None:
        assert now_qty == {c: levels["qty"].get(c, 0) for c in now_qty}
        assert split == {n: levels["split"].get(n, 0) for n in split}
    else:
        assert out.level["version"] == levels["version"] + 1
        changed = {c for c in now_qty if now_qty[c] != levels["qty"].get(c, 0)}
        assert set(out.level["changed_channels"]) == changed
        assert changed or split != {n: levels["split"].get(n, 0) for n in split}
        assert out.level["locations"] == split
        levels["version"], levels["qty"], levels["split"] = out.level["version"], now_qty, split
    # the byte form (main record and pages) round-trips
    assert _load(_stored(state)) == state


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_random_event_sequences_keep_every_ledger_invariant(sequence: list[Any]) -> None:
    """Given a random mix of every event type over two locations and five channels, with
    duplicates re-injected, holds expiring as time advances and counts as of the past,
    When each is applied in turn,
    Then after every step: movements add up to on_hand/reserved/unsellable/incoming,
    reserved equals order lines plus holds, nothing is accepted beyond availability,
    duplicates change and emit nothing, levels come only on change with version + 1,
    no quantity is negative, the state round-trips through bytes, and expired holds go."""
    state: SkuState | None = None
    applied: list[dict[str, Any]] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    levels: dict[str, Any] = {"version": 0, "qty": {}, "split": {}}
    now = BASE
    for seed in SEED:
        before = _stored(state)
        state, out = apply(state, seed, CONFIG, now)
        _check_step(state, before, out, totals, levels)
    for n, op in enumerate(sequence):
        before = _stored(state)
        if op[0] in ("expire", "timer"):  # the worker's timer releases due holds via the log
            assert state is not None
            now += op[1]
            for release in expiry_events(state, now):
                before = _stored(state)
                state, out = apply(state, release, CONFIG, now)
                assert release["order_id"] not in state.holds
                _check_step(state, before, out, totals, levels)
            assert all(h.expires_at > now for h in state.holds.values())
            continue
        elif op[0] == "duplicate":
            if not applied:
                continue
            state, out = apply(state, applied[op[1] % len(applied)], CONFIG, now)
            assert out.duplicate
        else:
            now += op[6] // 10
            event = _event(op, n, now)
            state, out = apply(state, event, CONFIG, now)
            applied.append(event)
        _check_step(state, before, out, totals, levels)
    if state is not None:
        for release in expiry_events(state, END):
            before = _stored(state)
            state, out = apply(state, release, CONFIG, END)
            _check_step(state, before, out, totals, levels)
        assert not state.holds
        for name, loc in state.locations.items():
            assert loc.reserved == sum(o.get(name, 0) for o in state.orders.values())


deltas = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["sale", "receipt", "adjustment"]),
        st.integers(1, 5),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(deltas, st.integers(0, 10_000), st.integers(0, 500), deltas)
def test_a_count_as_of_the_past_rebases_exactly_on_later_movements(
    earlier: list[tuple[int, str, int]],
    as_of: int,
    count: int,
    later: list[tuple[int, str, int]],
) -> None:
    """Given an opening count and movements with random source times,
    When a count of C as of T arrives, followed by more movements,
    Then on_hand is C plus every movement that occurred after T (before or after the count
    arrived), a movement from before T arriving after the count is absorbed (the count
    holds it), and the discrepancy movement is exactly the difference from expected."""

    def event(n: int, spec: tuple[int, str, int]) -> dict[str, Any]:
        at, kind, qty = spec
        signed = {"sale": -qty, "receipt": qty, "adjustment": qty}[kind]
        fields = {"reason": "correction"} if kind == "adjustment" else {}
        return stock_event(kind, SKU, f"m{n}", BASE + at, qty=qty, **fields), signed

    config = parse_config({"journal_limit": 100})  # covers every movement of the example
    state, _ = apply(None, stock_event("stock_count", SKU, "open", BASE, qty=50), config, BASE)
    after_t = 0
    for n, spec in enumerate(earlier):
        ev, signed = event(n, spec)
        state, _ = apply(state, ev, config, BASE + 20_000)
        after_t += signed if spec[0] > as_of else 0
    expected = state.locations["default"].on_hand
    count_ev = stock_event(
        "stock_count", SKU, "count", BASE + 20_000, qty=count, as_of=BASE + as_of
    )
    state, out = apply(state, count_ev, config, BASE + 20_000)
    assert state.locations["default"].on_hand == count + after_t
    diff = count + after_t - expected
    assert sum(m["delta_on_hand"] for m in out.movements) == diff
    for n, spec in enumerate(later, start=len(earlier)):
        ev, signed = event(n, spec)
        state, _ = apply(state, ev, config, BASE + 20_000)
        after_t += signed if spec[0] >= as_of else 0  # of T's own millisecond: applied
    assert state.locations["default"].on_hand == count + after_t


@settings(max_examples=100, deadline=None)
@given(ops, st.data())
def test_reapplying_any_earlier_event_changes_nothing(sequence: list[Any], data: Any) -> None:
    """Given any state reached by a random sequence,
    When any event of that sequence is applied again,
    Then the state's bytes are unchanged and nothing is emitted."""
    state: SkuState | None = None
    applied: list[dict[str, Any]] = list(SEED)
    now = BASE
    for seed in SEED:
        state, _ = apply(state, seed, CONFIG, now)
    for n, op in enumerate(sequence):
        if op[0] == "event":  # only events: timers and duplicates are tested above
            now += op[6] // 10
            event = _event(op, n, now)
            state, _ = apply(state, event, CONFIG, now)
            applied.append(event)
    if state is None:
        return
    before = _stored(state)
    again = data.draw(st.sampled_from(applied))
    state, out = apply(state, again, CONFIG, now + 1)
    assert out.duplicate and not out.movements and out.level is None and out.decision is None
    assert _stored(state) == before
