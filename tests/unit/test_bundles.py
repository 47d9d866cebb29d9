"""Bundles: the derived quantity (property tests), the catalogue, the order book's
all-or-nothing over a bundle's components, and the line intake's expansion."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.framework.bundles import BundleExpander
from connectors.framework.events import stock_event
from connectors.framework.intake import Intake
from connectors.framework.types import Delivery
from streams.bundles.catalogue import Bundle, BundleConfigError, parse_catalogue
from streams.bundles.derive import bundle_level, sellable
from streams.bundles.expand import BundleEventError, expand_event, expand_order
from streams.orders.setup import OrderConfig
from tests.unit.test_order_book import NOW, Exchange, action, placed

CHANNELS = ("shop", "market", "store")
SKUS = ("A", "B", "C", "D")


def level(sku: str, version: int, per_channel: dict[str, int], default: int = 0) -> dict[str, Any]:
    return {
        "sku": sku,
        "version": version,
        "channels": per_channel,
        "changed_channels": [],
        "default_quantity": default,
        "locations": {},
        "cause_event_id": f"e-{sku}-{version}",
        "occurred_at": NOW + version,
        "at": NOW + version,
    }


compositions = st.dictionaries(st.sampled_from(SKUS), st.integers(1, 5), min_size=1)
channel_qty = st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 60))
levels_st = st.dictionaries(
    st.sampled_from(SKUS),
    st.tuples(st.integers(1, 10**6), channel_qty, st.integers(0, 60)),
)


@given(compositions, levels_st, st.sampled_from((*CHANNELS, None)))
def test_a_bundle_sells_exactly_as_many_sets_as_its_components_make(
    comp: dict[str, int], raw: dict[str, tuple[int, dict[str, int], int]], channel: str | None
) -> None:
    """Given any composition and any component levels
    When the bundle's quantity on a channel is derived
    Then n sets use at most each component's quantity on that channel (its default
    quantity where the channel is not named, 0 without a level) and n + 1 sets would not."""
    levels = {sku: level(sku, v, ch, d) for sku, (v, ch, d) in raw.items()}
    n = sellable(comp, levels, channel)

    def have(sku: str) -> int:
        if sku not in levels:
            return 0
        found = levels[sku]["channels"].get(channel) if channel else None
        return found if found is not None else levels[sku]["default_quantity"]

    assert n >= 0
    assert all(n * per <= have(sku) for sku, per in comp.items())
    assert any((n + 1) * per > have(sku) for sku, per in comp.items())


@given(compositions, levels_st, st.sampled_from(SKUS), st.integers(1, 50), channel_qty)
def test_a_newer_component_level_gives_a_newer_bundle_version_and_its_figures(
    comp: dict[str, int],
    raw: dict[str, tuple[int, dict[str, int], int]],
    changed: str,
    step: int,
    new_qty: dict[str, int],
) -> None:
    """Given a bundle's level derived from its components
    When one component's level moves to a newer version with any quantities
    Then the bundle's new level has a higher version (the connectors push it after the old
    one) and every channel's figure is the derived quantity from the new levels."""
    bundle = Bundle("SET", 1, comp)
    levels = {sku: level(sku, v, ch, d) for sku, (v, ch, d) in raw.items()}
    before = bundle_level(bundle, levels)
    old_version = levels[changed]["version"] if changed in levels else 0
    levels[changed] = level(changed, old_version + step, new_qty)
    after = bundle_level(bundle, levels)
    if changed not in comp:
        return
    assert after is not None
    if before is not None:
        assert after["version"] > before["version"]
    for ch, qty in after["channels"].items():
        assert qty == sellable(comp, levels, ch)
    assert after["default_quantity"] == sellable(comp, levels, None)


