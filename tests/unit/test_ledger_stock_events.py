"""Transfers, quarantine releases, supplier orders and hold expiries: the ledger's limits."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.events import MAX_HOLD_TTL_SECONDS, stock_event
from streams.ledger import DEFAULT_CONFIG, ConfigError, InvalidEvent, SkuState, apply, parse_config

SKU = "chair"
T0 = 1_700_000_000_000


class Ledger:
    """A SKU's state and its movements so far, for short scenarios."""

    def __init__(self, config: Any = DEFAULT_CONFIG) -> None:
        self.config = config
        self.state: SkuState | None = None
        self.n = 0
        self.movements: list[dict[str, Any]] = []

    def __call__(self, kind: str, qty: int = 0, **fields: Any) -> Any:
        self.n += 1
        event = stock_event(kind, SKU, f"e{self.n}", T0 + self.n, qty=qty, **fields)
        self.state, out = apply(self.state, event, self.config, T0 + self.n)
        self.movements.extend(out.movements)
        return out

    def loc(self, name: str = "default") -> Any:
        assert self.state is not None
        return self.state.locations[name]


def test_a_transfer_beyond_the_free_units_of_its_source_is_refused_and_moves_nothing() -> None:
    """Given 10 on hand at "a", 3 reserved by an order and 2 quarantined by a damaged return
    (12 on hand), when a transfer of 8 to "b" arrives, then it is rejected with
    insufficient_stock naming the 7 the source could move, no movement is made and "a"
    keeps its figures; and a transfer of exactly 7 then moves."""
    ledger = Ledger()
    ledger("receipt", 10, location="a")
    ledger("order_placed", 3, order_id="o1", location="a")
    ledger("return_received", 2, location="a", disposition="damaged")
    out = ledger("transfer", 8, location="a", to_location="b")
    assert out.movements == []
    assert out.decision is not None
    assert (out.decision["outcome"], out.decision["reason"]) == ("rejected", "insufficient_stock")
    assert (out.decision["location"], out.decision["available_before"]) == ("a", 7)
    loc = ledger.loc("a")
    assert (loc.on_hand, loc.reserved, loc.unsellable) == (12, 3, 2)
    assert "b" not in ledger.state.locations  # type: ignore[union-attr]
    out = ledger("transfer", 7, location="a", to_location="b")
    assert out.decision is None
    assert [m["delta_on_hand"] for m in out.movements] == [-7, 7]
    assert (ledger.loc("a").on_hand, ledger.loc("b").on_hand) == (5, 7)
    assert ledger.loc("a").uncovered() == 0


def test_a_transfer_from_a_location_never_stocked_is_refused() -> None:
    """Given a SKU known only at "a", when a transfer from "b" arrives, then it is rejected
    with 0 movable, and no location "b" with negative stock appears."""
    ledger = Ledger()
    ledger("receipt", 5, location="a")
    out = ledger("transfer", 1, location="b", to_location="a")
    assert out.decision["reason"] == "insufficient_stock"
    assert out.decision["available_before"] == 0
    assert "b" not in ledger.state.locations  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("disposition", "on_hand", "unsellable", "available"),
    [("resellable", 10, 1, 9), ("damaged", 7, 1, 6)],
)
def test_released_quarantine_goes_back_to_sellable_or_is_written_off(
    disposition: str, on_hand: int, unsellable: int, available: int
) -> None:
    """Given 6 sellable units and 4 quarantined returns, when 3 are released from quarantine
    as resellable, then unsellable drops by 3 and on_hand stays (3 more sellable); as damaged,
    on_hand and unsellable both drop by 3 (written off) with one movement carrying the
    reason, and the channels keep selling 6."""
    ledger = Ledger()
    ledger("receipt", 6)
    ledger("return_received", 4, disposition="quarantine")
    out = ledger("quarantine_released", 3, disposition=disposition, reason="inspected")
    assert out.decision is None
    [move] = out.movements
    assert move["type"] == "quarantine_released"
    assert move["reason"] == "inspected"
    assert (move["on_hand_after"], move["unsellable_after"]) == (on_hand, unsellable)
    assert (ledger.loc().on_hand, ledger.loc().unsellable) == (on_hand, unsellable)
    assert ledger.loc().available(0) == available
    assert sum(m["delta_on_hand"] for m in ledger.movements) == on_hand
    assert sum(m["delta_unsellable"] for m in ledger.movements) == unsellable


