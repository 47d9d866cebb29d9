"""Example-based tests of each event type of the ledger rules."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import stock_event
from streams.ledger import (
    DEFAULT_CONFIG,
    InvalidEvent,
    SkuState,
    apply,
    expiry_events,
    parse_config,
)

SKU = "chair"
T0 = 1_700_000_000_000
THREE = parse_config({"channels": [{"name": "shopify"}, {"name": "amazon"}, {"name": "pos"}]})


class Ledger:
    """A SKU's state plus a counter of event ids, for short scenarios."""

    def __init__(self, config: Any = DEFAULT_CONFIG) -> None:
        self.config = config
        self.state: SkuState | None = None
        self.n = 0

    def __call__(self, kind: str, qty: int = 0, at: int | None = None, **fields: Any) -> Any:
        self.n += 1
        when = T0 + self.n if at is None else at
        event = stock_event(
            kind, SKU, fields.pop("event_id", f"e{self.n}"), when, qty=qty, **fields
        )
        self.state, out = apply(self.state, event, self.config, when)
        return out

    def loc(self, name: str = "default") -> Any:
        assert self.state is not None
        return self.state.locations[name]


def test_the_100_chairs_are_sold_exactly_once_across_three_channels() -> None:
    """Given a count of 100 chairs listed on shopify, amazon and pos,
    When 150 orders of 1 arrive round-robin from the three channels,
    Then 100 are accepted, 50 rejected with an oversell_attempt alert, every channel
    shows 0; and when 10 orders are cancelled every channel shows 10."""
    ledger = Ledger(THREE)
    out = ledger("stock_count", 100)
    assert out.level["channels"] == {"shopify": 100, "amazon": 100, "pos": 100}
    outcomes = []
    for i in range(150):
        ch = ("shopify", "amazon", "pos")[i % 3]
        out = ledger("order_placed", 1, order_id=f"o{i}", channel=ch)
        outcomes.append(out.decision["outcome"])
        if out.decision["outcome"] == "rejected":
            assert [a["kind"] for a in out.alerts] == ["oversell_attempt"]
    assert outcomes.count("accepted") == 100 and outcomes.count("rejected") == 50
    assert ledger.state is not None
    assert ledger.state.last_qty == {"shopify": 0, "amazon": 0, "pos": 0, "*": 0}
    for i in range(10):
        out = ledger("order_cancelled", order_id=f"o{i}")
    assert out.level["channels"] == {"shopify": 10, "amazon": 10, "pos": 10}
    assert ledger.loc().reserved == 90


def test_an_order_reserves_then_shipping_consumes_the_reservation() -> None:
    """Given 5 on hand, When an order of 3 is placed and then shipped,
    Then reserved goes 3 then 0 and on_hand 5 then 2, with one movement each."""
    ledger = Ledger()
    ledger("receipt", 5)
    out = ledger("order_placed", 3, order_id="o1", channel="web")
    assert out.decision["outcome"] == "accepted" and out.decision["location"] == "default"
    assert out.decision["available_before"] == 5
    assert (ledger.loc().on_hand, ledger.loc().reserved) == (5, 3)
    out = ledger("order_shipped", order_id="o1")
    assert [(m["delta_on_hand"], m["delta_reserved"]) for m in out.movements] == [(-3, -3)]
    assert (ledger.loc().on_hand, ledger.loc().reserved) == (2, 0)
    assert ledger.state is not None and not ledger.state.orders


def test_an_order_for_a_sku_never_stocked_is_rejected_as_unknown() -> None:
    """Given no state for the SKU, When an order line arrives,
    Then it is rejected with reason unknown_sku and its id is still recorded."""
    ledger = Ledger()
    out = ledger("order_placed", 1, order_id="o1", event_id="x")
    assert (out.decision["outcome"], out.decision["reason"]) == ("rejected", "unknown_sku")
    assert ledger("order_placed", 1, order_id="o1", event_id="x").duplicate


def test_a_partial_cancel_releases_at_most_what_the_order_reserved() -> None:
    """Given an order reserving 4, When 3 are cancelled and then 5 more,
    Then reserved drops by 3 and then by the remaining 1 only."""
    ledger = Ledger()
    ledger("receipt", 10)
    ledger("order_placed", 4, order_id="o1")
    ledger("order_cancelled", 3, order_id="o1")
    assert ledger.loc().reserved == 1
    out = ledger("order_cancelled", 5, order_id="o1")
    assert [m["delta_reserved"] for m in out.movements] == [-1]
    assert ledger("order_cancelled", order_id="o1").skipped == "unknown_order"