def test_a_new_definition_version_outranks_every_record_of_the_old_one() -> None:
    """Given a bundle of A and B at high versions
    When its definition (version 2) drops B
    Then its level's version is still higher than any of version 1's."""
    levels = {"A": level("A", 10, {"shop": 4}), "B": level("B", 10**9, {"shop": 4})}
    old = bundle_level(Bundle("SET", 1, {"A": 1, "B": 1}), levels)
    new = bundle_level(Bundle("SET", 2, {"A": 1}), levels)
    assert old is not None and new is not None and new["version"] > old["version"]


def test_the_catalogue_refuses_nested_bundles_bad_quantities_and_unknown_keys() -> None:
    """Given bundle definitions with a mistake each
    When parsed
    Then each names the key at fault and the fix; a good one parses with its channel's
    composition."""
    good = parse_catalogue(
        [{"sku": "SET", "version": 2, "components": {"A": 1, "B": 2}, "channels": {"m": {"A": 1}}}]
    )
    bundle = good.get("SET")
    assert bundle is not None and bundle.for_channel("m") == {"A": 1}
    assert bundle.for_channel("shop") == {"A": 1, "B": 2}
    assert [b.sku for b in good.using("B")] == ["SET"]
    cases = [
        ([{"sku": "S", "components": {"A": 0}}], "bundles[0].components.A"),
        ([{"sku": "S", "components": {}}], "bundles[0].components"),
        ([{"sku": "S", "components": {"A": 1}, "colour": 1}], "bundles[0].colour"),
        (
            [{"sku": "S", "components": {"A": 1}}, {"sku": "T", "components": {"S": 1}}],
            "bundles[1].components",
        ),
        ([{"sku": "S", "version": 0, "components": {"A": 1}}], "bundles[0].version"),
    ]
    for raw, path in cases:
        with pytest.raises(BundleConfigError) as err:
            parse_catalogue(raw)
        assert err.value.path == path, err.value


CATALOGUE = parse_catalogue([{"sku": "SET", "version": 1, "components": {"A": 1, "B": 2}}])


def test_a_bundle_order_reserves_every_component_or_none() -> None:
    """Given A in stock and B short of what one set needs
    When an order for a set is placed (the bundle line expanded by the catalogue)
    Then the order ends in exception holding nothing; once B is received, the same order
    placed again holds one A and two B, each reservation naming the bundle."""
    ex = Exchange({"A": {"a": 5}, "B": {"a": 1}}, OrderConfig())
    ex.order(dict(expand_order(placed("web:1", [("1", "SET", 1)]), CATALOGUE)))
    ex.settle()
    assert ex.state("web:1").status == "exception"
    assert ex.reserved("web:1") == {}
    ex.ledger({"event_id": "more-b", "type": "receipt", "sku": "B", "qty": 3, "location": "a"})
    ex.refresh()
    result = ex.order(dict(expand_order(placed("web:2", [("1", "SET", 1)]), CATALOGUE)))
    reservations = [e for e in result.events if e["type"] == "order_placed"]
    assert {(e["sku"], e["qty"], e["source_ref"]) for e in reservations} == {
        ("A", 1, "bundle:SET"),
        ("B", 2, "bundle:SET"),
    }
    ex.settle()
    assert ex.state("web:2").status == "allocated"
    assert ex.reserved("web:2") == {"A": 1, "B": 2}


def test_shipping_the_bundle_line_ships_its_components_by_the_definition_it_was_sold_with() -> None:
    """Given an order for two sets placed under version 1 (A + 2 B)
    When the definition becomes version 2 (A + C) and the channel ships the bundle's line
    Then the ledger ships 2 A and 4 B, each movement naming the bundle, and holds nothing."""
    ex = Exchange({"A": {"a": 5}, "B": {"a": 5}, "C": {"a": 5}}, OrderConfig())
    ex.order(dict(expand_order(placed("web:1", [("1", "SET", 2)]), CATALOGUE)))
    ex.settle()
    v2 = parse_catalogue([{"sku": "SET", "version": 2, "components": {"A": 1, "C": 1}}])
    shipped = action("web:1", "shipped", lines=[{"line_id": "1", "qty": 2}])
    result = ex.order(dict(expand_order(shipped, v2)))
    ships = {(e["sku"], e["qty"], e["source_ref"]) for e in result.events}
    assert ships == {("A", 2, "bundle:SET"), ("B", 4, "bundle:SET")}
    assert ex.state("web:1").status == "shipped"
    assert ex.reserved("web:1") == {}
    assert ex.skus["B"].locations["a"].on_hand == 1
    assert ex.state("web:1").total() == 2 * 100  # the set's price, per set