def test_a_quarantine_release_beyond_the_quarantined_units_is_refused() -> None:
    """Given 2 quarantined units, when a release of 3 arrives, then it is rejected with
    insufficient_unsellable naming the 2 quarantined, and nothing moves."""
    ledger = Ledger()
    ledger("receipt", 10)
    ledger("return_received", 2, disposition="damaged")
    out = ledger("quarantine_released", 3, disposition="damaged", reason="scrapped")
    assert out.movements == []
    assert (out.decision["outcome"], out.decision["reason"]) == (
        "rejected",
        "insufficient_unsellable",
    )
    assert out.decision["available_before"] == 2
    assert (ledger.loc().on_hand, ledger.loc().unsellable) == (12, 2)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"disposition": "resellable"}, "missing_reason"),
        ({"reason": "ok"}, "bad_disposition"),
        ({"reason": "ok", "disposition": "quarantine"}, "bad_disposition"),
    ],
)
def test_a_quarantine_release_needs_a_reason_and_a_destination(
    fields: dict[str, Any], reason: str
) -> None:
    """Given a quarantine release without reason, without disposition, or "released" into
    quarantine, when applied, then it is malformed with that reason and nothing changes."""
    ledger = Ledger()
    ledger("return_received", 2, disposition="damaged")
    with pytest.raises(InvalidEvent) as bad:
        ledger("quarantine_released", 1, **fields)
    assert bad.value.reason == reason
    assert ledger.loc().unsellable == 2


def test_a_purchase_order_raises_incoming_and_receipts_and_cancellations_lower_it() -> None:
    """Given a purchase order of 10 and one of 5 at "wh", when 4 are received, 3 cancelled
    on one line, 20 more cancelled than remain, then incoming goes 15, 11, 8, 0 (never
    negative, the extra cancellation is skipped once nothing is incoming), on_hand is the 4
    received, nothing is sellable before receipt, and the movements add up to incoming."""
    ledger = Ledger()
    out = ledger("purchase_ordered", 10, location="wh", source_ref="PO-1")
    assert out.movements[0]["delta_incoming"] == 10
    assert out.level is None  # incoming is never sellable
    ledger("purchase_ordered", 5, location="wh", source_ref="PO-2")
    assert ledger.loc("wh").incoming == 15
    assert ledger.loc("wh").available(0) == 0
    ledger("receipt", 4, location="wh", source_ref="PO-1")
    assert (ledger.loc("wh").incoming, ledger.loc("wh").on_hand) == (11, 4)
    ledger("purchase_cancelled", 3, location="wh", source_ref="PO-2")
    assert ledger.loc("wh").incoming == 8
    ledger("purchase_cancelled", 28, location="wh", source_ref="PO-1")
    assert ledger.loc("wh").incoming == 0
    out = ledger("purchase_cancelled", 1, location="wh", source_ref="PO-1")
    assert out.skipped == "nothing_incoming" and out.movements == []
    assert sum(m["delta_incoming"] for m in ledger.movements) == 0
    assert sum(m["delta_on_hand"] for m in ledger.movements) == 4


@pytest.mark.parametrize("kind", ["purchase_ordered", "purchase_cancelled"])
def test_a_purchase_event_needs_the_purchase_order_number(kind: str) -> None:
    """Given a purchase order event without source_ref, when applied, then it is malformed
    (missing_source_ref): a supplier order line is traced by its PO number."""
    with pytest.raises(InvalidEvent) as bad:
        Ledger()(kind, 3)
    assert bad.value.reason == "missing_source_ref"


def test_a_hold_without_expiry_gets_the_configured_ttl_and_one_beyond_the_maximum_is_refused() -> (
    None
):
    """Given a ledger configured with hold_ttl_seconds 60, when a hold without expires_at is
    placed, then it expires 60 s after it was placed; a hold expiring one millisecond
    beyond the maximum TTL, or not after it was placed, is malformed; one at the maximum is
    accepted."""
    ledger = Ledger(parse_config({"hold_ttl_seconds": 60}))
    ledger("receipt", 10)
    ledger("hold", 1, order_id="c1")
    assert ledger.state.holds["c1"].expires_at == T0 + 2 + 60_000  # type: ignore[union-attr]
    longest = MAX_HOLD_TTL_SECONDS * 1000
    with pytest.raises(InvalidEvent) as bad:
        ledger("hold", 1, order_id="c2", expires_at=T0 + 3 + longest + 1)
    assert bad.value.reason == "hold_ttl_too_long"
    with pytest.raises(InvalidEvent) as bad:
        ledger("hold", 1, order_id="c3", expires_at=T0 + 4)
    assert bad.value.reason == "bad_expires_at"
    out = ledger("hold", 1, order_id="c4", expires_at=T0 + 5 + longest)
    assert out.decision["outcome"] == "accepted"


def test_a_configured_hold_ttl_above_the_maximum_is_a_configuration_error() -> None:
    """Given hold_ttl_seconds above the maximum hold TTL, when the configuration is read,
    then it is refused naming the key, so no route grants longer holds than the API."""
    with pytest.raises(ConfigError) as bad:
        parse_config({"hold_ttl_seconds": MAX_HOLD_TTL_SECONDS + 1})
    assert bad.value.path == "hold_ttl_seconds"