def test_the_order_goes_to_the_serving_location_with_most_available() -> None:
    """Given web served by a and b, b having more available, When a web order arrives,
    Then b reserves it; an order naming location a reserves at a."""
    config = parse_config(
        {
            "locations": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
            "channels": [{"name": "web", "locations": ["a", "b"]}],
        }
    )
    ledger = Ledger(config)
    ledger("receipt", 3, location="a")
    ledger("receipt", 5, location="b")
    ledger("receipt", 50, location="c")
    assert ledger("order_placed", 2, order_id="o1", channel="web").decision["location"] == "b"
    out = ledger("order_placed", 2, order_id="o2", channel="web", location="a")
    assert out.decision["location"] == "a"
    out = ledger("order_placed", 4, order_id="o3", channel="web")
    assert out.decision["outcome"] == "rejected"  # no single serving location has 4


def test_a_backorder_reserves_nothing_and_takes_stock_as_it_arrives() -> None:
    """Given a backorder channel with 1 available, When an order of 3 arrives and then 5
    are received, Then the decision is backordered, 1 is reserved at once (reserved never
    exceeds on_hand), and the receipt allocates the other 2."""
    config = parse_config({"channels": [{"name": "b2b", "on_insufficient": "backorder"}]})
    ledger = Ledger(config)
    ledger("receipt", 1)
    out = ledger("order_placed", 3, order_id="o1", channel="b2b")
    assert out.decision["outcome"] == "backordered"
    assert (ledger.loc().on_hand, ledger.loc().reserved) == (1, 1)
    out = ledger("receipt", 5)
    assert [m["type"] for m in out.movements] == ["receipt", "backorder_allocated"]
    assert (ledger.loc().on_hand, ledger.loc().reserved) == (6, 3)
    assert ledger.state is not None and not ledger.state.backorders
    assert ledger.state.orders == {"o1": {"default": 3}}


def test_a_till_sale_may_take_reserved_units_and_raises_an_alert() -> None:
    """Given 2 on hand both reserved, When the till sells 1,
    Then on_hand is 1 (the sale is physical, recorded) and an oversell_attempt alert says
    1 reserved unit is no longer on hand."""
    ledger = Ledger()
    ledger("receipt", 2)
    ledger("order_placed", 2, order_id="o1")
    out = ledger("sale", 1, location="default")
    assert ledger.loc().on_hand == 1
    assert [(a["kind"], a["value"]) for a in out.alerts] == [("oversell_attempt", 1)]


@pytest.mark.parametrize(
    ("disposition", "unsellable"), [(None, 0), ("resellable", 0), ("damaged", 2), ("quarantine", 2)]
)
def test_a_return_goes_back_on_hand_and_damaged_goods_are_unsellable(
    disposition: str | None, unsellable: int
) -> None:
    """Given nothing, When 2 units are returned with a disposition,
    Then on_hand is 2, and unsellable is 2 only for damaged or quarantined goods."""
    ledger = Ledger()
    ledger("return_received", 2, disposition=disposition)
    assert (ledger.loc().on_hand, ledger.loc().unsellable) == (2, unsellable)


def test_a_receipt_lowers_incoming_but_never_below_zero() -> None:
    """Given 3 incoming, When 5 are received, Then on_hand is +5 and incoming 0."""
    ledger = Ledger()
    ledger("receipt", 1)
    ledger.loc().incoming = 3
    out = ledger("receipt", 5)
    assert out.movements[0]["delta_incoming"] == -3 and ledger.loc().incoming == 0


def test_an_adjustment_is_signed_and_needs_a_reason() -> None:
    """Given 5 on hand, When an adjustment of -2 for damage arrives, Then on_hand is 3;
    an adjustment without a reason is an InvalidEvent that changes nothing."""
    ledger = Ledger()
    ledger("receipt", 5)
    ledger("adjustment", -2, reason="damage")
    assert ledger.loc().on_hand == 3
    before = ledger.state.to_bytes() if ledger.state else b""
    with pytest.raises(InvalidEvent) as err:
        ledger("adjustment", -2)
    assert err.value.reason == "missing_reason"
    assert ledger.state is not None and ledger.state.to_bytes() == before


def test_a_transfer_moves_units_between_locations_in_two_movements() -> None:
    """Given 5 at a, When 2 are transferred to b, Then a has 3, b has 2."""
    ledger = Ledger()
    ledger("receipt", 5, location="a")
    out = ledger("transfer", 2, location="a", to_location="b")
    assert [(m["location"], m["delta_on_hand"], m["reason"]) for m in out.movements] == [
        ("a", -2, "transfer out"),
        ("b", 2, "transfer in"),
    ]
    assert (ledger.loc("a").on_hand, ledger.loc("b").on_hand) == (3, 2)