def event(kind: str, sku: str, qty: int, eid: str) -> dict[str, Any]:
    return dict(
        stock_event(
            event_id=eid,
            type=kind,
            sku=sku,
            qty=qty,
            channel="shop",
            occurred_at=NOW,
            order_id="shop:1" if kind.startswith("order") else None,
            reason="count" if kind == "adjustment" else None,
        )
    )


def test_a_bundle_stock_event_becomes_its_components_events_with_stable_ids() -> None:
    """Given a line intake order_placed of two sets and a cancellation (qty 0)
    When expanded
    Then each becomes one event per component, units times the composition, ids derived
    from the original (a redelivery expands to the same ids), the bundle as source_ref."""
    placed = event("order_placed", "SET", 2, "e1")  # stamped once: a redelivery is the same record
    out = expand_event(placed, CATALOGUE)
    assert [(e["event_id"], e["sku"], e["qty"], e["source_ref"]) for e in out] == [
        ("e1|A", "A", 2, "bundle:SET"),
        ("e1|B", "B", 4, "bundle:SET"),
    ]
    assert out == expand_event(placed, CATALOGUE)
    cancelled = expand_event(event("order_cancelled", "SET", 0, "e2"), CATALOGUE)
    assert [(e["sku"], e["qty"]) for e in cancelled] == [("A", 0), ("B", 0)]
    assert expand_event(event("sale", "A", 1, "e3"), CATALOGUE)[0]["event_id"] == "e3"
    with pytest.raises(BundleEventError) as err:
        expand_event(event("receipt", "SET", 1, "e4"), CATALOGUE)
    assert err.value.reason == "bundle_not_stocked"


def test_the_line_intake_publishes_components_and_dead_letters_what_a_bundle_cannot_have() -> None:
    """Given a delivery with a bundle's order line, a plain line and an adjustment of the
    bundle SKU
    When the intake accepts it
    Then the components and the plain line are published, the adjustment goes to the
    refusals (a dead letter) and nothing else is lost."""
    published: list[dict[str, Any]] = []
    refused: list[tuple[str, str]] = []

    async def publish(events: Any) -> None:
        published.extend(events)

    async def refuse(ev: Any, error: BundleEventError) -> None:
        refused.append((ev["event_id"], error.reason))

    intake = Intake(publish, bundles=BundleExpander(CATALOGUE), bundle_refusals=refuse)
    delivery = Delivery(
        "shop",
        "orders/create",
        events=[
            event("order_placed", "SET", 1, "l1"),
            event("order_placed", "C", 3, "l2"),
            event("adjustment", "SET", 1, "l3"),
        ],
    )
    asyncio.run(intake.accept(delivery))
    assert [(e["event_id"], e["sku"], e["qty"]) for e in published] == [
        ("l1|A", "A", 1),
        ("l1|B", "B", 2),
        ("l2", "C", 3),
    ]
    assert refused == [("l3", "bundle_not_stocked")]


def test_the_http_intake_refuses_a_count_of_a_bundle_and_keeps_its_sale() -> None:
    """Given POST /v1/events items: a stock count of the bundle SKU, a sale of it and a
    receipt of a component
    When parsed with the bundle definitions
    Then the count is refused with its reason and the other two are accepted."""
    from streams.worker.intake import parse_items, refuse_unstocked

    items = [
        {"event_id": "c1", "type": "stock_count", "sku": "SET", "qty": 4, "location": "a"},
        {"event_id": "s1", "type": "sale", "sku": "SET", "qty": 1, "location": "a"},
        {"event_id": "r1", "type": "receipt", "sku": "A", "qty": 9, "location": "a"},
    ]
    results = refuse_unstocked(parse_items(items), CATALOGUE)
    assert [r.ok for r in results] == [False, True, True]
    assert "never stocked" in results[0].errors[0]