def test_a_count_rebases_on_movements_after_its_as_of_and_alerts_the_discrepancy() -> None:
    """Given a first count of 10 (just sets it) and a sale of 2 at T+10,
    When a count of 7 as of T+5 arrives, Then on_hand is 7 - 2 = 5 (expected 8): a
    discrepancy movement of -3 and an alert above the threshold of 1."""
    ledger = Ledger(parse_config({"discrepancy_alert_threshold": 1}))
    out = ledger("stock_count", 10, at=T0)
    assert [(m["type"], m["delta_on_hand"]) for m in out.movements] == [("stock_count", 10)]
    ledger("sale", 2, at=T0 + 10)
    out = ledger("stock_count", 7, at=T0 + 20, as_of=T0 + 5)
    assert [(m["type"], m["delta_on_hand"]) for m in out.movements] == [("discrepancy", -3)]
    assert [(a["kind"], a["value"]) for a in out.alerts] == [("discrepancy", -3)]
    assert ledger.loc().on_hand == 5


def test_a_stale_count_from_the_same_source_never_overwrites_a_newer_one() -> None:
    """Given a count of 10 with source_seq 5 from the wms,
    When a redelivered count of 3 with source_seq 4 arrives later,
    Then it is skipped as stale_count and on_hand stays 10."""
    ledger = Ledger()
    ledger("stock_count", 10, source="wms", source_seq=5)
    out = ledger("stock_count", 3, source="wms", source_seq=4)
    assert out.skipped == "stale_count" and not out.movements
    assert ledger.loc().on_hand == 10


def test_a_count_older_than_the_journal_is_skipped_with_an_alert() -> None:
    """Given a journal of 2 entries and 3 sales after a first count,
    When a count as of before the oldest kept entry arrives,
    Then it is skipped (the rebase could not be exact) and an alert says how to fix it."""
    ledger = Ledger(parse_config({"journal_limit": 2}))
    ledger("stock_count", 10, at=T0)
    for i in range(3):
        ledger("sale", 1, at=T0 + 10 + i)
    out = ledger("stock_count", 4, at=T0 + 20, as_of=T0 + 5)
    assert out.skipped == "count_before_journal" and [a["kind"] for a in out.alerts] == ["other"]


def test_a_hold_reserves_until_released_or_expired() -> None:
    """Given 3 on hand, When a hold of 2 expiring at T+100 is placed, Then 2 are reserved;
    the timer finds nothing to release before T+100, and at T+100 its release frees the
    hold with hold_expired."""
    ledger = Ledger()
    ledger("receipt", 3)
    out = ledger("hold", 2, order_id="cart1", expires_at=T0 + 100)
    assert out.decision["outcome"] == "accepted" and ledger.loc().reserved == 2
    assert ledger.state is not None and ledger.state.next_hold_expiry == T0 + 100
    assert expiry_events(ledger.state, T0 + 99) == [] and ledger.state.holds
    [release] = expiry_events(ledger.state, T0 + 100)
    state, out = apply(ledger.state, release, ledger.config, T0 + 100)
    assert [(m["type"], m["delta_reserved"]) for m in out.movements] == [("hold_expired", -2)]
    assert out.movements[0]["movement_id"].startswith("e2:expired") and not state.holds
    assert state.locations["default"].reserved == 0


def test_an_order_converts_its_checkout_hold_instead_of_reserving_twice() -> None:
    """Given 2 on hand, both held by checkout o1,
    When order o1 for 2 is placed, Then it is accepted from the hold: reserved stays 2."""
    ledger = Ledger()
    ledger("receipt", 2)
    ledger("hold", 2, order_id="o1")
    out = ledger("order_placed", 2, order_id="o1")
    assert out.decision["outcome"] == "accepted"
    assert [m["type"] for m in out.movements] == ["hold_released", "order_placed"]
    assert ledger.loc().reserved == 2 and ledger.state is not None and not ledger.state.holds


def test_hold_released_frees_the_hold_and_an_unknown_hold_is_skipped() -> None:
    """Given a hold of 2, When 1 is released then all, Then reserved goes 1 then 0."""
    ledger = Ledger()
    ledger("receipt", 2)
    ledger("hold", 2, order_id="h")
    ledger("hold_released", 1, order_id="h")
    assert ledger.loc().reserved == 1
    ledger("hold_released", order_id="h")
    assert ledger.loc().reserved == 0
    assert ledger("hold_released", order_id="h").skipped == "unknown_hold"


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        ("order_placed", {"qty": -1, "order_id": "o"}, "negative_qty"),
        ("order_placed", {"qty": 1}, "missing_order_id"),
        ("transfer", {"qty": 1}, "missing_to_location"),
        ("transfer", {"qty": 1, "location": "a", "to_location": "a"}, "same_location"),
        ("teleport", {"qty": 1}, "unknown_type"),
        ("unknown", {"qty": 1}, "unknown_type"),
        ("sale", {"qty": 0}, "zero_qty"),
        ("sale", {"qty": "2"}, "bad_qty"),
        ("return_received", {"qty": 1, "disposition": "lost"}, "bad_disposition"),
        ("hold", {"qty": 1}, "missing_order_id"),
    ],
)
def test_a_malformed_event_raises_invalid_event_and_changes_nothing(
    kind: str, fields: dict[str, Any], reason: str
) -> None:
    """Given a SKU with stock, When a malformed event arrives,
    Then InvalidEvent names the reason, the state is unchanged and the id not recorded."""
    ledger = Ledger()
    ledger("receipt", 5)
    assert ledger.state is not None
    before = ledger.state.to_bytes()
    event = stock_event("sale", SKU, "bad", T0, qty=1)
    event.update(type=kind, **fields)
    with pytest.raises(InvalidEvent) as err:
        apply(ledger.state, event, DEFAULT_CONFIG, T0)
    assert err.value.reason == reason
    assert ledger.state.to_bytes() == before


def test_a_duplicate_event_changes_nothing_and_emits_nothing() -> None:
    """Given an applied order, When the same event id arrives again,
    Then duplicate is set and no movement, decision, alert or level is emitted."""
    ledger = Ledger()
    ledger("receipt", 5)
    ledger("order_placed", 1, order_id="o", event_id="dup")
    out = ledger("order_placed", 1, order_id="o", event_id="dup")
    assert out.duplicate and not out.movements and out.decision is None and out.level is None
    assert ledger.loc().reserved == 1


def test_alerts_fire_on_crossings_only_with_deterministic_ids() -> None:
    """Given a low-stock threshold of 3 and 5 on hand,
    When units sell one by one to 0 and 1 comes back,
    Then low_stock fires once at 3, out_of_stock once at 0, back_in_stock once at 1."""
    ledger = Ledger(parse_config({"low_stock_threshold": 3}))
    ledger("receipt", 5)
    kinds = []
    for _ in range(5):
        kinds += [(a["kind"], a["alert_id"]) for a in ledger("sale", 1).alerts]
    kinds += [(a["kind"], a["alert_id"]) for a in ledger("receipt", 1).alerts]
    assert kinds == [
        ("low_stock", "e3:low_stock:default"),
        ("out_of_stock", "e6:out_of_stock:*"),
        ("back_in_stock", "e7:back_in_stock:*"),
    ]


def test_a_level_is_emitted_only_when_a_channel_quantity_changes() -> None:
    """Given channel m that shows at most 2, and 5 on hand,
    When 1 more unit is received, Then the level lists only the default ('*') as changed
    with version + 1; and when a count equal to the ledger arrives, no level at all."""
    config = parse_config({"channels": [{"name": "m", "rule": {"max_shown": 2}}]})
    ledger = Ledger(config)
    first = ledger("receipt", 5).level
    second = ledger("receipt", 1).level
    assert second["changed_channels"] == ["*"] and second["version"] == first["version"] + 1
    assert second["channels"] == {"m": 2} and second["default_quantity"] == 6
    assert ledger("stock_count", 6).level is None
    assert ledger("hold", 7, order_id="h").level is None  # rejected: nothing changes


def test_the_timers_expiry_event_releases_only_a_hold_still_due() -> None:
    """Given a hold expiring at T+100 that was refreshed to T+500,
    When the timer's hold_released (reason expired) stamped T+200 arrives,
    Then it is skipped; one stamped T+500 releases it as hold_expired."""
    ledger = Ledger()
    ledger("receipt", 3)
    ledger("hold", 1, order_id="cart", expires_at=T0 + 100)
    ledger("hold", 2, order_id="cart", expires_at=T0 + 500)
    assert ledger.loc().reserved == 2
    out = ledger("hold_released", order_id="cart", reason="expired", at=T0 + 200)
    assert out.skipped == "hold_not_expired" and ledger.loc().reserved == 2
    out = ledger("hold_released", order_id="cart", reason="expired", at=T0 + 500)
    assert [(m["type"], m["delta_reserved"]) for m in out.movements] == [("hold_expired", -2)]