def test_a_marketplace_bundle_line_waits_for_every_component_and_releases_them_all() -> None:
    """Given a marketplace order awaiting acceptance with a bundle's line (A + 2 B)
    When the ledger reserves A and refuses B (the intake expanded the line)
    Then the order is refused only once both components are decided, the releases are the
    components' (never the bundle SKU's), and the answer lists the line as refused."""
    from connectors.framework.acceptance import AwaitedLine, AwaitedOrder
    from tests.unit.test_acceptance_gate import Marketplace, _gate

    market = Marketplace()
    published: list[dict[str, Any]] = []
    gate = _gate(market, published, bundles=CATALOGUE)
    line = AwaitedLine("L1", "SET", 1)
    order = AwaitedOrder("cdiscount", "seller-1", "A1", (line,), None)
    gate.expect(order)

    def decision(sku: str, outcome: str) -> dict[str, Any]:
        placed = event("order_placed", "SET", 1, order.placed_id(line))
        [found] = [e for e in expand_event(placed, CATALOGUE) if e["sku"] == sku]
        return {"event_id": found["event_id"], "outcome": outcome, "reason": "insufficient"}

    async def run() -> None:
        assert await gate.on_decision(decision("A", "accepted"))
        await gate.answer_due()
        assert market.calls == []  # B not decided yet
        assert await gate.on_decision(decision("B", "rejected"))
        await gate.answer_due()

    asyncio.run(run())
    assert [c[0] for c in market.calls] == ["refuse"]
    assert sorted((e["sku"], e["type"], e["qty"]) for e in published) == [
        ("A", "order_cancelled", 1),
        ("B", "order_cancelled", 2),
    ]


def test_a_tills_csv_sells_a_bundle_and_refuses_a_count_of_it() -> None:
    """Given a till's CSV selling a bundle and counting it
    When read with the bundle definitions
    Then the sale stays (published as its components' sales) and the count is refused with
    its reason, like any bad row."""
    from streams.worker.pos_import import _unstocked_refused, read_rows

    text = (
        "id;sku;qty;occurred_at;type\n"
        "s1;SET;1;2026-11-30T09:00:00Z;sale\n"
        "c1;SET;4;2026-11-30T09:01:00Z;count\n"
    )
    rows = [
        _unstocked_refused(row, CATALOGUE)
        for row in read_rows(text, store="paris", source="pos:paris", received_ms=NOW)
    ]
    assert [r.result.ok for r in rows] == [True, False]
    assert "never stocked" in rows[1].result.errors[0]
    sale = rows[0].result.event
    assert sale is not None
    assert [(e["sku"], e["qty"]) for e in expand_event(sale, CATALOGUE)] == [("A", 1), ("B", 2)]


def test_a_refused_component_of_a_bundle_line_reaches_the_channels_refusal_policy() -> None:
    """Given a bundle's order line expanded by the line intake
    When the ledger rejects one component
    Then the refusal policy sees the channel's order and line (the bundle's), with the
    component's SKU and units, as for any refused line."""
    from connectors.framework.refusals import refusal_from

    placed = event("order_placed", "SET", 1, "shop/acct/order/5/line/9/placed")
    [_, b] = expand_event(placed, CATALOGUE)
    decision = {
        "decision_id": "d1",
        "event_id": b["event_id"],
        "channel": "shop",
        "sku": "B",
        "qty": 2,
        "outcome": "rejected",
        "reason": "insufficient_stock",
        "at": NOW,
    }
    refusal = refusal_from(decision, "shop", "acct")
    assert refusal is not None
    assert (refusal.order_id, refusal.line_id, refusal.sku, refusal.qty) == ("5", "9", "B", 2)
